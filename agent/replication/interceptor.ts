// The FUSE file system mounted over a replicated directory on the primary: a passthrough to the
// real data (reachable through a private bind mount made before the FUSE mount), where every
// mutating operation is applied locally and then replicated through the Replicator, and answers
// the application only once the secondary acknowledged it. Reads never touch the network.
// Errors are the real file system's errno values. Without a replicator it is a plain passthrough
// (used to measure the binding).
import { execFile } from 'node:child_process';
import { constants, promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { PathFilter } from './filter.ts';
import type { Caller, FuseAddon } from './fuse/addon.ts';
import type { Errno, FuseOperations, FuseStat, FuseStatfs } from './fuse/fuse-mount.ts';
import { errno } from './fuse/fuse-mount.ts';
import { parentOf } from './journal.ts';
import type { Op, TimeFix } from './protocol.ts';
import type { Described, Replicator } from './replicator.ts';
import { joinRoot } from './tree.ts';

const uidUnchanged = 0xffffffff;
const modeSetgid = 0o2000;
const openAccessMode = 0o3;

function errnoOf(error: unknown): number {
  const value = (error as NodeJS.ErrnoException).errno;
  return typeof value === 'number' && value < 0 ? value : errno.EIO;
}

function fuseStatOf(stat: fs.BigIntStats): FuseStat {
  return {
    mode: Number(stat.mode),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    size: Number(stat.size),
    nlink: Number(stat.nlink),
    rdev: Number(stat.rdev),
    blksize: Number(stat.blksize),
    blocks: Number(stat.blocks),
    atimeNs: stat.atimeNs,
    mtimeNs: stat.mtimeNs,
    ctimeNs: stat.ctimeNs,
  };
}

const cb = <T>(run: (done: (error: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> =>
  new Promise((resolvePromise, reject) =>
    run((error, value) => (error ? reject(error) : resolvePromise(value as T))),
  );

interface OpenFile {
  readonly syncWrites: boolean;
  /** The name of the last write, null while unwritten (a rename may have moved it since). */
  writtenPath: string | null;
}

export interface InterceptorOptions {
  readonly index: number;
  /** The real directory (private bind mount) holding the data. */
  readonly realDir: string;
  readonly replicator: Replicator | undefined;
  readonly filter: PathFilter;
  readonly addon: FuseAddon;
  /** Replicate extended attributes (`acl="on"`). */
  readonly acl: boolean;
  readonly warn: (message: string) => void;
}

export class Interceptor implements FuseOperations {
  private readonly files = new Map<number, OpenFile>();

  constructor(private readonly options: InterceptorOptions) {}

  private real(path: string): string {
    return path === '/' || path === '' ? this.options.realDir : join(this.options.realDir, path);
  }

  private wire(path: string): string {
    return joinRoot(this.options.index, path);
  }

  private replicated(path: string): boolean {
    return this.options.replicator !== undefined && path !== '' && this.options.filter.isReplicated(path);
  }

  private async mtimeFix(path: string): Promise<TimeFix[]> {
    try {
      const stat = await fsp.lstat(this.real(path), { bigint: true });
      return [{ path: this.wire(path), mtimeNs: stat.mtimeNs }];
    } catch {
      return [];
    }
  }

  /**
   * A new name's own times and its directory's: the secondary made it with its own clock, and a
   * new file may never be written (or its first write fenced), so release would not align it.
   */
  private async createdFixes(path: string): Promise<TimeFix[]> {
    return [...(await this.mtimeFix(path)), ...(await this.mtimeFix(parentOf(path)))];
  }

  /** Applies locally; replicates when the path is replicated; returns 0 or -errno. */
  private async mutate(
    path: string,
    applyLocally: () => Promise<void>,
    describe: () => Promise<Described | undefined>,
    touched: readonly string[] = [path],
  ): Promise<Errno> {
    const replicator = this.options.replicator;
    if (replicator === undefined || !this.replicated(path)) {
      try {
        await applyLocally();
        return 0;
      } catch (error) {
        return errnoOf(error);
      }
    }
    let described: Described | undefined;
    const result = await replicator.submit(
      async () => {
        try {
          await applyLocally();
          described = await describe();
          return 0;
        } catch (error) {
          return errnoOf(error);
        }
      },
      (code) => (code === 0 ? described : undefined),
      touched.map((item) => this.wire(item)),
    );
    return result;
  }

  private async ownerFor(
    path: string,
    caller: Caller,
  ): Promise<{ uid: number; gid: number; setgid: boolean }> {
    const parent = await fsp.lstat(this.real(parentOf(path)));
    const setgid = (parent.mode & modeSetgid) !== 0;
    return { uid: caller.uid, gid: setgid ? parent.gid : caller.gid, setgid };
  }

  async getattr(path: string): Promise<FuseStat | Errno> {
    try {
      return fuseStatOf(await fsp.lstat(this.real(path), { bigint: true }));
    } catch (error) {
      return errnoOf(error);
    }
  }

  async fgetattr(path: string, fh: number): Promise<FuseStat | Errno> {
    try {
      return fuseStatOf(await cb<fs.BigIntStats>((done) => fs.fstat(fh, { bigint: true }, done)));
    } catch (error) {
      return errnoOf(error);
    }
  }

  async statfs(): Promise<FuseStatfs | Errno> {
    try {
      const stat = await fsp.statfs(this.options.realDir);
      return {
        bsize: stat.bsize,
        frsize: stat.bsize,
        blocks: stat.blocks,
        bfree: stat.bfree,
        bavail: stat.bavail,
        files: stat.files,
        ffree: stat.ffree,
        favail: stat.ffree,
        namemax: 255,
      };
    } catch (error) {
      return errnoOf(error);
    }
  }

  async readdir(path: string): Promise<string[] | Errno> {
    try {
      return ['.', '..', ...(await fsp.readdir(this.real(path)))];
    } catch (error) {
      return errnoOf(error);
    }
  }

  async readlink(path: string): Promise<string | Errno> {
    try {
      return await fsp.readlink(this.real(path));
    } catch (error) {
      return errnoOf(error);
    }
  }

  private realFlags(flags: number): number {
    // The kernel computes append offsets and sends truncation separately; O_APPEND on the real
    // fd would make pwrite ignore the offset the kernel chose.
    const writable = (flags & openAccessMode) !== constants.O_RDONLY;
    const kept = flags & (constants.O_SYNC | constants.O_DSYNC | constants.O_NOATIME);
    return (writable ? constants.O_RDWR : constants.O_RDONLY) | kept | constants.O_NOFOLLOW;
  }

  private remember(fh: number, flags: number): number {
    this.files.set(fh, {
      syncWrites: (flags & (constants.O_SYNC | constants.O_DSYNC)) !== 0,
      writtenPath: null,
    });
    return fh;
  }

  async open(path: string, flags: number): Promise<number | Errno> {
    try {
      return this.remember(
        await cb<number>((done) => fs.open(this.real(path), this.realFlags(flags), done)),
        flags,
      );
    } catch (error) {
      return errnoOf(error);
    }
  }

  async create(path: string, mode: number, flags: number, caller: Caller): Promise<number | Errno> {
    let fh = -1;
    const result = await this.mutate(
      path,
      async () => {
        const owner = await this.ownerFor(path, caller);
        const createFlags =
          constants.O_CREAT |
          constants.O_RDWR |
          constants.O_NOFOLLOW |
          (flags & constants.O_EXCL) |
          (flags & (constants.O_SYNC | constants.O_DSYNC));
        fh = await cb<number>((done) => fs.open(this.real(path), createFlags, mode & 0o7777, done));
        await cb<void>((done) => fs.fchown(fh, owner.uid, owner.gid, (error) => done(error)));
      },
      async () => {
        const stat = await cb<fs.Stats>((done) => fs.fstat(fh, done));
        return {
          op: {
            kind: 'create',
            path: this.wire(path),
            mode: stat.mode & 0o7777,
            uid: stat.uid,
            gid: stat.gid,
          },
          fixes: await this.createdFixes(path),
        };
      },
    );
    if (result < 0) {
      if (fh >= 0) fs.close(fh, () => undefined);
      return result;
    }
    return this.remember(fh, flags);
  }

  async read(
    _path: string,
    fh: number,
    buffer: Buffer,
    length: number,
    offset: number,
  ): Promise<number | Errno> {
    try {
      return await cb<number>((done) => fs.read(fh, buffer, 0, length, offset, done));
    } catch (error) {
      return errnoOf(error);
    }
  }

  async write(
    path: string,
    fh: number,
    buffer: Buffer,
    length: number,
    offset: number,
  ): Promise<number | Errno> {
    const file = this.files.get(fh);
    if (file !== undefined) file.writtenPath = path;
    const replicator = this.options.replicator;
    const localWrite = () => cb<number>((done) => fs.write(fh, buffer, 0, length, offset, done));
    if (replicator === undefined || !this.replicated(path)) {
      try {
        return await localWrite();
      } catch (error) {
        return errnoOf(error);
      }
    }
    // The frame goes out before the local write (it needs only the buffer); a failed or short
    // local write is then corrected on the secondary (correctiveOps).
    const written = await replicator.submitAhead(
      { op: { kind: 'write', path: this.wire(path), offset, data: buffer.subarray(0, length) } },
      async () => {
        try {
          return await localWrite();
        } catch (error) {
          return errnoOf(error);
        }
      },
      async (bytes) => (bytes === length ? [] : this.correctiveOps(path, fh, offset, length)),
      (bytes): Described | undefined =>
        bytes > 0
          ? { op: { kind: 'write', path: this.wire(path), offset, data: buffer.subarray(0, bytes) } }
          : undefined,
      [this.wire(path)],
    );
    if (written > 0 && file?.syncWrites === true) {
      // O_SYNC / O_DSYNC: each write is durable on return, so it is on the secondary too.
      await replicator.submit(
        async () => 0,
        () => ({ op: { kind: 'fsync', path: this.wire(path), dataOnly: true } }),
      );
    }
    return written;
  }

  /**
   * After a write of [offset, offset + length) was sent but failed or was short locally: what
   * makes the secondary's copy equal to the primary's again. The secondary had the primary's size
   * and bytes before the write; it now has the whole range, so it gets the primary's size (a
   * truncate, when the range went past the primary's end) and the primary's bytes of the range.
   * Read under the operation lock: nothing else changes the file meanwhile. Throws when the range
   * cannot be read back (the caller then drops the secondary for a resync of the range).
   */
  private async correctiveOps(
    path: string,
    fh: number,
    offset: number,
    length: number,
  ): Promise<Described[]> {
    const size = Number((await cb<fs.BigIntStats>((done) => fs.fstat(fh, { bigint: true }, done))).size);
    const wirePath = this.wire(path);
    const ops: Described[] = [];
    if (offset + length > size) ops.push({ op: { kind: 'truncate', path: wirePath, size } });
    const end = Math.min(offset + length, size);
    if (end > offset) {
      const data = Buffer.allocUnsafe(end - offset);
      let read = 0;
      while (read < data.length) {
        const bytes = await cb<number>((done) =>
          fs.read(fh, data, read, data.length - read, offset + read, done),
        );
        if (bytes <= 0) throw new Error(`read back ${path} at ${offset + read}: end of file before ${end}`);
        read += bytes;
      }
      ops.push({ op: { kind: 'write', path: wirePath, offset, data } });
    }
    return ops;
  }

  /**
   * The times release would have aligned, for every file written and still open: sent when the
   * primary role is given up (the mount is fenced from then on, so those releases replicate
   * nothing) so the new primary's times are this node's. A file renamed since its last write is
   * looked up under its old name: absent, nothing is sent; another file there, that file's own
   * times are sent, which is still right for that name.
   */
  async pendingTimeFixes(): Promise<Described[]> {
    const pending: Described[] = [];
    for (const file of this.files.values()) {
      const path = file.writtenPath;
      file.writtenPath = null;
      if (path === null || !this.replicated(path)) continue;
      const fixed = await this.timeFixOf(path);
      if (fixed !== undefined) pending.push(fixed);
    }
    return pending;
  }

  /** The operation that aligns the secondary's mtime of `path` with ours (a data fsync with a time fix). */
  private async timeFixOf(path: string): Promise<Described | undefined> {
    const fixes = await this.mtimeFix(path);
    return fixes.length === 0
      ? undefined
      : { op: { kind: 'fsync', path: this.wire(path), dataOnly: true }, fixes };
  }

  async release(path: string, fh: number): Promise<Errno> {
    const file = this.files.get(fh);
    this.files.delete(fh);
    try {
      await cb<void>((done) => fs.close(fh, (error) => done(error)));
    } catch (error) {
      return errnoOf(error);
    }
    // Writes moved the secondary's mtime to its own clock: align it with ours at close.
    if (file !== undefined && file.writtenPath !== null && this.replicated(path)) {
      await this.mutate(
        path,
        async () => undefined,
        () => this.timeFixOf(path),
      );
    }
    return 0;
  }

  async fsync(path: string, dataOnly: boolean, fh: number): Promise<Errno> {
    const local = cb<void>((done) => (dataOnly ? fs.fdatasync : fs.fsync)(fh, (error) => done(error))).then(
      () => 0,
      (error: unknown) => errnoOf(error),
    );
    const replicator = this.options.replicator;
    if (replicator === undefined || !this.replicated(path)) return local;
    const remote = replicator.submit(
      async () => 0,
      (): Described => ({ op: { kind: 'fsync', path: this.wire(path), dataOnly }, fixes: [] }),
    );
    const [localResult] = await Promise.all([local, remote, replicator.syncJournal()]);
    return localResult;
  }

  async fsyncdir(path: string): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const handle = await fsp.open(this.real(path), constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      },
      async () => ({ op: { kind: 'fsyncdir', path: this.wire(path) } }),
    );
  }

  async truncate(path: string, size: number): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.truncate(this.real(path), size),
      async () => ({
        op: { kind: 'truncate', path: this.wire(path), size },
        fixes: await this.mtimeFix(path),
      }),
    );
  }

  async ftruncate(path: string, fh: number, size: number): Promise<Errno> {
    return this.mutate(
      path,
      () => cb<void>((done) => fs.ftruncate(fh, size, (error) => done(error))),
      async () => ({
        op: { kind: 'truncate', path: this.wire(path), size },
        fixes: await this.mtimeFix(path),
      }),
    );
  }

  async fallocate(path: string, fh: number, mode: number, offset: number, length: number): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const result = this.options.addon.hakit_fallocate(fh, mode, offset, length);
        if (result < 0) throw Object.assign(new Error('fallocate'), { errno: result });
      },
      async () => ({
        op: { kind: 'fallocate', path: this.wire(path), mode, offset, length },
        fixes: await this.mtimeFix(path),
      }),
    );
  }

  async utimens(path: string, aSec: number, aNsec: number, mSec: number, mNsec: number): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const result = this.options.addon.hakit_utimensat(this.real(path), aSec, aNsec, mSec, mNsec);
        if (result < 0) throw Object.assign(new Error('utimensat'), { errno: result });
      },
      async () => {
        // UTIME_NOW / UTIME_OMIT resolved here: the secondary gets the exact values we now have.
        const stat = await fsp.lstat(this.real(path), { bigint: true });
        return {
          op: { kind: 'utimens', path: this.wire(path), atimeNs: stat.atimeNs, mtimeNs: stat.mtimeNs },
        };
      },
    );
  }

  async chmod(path: string, mode: number): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.chmod(this.real(path), mode & 0o7777),
      async () => ({ op: { kind: 'chmod', path: this.wire(path), mode: mode & 0o7777 } }),
    );
  }

  async chown(path: string, uid: number, gid: number): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.lchown(this.real(path), uid === uidUnchanged ? -1 : uid, gid === uidUnchanged ? -1 : gid),
      async () => {
        const stat = await fsp.lstat(this.real(path));
        // chown clears set-id bits on the primary; send the resulting mode too.
        return { op: { kind: 'chown', path: this.wire(path), uid: stat.uid, gid: stat.gid }, fixes: [] };
      },
    );
  }

  async mknod(path: string, mode: number, dev: number, caller: Caller): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const owner = await this.ownerFor(path, caller);
        const type =
          (mode & constants.S_IFMT) === constants.S_IFIFO
            ? 'p'
            : (mode & constants.S_IFMT) === constants.S_IFCHR
              ? 'c'
              : 'b';
        const args = ['-m', (mode & 0o7777).toString(8), this.real(path), type];
        if (type !== 'p') args.push(String(Math.floor(dev / 256) & 0xfff), String(dev & 0xff));
        await new Promise<void>((resolvePromise, reject) =>
          execFile('mknod', args, { timeout: 10_000 }, (error) =>
            error ? reject(Object.assign(error, { errno: errno.EIO })) : resolvePromise(),
          ),
        );
        await fsp.lchown(this.real(path), owner.uid, owner.gid);
      },
      async () => {
        const stat = await fsp.lstat(this.real(path));
        return {
          op: {
            kind: 'mknod',
            path: this.wire(path),
            mode: stat.mode,
            rdev: stat.rdev,
            uid: stat.uid,
            gid: stat.gid,
          },
          fixes: await this.createdFixes(path),
        };
      },
    );
  }

  async mkdir(path: string, mode: number, caller: Caller): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const owner = await this.ownerFor(path, caller);
        await fsp.mkdir(this.real(path), mode & 0o7777);
        await fsp.lchown(this.real(path), owner.uid, owner.gid);
        if (owner.setgid) await fsp.chmod(this.real(path), (mode & 0o7777) | modeSetgid);
      },
      async () => {
        const stat = await fsp.lstat(this.real(path));
        return {
          op: {
            kind: 'mkdir',
            path: this.wire(path),
            mode: stat.mode & 0o7777,
            uid: stat.uid,
            gid: stat.gid,
          },
          fixes: await this.createdFixes(path),
        };
      },
    );
  }

  async symlink(target: string, path: string, caller: Caller): Promise<Errno> {
    return this.mutate(
      path,
      async () => {
        const owner = await this.ownerFor(path, caller);
        await fsp.symlink(target, this.real(path));
        await fsp.lchown(this.real(path), owner.uid, owner.gid);
      },
      async () => {
        const stat = await fsp.lstat(this.real(path));
        return {
          op: { kind: 'symlink', path: this.wire(path), target, uid: stat.uid, gid: stat.gid },
          fixes: await this.createdFixes(path),
        };
      },
    );
  }

  async link(existing: string, path: string): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.link(this.real(existing), this.real(path)),
      async () => ({
        op: { kind: 'link', path: this.wire(path), existing: this.wire(existing) },
        fixes: await this.mtimeFix(parentOf(path)),
      }),
    );
  }

  async unlink(path: string): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.unlink(this.real(path)),
      async () => ({
        op: { kind: 'unlink', path: this.wire(path) },
        fixes: await this.mtimeFix(parentOf(path)),
      }),
    );
  }

  async rmdir(path: string): Promise<Errno> {
    return this.mutate(
      path,
      () => fsp.rmdir(this.real(path)),
      async () => ({
        op: { kind: 'rmdir', path: this.wire(path) },
        fixes: await this.mtimeFix(parentOf(path)),
      }),
    );
  }

  async rename(from: string, to: string): Promise<Errno> {
    const fromReplicated = this.replicated(from);
    const toReplicated = this.replicated(to);
    if (fromReplicated !== toReplicated && this.options.replicator !== undefined) {
      // Across the <notreplicated> boundary (unsupported by the reference): keep the secondary
      // free of stale data; a name entering the replicated set is left to rfsverify / resync.
      if (!toReplicated) {
        return this.mutate(
          from,
          () => fsp.rename(this.real(from), this.real(to)),
          async () => ({ op: { kind: 'removeTree', path: this.wire(from) } }),
        );
      }
      this.options.warn(
        `rename ${from} -> ${to} brings a notreplicated name into the replicated set: not replicated until the next full sync`,
      );
    }
    return this.mutate(
      to,
      () => fsp.rename(this.real(from), this.real(to)),
      async () => {
        const fixes = [
          ...(await this.mtimeFix(parentOf(from))),
          ...(parentOf(from) === parentOf(to) ? [] : await this.mtimeFix(parentOf(to))),
        ];
        return { op: { kind: 'rename', path: this.wire(from), to: this.wire(to) }, fixes };
      },
      [from, to],
    );
  }

  private xattrResult(result: number): void {
    if (result < 0) throw Object.assign(new Error('xattr'), { errno: result });
  }

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<Errno> {
    const apply = async () =>
      this.xattrResult(this.options.addon.hakit_lsetxattr(this.real(path), name, value, flags));
    if (!this.options.acl) return this.mutate('', apply, async () => undefined);
    return this.mutate(path, apply, async () => ({
      op: { kind: 'setxattr', path: this.wire(path), name, value, flags } satisfies Op,
    }));
  }

  async getxattr(path: string, name: string, size: number): Promise<Buffer | Errno> {
    const probe = this.options.addon.hakit_lgetxattr(this.real(path), name, Buffer.alloc(0));
    if (probe < 0) return probe;
    if (size === 0) return Buffer.alloc(probe);
    const value = Buffer.alloc(probe);
    const read = this.options.addon.hakit_lgetxattr(this.real(path), name, value);
    return read < 0 ? read : value.subarray(0, read);
  }

  async listxattr(path: string): Promise<string[] | Errno> {
    const probe = this.options.addon.hakit_llistxattr(this.real(path), Buffer.alloc(0));
    if (probe < 0) return probe;
    const list = Buffer.alloc(probe);
    const read = this.options.addon.hakit_llistxattr(this.real(path), list);
    if (read < 0) return read;
    return list
      .subarray(0, read)
      .toString('utf8')
      .split('\0')
      .filter((name) => name !== '');
  }

  async removexattr(path: string, name: string): Promise<Errno> {
    const apply = async () => this.xattrResult(this.options.addon.hakit_lremovexattr(this.real(path), name));
    if (!this.options.acl) return this.mutate('', apply, async () => undefined);
    return this.mutate(path, apply, async () => ({
      op: { kind: 'removexattr', path: this.wire(path), name },
    }));
  }
}
