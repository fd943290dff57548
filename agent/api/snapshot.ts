// Support snapshots (reference 8): a fresh dump of the module (logs normal and verbose, resource
// table and history, command log, userlogs, cluster.xml, node facts), the last 3 dumps and the
// last 3 applied configurations, zipped as snapshot_<node>_<AM>/. The anonymised variant keeps the
// newest configuration and the logs, with addresses and host names replaced by stable
// identifiers; the catalogue that maps them back stays on the node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces, release, type } from 'node:os';
import { join, relative } from 'node:path';
import { ZipFile } from 'yazl';
import { clusterFile } from '../daemon/cluster-files.ts';
import { secretEntryPaths } from '../config/module-package.ts';
import { formatLogEntry } from '../daemon/module-log.ts';
import type { ModuleRegistry } from '../daemon/module-registry.ts';
import type { NodePaths } from '../daemon/paths.ts';
import { readClusterForValidation } from '../daemon/cluster-files.ts';

export const keptDumps = 3;
export const keptConfigs = 3;
const fileBytesMax = 64 * 1024 * 1024;
const logEntriesMax = 100_000;

export function snapshotDir(paths: NodePaths, module: string): string {
  return join(paths.safeVar, 'snapshot', 'modules', module);
}

function stamp(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}_${pad(date.getMonth() + 1)}_${pad(date.getDate())}_${pad(date.getHours())}_${pad(date.getMinutes())}_${pad(date.getSeconds())}`;
}

function keepNewest(dir: string, prefix: string, count: number): void {
  if (!existsSync(dir)) return;
  const entries = readdirSync(dir)
    .filter((name) => name.startsWith(prefix))
    .sort();
  for (const old of entries.slice(0, Math.max(0, entries.length - count)))
    rmSync(join(dir, old), { recursive: true, force: true });
}

/** Keeps a copy of an applied configuration (called by `config`). */
export function archiveConfiguration(
  paths: NodePaths,
  module: string,
  runtimeDir: string,
  now = new Date(),
): void {
  const dir = snapshotDir(paths, module);
  const target = join(dir, `config_${stamp(now)}`, 'module');
  mkdirSync(target, { recursive: true });
  execFileSync('cp', ['-a', '--', `${runtimeDir}/.`, target], { timeout: 60_000 });
  // Snapshots leave the node (support): the module encryption key stays out of them.
  for (const secret of secretEntryPaths) rmSync(join(target, ...secret.split('/')), { force: true });
  keepNewest(dir, 'config_', keptConfigs);
}

function command(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    return `(${file} ${args.join(' ')} failed: ${(error as Error).message})\n`;
  }
}

function csvRow(values: readonly (string | number)[]): string {
  return values.map((value) => `"${String(value).replaceAll('"', '""')}"`).join(',');
}

/** Writes a fresh dump directory and keeps the newest three. */
export function writeDump(
  paths: NodePaths,
  registry: ModuleRegistry,
  module: string,
  now = new Date(),
): string {
  const dir = join(snapshotDir(paths, module), `dump_${stamp(now)}`);
  mkdirSync(join(dir, 'csv'), { recursive: true });
  const supervisor = registry.get(module);
  if (supervisor) {
    writeFileSync(
      join(dir, 'log.txt'),
      `${supervisor.logTail(logEntriesMax, false).map(formatLogEntry).join('\n')}\n`,
    );
    writeFileSync(
      join(dir, 'logverbose.txt'),
      `${supervisor.logTail(logEntriesMax, true).map(formatLogEntry).join('\n')}\n`,
    );
    const status = supervisor.status();
    const resources = Object.entries(status.resources).sort(([a], [b]) => a.localeCompare(b));
    writeFileSync(
      join(dir, 'csv', 'resource.csv'),
      [
        csvRow(['resource', 'value', 'setBy', 'time']),
        ...resources.map(([name, r]) => csvRow([name, r.value, r.setBy, new Date(r.atMs).toISOString()])),
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'csv', 'resourcelog.csv'),
      [
        csvRow(['resource', 'value', 'setBy', 'time']),
        ...resources.flatMap(([name, r]) =>
          r.history.map((h) => csvRow([name, h.value, h.setBy, new Date(h.atMs).toISOString()])),
        ),
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'state.txt'),
      `${status.module}: ${status.state} (${status.readiness}) ${status.detail.join(', ')}\n`,
    );
  } else {
    writeFileSync(join(dir, 'log.txt'), 'module not configured on this node\n');
  }
  const commandLog = join(paths.safeVar, 'log', 'commands.log');
  if (existsSync(commandLog)) writeFileSync(join(dir, 'commandlog.txt'), readFileSync(commandLog));
  const moduleVar = join(paths.moduleStateDir, module);
  if (existsSync(moduleVar)) {
    mkdirSync(join(dir, 'userlog'), { recursive: true });
    for (const name of readdirSync(moduleVar).filter((entry) => entry.endsWith('.ulog'))) {
      writeFileSync(join(dir, 'userlog', name), readFileSync(join(moduleVar, name)));
    }
  }
  if (existsSync(clusterFile(paths))) {
    mkdirSync(join(dir, 'var', 'cluster'), { recursive: true });
    writeFileSync(join(dir, 'var', 'cluster', 'cluster.xml'), readFileSync(clusterFile(paths)));
  }
  writeFileSync(
    join(dir, 'csv', 'modules.csv'),
    [
      csvRow(['module', 'state']),
      ...registry.running().map((s) => csvRow([s.name, `${s.status().state} ${s.status().readiness}`])),
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'heartplug'),
    [
      `node: ${hostname()}`,
      `os: ${type()} ${release()}`,
      `modules: ${registry
        .running()
        .map((s) => s.describe())
        .join('; ')}`,
      '',
      '== disks',
      command('df', ['-P', '-h']),
      '== network',
      command('ip', ['-brief', 'address']),
      JSON.stringify(networkInterfaces(), null, 2),
      '== versions',
      `node ${process.versions.node}`,
    ].join('\n'),
  );
  writeFileSync(join(dir, 'last.txt'), command('uptime', []));
  keepNewest(snapshotDir(paths, module), 'dump_', keptDumps);
  return dir;
}

function filesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...filesUnder(path));
    else if (entry.isFile()) files.push(path);
  }
  return files.sort();
}

const ipv4Pattern = /\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b/g;
const ipv6Pattern =
  /\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}\b|\b(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4})?\b/g;

/** Replaces addresses and names by identifiers derived from a hash: the same everywhere. */
export class Anonymiser {
  readonly catalogue = new Map<string, string>();

  constructor(private readonly names: readonly string[]) {}

  private id(kind: string, value: string): string {
    const id = `${kind}-${createHash('sha256').update(value).digest('hex').slice(0, 8)}`;
    this.catalogue.set(id, value);
    return id;
  }

  apply(text: string): string {
    let result = text.replace(ipv4Pattern, (address) =>
      address === '127.0.0.1' || address === '0.0.0.0' ? address : this.id('ip', address),
    );
    result = result.replace(ipv6Pattern, (address) =>
      address.includes('::') || address.split(':').length >= 4 ? this.id('ip6', address) : address,
    );
    // Longest names first, so `node10` is not replaced as `node1` + `0`.
    for (const name of [...this.names].sort((a, b) => b.length - a.length)) {
      if (name.length < 2) continue;
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      result = result.replace(new RegExp(`(?<![A-Za-z0-9_-])${escaped}(?![A-Za-z0-9_-])`, 'g'), () =>
        this.id('host', name),
      );
    }
    return result;
  }

  catalogueXml(): string {
    const entries = [...this.catalogue.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(
        ([id, value]) =>
          `  <entry id="${id}" value="${value.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;')}"/>`,
      );
    return `<?xml version="1.0" encoding="UTF-8"?>\n<catalog>\n${entries.join('\n')}\n</catalog>\n`;
  }
}

export interface Snapshot {
  zip: Buffer;
  fileName: string;
  /** With anonymize: the catalogue XML, to keep on the node, never to send. */
  catalogue: string | null;
}

export async function createSnapshot(
  paths: NodePaths,
  registry: ModuleRegistry,
  module: string,
  options: { anonymize: boolean },
): Promise<Snapshot> {
  const node = hostname();
  writeDump(paths, registry, module);
  const base = snapshotDir(paths, module);
  const top = `snapshot_${options.anonymize ? 'anonymized' : node}_${module}`;
  const cluster = readClusterForValidation(paths);
  const names = [
    node,
    ...(cluster?.nodes ?? []),
    ...(cluster?.lans.flatMap((lan) => lan.nodes.map((n) => n.addr.host)) ?? []),
  ];
  const anonymiser = options.anonymize ? new Anonymiser([...new Set(names)]) : null;
  let entries = existsSync(base) ? readdirSync(base).sort() : [];
  if (anonymiser) {
    const newestConfig = entries.filter((name) => name.startsWith('config_')).at(-1);
    const newestDump = entries.filter((name) => name.startsWith('dump_')).at(-1);
    entries = [newestConfig, newestDump].filter((name): name is string => name !== undefined);
  }
  const zip = new ZipFile();
  const mtime = new Date();
  for (const entry of entries) {
    for (const file of filesUnder(join(base, entry))) {
      const inside = relative(base, file);
      // Configurations archived before keys were left out may still hold one.
      if ([...secretEntryPaths].some((secret) => inside.endsWith(`/module/${secret}`))) continue;
      if (
        anonymiser &&
        entry.startsWith('dump_') &&
        !/(log\.txt|logverbose\.txt|commandlog\.txt|userlog\/)/.test(inside)
      )
        continue;
      if (statSync(file).size > fileBytesMax) continue;
      let data = readFileSync(file);
      const archivePath = `${top}/${module}/${anonymiser ? anonymiser.apply(inside) : inside}`;
      if (anonymiser) data = Buffer.from(anonymiser.apply(data.toString('utf8')));
      zip.addBuffer(data, archivePath, { mtime, mode: 0o100644 });
    }
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  const catalogue = anonymiser ? anonymiser.catalogueXml() : null;
  if (catalogue) writeFileSync(join(base, `${top}-catalog.xml`), catalogue, { mode: 0o600 });
  return { zip: Buffer.concat(chunks), fileName: `${top}.zip`, catalogue };
}
