// Reintegration (primary side), full sync and verification. Incremental: replay the journal's
// namespace operations, reconcile the listings of the directories they touched, then send only
// the recorded byte ranges of changed files (and compare by block digests the paths whose
// content the journal cannot vouch for). Full: walk the tree and send only blocks whose digests
// differ. Every read of local data and its queueing happen under the replicator's operation lock
// (submitResync), so live writes are ordered before or after, never in between.
import { constants, promises as fsp } from 'node:fs';
import type { BigIntStats, Stats } from 'node:fs';
import { join } from 'node:path';
import type { PathFilter } from './filter.ts';
import type { ResyncPlan } from './journal.ts';
import type { Op, PathSums, TimeFix } from './protocol.ts';
import { frameDataBytesMax } from './protocol.ts';
import type { Described, PeerInfo, Replicator } from './replicator.ts';
import type { XattrReader } from './tree.ts';
import { blockBytesFor, digestOf, joinRoot, listNames, sameXattrs, splitRoot, xattrSumsOf } from './tree.ts';

export interface SyncSource {
  /** The primary's real directories (private bind mounts), in `<replicated>` order. */
  readonly dirs: readonly string[];
  readonly filters: readonly PathFilter[];
  /** Bytes per second, 0: unlimited (`reiallowedbw`). */
  readonly bandwidthBytesPerSec: number;
  readonly blockBytesMin: number;
  /** With acl="on": the extended attributes (ACLs included) of a local path, sent after its mode. */
  readonly readXattrs?: XattrReader;
  /** `nbrei`: regular files reintegrated at once (their reads, digest requests and sends overlap). */
  readonly parallelPaths?: number;
  /** Regular files up to this size are compared by the digests of a directory listing (compare.ts). */
  readonly listingDigestBytesMax?: number;
}

/** What the comparison needs of a local entry (lstat, plus the digests and xattrs it read). */
export interface LocalAttrs {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
}

export function attrsOf(stat: BigIntStats): LocalAttrs {
  return {
    type: stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : 'other',
    size: Number(stat.size),
    mode: Number(stat.mode),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    mtimeNs: stat.mtimeNs,
  };
}

export const missingSums = (path: string): PathSums => ({
  path,
  type: 'missing',
  size: 0,
  mode: 0,
  uid: 0,
  gid: 0,
  mtimeNs: 0n,
  target: '',
  blockBytes: 0,
  sums: [],
  xattrs: undefined,
});

export interface SyncReport {
  full: boolean;
  paths: number;
  bytesSent: number;
  bytesTotal: number;
  durationMs: number;
  /** The most paths reintegrated at once (`nbrei` bounds it). */
  parallelPathsMax: number;
}

export function absOf(source: SyncSource, wirePath: string): string {
  const { index, path } = splitRoot(wirePath);
  const dir = source.dirs[index];
  if (dir === undefined) throw new Error(`no replicated dir #${index}`);
  return path === '/' ? dir : join(dir, path);
}

export function isReplicated(source: SyncSource, wirePath: string): boolean {
  const { index, path } = splitRoot(wirePath);
  return source.filters[index]?.isReplicated(path) ?? true;
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

async function lstatBigOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await fsp.lstat(path, { bigint: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

export function childOf(parent: string, name: string): string {
  return parent.endsWith('/') ? `${parent}${name}` : `${parent}/${name}`;
}

/** Bound on `nbrei` (the configuration allows 1-64; the stream allows 64 requests in flight). */
const parallelPathsMax = 32;

class Pacer {
  private readonly startedMs = Date.now();
  private bytes = 0;

  constructor(private readonly bytesPerSec: number) {}

  async account(bytes: number): Promise<void> {
    this.bytes += bytes;
    if (this.bytesPerSec <= 0) return;
    const dueMs = this.startedMs + (this.bytes / this.bytesPerSec) * 1000;
    const waitMs = dueMs - Date.now();
    if (waitMs > 1)
      await new Promise((resolvePromise) => setTimeout(resolvePromise, Math.min(waitMs, 10_000)));
  }
}

/** Rounds of re-comparing live rename destinations before one comparison of everything. */
const liveRenameRoundsMax = 8;

export class Resync {
  private readonly pacer: Pacer;
  readonly report: SyncReport = {
    full: false,
    paths: 0,
    bytesSent: 0,
    bytesTotal: 0,
    durationMs: 0,
    parallelPathsMax: 0,
  };
  private readonly acks: Promise<void>[] = [];

  constructor(
    private readonly replicator: Replicator,
    private readonly source: SyncSource,
  ) {
    this.pacer = new Pacer(source.bandwidthBytesPerSec);
  }

  async queue(read: () => Promise<Described[]>): Promise<void> {
    const { acked } = await this.replicator.submitResync(read);
    this.acks.push(acked);
    if (this.acks.length > 256) await Promise.all(this.acks.splice(0, 128));
  }

  /** The local xattrs of a path as digests (undefined with acl="off": not compared). */
  localXattrs(wirePath: string): ReturnType<typeof xattrSumsOf> | undefined {
    const read = this.source.readXattrs;
    return read === undefined ? undefined : xattrSumsOf(read(absOf(this.source, wirePath)));
  }

  metadataOps(
    wirePath: string,
    stat: { readonly mode: number; readonly uid: number; readonly gid: number; isSymbolicLink(): boolean },
  ): Described[] {
    const ops: Described[] = [];
    if (!stat.isSymbolicLink()) ops.push({ op: { kind: 'chmod', path: wirePath, mode: stat.mode & 0o7777 } });
    ops.push({ op: { kind: 'chown', path: wirePath, uid: stat.uid, gid: stat.gid } });
    // After chmod and chown: a chmod rewrites an ACL's mask, a chown drops security.capability.
    const read = this.source.readXattrs;
    if (read !== undefined) {
      const attributes = read(absOf(this.source, wirePath));
      for (const { name, value } of attributes)
        ops.push({ op: { kind: 'setxattr', path: wirePath, name, value, flags: 0 } });
      // Attributes removed here while the peer was away (or never replicated) go there too.
      ops.push({ op: { kind: 'keepXattrs', path: wirePath, names: attributes.map((entry) => entry.name) } });
    }
    return ops;
  }

  /** Whether mode, owner, mtime and xattrs (when compared) are the same on both sides. */
  sameMetadata(wirePath: string, local: LocalAttrs, remote: PathSums): boolean {
    if (
      (local.mode & 0o7777) !== (remote.mode & 0o7777) ||
      local.uid !== remote.uid ||
      local.gid !== remote.gid
    )
      return false;
    if (local.type !== 'dir' && local.mtimeNs !== remote.mtimeNs) return false;
    const xattrs = this.localXattrs(wirePath);
    return xattrs === undefined || (remote.xattrs !== undefined && sameXattrs(xattrs, remote.xattrs));
  }

  private async timeFix(wirePath: string): Promise<TimeFix[]> {
    const stat = await fsp.lstat(absOf(this.source, wirePath), { bigint: true }).catch(() => undefined);
    return stat === undefined ? [] : [{ path: wirePath, mtimeNs: stat.mtimeNs }];
  }

  /** Sends the given ranges of a local file (clipped to its size), its size and metadata. */
  async sendRanges(wirePath: string, ranges: readonly { start: number; end: number }[]): Promise<void> {
    const abs = absOf(this.source, wirePath);
    for (const range of ranges) {
      for (let offset = range.start; ; offset += frameDataBytesMax) {
        let done = false;
        let sent = 0;
        await this.queue(async () => {
          const stat = await lstatOrUndefined(abs);
          if (stat === undefined || !stat.isFile()) {
            done = true;
            return [];
          }
          const end = Math.min(range.end, stat.size, offset + frameDataBytesMax);
          if (end <= offset) {
            done = true;
            return [];
          }
          const data = Buffer.allocUnsafe(end - offset);
          const handle = await fsp.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
          try {
            const { bytesRead } = await handle.read(data, 0, data.length, offset);
            sent = bytesRead;
            if (bytesRead < data.length) done = true;
            return bytesRead === 0
              ? []
              : [{ op: { kind: 'write', path: wirePath, offset, data: data.subarray(0, bytesRead) } }];
          } finally {
            await handle.close();
          }
        });
        this.report.bytesSent += sent;
        this.progress();
        await this.pacer.account(sent);
        if (done || offset + frameDataBytesMax >= range.end) break;
      }
    }
    await this.queue(async () => {
      const stat = await lstatOrUndefined(abs);
      if (stat === undefined || !stat.isFile()) return [];
      return [
        { op: { kind: 'truncate', path: wirePath, size: stat.size } },
        ...this.metadataOps(wirePath, stat),
        { op: { kind: 'fsync', path: wirePath, dataOnly: true }, fixes: await this.timeFix(wirePath) },
      ];
    });
  }

  private progress(): void {
    this.replicator.emit('resync-progress', {
      doneBytes: this.report.bytesSent,
      totalBytes: this.report.bytesTotal,
    });
  }

  /**
   * Brings one path (and, for a directory, its subtree when `recurse`) to the local state.
   * Returns whether anything was sent.
   */
  async syncEntry(wirePath: string, recurse: boolean): Promise<boolean> {
    if (!isReplicated(this.source, wirePath)) return false;
    this.report.paths += 1;
    const abs = absOf(this.source, wirePath);
    const stat = await lstatBigOrUndefined(abs);
    const local = stat === undefined ? undefined : attrsOf(stat);
    const blockBytes = blockBytesFor(local?.size ?? 0, this.source.blockBytesMin);
    const remote = await this.replicator.remoteSums(
      wirePath,
      local?.type === 'file' ? blockBytes : 0,
      this.source.readXattrs !== undefined,
    );
    if (local === undefined) {
      if (remote.type !== 'missing' && splitRoot(wirePath).path !== '/') {
        await this.queue(async () => [{ op: { kind: 'removeTree', path: wirePath } }]);
        return true;
      }
      return false;
    }
    return this.syncWith(wirePath, local, remote, recurse);
  }

  /** Brings one path to the local state, knowing what the peer has there. Returns whether anything was sent. */
  async syncWith(wirePath: string, local: LocalAttrs, remote: PathSums, recurse: boolean): Promise<boolean> {
    const abs = absOf(this.source, wirePath);
    const remoteType = remote.type;
    const localType = local.type;
    let sent = false;
    if (remoteType !== 'missing' && remoteType !== localType) {
      await this.queue(async () => [{ op: { kind: 'removeTree', path: wirePath } }]);
      sent = true;
    }
    const fresh = remoteType === 'missing' || remoteType !== localType;
    switch (localType) {
      case 'file':
        return (
          (await this.syncFile(
            wirePath,
            local,
            fresh ? undefined : remote,
            blockBytesFor(local.size, this.source.blockBytesMin),
          )) || sent
        );
      case 'dir':
        if (fresh)
          await this.queue(async () => [
            {
              op: {
                kind: 'mkdir',
                path: wirePath,
                mode: local.mode & 0o7777,
                uid: local.uid,
                gid: local.gid,
              },
            },
          ]);
        if (recurse) await this.syncDirectory(wirePath, true);
        await this.queue(async () => {
          const stat = await lstatOrUndefined(abs);
          return stat === undefined
            ? []
            : [
                ...this.metadataOps(wirePath, stat),
                { op: { kind: 'fsyncdir', path: wirePath }, fixes: await this.timeFix(wirePath) },
              ];
        });
        return true;
      case 'symlink': {
        let queued = false;
        await this.queue(async () => {
          const target = await fsp.readlink(abs).catch(() => undefined);
          if (target === undefined) return [];
          if (!fresh && remote.target === target && remote.mtimeNs === local.mtimeNs) return [];
          const ops: Described[] = [];
          if (!fresh) ops.push({ op: { kind: 'unlink', path: wirePath } });
          ops.push({
            op: { kind: 'symlink', path: wirePath, target, uid: local.uid, gid: local.gid },
            fixes: await this.timeFix(wirePath),
          });
          queued = true;
          return ops;
        });
        return queued || sent;
      }
      case 'other':
        if (fresh) {
          const stat = await lstatOrUndefined(abs);
          if (stat === undefined) return sent;
          await this.queue(async () => [
            {
              op: {
                kind: 'mknod',
                path: wirePath,
                mode: stat.mode,
                rdev: stat.rdev,
                uid: stat.uid,
                gid: stat.gid,
              },
            },
          ]);
          return true;
        }
        if (!this.sameMetadata(wirePath, local, remote)) {
          await this.queue(async () => {
            const stat = await lstatOrUndefined(abs);
            return stat === undefined ? [] : this.metadataOps(wirePath, stat);
          });
          return true;
        }
        return sent;
    }
  }

  /** Sends the blocks whose digests differ, then size and metadata; nothing when all is the same. */
  private async syncFile(
    wirePath: string,
    local: LocalAttrs,
    remote: PathSums | undefined,
    blockBytes: number,
  ): Promise<boolean> {
    if (remote === undefined) {
      await this.queue(async () => [
        { op: { kind: 'create', path: wirePath, mode: local.mode & 0o7777, uid: local.uid, gid: local.gid } },
      ]);
    }
    const differing: { start: number; end: number }[] = [];
    const abs = absOf(this.source, wirePath);
    const handle = await fsp.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buffer = Buffer.allocUnsafe(blockBytes);
      for (let offset = 0, block = 0; offset < local.size; offset += blockBytes, block += 1) {
        const end = Math.min(offset + blockBytes, local.size);
        const remoteSum = remote?.sums[block];
        const remoteCoversBlock =
          remote !== undefined &&
          remote.size >= end &&
          (end === local.size ? remote.size === local.size || end - offset === blockBytes : true);
        if (remoteSum !== undefined && remoteCoversBlock) {
          const { bytesRead } = await handle.read(buffer, 0, end - offset, offset);
          if (digestOf(buffer.subarray(0, bytesRead)).equals(remoteSum)) continue;
        }
        const last = differing[differing.length - 1];
        if (last !== undefined && last.end === offset) last.end = end;
        else differing.push({ start: offset, end });
      }
    } finally {
      await handle.close();
    }
    if (
      remote !== undefined &&
      differing.length === 0 &&
      remote.size === local.size &&
      this.sameMetadata(wirePath, local, remote)
    )
      return false;
    for (const range of differing) this.report.bytesTotal += range.end - range.start;
    await this.sendRanges(wirePath, differing);
    return true;
  }

  /** Makes the peer's listing of a directory match: removes extras, brings missing entries. */
  async syncDirectory(wirePath: string, recurse: boolean): Promise<void> {
    const abs = absOf(this.source, wirePath);
    const local = await lstatOrUndefined(abs);
    if (local === undefined || !local.isDirectory()) return;
    const localNames = new Set(await listNames(abs));
    const remoteNames = new Set(await this.replicator.remoteList(wirePath));
    for (const name of remoteNames) {
      const child = childOf(wirePath, name);
      if (!localNames.has(name) && isReplicated(this.source, child))
        await this.queue(async () => [{ op: { kind: 'removeTree', path: child } }]);
    }
    for (const name of [...localNames].sort()) {
      const child = childOf(wirePath, name);
      if (recurse || !remoteNames.has(name)) await this.syncEntry(child, true);
    }
  }

  /**
   * Runs `work` on every item, at most `parallelPaths` at once (`nbrei`). Each path's own
   * operations stay in order (one worker per path); paths are independent, and every read and
   * queueing still happens under the operation lock, so live writes order the same way.
   */
  async forEachParallel<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<void> {
    const width = Math.max(1, Math.min(this.source.parallelPaths ?? 1, parallelPathsMax, items.length));
    let next = 0;
    let active = 0;
    const worker = async () => {
      while (next < items.length) {
        const item = items[next] as T;
        next += 1;
        active += 1;
        this.report.parallelPathsMax = Math.max(this.report.parallelPathsMax, active);
        try {
          await work(item);
        } finally {
          active -= 1;
        }
      }
    };
    await Promise.all(Array.from({ length: width }, worker));
  }

  async finish(): Promise<void> {
    await Promise.all(this.acks.splice(0));
  }

  /**
   * Compares again what live renames moved while this reintegration ran (see
   * Replicator.takeLiveRenamed), until none is left; bounded rounds, then the whole tree.
   */
  async recheckLiveRenames(): Promise<void> {
    for (let round = 0; round < liveRenameRoundsMax; round += 1) {
      const { paths, overflow } = this.replicator.takeLiveRenamed();
      if (!overflow && paths.length === 0) return;
      const targets = overflow ? this.source.dirs.map((_dir, index) => joinRoot(index, '/')) : paths;
      for (const path of targets) await this.syncEntry(path, true);
    }
    // Still renaming after that many rounds: one last comparison of everything.
    this.replicator.takeLiveRenamed();
    for (let index = 0; index < this.source.dirs.length; index += 1)
      await this.syncEntry(joinRoot(index, '/'), true);
  }
}

function replayOp(entry: ResyncPlan['namespace'][number]): Op | undefined {
  switch (entry.kind) {
    case 'mkdir':
      return { kind: 'mkdir', path: entry.path, mode: 0o700, uid: 0, gid: 0 };
    case 'create':
      return { kind: 'create', path: entry.path, mode: 0o600, uid: 0, gid: 0 };
    case 'unlink':
      return { kind: 'removeTree', path: entry.path };
    case 'rmdir':
    case 'removeTree':
      return { kind: 'removeTree', path: entry.path };
    case 'rename':
      return { kind: 'rename', path: entry.path, to: entry.to };
    case 'symlink':
    case 'mknod':
    case 'link':
      // Brought by the listing reconciliation with their real attributes.
      return undefined;
  }
}

/** Incremental reintegration from the journal's plan (plus the peer's suspect paths). */
export async function incrementalSync(
  replicator: Replicator,
  source: SyncSource,
  plan: ResyncPlan,
  peer: PeerInfo,
): Promise<SyncReport> {
  const startedMs = Date.now();
  const resync = new Resync(replicator, source);
  await replicator.submitResync(async () => [{ op: { kind: 'syncBegin', full: false } }]);
  const replay = plan.namespace
    .map(replayOp)
    .filter((op): op is Op => op !== undefined && 'path' in op && !/^\/\d+$/.test(op.path));
  for (let index = 0; index < replay.length; index += 512) {
    const batch = replay.slice(index, index + 512);
    await resync.queue(async () => batch.map((op) => ({ op })));
  }
  for (const path of plan.paths) {
    if (path.compare) continue;
    const abs = absOf(source, path.path);
    const stat = await lstatOrUndefined(abs);
    if (stat?.isFile() === true)
      for (const range of path.ranges)
        resync.report.bytesTotal += Math.max(0, Math.min(range.end, stat.size) - range.start);
  }
  for (const dir of plan.directories) await resync.syncDirectory(dir, false);
  // Directories, removed names and special files first, in order (a file's parent exists
  // before the file is sent); then regular files, `nbrei` at a time.
  const files: { path: string; ranges: readonly { start: number; end: number }[]; compare: boolean }[] = [];
  for (const path of plan.paths) {
    const stat = await lstatOrUndefined(absOf(source, path.path));
    if (stat?.isFile() === true) files.push(path);
    else await resync.syncEntry(path.path, false);
  }
  await resync.forEachParallel(files, (path) =>
    path.compare ? resync.syncEntry(path.path, false) : resync.sendRanges(path.path, path.ranges),
  );
  const suspectFiles: string[] = [];
  for (const suspect of peer.suspectPaths) {
    const stat = await lstatOrUndefined(absOf(source, suspect));
    if (stat?.isFile() === true) suspectFiles.push(suspect);
    else await resync.syncEntry(suspect, false);
  }
  await resync.forEachParallel(suspectFiles, (suspect) => resync.syncEntry(suspect, false));
  for (const dir of plan.directories) await resync.syncEntry(dir, false);
  await resync.recheckLiveRenames();
  await resync.finish();
  await (
    await replicator.submitResync(async () => [{ op: { kind: 'syncEnd', full: false } }])
  ).acked;
  resync.report.durationMs = Date.now() - startedMs;
  return resync.report;
}
