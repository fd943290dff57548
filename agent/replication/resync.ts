// Reintegration (primary side), full sync and verification. Incremental: replay the journal's
// namespace operations, reconcile the listings of the directories they touched, then send only
// the recorded byte ranges of changed files (and compare by block digests the paths whose
// content the journal cannot vouch for). Full: walk the tree and send only blocks whose digests
// differ. Every read of local data and its queueing happen under the replicator's operation lock
// (submitResync), so live writes are ordered before or after, never in between.
import { constants, promises as fsp } from 'node:fs';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import type { PathFilter } from './filter.ts';
import type { ResyncPlan } from './journal.ts';
import type { Op, PathSums, TimeFix } from './protocol.ts';
import { frameDataBytesMax } from './protocol.ts';
import type { Described, PeerInfo, Replicator } from './replicator.ts';
import { blockBytesFor, digestOf, joinRoot, listNames, splitRoot } from './tree.ts';

export interface SyncSource {
  /** The primary's real directories (private bind mounts), in `<replicated>` order. */
  readonly dirs: readonly string[];
  readonly filters: readonly PathFilter[];
  /** Bytes per second, 0: unlimited (`reiallowedbw`). */
  readonly bandwidthBytesPerSec: number;
  readonly blockBytesMin: number;
  /** With acl="on": the extended attributes (ACLs included) of a local path, sent after its mode. */
  readonly readXattrs?: (absPath: string) => readonly { readonly name: string; readonly value: Buffer }[];
}

export interface SyncReport {
  full: boolean;
  paths: number;
  bytesSent: number;
  bytesTotal: number;
  durationMs: number;
}

function absOf(source: SyncSource, wirePath: string): string {
  const { index, path } = splitRoot(wirePath);
  const dir = source.dirs[index];
  if (dir === undefined) throw new Error(`no replicated dir #${index}`);
  return path === '/' ? dir : join(dir, path);
}

function isReplicated(source: SyncSource, wirePath: string): boolean {
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

function childOf(parent: string, name: string): string {
  return parent.endsWith('/') ? `${parent}${name}` : `${parent}/${name}`;
}

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

export class Resync {
  private readonly pacer: Pacer;
  readonly report: SyncReport = { full: false, paths: 0, bytesSent: 0, bytesTotal: 0, durationMs: 0 };
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

  private metadataOps(wirePath: string, stat: Stats): Described[] {
    const ops: Described[] = [];
    if (!stat.isSymbolicLink()) ops.push({ op: { kind: 'chmod', path: wirePath, mode: stat.mode & 0o7777 } });
    ops.push({ op: { kind: 'chown', path: wirePath, uid: stat.uid, gid: stat.gid } });
    // After chmod and chown: a chmod rewrites an ACL's mask, a chown drops security.capability.
    // (Attributes only the secondary has are not removed: the live stream removes them as they go.)
    for (const { name, value } of this.source.readXattrs?.(absOf(this.source, wirePath)) ?? [])
      ops.push({ op: { kind: 'setxattr', path: wirePath, name, value, flags: 0 } });
    return ops;
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

  /** Brings one path (and, for a directory, its subtree when `recurse`) to the local state. */
  async syncEntry(wirePath: string, recurse: boolean): Promise<void> {
    if (!isReplicated(this.source, wirePath)) return;
    this.report.paths += 1;
    const abs = absOf(this.source, wirePath);
    const local = await lstatOrUndefined(abs);
    const blockBytes = blockBytesFor(local?.size ?? 0, this.source.blockBytesMin);
    const remote = await this.replicator.remoteSums(wirePath, local?.isFile() === true ? blockBytes : 0);
    if (local === undefined) {
      if (remote.type !== 'missing' && splitRoot(wirePath).path !== '/')
        await this.queue(async () => [{ op: { kind: 'removeTree', path: wirePath } }]);
      return;
    }
    const remoteType = remote.type;
    const localType = local.isFile()
      ? 'file'
      : local.isDirectory()
        ? 'dir'
        : local.isSymbolicLink()
          ? 'symlink'
          : 'other';
    if (remoteType !== 'missing' && remoteType !== localType) {
      await this.queue(async () => [{ op: { kind: 'removeTree', path: wirePath } }]);
    }
    const fresh = remoteType === 'missing' || remoteType !== localType;
    switch (localType) {
      case 'file':
        await this.syncFile(wirePath, local, fresh ? undefined : remote, blockBytes);
        return;
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
        return;
      case 'symlink':
        await this.queue(async () => {
          const target = await fsp.readlink(abs).catch(() => undefined);
          if (target === undefined) return [];
          if (!fresh && remote.target === target) return [];
          const ops: Described[] = [];
          if (!fresh) ops.push({ op: { kind: 'unlink', path: wirePath } });
          ops.push({
            op: { kind: 'symlink', path: wirePath, target, uid: local.uid, gid: local.gid },
            fixes: await this.timeFix(wirePath),
          });
          return ops;
        });
        return;
      case 'other':
        if (fresh) {
          await this.queue(async () => [
            {
              op: {
                kind: 'mknod',
                path: wirePath,
                mode: local.mode,
                rdev: local.rdev,
                uid: local.uid,
                gid: local.gid,
              },
            },
          ]);
        }
        return;
    }
  }

  private async syncFile(
    wirePath: string,
    local: Stats,
    remote: PathSums | undefined,
    blockBytes: number,
  ): Promise<void> {
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
    for (const range of differing) this.report.bytesTotal += range.end - range.start;
    await this.sendRanges(wirePath, differing);
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

  async finish(): Promise<void> {
    await Promise.all(this.acks.splice(0));
  }
}

/** Full sync of every replicated directory by block digests. */
export async function fullSync(replicator: Replicator, source: SyncSource): Promise<SyncReport> {
  const startedMs = Date.now();
  const resync = new Resync(replicator, source);
  resync.report.full = true;
  await replicator.submitResync(async () => [{ op: { kind: 'syncBegin', full: true } }]);
  for (let index = 0; index < source.dirs.length; index += 1)
    await resync.syncEntry(joinRoot(index, '/'), true);
  await resync.finish();
  await (
    await replicator.submitResync(async () => [{ op: { kind: 'syncEnd', full: true } }])
  ).acked;
  resync.report.durationMs = Date.now() - startedMs;
  return resync.report;
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
  for (const path of plan.paths) {
    const abs = absOf(source, path.path);
    const stat = await lstatOrUndefined(abs);
    if (path.compare || stat === undefined || !stat.isFile()) await resync.syncEntry(path.path, false);
    else await resync.sendRanges(path.path, path.ranges);
  }
  for (const suspect of peer.suspectPaths) await resync.syncEntry(suspect, false);
  for (const dir of plan.directories) await resync.syncEntry(dir, false);
  await resync.finish();
  await (
    await replicator.submitResync(async () => [{ op: { kind: 'syncEnd', full: false } }])
  ).acked;
  resync.report.durationMs = Date.now() - startedMs;
  return resync.report;
}

export interface Difference {
  readonly path: string;
  readonly what: string;
}

/** rfsverify: compares both trees (type, size, content, mode, owner, mtime); lists differences. */
export async function verifyTrees(
  replicator: Replicator,
  source: SyncSource,
  differencesMax = 1000,
): Promise<Difference[]> {
  const differences: Difference[] = [];
  const visit = async (wirePath: string): Promise<void> => {
    if (differences.length >= differencesMax || !isReplicated(source, wirePath)) return;
    const abs = absOf(source, wirePath);
    const local = await lstatOrUndefined(abs);
    const blockBytes = blockBytesFor(local?.size ?? 0, source.blockBytesMin);
    const remote = await replicator.remoteSums(wirePath, local?.isFile() === true ? blockBytes : 0);
    if (local === undefined) {
      if (remote.type !== 'missing') differences.push({ path: wirePath, what: 'only on the secondary' });
      return;
    }
    if (remote.type === 'missing') {
      differences.push({ path: wirePath, what: 'missing on the secondary' });
      return;
    }
    const localType = local.isFile()
      ? 'file'
      : local.isDirectory()
        ? 'dir'
        : local.isSymbolicLink()
          ? 'symlink'
          : 'other';
    if (remote.type !== localType) {
      differences.push({ path: wirePath, what: `type ${localType} here, ${remote.type} there` });
      return;
    }
    if ((remote.mode & 0o7777) !== (local.mode & 0o7777))
      differences.push({
        path: wirePath,
        what: `mode ${(local.mode & 0o7777).toString(8)} vs ${(remote.mode & 0o7777).toString(8)}`,
      });
    if (remote.uid !== local.uid || remote.gid !== local.gid)
      differences.push({
        path: wirePath,
        what: `owner ${local.uid}:${local.gid} vs ${remote.uid}:${remote.gid}`,
      });
    const localMtime = (await fsp.lstat(abs, { bigint: true })).mtimeNs;
    if (localType !== 'dir' && remote.mtimeNs !== localMtime)
      differences.push({ path: wirePath, what: `mtime ${localMtime} vs ${remote.mtimeNs}` });
    if (localType === 'file') {
      if (remote.size !== local.size)
        differences.push({ path: wirePath, what: `size ${local.size} vs ${remote.size}` });
      else {
        const handle = await fsp.open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          const buffer = Buffer.allocUnsafe(blockBytes);
          for (let offset = 0, block = 0; offset < local.size; offset += blockBytes, block += 1) {
            const { bytesRead } = await handle.read(
              buffer,
              0,
              Math.min(blockBytes, local.size - offset),
              offset,
            );
            if (!digestOf(buffer.subarray(0, bytesRead)).equals(remote.sums[block] ?? Buffer.alloc(0))) {
              differences.push({ path: wirePath, what: `content differs at byte ${offset}` });
              break;
            }
          }
        } finally {
          await handle.close();
        }
      }
    } else if (localType === 'symlink') {
      const target = await fsp.readlink(abs);
      if (target !== remote.target)
        differences.push({ path: wirePath, what: `symlink target ${target} vs ${remote.target}` });
    } else if (localType === 'dir') {
      const localNames = await listNames(abs);
      const remoteNames = new Set(await replicator.remoteList(wirePath));
      for (const name of remoteNames)
        if (!localNames.includes(name) && isReplicated(source, childOf(wirePath, name)))
          differences.push({ path: childOf(wirePath, name), what: 'only on the secondary' });
      for (const name of localNames) await visit(childOf(wirePath, name));
    }
  };
  for (let index = 0; index < source.dirs.length; index += 1) await visit(joinRoot(index, '/'));
  return differences;
}
