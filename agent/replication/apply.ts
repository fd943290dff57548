// Applies replicated operations to a real directory tree (the secondary's data, or the
// primary's private bind mount during tests). Idempotent where a replay after a broken link may
// repeat an operation the tree already has (create, mkdir, unlink, rmdir, rename of a missing
// source). Keeps a small LRU of open files so a stream of writes does not reopen per frame.
import { execFile } from 'node:child_process';
import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { FuseAddon } from './fuse/addon.ts';
import type { Op, TimeFix } from './protocol.ts';
import { isSafeRelativePath } from './protocol.ts';

export const utimeOmitNs = (1 << 30) - 2;
export const openFilesMax = 64;

export class ApplyError extends Error {
  override name = 'ApplyError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

const errnoNames: Record<number, string> = {
  2: 'ENOENT',
  17: 'EEXIST',
  22: 'EINVAL',
  28: 'ENOSPC',
  38: 'ENOSYS',
  61: 'ENODATA',
  95: 'EOPNOTSUPP',
};

function checkNative(result: number, what: string): void {
  if (result < 0) {
    const name = errnoNames[-result] ?? `errno ${-result}`;
    throw new ApplyError(`${what}: ${name}`, name);
  }
}

export interface ApplyStats {
  ops: number;
  dataBytes: number;
}

export class TreeApplier {
  private readonly open = new Map<string, FileHandle>();
  readonly stats: ApplyStats = { ops: 0, dataBytes: 0 };

  constructor(
    readonly rootDir: string,
    private readonly addon: FuseAddon | undefined,
  ) {}

  abs(path: string): string {
    if (!isSafeRelativePath(path)) throw new ApplyError(`unsafe path ${JSON.stringify(path)}`, 'EINVAL');
    return path === '/' ? this.rootDir : join(this.rootDir, path);
  }

  private async handle(path: string): Promise<FileHandle> {
    const cached = this.open.get(path);
    if (cached !== undefined) {
      this.open.delete(path);
      this.open.set(path, cached);
      return cached;
    }
    const handle = await fsp.open(this.abs(path), constants.O_RDWR | constants.O_NOFOLLOW);
    this.open.set(path, handle);
    while (this.open.size > openFilesMax) {
      const [oldestPath, oldest] = this.open.entries().next().value as [string, FileHandle];
      this.open.delete(oldestPath);
      await oldest.close().catch(() => undefined);
    }
    return handle;
  }

  /** Closes cached files at or under `root` (before a rename, unlink or removal). */
  private async forget(root: string): Promise<void> {
    for (const [path, handle] of [...this.open]) {
      if (root === '/' || path === root || path.startsWith(`${root}/`)) {
        this.open.delete(path);
        await handle.close().catch(() => undefined);
      }
    }
  }

  async closeAll(): Promise<void> {
    await this.forget('/');
  }

  private async setMtime(path: string, mtimeNs: bigint): Promise<void> {
    const abs = this.abs(path);
    if (this.addon !== undefined) {
      const result = this.addon.hakit_utimensat(
        abs,
        0,
        utimeOmitNs,
        Number(mtimeNs / 1_000_000_000n),
        Number(mtimeNs % 1_000_000_000n),
      );
      if (result === -2) return;
      checkNative(result, `utimensat ${path}`);
      return;
    }
    const stat = await fsp.lstat(abs).catch(() => undefined);
    if (stat === undefined) return;
    await fsp.lutimes(abs, stat.atime, Number(mtimeNs) / 1e9);
  }

  async apply(op: Op, fixes: readonly TimeFix[] = []): Promise<void> {
    try {
      await this.applyOp(op);
      for (const fix of fixes) await this.setMtime(fix.path, fix.mtimeNs);
      this.stats.ops += 1;
    } catch (error) {
      if (error instanceof ApplyError) throw error;
      throw new ApplyError(
        `${op.kind} ${'path' in op ? op.path : ''}: ${(error as Error).message}`,
        codeOf(error),
      );
    }
  }

  private async applyOp(op: Op): Promise<void> {
    switch (op.kind) {
      case 'write': {
        const handle = await this.handle(op.path);
        let written = 0;
        while (written < op.data.length) {
          const { bytesWritten } = await handle.write(
            op.data,
            written,
            op.data.length - written,
            op.offset + written,
          );
          if (bytesWritten <= 0) throw new ApplyError(`write ${op.path}: no progress`, 'EIO');
          written += bytesWritten;
        }
        this.stats.dataBytes += op.data.length;
        return;
      }
      case 'truncate': {
        const cached = this.open.get(op.path);
        if (cached !== undefined) await cached.truncate(op.size);
        else await fsp.truncate(this.abs(op.path), op.size);
        return;
      }
      case 'fallocate': {
        if (this.addon === undefined) throw new ApplyError('fallocate needs the native helper', 'ENOSYS');
        const handle = await this.handle(op.path);
        checkNative(
          this.addon.hakit_fallocate(handle.fd, op.mode, op.offset, op.length),
          `fallocate ${op.path}`,
        );
        return;
      }
      case 'create': {
        await this.forget(op.path);
        const handle = await fsp.open(
          this.abs(op.path),
          constants.O_CREAT | constants.O_WRONLY | constants.O_NOFOLLOW,
          op.mode & 0o7777,
        );
        try {
          await handle.chown(op.uid, op.gid);
          await handle.chmod(op.mode & 0o7777);
        } finally {
          await handle.close();
        }
        return;
      }
      case 'mkdir': {
        try {
          await fsp.mkdir(this.abs(op.path), op.mode & 0o7777);
        } catch (error) {
          if (codeOf(error) !== 'EEXIST') throw error;
        }
        await fsp.lchown(this.abs(op.path), op.uid, op.gid);
        await fsp.chmod(this.abs(op.path), op.mode & 0o7777);
        return;
      }
      case 'mknod': {
        const type =
          (op.mode & constants.S_IFMT) === constants.S_IFIFO
            ? 'p'
            : (op.mode & constants.S_IFMT) === constants.S_IFCHR
              ? 'c'
              : 'b';
        const args = ['-m', (op.mode & 0o7777).toString(8), this.abs(op.path), type];
        if (type !== 'p') args.push(String(Math.floor(op.rdev / 256) & 0xfff), String(op.rdev & 0xff));
        await fsp.rm(this.abs(op.path), { force: true });
        await new Promise<void>((resolvePromise, reject) =>
          execFile('mknod', args, { timeout: 10_000 }, (error) => (error ? reject(error) : resolvePromise())),
        );
        await fsp.lchown(this.abs(op.path), op.uid, op.gid);
        return;
      }
      case 'symlink': {
        try {
          await fsp.symlink(op.target, this.abs(op.path));
        } catch (error) {
          if (codeOf(error) !== 'EEXIST') throw error;
          await fsp.rm(this.abs(op.path), { force: true, recursive: true });
          await fsp.symlink(op.target, this.abs(op.path));
        }
        await fsp.lchown(this.abs(op.path), op.uid, op.gid);
        return;
      }
      case 'link':
        try {
          await fsp.link(this.abs(op.existing), this.abs(op.path));
        } catch (error) {
          if (codeOf(error) !== 'EEXIST') throw error;
        }
        return;
      case 'unlink':
        await this.forget(op.path);
        try {
          await fsp.unlink(this.abs(op.path));
        } catch (error) {
          if (codeOf(error) !== 'ENOENT') throw error;
        }
        return;
      case 'rmdir':
        try {
          await fsp.rmdir(this.abs(op.path));
        } catch (error) {
          if (codeOf(error) !== 'ENOENT') throw error;
        }
        return;
      case 'removeTree':
        if (op.path === '/') throw new ApplyError('removeTree of the replicated root', 'EINVAL');
        await this.forget(op.path);
        await fsp.rm(this.abs(op.path), { recursive: true, force: true });
        return;
      case 'rename':
        await this.forget(op.path);
        await this.forget(op.to);
        try {
          await fsp.rename(this.abs(op.path), this.abs(op.to));
        } catch (error) {
          if (codeOf(error) !== 'ENOENT') throw error;
        }
        return;
      case 'chmod':
        await fsp.chmod(this.abs(op.path), op.mode & 0o7777);
        return;
      case 'chown':
        await fsp.lchown(this.abs(op.path), op.uid, op.gid);
        return;
      case 'utimens':
        if (this.addon !== undefined) {
          checkNative(
            this.addon.hakit_utimensat(
              this.abs(op.path),
              Number(op.atimeNs / 1_000_000_000n),
              Number(op.atimeNs % 1_000_000_000n),
              Number(op.mtimeNs / 1_000_000_000n),
              Number(op.mtimeNs % 1_000_000_000n),
            ),
            `utimens ${op.path}`,
          );
        } else {
          await fsp.lutimes(this.abs(op.path), Number(op.atimeNs) / 1e9, Number(op.mtimeNs) / 1e9);
        }
        return;
      case 'setxattr':
        if (this.addon === undefined) throw new ApplyError('xattrs need the native helper', 'ENOSYS');
        checkNative(
          this.addon.hakit_lsetxattr(this.abs(op.path), op.name, op.value, op.flags & ~3),
          `setxattr ${op.path}`,
        );
        return;
      case 'removexattr': {
        if (this.addon === undefined) throw new ApplyError('xattrs need the native helper', 'ENOSYS');
        const result = this.addon.hakit_lremovexattr(this.abs(op.path), op.name);
        if (result !== -61) checkNative(result, `removexattr ${op.path}`);
        return;
      }
      case 'keepXattrs': {
        if (this.addon === undefined) throw new ApplyError('xattrs need the native helper', 'ENOSYS');
        const abs = this.abs(op.path);
        const size = this.addon.hakit_llistxattr(abs, Buffer.alloc(0));
        if (size === -2) return; // Gone since: the stream removes or recreates it in order.
        checkNative(size, `listxattr ${op.path}`);
        if (size === 0) return;
        const list = Buffer.alloc(size);
        const read = this.addon.hakit_llistxattr(abs, list);
        checkNative(read, `listxattr ${op.path}`);
        const keep = new Set(op.names);
        for (const name of list.subarray(0, read).toString('utf8').split('\0')) {
          if (name === '' || keep.has(name)) continue;
          const result = this.addon.hakit_lremovexattr(abs, name);
          if (result !== -61) checkNative(result, `removexattr ${op.path} ${name}`);
        }
        return;
      }
      case 'fsync': {
        const cached = this.open.get(op.path);
        if (cached !== undefined) {
          await (op.dataOnly ? cached.datasync() : cached.sync());
          return;
        }
        let handle: FileHandle;
        try {
          handle = await fsp.open(this.abs(op.path), constants.O_RDONLY | constants.O_NOFOLLOW);
        } catch (error) {
          // Unlinked since (or never replicated): nothing of it to make durable.
          if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ELOOP') return;
          throw error;
        }
        try {
          await (op.dataOnly ? handle.datasync() : handle.sync());
        } finally {
          await handle.close();
        }
        return;
      }
      case 'fsyncdir': {
        const handle = await fsp.open(this.abs(op.path), constants.O_RDONLY | constants.O_DIRECTORY);
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
        return;
      }
      case 'syncBegin':
      case 'syncEnd':
        // Bookkeeping for the receiver (secondary.ts); nothing to apply to the tree. syncEnd is a
        // barrier: make every file written during the resync durable before it is acknowledged.
        if (op.kind === 'syncEnd') {
          for (const handle of this.open.values()) await handle.sync();
        }
        return;
    }
  }
}
