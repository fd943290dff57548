// One archive for a module's snapshots from every node: `manifest.json` plus each node's own
// snapshot zip as the agent made it (`<node>.zip`), so nothing of theirs is altered. Opening an
// archive needs no cluster: the module logs of every node are read from the newest dump of each and
// merged into one timeline.
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import type { LogEntryView, SnapshotContent } from '../../api/contract.ts';

export const archiveFormat = 'hakit-snapshots';
export const entryBytesMax = 256 * 1024 * 1024;
export const entriesMax = 20_000;
export const timelineEntriesMax = 200_000;

export interface ArchiveManifest {
  format: string;
  version: 1;
  module: string;
  cluster: string;
  createdMs: number;
  nodes: { node: string; file: string; bytes: number; error: string | null }[];
}

export function buildArchive(
  manifest: ArchiveManifest,
  nodeZips: { file: string; data: Buffer }[],
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`), 'manifest.json', {
      mtime: new Date(manifest.createdMs),
    });
    // Node snapshots are zips already: stored, not compressed again.
    for (const entry of nodeZips)
      zip.addBuffer(entry.data, entry.file, { mtime: new Date(manifest.createdMs), compress: false });
    zip.end();
  });
}

export async function readZipEntries(
  buffer: Buffer,
  wanted: (name: string) => boolean,
): Promise<Map<string, Buffer>> {
  const zip = await yauzl.fromBufferPromise(buffer, {
    lazyEntries: true,
    autoClose: false,
    validateEntrySizes: true,
  });
  const out = new Map<string, Buffer>();
  try {
    if (zip.entryCount > entriesMax)
      throw new Error(`zip with ${zip.entryCount} entries (at most ${entriesMax})`);
    for await (const entry of zip.eachEntry()) {
      if (!wanted(entry.fileName) || entry.fileName.endsWith('/')) continue;
      if (entry.uncompressedSize > entryBytesMax)
        throw new Error(`${entry.fileName} is over ${entryBytesMax} bytes`);
      const stream = await zip.openReadStreamPromise(entry);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      out.set(entry.fileName, Buffer.concat(chunks));
    }
  } finally {
    zip.close();
  }
  return out;
}

export async function listZip(buffer: Buffer): Promise<string[]> {
  const zip = await yauzl.fromBufferPromise(buffer, { lazyEntries: true, autoClose: false });
  const names: string[] = [];
  try {
    for await (const entry of zip.eachEntry()) {
      names.push(entry.fileName);
      if (names.length > entriesMax) break;
    }
  } finally {
    zip.close();
  }
  return names;
}

const logLinePattern =
  /^\| (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3})\d* \| ([^|]*) \| (\S+) \| (.*)$/;

/** Module log lines as the agent writes them (`| date time | component | L | message`). */
export function parseLogText(node: string, text: string): LogEntryView[] {
  const entries: LogEntryView[] = [];
  for (const line of text.split('\n')) {
    const match = logLinePattern.exec(line);
    if (!match) {
      const last = entries.at(-1);
      if (last && line.trim() !== '') last.message += `\n${line}`;
      continue;
    }
    const [, year, month, day, hour, minute, second, milli, component, level, message] = match;
    const timeMs = new Date(
      Number(year),
      Number(month) - 1,
      Number(day),
      Number(hour),
      Number(minute),
      Number(second),
      Number(milli),
    ).getTime();
    entries.push({
      node,
      timeMs,
      level: level ?? '?',
      component: (component ?? '').trim(),
      message: message ?? '',
    });
  }
  return entries;
}

/** Entries of all nodes in time order (stable for equal times: node order). */
export function mergeTimeline(perNode: readonly LogEntryView[][]): LogEntryView[] {
  const merged = perNode.flat();
  merged.sort((a, b) => a.timeMs - b.timeMs);
  return merged.slice(-timelineEntriesMax);
}

/** Reads a snapshot archive made by the console, or one node's snapshot zip made by `hakit snapshot`. */
export async function openSnapshotArchive(buffer: Buffer, fallbackNode: string): Promise<SnapshotContent> {
  const top = await readZipEntries(buffer, (name) => name === 'manifest.json' || name.endsWith('.zip'));
  const manifestData = top.get('manifest.json');
  const nodeZips: { node: string; data: Buffer }[] = [];
  let module = '';
  if (manifestData) {
    const manifest = JSON.parse(manifestData.toString('utf8')) as ArchiveManifest;
    if (manifest.format !== archiveFormat) throw new Error('manifest.json is not a hakit snapshot manifest');
    module = manifest.module;
    for (const node of manifest.nodes) {
      const data = top.get(node.file);
      if (data) nodeZips.push({ node: node.node, data });
    }
  } else {
    nodeZips.push({ node: fallbackNode, data: buffer });
  }
  const perNode: LogEntryView[][] = [];
  const files: string[] = [];
  const nodes: string[] = [];
  for (const nodeZip of nodeZips) {
    const names = await listZip(nodeZip.data);
    files.push(...names.map((name) => `${nodeZip.node}: ${name}`));
    const match = names
      .map((name) => /^snapshot_([^/]+)_([^/]+)\/[^/]+\/(dump_[^/]+)\/log(verbose)?\.txt$/.exec(name))
      .filter((found): found is RegExpExecArray => found !== null);
    const newestDump = match
      .map((found) => found[3] ?? '')
      .sort()
      .at(-1);
    const node = match[0]?.[1] ?? nodeZip.node;
    if (!module) module = match[0]?.[2] ?? '';
    nodes.push(node);
    if (newestDump === undefined) continue;
    const wanted =
      names.find((name) => name.endsWith(`/${newestDump}/logverbose.txt`)) ??
      names.find((name) => name.endsWith(`/${newestDump}/log.txt`));
    if (!wanted) continue;
    const read = await readZipEntries(nodeZip.data, (name) => name === wanted);
    perNode.push(parseLogText(node, read.get(wanted)?.toString('utf8') ?? ''));
  }
  return { module, nodes, entries: mergeTimeline(perNode), files: files.slice(0, entriesMax) };
}
