// The full comparison of the primary's and the secondary's trees, shared by the full sync and
// rfsverify. One round trip per page of a directory, not per path: the secondary answers a
// DirRequest with every entry's attributes, the digest of each small file and its xattrs
// (acl="on"); the primary reads its own side of the directory meanwhile and compares. Listings of
// the next directories are requested ahead (bounded), so the secondary's reads overlap the
// primary's. Files over `listingDigestBytesMax` are compared by per-block digests, one request
// each (resync.ts). Both sides read with synchronous calls in short runs: a few microseconds per
// call instead of a thread-pool round trip, yielding to the event loop between runs.
import { constants, promises as fsp, lstatSync } from 'node:fs';
import type { DirEntrySums, PathSums } from './protocol.ts';
import type { Replicator } from './replicator.ts';
import {
  Resync,
  absOf,
  attrsOf,
  childOf,
  isReplicated,
  missingSums,
  type LocalAttrs,
  type SyncReport,
  type SyncSource,
} from './resync.ts';
import {
  blockBytesFor,
  digestOf,
  entrySumsSync,
  joinRoot,
  readNamesSync,
  sameXattrs,
  xattrSumsOf,
} from './tree.ts';

export interface Difference {
  readonly path: string;
  readonly what: string;
}

/** Files up to this size are compared through the directory listing's digests. */
export const listingDigestBytesMaxDefault = 256 * 1024;
/** Directory listings requested ahead of the one being compared. */
const prefetchDirsMax = 8;
/** Local entries read synchronously between two yields to the event loop. */
const entriesPerRun = 256;

interface DirTask {
  readonly wirePath: string;
  /** Made by this full sync (or missing there): the peer has nothing under it, no need to ask. */
  readonly fresh: boolean;
}

interface RemoteDir {
  readonly type: PathSums['type'];
  readonly entries: ReadonlyMap<string, DirEntrySums>;
}

const yieldNow = () => new Promise<void>((resolveYield) => setImmediate(resolveYield));

function digestLimit(source: SyncSource): number {
  // A listing digest is the file's first (only) block: never over the block size.
  return Math.min(source.listingDigestBytesMax ?? listingDigestBytesMaxDefault, source.blockBytesMin);
}

/** Fetches the peer's listings, a few directories ahead of the comparison. */
class RemoteDirs {
  private readonly pending = new Map<string, Promise<RemoteDir>>();

  constructor(
    private readonly replicator: Replicator,
    private readonly digestBytesMax: number,
    private readonly xattrs: boolean,
  ) {}

  prefetch(task: DirTask): void {
    if (task.fresh || this.pending.has(task.wirePath)) return;
    const fetched = this.fetch(task.wirePath);
    // Awaited by take(); a failure before that must not be an unhandled rejection.
    fetched.catch(() => undefined);
    this.pending.set(task.wirePath, fetched);
  }

  async take(task: DirTask): Promise<RemoteDir> {
    if (task.fresh) return { type: 'missing', entries: new Map() };
    const fetched = this.pending.get(task.wirePath) ?? this.fetch(task.wirePath);
    this.pending.delete(task.wirePath);
    return fetched;
  }

  private async fetch(wirePath: string): Promise<RemoteDir> {
    const entries = new Map<string, DirEntrySums>();
    let after = '';
    for (;;) {
      const reply = await this.replicator.remoteDir({
        path: wirePath,
        after,
        digestBytesMax: this.digestBytesMax,
        xattrs: this.xattrs,
      });
      if (reply.type !== 'dir') return { type: reply.type, entries };
      for (const entry of reply.entries) entries.set(entry.name, entry);
      const last = reply.entries[reply.entries.length - 1];
      if (!reply.more || last === undefined) return { type: 'dir', entries };
      after = last.name;
    }
  }
}

/** The replicated local entries of a directory, read synchronously in short runs. */
async function localEntries(source: SyncSource, wirePath: string): Promise<DirEntrySums[]> {
  const abs = absOf(source, wirePath);
  const { names } = readNamesSync(abs);
  const digestBytesMax = digestLimit(source);
  const buffer = Buffer.allocUnsafe(Math.max(1, digestBytesMax));
  const entries: DirEntrySums[] = [];
  for (let index = 0; index < names.length; index += 1) {
    if (index % entriesPerRun === entriesPerRun - 1) await yieldNow();
    const name = names[index] as string;
    if (!isReplicated(source, childOf(wirePath, name))) continue;
    const entry = entrySumsSync(abs, name, digestBytesMax, buffer, source.readXattrs);
    if (entry !== undefined) entries.push(entry);
  }
  return entries;
}

/**
 * Walks every replicated directory breadth first; `visit` compares one directory's entries and
 * returns the subdirectories to walk next.
 */
async function walk(
  replicator: Replicator,
  source: SyncSource,
  visit: (task: DirTask, local: readonly DirEntrySums[], remote: RemoteDir) => Promise<DirTask[]>,
  done: () => boolean = () => false,
): Promise<void> {
  const remoteDirs = new RemoteDirs(replicator, digestLimit(source), source.readXattrs !== undefined);
  let queue: DirTask[] = source.dirs.map((_dir, index) => ({ wirePath: joinRoot(index, '/'), fresh: false }));
  let next = 0;
  while (next < queue.length && !done()) {
    for (let ahead = next; ahead < Math.min(queue.length, next + prefetchDirsMax); ahead += 1)
      remoteDirs.prefetch(queue[ahead] as DirTask);
    const task = queue[next] as DirTask;
    next += 1;
    const local = await localEntries(source, task.wirePath);
    const remote = await remoteDirs.take(task);
    queue.push(...(await visit(task, local, remote)));
    if (next > 4096) {
      queue = queue.slice(next);
      next = 0;
    }
  }
}

function asPathSums(wirePath: string, entry: DirEntrySums, blockBytes: number): PathSums {
  return { ...entry, path: wirePath, blockBytes, sums: entry.sums ?? [] };
}

function sameSums(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((sum, index) => sum.equals(b[index] as Buffer));
}

/** Whether a listing entry shows the same thing on both sides (content by digest when both have one). */
function sameEntry(local: DirEntrySums, remote: DirEntrySums): boolean {
  if (local.type !== remote.type) return false;
  if (
    (local.mode & 0o7777) !== (remote.mode & 0o7777) ||
    local.uid !== remote.uid ||
    local.gid !== remote.gid
  )
    return false;
  if (local.mtimeNs !== remote.mtimeNs) return false;
  if (local.xattrs !== undefined && (remote.xattrs === undefined || !sameXattrs(local.xattrs, remote.xattrs)))
    return false;
  switch (local.type) {
    case 'file':
      return (
        local.size === remote.size &&
        local.sums !== undefined &&
        remote.sums !== undefined &&
        sameSums(local.sums, remote.sums)
      );
    case 'symlink':
      return local.target === remote.target;
    default:
      return true;
  }
}

/** Full sync of every replicated directory: only what differs is sent (blocks, metadata, names). */
export async function fullSync(replicator: Replicator, source: SyncSource): Promise<SyncReport> {
  const startedMs = Date.now();
  const resync = new Resync(replicator, source);
  resync.report.full = true;
  await replicator.submitResync(async () => [{ op: { kind: 'syncBegin', full: true } }]);
  // Directories whose metadata or mtime must be set once everything under them is done.
  const dirFixes: string[] = [];
  const fixing = new Set<string>();
  const fixLater = (dir: string) => {
    if (fixing.has(dir)) return;
    fixing.add(dir);
    dirFixes.push(dir);
  };
  for (let index = 0; index < source.dirs.length; index += 1) {
    const root = joinRoot(index, '/');
    const stat = lstatSync(absOf(source, root), { bigint: true });
    const remote = await replicator.remoteSums(root, 0, source.readXattrs !== undefined);
    const local: LocalAttrs = { ...attrsOf(stat), type: 'dir', size: 0 };
    if (
      remote.type !== 'dir' ||
      !resync.sameMetadata(root, local, remote) ||
      remote.mtimeNs !== local.mtimeNs
    )
      fixLater(root);
  }
  await walk(replicator, source, async (task, localList, remoteDir) => {
    const subdirs: DirTask[] = [];
    let changed = false;
    const localNames = new Set<string>();
    for (const local of localList) {
      localNames.add(local.name);
      resync.report.paths += 1;
      const child = childOf(task.wirePath, local.name);
      const remote = remoteDir.entries.get(local.name);
      if (remote !== undefined && sameEntry(local, remote)) {
        if (local.type === 'dir') subdirs.push({ wirePath: child, fresh: false });
        continue;
      }
      if (local.type === 'dir') {
        if (remote !== undefined && remote.type !== 'dir')
          await resync.queue(async () => [{ op: { kind: 'removeTree', path: child } }]);
        const fresh = remote === undefined || remote.type !== 'dir';
        if (fresh)
          await resync.queue(async () => [
            { op: { kind: 'mkdir', path: child, mode: local.mode & 0o7777, uid: local.uid, gid: local.gid } },
          ]);
        subdirs.push({ wirePath: child, fresh });
        fixLater(child);
        changed = true;
        continue;
      }
      const blockBytes = blockBytesFor(local.size, source.blockBytesMin);
      if (local.type === 'file' && local.sums === undefined && remote?.type === 'file') {
        // Too large for the listing's digest: per-block digests, one request.
        changed = (await resync.syncEntry(child, false)) || changed;
        continue;
      }
      const sums = remote === undefined ? missingSums(child) : asPathSums(child, remote, blockBytes);
      if (local.type === 'missing') continue; // Not an entry type a listing gives locally.
      changed = (await resync.syncWith(child, { ...local, type: local.type }, sums, false)) || changed;
    }
    for (const name of remoteDir.entries.keys()) {
      const child = childOf(task.wirePath, name);
      if (!localNames.has(name) && isReplicated(source, child)) {
        await resync.queue(async () => [{ op: { kind: 'removeTree', path: child } }]);
        changed = true;
      }
    }
    if (changed) fixLater(task.wirePath);
    return subdirs;
  });
  // After every entry: a directory's mtime moves with each name created or removed in it.
  for (const dir of dirFixes.reverse()) {
    await resync.queue(async () => {
      const stat = await fsp.lstat(absOf(source, dir)).catch(() => undefined);
      if (stat === undefined) return [];
      const mtimeNs = (await fsp.lstat(absOf(source, dir), { bigint: true })).mtimeNs;
      return [
        ...resync.metadataOps(dir, stat),
        { op: { kind: 'fsyncdir', path: dir }, fixes: [{ path: dir, mtimeNs }] },
      ];
    });
  }
  await resync.recheckLiveRenames();
  await resync.finish();
  await (
    await replicator.submitResync(async () => [{ op: { kind: 'syncEnd', full: true } }])
  ).acked;
  resync.report.durationMs = Date.now() - startedMs;
  return resync.report;
}

function describeXattrs(local: DirEntrySums['xattrs'], remote: DirEntrySums['xattrs']): string[] {
  if (local === undefined) return [];
  if (remote === undefined) return ['xattrs not reported by the secondary'];
  const out: string[] = [];
  const there = new Map(remote.map((entry) => [entry.name, entry.digest]));
  const here = new Set(local.map((entry) => entry.name));
  for (const entry of local) {
    const digest = there.get(entry.name);
    if (digest === undefined) out.push(`xattr ${entry.name} only here`);
    else if (!digest.equals(entry.digest)) out.push(`xattr ${entry.name} value differs`);
  }
  for (const entry of remote)
    if (!here.has(entry.name)) out.push(`xattr ${entry.name} only on the secondary`);
  return out;
}

/** The differences of one path, both sides known (content of large files by per-block digests). */
async function differencesOf(
  replicator: Replicator,
  source: SyncSource,
  wirePath: string,
  local: DirEntrySums,
  remote: DirEntrySums | PathSums,
): Promise<string[]> {
  if (remote.type !== local.type) return [`type ${local.type} here, ${remote.type} there`];
  const out: string[] = [];
  if ((remote.mode & 0o7777) !== (local.mode & 0o7777))
    out.push(`mode ${(local.mode & 0o7777).toString(8)} vs ${(remote.mode & 0o7777).toString(8)}`);
  if (remote.uid !== local.uid || remote.gid !== local.gid)
    out.push(`owner ${local.uid}:${local.gid} vs ${remote.uid}:${remote.gid}`);
  if (local.type !== 'dir' && remote.mtimeNs !== local.mtimeNs)
    out.push(`mtime ${local.mtimeNs} vs ${remote.mtimeNs}`);
  out.push(...describeXattrs(local.xattrs, remote.xattrs));
  if (local.type === 'symlink' && local.target !== remote.target)
    out.push(`symlink target ${local.target} vs ${remote.target}`);
  if (local.type !== 'file') return out;
  if (remote.size !== local.size) {
    out.push(`size ${local.size} vs ${remote.size}`);
    return out;
  }
  if (local.sums !== undefined && remote.sums !== undefined && 'name' in remote) {
    if (!sameSums(local.sums, remote.sums)) out.push('content differs at byte 0');
    return out;
  }
  // A large file: the peer's per-block digests, one request.
  const blockBytes = blockBytesFor(local.size, source.blockBytesMin);
  const sums = await replicator.remoteSums(wirePath, blockBytes, false);
  if (sums.type !== 'file') return [`type file here, ${sums.type} there`];
  const handle = await fsp.open(absOf(source, wirePath), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.allocUnsafe(blockBytes);
    for (let offset = 0, block = 0; offset < local.size; offset += blockBytes, block += 1) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(blockBytes, local.size - offset), offset);
      if (!digestOf(buffer.subarray(0, bytesRead)).equals(sums.sums[block] ?? Buffer.alloc(0))) {
        out.push(`content differs at byte ${offset}`);
        break;
      }
    }
  } finally {
    await handle.close();
  }
  return out;
}

/** rfsverify: compares both trees (type, size, content, mode, owner, mtime, xattrs); lists differences. */
export async function verifyTrees(
  replicator: Replicator,
  source: SyncSource,
  differencesMax = 1000,
): Promise<Difference[]> {
  const differences: Difference[] = [];
  const add = (path: string, whats: readonly string[]) => {
    for (const what of whats) if (differences.length < differencesMax) differences.push({ path, what });
  };
  for (let index = 0; index < source.dirs.length; index += 1) {
    const root = joinRoot(index, '/');
    const stat = lstatSync(absOf(source, root), { bigint: true });
    const xattrs = source.readXattrs;
    const local: DirEntrySums = {
      ...attrsOf(stat),
      name: '',
      type: 'dir',
      size: 0,
      target: '',
      sums: undefined,
      xattrs: xattrs === undefined ? undefined : xattrSumsOf(xattrs(absOf(source, root))),
    };
    const remote = await replicator.remoteSums(root, 0, xattrs !== undefined);
    add(root, await differencesOf(replicator, source, root, local, remote));
  }
  await walk(
    replicator,
    source,
    async (task, localList, remoteDir) => {
      const subdirs: DirTask[] = [];
      if (differences.length >= differencesMax) return subdirs;
      const localNames = new Set<string>();
      for (const local of localList) {
        localNames.add(local.name);
        const child = childOf(task.wirePath, local.name);
        const remote = remoteDir.entries.get(local.name);
        if (remote === undefined) {
          add(child, ['missing on the secondary']);
          continue;
        }
        if (!sameEntry(local, remote))
          add(child, await differencesOf(replicator, source, child, local, remote));
        if (local.type === 'dir' && remote.type === 'dir') subdirs.push({ wirePath: child, fresh: false });
      }
      for (const name of remoteDir.entries.keys()) {
        const child = childOf(task.wirePath, name);
        if (!localNames.has(name) && isReplicated(source, child)) add(child, ['only on the secondary']);
      }
      return subdirs;
    },
    () => differences.length >= differencesMax,
  );
  return differences;
}
