// Mount plumbing: the private bind mount that keeps the real data reachable under a FUSE or
// read-only mount made over the directory, and the report of processes holding a busy mount.
import { existsSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './fuse/fuse-mount.ts';

export class BusyError extends Error {
  override name = 'BusyError';
  constructor(
    readonly mountPoint: string,
    readonly holders: readonly Holder[],
  ) {
    super(
      `${mountPoint} is busy: ${holders.length === 0 ? 'no holder found in /proc' : holders.map((holder) => `${holder.pid} (${holder.command}: ${holder.what})`).join(', ')}`,
    );
  }
}

export interface Holder {
  readonly pid: number;
  readonly command: string;
  readonly what: string;
}

const holdersMax = 50;
const fdsScannedPerProcessMax = 4096;

/** Processes with a cwd, root, open file or mapping under `dir` (what fuser -m would show). */
export async function holdersOf(dir: string): Promise<Holder[]> {
  const holders: Holder[] = [];
  const under = (path: string) => path === dir || path.startsWith(`${dir}/`);
  for (const entry of await fsp.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || holders.length >= holdersMax) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const command = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
    const found: string[] = [];
    for (const link of ['cwd', 'root']) {
      const target = await fsp.readlink(`/proc/${pid}/${link}`).catch(() => '');
      if (under(target)) found.push(link);
    }
    const fds = (await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).slice(
      0,
      fdsScannedPerProcessMax,
    );
    for (const fd of fds) {
      const target = await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (under(target)) {
        found.push(`fd ${fd} ${target}`);
        break;
      }
    }
    if (found.length > 0) holders.push({ pid, command, what: found.join(', ') });
  }
  return holders;
}

async function run(file: string, args: readonly string[]): Promise<void> {
  const result = await runCommand(file, args);
  if (result.code !== 0)
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.code}): ${result.stderr.trim()}`);
}

export async function isMountPoint(dir: string): Promise<boolean> {
  const mounts = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  return mounts.split('\n').some((line) => line.split(' ')[4] === dir);
}

export interface MountEntry {
  readonly mountPoint: string;
  readonly root: string;
  readonly options: readonly string[];
  readonly fsType: string;
  readonly source: string;
}

/** `\040`-style escapes of /proc/self/mountinfo. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mounts stacked on `dir`, bottom first (the last one is what paths under dir resolve to). */
export async function mountsAt(dir: string): Promise<MountEntry[]> {
  const entries: MountEntry[] = [];
  for (const line of (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [before, after] = line.split(' - ');
    if (before === undefined || after === undefined) continue;
    const fields = before.split(' ');
    const tail = after.split(' ');
    const mountPoint = unescapeMountField(fields[4] ?? '');
    if (mountPoint !== dir) continue;
    entries.push({
      mountPoint,
      root: unescapeMountField(fields[3] ?? ''),
      options: (fields[5] ?? '').split(','),
      fsType: tail[0] ?? '',
      source: unescapeMountField(tail[1] ?? ''),
    });
  }
  return entries;
}

const staleMountsMax = 8;

/**
 * Removes what a crashed run of this module left mounted on `dir`: its FUSE mount (fsname
 * `fsname`, dead once its server is gone: ENOTCONN) and, when `readOnlyLeft`, the read-only bind
 * mount of a crashed secondary. Without this, the private bind mount made next would be a bind of
 * the stale mount: read-only (the secondary fails every write with EROFS) or dead. Returns what it
 * unmounted. A mount of the administrator's (the disk holding dir) is never touched.
 */
export async function clearStaleMounts(
  dir: string,
  fsname: string,
  readOnlyLeft: boolean,
): Promise<string[]> {
  const removed: string[] = [];
  let readOnlyPending = readOnlyLeft;
  for (let round = 0; round < staleMountsMax; round += 1) {
    const top = (await mountsAt(dir)).at(-1);
    if (top === undefined) break;
    const ours = top.fsType.startsWith('fuse') && top.source === fsname;
    const oursReadOnly = !ours && readOnlyPending && top.options.includes('ro');
    if (!ours && !oursReadOnly) break;
    if (oursReadOnly) readOnlyPending = false;
    await run('umount', ['-l', dir]);
    removed.push(`${top.fsType} ${top.source}${oursReadOnly ? ' (read-only bind)' : ''}`);
  }
  return removed;
}

/** `mount --bind dir privateDir`: the real data, reachable once something is mounted over dir. */
export async function bindPrivate(dir: string, privateDir: string): Promise<void> {
  if (!existsSync(dir)) throw new Error(`replicated dir ${dir} does not exist`);
  await fsp.mkdir(privateDir, { recursive: true, mode: 0o700 });
  for (let round = 0; round < staleMountsMax && (await isMountPoint(privateDir)); round += 1)
    await run('umount', ['-l', privateDir]);
  await run('mount', ['--bind', dir, privateDir]);
  await run('mount', ['--make-private', privateDir]).catch(() => undefined);
}

/** A read-only bind mount of dir over itself: applications on the secondary cannot write. */
export async function mountReadOnly(dir: string): Promise<void> {
  await run('mount', ['--bind', dir, dir]);
  await run('mount', ['-o', 'remount,bind,ro', dir]);
}

/** Unmounts; a busy mount is reported with its holders and stays mounted unless `lazy`. */
export async function unmountReporting(dir: string, lazy: boolean): Promise<void> {
  if (!(await isMountPoint(dir))) return;
  const result = await runCommand('umount', lazy ? ['-l', dir] : [dir]);
  if (result.code === 0) return;
  if (/busy/i.test(result.stderr)) throw new BusyError(dir, await holdersOf(dir));
  throw new Error(`umount ${dir} failed (exit ${result.code}): ${result.stderr.trim()}`);
}

export function privateDirOf(stateDir: string, index: number): string {
  return join(stateDir, 'real', String(index));
}
