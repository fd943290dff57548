// A FUSE mount served by this process through the vendored addon: typed, promise-based operations
// in, the addon's callback protocol out. Each libfuse worker thread blocks until its request is
// answered here, so the number of requests in flight is bounded by libfuse (10 workers in 2.9).
// Never touch the mount point with fs calls from this process: that would deadlock on itself.
import { spawn } from 'node:child_process';
import type { Caller, FuseAddon, NativeHandle, NativeHandler } from './addon.ts';
import { callerOf } from './addon.ts';

export const errno = {
  EPERM: -1,
  ENOENT: -2,
  EIO: -5,
  EBADF: -9,
  EAGAIN: -11,
  EACCES: -13,
  EBUSY: -16,
  EEXIST: -17,
  EXDEV: -18,
  ENOTDIR: -20,
  EISDIR: -21,
  EINVAL: -22,
  ENOSPC: -28,
  EROFS: -30,
  ERANGE: -34,
  ENOSYS: -38,
  ENOTEMPTY: -39,
  ENODATA: -61,
  EOPNOTSUPP: -95,
  ETIMEDOUT: -110,
} as const;

/** A stat in the shape the addon copies into struct stat (times as seconds + nanoseconds). */
export interface FuseStat {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly rdev: number;
  readonly blksize: number;
  readonly blocks: number;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
}

export interface FuseStatfs {
  readonly bsize: number;
  readonly frsize: number;
  readonly blocks: number;
  readonly bfree: number;
  readonly bavail: number;
  readonly files: number;
  readonly ffree: number;
  readonly favail: number;
  readonly namemax: number;
}

/** Results are a value or a negative errno. */
export type Errno = number;

export interface FuseOperations {
  getattr(path: string): Promise<FuseStat | Errno>;
  fgetattr(path: string, fh: number): Promise<FuseStat | Errno>;
  statfs(path: string): Promise<FuseStatfs | Errno>;
  readdir(path: string): Promise<string[] | Errno>;
  readlink(path: string): Promise<string | Errno>;
  open(path: string, flags: number, caller: Caller): Promise<number | Errno>;
  create(path: string, mode: number, flags: number, caller: Caller): Promise<number | Errno>;
  read(path: string, fh: number, buffer: Buffer, length: number, offset: number): Promise<number | Errno>;
  write(path: string, fh: number, buffer: Buffer, length: number, offset: number): Promise<number | Errno>;
  release(path: string, fh: number): Promise<Errno>;
  fsync(path: string, dataOnly: boolean, fh: number): Promise<Errno>;
  fsyncdir(path: string, dataOnly: boolean): Promise<Errno>;
  truncate(path: string, size: number): Promise<Errno>;
  ftruncate(path: string, fh: number, size: number): Promise<Errno>;
  fallocate(path: string, fh: number, mode: number, offset: number, length: number): Promise<Errno>;
  utimens(path: string, aSec: number, aNsec: number, mSec: number, mNsec: number): Promise<Errno>;
  chmod(path: string, mode: number): Promise<Errno>;
  chown(path: string, uid: number, gid: number): Promise<Errno>;
  mknod(path: string, mode: number, dev: number, caller: Caller): Promise<Errno>;
  mkdir(path: string, mode: number, caller: Caller): Promise<Errno>;
  symlink(target: string, path: string, caller: Caller): Promise<Errno>;
  link(existing: string, path: string): Promise<Errno>;
  unlink(path: string): Promise<Errno>;
  rmdir(path: string): Promise<Errno>;
  rename(from: string, to: string): Promise<Errno>;
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<Errno>;
  getxattr(path: string, name: string, size: number): Promise<Buffer | Errno>;
  listxattr(path: string): Promise<string[] | Errno>;
  removexattr(path: string, name: string): Promise<Errno>;
}

export interface FuseMountOptions {
  /** Extra `-o` options (big_writes, max_write=..., default_permissions, ...). */
  readonly options: readonly string[];
  /** Called for an operation that threw (a bug): the request gets EIO. */
  readonly onInternalError: (op: string, error: unknown) => void;
}

const statWords = 21;
const statfsWords = 11;
const twoPow32 = 4294967296;

function putUint64(words: Uint32Array, index: number, value: number): void {
  const safe = Math.max(0, Math.floor(value));
  words[index] = safe % twoPow32;
  words[index + 1] = Math.floor(safe / twoPow32);
}

function putTime(words: Uint32Array, index: number, ns: bigint): void {
  const sec = ns / 1_000_000_000n;
  putUint64(words, index, Number(sec < 0n ? 0n : sec));
  words[index + 2] = Number(ns % 1_000_000_000n);
}

export function statWordsOf(stat: FuseStat | undefined): Uint32Array {
  const words = new Uint32Array(statWords);
  if (stat === undefined) return words;
  words[0] = stat.mode;
  words[1] = stat.uid;
  words[2] = stat.gid;
  putUint64(words, 3, stat.size);
  words[5] = 0;
  words[6] = stat.nlink;
  words[7] = 0;
  words[8] = stat.rdev;
  words[9] = stat.blksize;
  putUint64(words, 10, stat.blocks);
  putTime(words, 12, stat.atimeNs);
  putTime(words, 15, stat.mtimeNs);
  putTime(words, 18, stat.ctimeNs);
  return words;
}

function statfsWordsOf(statfs: FuseStatfs | undefined): Uint32Array {
  const words = new Uint32Array(statfsWords);
  if (statfs === undefined) return words;
  const clamp = (value: number) => Math.min(twoPow32 - 1, Math.max(0, Math.floor(value)));
  words[0] = clamp(statfs.bsize);
  words[1] = clamp(statfs.frsize);
  words[2] = clamp(statfs.blocks);
  words[3] = clamp(statfs.bfree);
  words[4] = clamp(statfs.bavail);
  words[5] = clamp(statfs.files);
  words[6] = clamp(statfs.ffree);
  words[7] = clamp(statfs.favail);
  words[10] = clamp(statfs.namemax);
  return words;
}

const toDouble = (low: number, high: number): number => low + high * twoPow32;

type Signal = (handle: NativeHandle, result: number, ...extra: unknown[]) => void;

/**
 * One mount. `mount()` resolves once the kernel sent INIT (the file system answers); `unmount()`
 * runs fusermount -u (a busy mount stays mounted and the error says so).
 */
export class FuseMount {
  private readonly thread: Buffer;
  private readonly threadBuffers = new Set<Buffer>();
  private mounted = false;
  private onInit: (() => void) | undefined;

  constructor(
    private readonly addon: FuseAddon,
    readonly mountPoint: string,
    private readonly ops: FuseOperations,
    private readonly options: FuseMountOptions,
  ) {
    this.thread = Buffer.alloc(addon.sizeof_fuse_thread_t);
  }

  private signalOf(name: string): Signal {
    const signal = this.addon[`fuse_native_signal_${name}`];
    if (typeof signal !== 'function') throw new Error(`FUSE addon: no fuse_native_signal_${name}`);
    return signal as Signal;
  }

  private opCode(name: string): number {
    const code = this.addon[`op_${name}`];
    if (typeof code !== 'number') throw new Error(`FUSE addon: no op_${name}`);
    return code;
  }

  /** Runs `work`, then answers the request on the next tick (the addon must not be re-entered). */
  private answer(
    name: string,
    handle: NativeHandle,
    work: () => Promise<readonly unknown[]>,
    onFailure: readonly unknown[],
  ): void {
    const signal = this.signalOf(name);
    work().then(
      (reply) => process.nextTick(() => signal(handle, ...(reply as [number, ...unknown[]]))),
      (error: unknown) => {
        this.options.onInternalError(name, error);
        process.nextTick(() => signal(handle, errno.EIO, ...onFailure));
      },
    );
  }

  private handlers(): Map<string, NativeHandler> {
    const ops = this.ops;
    const handlers = new Map<string, (handle: NativeHandle, op: number, ...args: never[]) => void>();
    const plain = (name: string, run: (handle: NativeHandle, ...args: never[]) => Promise<number>) =>
      handlers.set(name, (handle, _op, ...args) =>
        this.answer(name, handle, async () => [await run(handle, ...args)], []),
      );
    handlers.set('init', (handle) => {
      process.nextTick(() => this.signalOf('init')(handle, 0));
      const onInit = this.onInit;
      this.onInit = undefined;
      onInit?.();
    });
    const statReply = async (result: Promise<FuseStat | Errno>) => {
      const stat = await result;
      return typeof stat === 'number' ? [stat, statWordsOf(undefined)] : [0, statWordsOf(stat)];
    };
    handlers.set('getattr', (handle, _op, ...args) => {
      const [path] = args as unknown as [string];
      this.answer('getattr', handle, () => statReply(ops.getattr(path)), [statWordsOf(undefined)]);
    });
    handlers.set('fgetattr', (handle, _op, ...args) => {
      const [path, fh] = args as unknown as [string, number];
      this.answer('fgetattr', handle, () => statReply(ops.fgetattr(path, fh)), [statWordsOf(undefined)]);
    });
    handlers.set('statfs', (handle, _op, ...args) => {
      const [path] = args as unknown as [string];
      this.answer(
        'statfs',
        handle,
        async () => {
          const statfs = await ops.statfs(path);
          return typeof statfs === 'number' ? [statfs, statfsWordsOf(undefined)] : [0, statfsWordsOf(statfs)];
        },
        [statfsWordsOf(undefined)],
      );
    });
    handlers.set('readdir', (handle, _op, ...args) => {
      const [path] = args as unknown as [string];
      this.answer(
        'readdir',
        handle,
        async () => {
          const names = await ops.readdir(path);
          return typeof names === 'number' ? [names, [], []] : [0, names, []];
        },
        [[], []],
      );
    });
    handlers.set('readlink', (handle, _op, ...args) => {
      const [path] = args as unknown as [string];
      this.answer(
        'readlink',
        handle,
        async () => {
          const target = await ops.readlink(path);
          return typeof target === 'number' ? [target, ''] : [0, target];
        },
        [''],
      );
    });
    handlers.set('open', (handle, _op, ...args) => {
      const [path, flags] = args as unknown as [string, number];
      this.answer(
        'open',
        handle,
        async () => {
          const fh = await ops.open(path, flags, callerOf(handle));
          return fh < 0 ? [fh, 0] : [0, fh];
        },
        [0],
      );
    });
    handlers.set('create', (handle, _op, ...args) => {
      const [path, mode, flags] = args as unknown as [string, number, number];
      this.answer(
        'create',
        handle,
        async () => {
          const fh = await ops.create(path, mode, flags, callerOf(handle));
          return fh < 0 ? [fh, 0] : [0, fh];
        },
        [0],
      );
    });
    for (const name of ['read', 'write'] as const) {
      handlers.set(name, (handle, _op, ...args) => {
        const [path, fh, buffer, length, offsetLow, offsetHigh] = args as unknown as [
          string,
          number,
          Buffer,
          number,
          number,
          number,
        ];
        const offset = toDouble(offsetLow, offsetHigh);
        this.answer(
          name,
          handle,
          // The addon detaches argv[3]: (handle, result, 0, arrayBuffer) as upstream sends it.
          async () => [await ops[name](path, fh, buffer, length, offset), 0, buffer.buffer],
          [0, buffer.buffer],
        );
      });
    }
    plain('release', (_h, ...args) => {
      const [path, fh] = args as unknown as [string, number];
      return ops.release(path, fh);
    });
    plain('fsync', (_h, ...args) => {
      const [path, dataOnly, fh] = args as unknown as [string, number, number];
      return ops.fsync(path, dataOnly !== 0, fh);
    });
    plain('fsyncdir', (_h, ...args) => {
      const [path, dataOnly] = args as unknown as [string, number];
      return ops.fsyncdir(path, dataOnly !== 0);
    });
    plain('truncate', (_h, ...args) => {
      const [path, low, high] = args as unknown as [string, number, number];
      return ops.truncate(path, toDouble(low, high));
    });
    plain('ftruncate', (_h, ...args) => {
      const [path, fh, low, high] = args as unknown as [string, number, number, number];
      return ops.ftruncate(path, fh, toDouble(low, high));
    });
    plain('fallocate', (_h, ...args) => {
      const [path, fh, mode, offset, length] = args as unknown as [string, number, number, number, number];
      return ops.fallocate(path, fh, mode, offset, length);
    });
    plain('utimens', (_h, ...args) => {
      const [path, aSec, aNsec, mSec, mNsec] = args as unknown as [string, number, number, number, number];
      return ops.utimens(path, aSec, aNsec, mSec, mNsec);
    });
    plain('chmod', (_h, ...args) => {
      const [path, mode] = args as unknown as [string, number];
      return ops.chmod(path, mode);
    });
    plain('chown', (_h, ...args) => {
      const [path, uid, gid] = args as unknown as [string, number, number];
      return ops.chown(path, uid, gid);
    });
    plain('mknod', (handle, ...args) => {
      const [path, mode, dev] = args as unknown as [string, number, number];
      return ops.mknod(path, mode, dev, callerOf(handle));
    });
    plain('mkdir', (handle, ...args) => {
      const [path, mode] = args as unknown as [string, number];
      return ops.mkdir(path, mode, callerOf(handle));
    });
    plain('symlink', (handle, ...args) => {
      const [target, path] = args as unknown as [string, string];
      return ops.symlink(target, path, callerOf(handle));
    });
    plain('link', (_h, ...args) => {
      const [existing, path] = args as unknown as [string, string];
      return ops.link(existing, path);
    });
    plain('unlink', (_h, ...args) => ops.unlink((args as unknown as [string])[0]));
    plain('rmdir', (_h, ...args) => ops.rmdir((args as unknown as [string])[0]));
    plain('rename', (_h, ...args) => {
      const [from, to] = args as unknown as [string, string];
      return ops.rename(from, to);
    });
    plain('removexattr', (_h, ...args) => {
      const [path, name] = args as unknown as [string, string];
      return ops.removexattr(path, name);
    });
    handlers.set('setxattr', (handle, _op, ...args) => {
      const [path, name, value, , flags] = args as unknown as [string, string, Buffer, number, number];
      this.answer(
        'setxattr',
        handle,
        async () => [await ops.setxattr(path, name, Buffer.from(value), flags), value.buffer],
        [value.buffer],
      );
    });
    handlers.set('getxattr', (handle, _op, ...args) => {
      const [path, name, valueBuffer] = args as unknown as [string, string, Buffer];
      this.answer(
        'getxattr',
        handle,
        async () => {
          const value = await ops.getxattr(path, name, valueBuffer.length);
          if (typeof value === 'number') return [value, valueBuffer.buffer];
          if (valueBuffer.length === 0) return [value.length, valueBuffer.buffer];
          if (value.length > valueBuffer.length) return [errno.ERANGE, valueBuffer.buffer];
          value.copy(valueBuffer);
          return [value.length, valueBuffer.buffer];
        },
        [valueBuffer.buffer],
      );
    });
    handlers.set('listxattr', (handle, _op, ...args) => {
      const [path, listBuffer] = args as unknown as [string, Buffer];
      this.answer(
        'listxattr',
        handle,
        async () => {
          const names = await ops.listxattr(path);
          if (typeof names === 'number') return [names, listBuffer.buffer];
          const packed = Buffer.from(names.map((name) => `${name}\0`).join(''));
          if (listBuffer.length === 0) return [packed.length, listBuffer.buffer];
          if (packed.length > listBuffer.length) return [errno.ERANGE, listBuffer.buffer];
          packed.copy(listBuffer);
          return [packed.length, listBuffer.buffer];
        },
        [listBuffer.buffer],
      );
    });
    return handlers as Map<string, NativeHandler>;
  }

  mount(): Promise<void> {
    if (this.mounted) return Promise.reject(new Error(`FUSE: ${this.mountPoint} is already mounted`));
    const handlerByName = this.handlers();
    const handlers: (NativeHandler | undefined)[] = [];
    const implemented = new Uint32Array(36);
    for (const [name, handler] of handlerByName) {
      const code = this.opCode(name);
      handlers[code] = handler;
      implemented[code] = 1;
    }
    // The addon walks the array with NAPI_FOR_EACH: every slot must hold a function.
    const noop: NativeHandler = (handle) => this.signalOf('init')(handle, errno.ENOSYS);
    for (let index = 0; index < 36; index += 1) handlers[index] ??= noop;
    const optionText = this.options.options.length > 0 ? `-o${this.options.options.join(',')}` : '';
    return new Promise((resolvePromise, reject) => {
      this.onInit = () => {
        this.mounted = true;
        resolvePromise();
      };
      try {
        this.addon.fuse_native_mount(
          this.mountPoint,
          optionText,
          this.thread,
          this,
          (size: number) => {
            const buffer = Buffer.alloc(size);
            this.threadBuffers.add(buffer);
            return buffer;
          },
          handlers,
          implemented,
        );
      } catch (error) {
        this.onInit = undefined;
        reject(new Error(`FUSE mount on ${this.mountPoint} failed: ${(error as Error).message}`));
      }
    });
  }

  get isMounted(): boolean {
    return this.mounted;
  }

  /** fusermount -u (not lazy): fails with EBUSY while files are open; `lazy` detaches anyway. */
  async unmount(lazy = false): Promise<void> {
    if (!this.mounted) return;
    const result = await runCommand('fusermount', lazy ? ['-uz', this.mountPoint] : ['-u', this.mountPoint]);
    if (result.code !== 0) {
      throw new Error(
        `fusermount -u ${this.mountPoint} failed (exit ${result.code}): ${result.stderr.trim()}`,
      );
    }
    this.addon.fuse_native_unmount(this.mountPoint, this.thread);
    this.mounted = false;
  }
}

const commandTimeoutMs = 30_000;

export function runCommand(
  file: string,
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), commandTimeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < 65_536) stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 65_536) stderr += chunk.toString();
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ code: 127, stdout, stderr: `${file}: ${error.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code: code ?? 128,
        stdout,
        stderr: signal === null ? stderr : `${stderr} (killed by ${signal})`,
      });
    });
  });
}
