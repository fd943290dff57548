// Typed access to the vendored FUSE binding (agent/replication/fuse/fuse-native.c, a fork of
// @cocalc/fuse-native 2.4.3 on libfuse 2.9). The addon is built from source by build-addon.ts;
// when it is missing or libfuse is absent, `loadFuseAddon` reports why instead of throwing from an
// import, so the rest of the agent runs and the data path reports "binding unavailable".
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonFileCandidates } from './addon-paths.ts';

/** One FUSE worker thread's request slot; the caller's uid/gid/pid/umask are its first 16 bytes. */
export type NativeHandle = Buffer;

export interface FuseAddon {
  readonly sizeof_fuse_thread_t: number;
  /** The libfuse generation built against (2 or 3); absent in builds before it was exported. */
  readonly hakit_fuse_api?: number;
  fuse_native_mount(
    mnt: string,
    opts: string,
    thread: Buffer,
    ctx: object,
    malloc: (size: number) => Buffer,
    handlers: readonly (NativeHandler | undefined)[],
    implemented: Uint32Array,
  ): void;
  fuse_native_unmount(mnt: string, thread: Buffer): void;
  hakit_utimensat(path: string, aSec: number, aNsec: number, mSec: number, mNsec: number): number;
  hakit_fallocate(fd: number, mode: number, offset: number, length: number): number;
  hakit_lsetxattr(path: string, name: string, value: Buffer, flags: number): number;
  hakit_lgetxattr(path: string, name: string, value: Buffer): number;
  hakit_llistxattr(path: string, list: Buffer): number;
  hakit_lremovexattr(path: string, name: string): number;
  readonly [key: string]: unknown;
}

/** The libfuse generation an addon was built against (builds before it was exported: 2). */
export function fuseApiOf(addon: FuseAddon): 2 | 3 {
  return addon.hakit_fuse_api === 3 ? 3 : 2;
}

export type NativeHandler = (handle: NativeHandle, opCode: number, ...args: never[]) => void;

export type AddonLoad =
  | { readonly ok: true; readonly addon: FuseAddon; readonly file: string }
  | { readonly ok: false; readonly reason: string };

let cached: AddonLoad | undefined;

/** Loads the built addon once; the failure reason names the file looked for and how to build it. */
export function loadFuseAddon(): AddonLoad {
  if (cached !== undefined) return cached;
  const candidates = addonFileCandidates();
  const file = candidates.find((candidate) => existsSync(candidate));
  if (file === undefined) {
    cached = {
      ok: false,
      reason:
        `FUSE binding unavailable: no built addon at ${candidates.join(' or ')}; build it with ` +
        '`node --import tsx agent/replication/fuse/build-addon.ts` (needs the Debian packages libfuse-dev and fuse)',
    };
    return cached;
  }
  try {
    const requireNative = createRequire(import.meta.filename ?? file);
    const addon = requireNative(file) as FuseAddon;
    if (typeof addon.fuse_native_mount !== 'function') throw new Error('fuse_native_mount missing');
    cached = { ok: true, addon, file };
  } catch (error) {
    cached = {
      ok: false,
      reason: `FUSE binding unavailable: loading ${file} failed: ${(error as Error).message} (is libfuse2 installed?)`,
    };
  }
  return cached;
}

/** Caller identity of the request held in a native handle (first 16 bytes, see fuse-native.c). */
export interface Caller {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
}

export function callerOf(handle: NativeHandle): Caller {
  return { uid: handle.readUInt32LE(0), gid: handle.readUInt32LE(4), pid: handle.readUInt32LE(8) };
}
