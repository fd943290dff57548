// Paths of the replication stream and per-block digests of real files. A module may replicate
// several directories; on the wire a path is "/<index>/<path inside that directory>", so one
// ordered stream serves them all (the kernel refuses renames across two mounts with EXDEV).
import { createHash, hash } from 'node:crypto';
import {
  closeSync,
  constants,
  promises as fsp,
  lstatSync,
  openSync,
  readSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { FuseAddon } from './fuse/addon.ts';
import type { DirEntrySums, DirRequest, PathSums, XattrSum } from './protocol.ts';
import {
  DirReplyWriter,
  blockDigestBytes,
  dirEntriesPerPageMax,
  dirPageBytesSoftMax,
  sumsPerReplyMax,
} from './protocol.ts';

export const replicatedDirsMax = 64;

export function joinRoot(index: number, path: string): string {
  if (!(Number.isInteger(index) && index >= 0 && index < replicatedDirsMax))
    throw new Error(`bad replicated dir index ${index}`);
  return path === '/' ? `/${index}` : `/${index}${path}`;
}

export function splitRoot(wirePath: string): { index: number; path: string } {
  const match = /^\/(\d{1,2})(\/.*)?$/.exec(wirePath);
  if (match === null) throw new Error(`bad replication path ${JSON.stringify(wirePath)}`);
  const index = Number(match[1]);
  if (index >= replicatedDirsMax) throw new Error(`replicated dir index ${index} out of range`);
  return { index, path: match[2] ?? '/' };
}

/** Block size for a file so its digest list stays under the reply bound. */
export function blockBytesFor(fileSize: number, blockBytesMin: number): number {
  const needed = Math.ceil(fileSize / sumsPerReplyMax);
  return Math.max(blockBytesMin, needed);
}

export function digestOf(data: Buffer): Buffer {
  // One-shot hash: no Hash object per small file (a full comparison digests millions).
  return hash('sha256', data, 'buffer').subarray(0, blockDigestBytes);
}

const readChunkBytes = 1024 * 1024;

export interface XattrEntry {
  readonly name: string;
  readonly value: Buffer;
}

/** Reads a path's extended attributes (ACLs included), never following a symlink. */
export type XattrReader = (absPath: string) => readonly XattrEntry[];

const xattrNamesBytesMax = 64 * 1024;

/** Reads extended attributes with the native helpers (on the real data, never FUSE). */
export function xattrReader(addon: FuseAddon): XattrReader {
  return (absPath) => {
    const size = addon.hakit_llistxattr(absPath, Buffer.alloc(0));
    if (size <= 0) return [];
    const list = Buffer.alloc(Math.min(size, xattrNamesBytesMax));
    const read = addon.hakit_llistxattr(absPath, list);
    if (read < 0) return [];
    const attributes: XattrEntry[] = [];
    for (const name of list.subarray(0, read).toString('utf8').split('\0')) {
      if (name === '') continue;
      const probe = addon.hakit_lgetxattr(absPath, name, Buffer.alloc(0));
      if (probe < 0) continue; // Removed meanwhile: the live stream carries the removal.
      const value = Buffer.alloc(probe);
      const got = addon.hakit_lgetxattr(absPath, name, value);
      if (got >= 0) attributes.push({ name, value: value.subarray(0, got) });
    }
    return attributes;
  };
}

/** Name and value digest of each attribute, sorted by name (both sides sort alike). */
export function xattrSumsOf(entries: readonly XattrEntry[]): XattrSum[] {
  return entries
    .map((entry) => ({ name: entry.name, digest: digestOf(entry.value) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function sameXattrs(a: readonly XattrSum[], b: readonly XattrSum[]): boolean {
  return (
    a.length === b.length &&
    a.every((entry, index) => entry.name === b[index]?.name && entry.digest.equals(b[index].digest))
  );
}

/** Digest of each block of a regular file (a symlink or directory has none). */
export async function pathSums(
  absPath: string,
  wirePath: string,
  blockBytes: number,
  readXattrs?: XattrReader,
): Promise<PathSums> {
  const base = {
    path: wirePath,
    size: 0,
    mode: 0,
    uid: 0,
    gid: 0,
    mtimeNs: 0n,
    target: '',
    blockBytes,
    sums: [] as Buffer[],
    xattrs: undefined,
  };
  let stat;
  try {
    stat = await fsp.lstat(absPath, { bigint: true });
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === 'ENOENT' ||
      (error as NodeJS.ErrnoException).code === 'ENOTDIR'
    ) {
      return { ...base, type: 'missing' };
    }
    throw error;
  }
  const common = {
    ...base,
    size: Number(stat.size),
    mode: Number(stat.mode),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    mtimeNs: stat.mtimeNs,
    xattrs: readXattrs === undefined ? undefined : xattrSumsOf(readXattrs(absPath)),
  };
  if (stat.isSymbolicLink()) return { ...common, type: 'symlink', target: await fsp.readlink(absPath) };
  if (stat.isDirectory()) return { ...common, type: 'dir' };
  if (!stat.isFile()) return { ...common, type: 'other' };
  const sums: Buffer[] = [];
  if (blockBytes > 0) {
    const handle = await fsp.open(absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      const buffer = Buffer.allocUnsafe(Math.min(blockBytes, readChunkBytes));
      for (let offset = 0; offset < common.size; offset += blockBytes) {
        const hash = createHash('sha256');
        const blockEnd = Math.min(offset + blockBytes, common.size);
        for (let at = offset; at < blockEnd;) {
          const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, blockEnd - at), at);
          if (bytesRead === 0) break;
          hash.update(buffer.subarray(0, bytesRead));
          at += bytesRead;
        }
        sums.push(hash.digest().subarray(0, blockDigestBytes));
        if (sums.length > sumsPerReplyMax) throw new Error(`${absPath}: more than ${sumsPerReplyMax} blocks`);
      }
    } finally {
      await handle.close();
    }
  }
  return { ...common, type: 'file', sums };
}

export async function listNames(absDir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(absDir)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}

function typeOf(stat: BigIntStats): PathSums['type'] {
  return stat.isFile() ? 'file' : stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : 'other';
}

/** Sorted names of a directory, or why there are none (missing, not a directory). */
export function readNamesSync(absDir: string): { type: PathSums['type']; names: string[] } {
  try {
    return { type: 'dir', names: readdirSync(absDir).sort() };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { type: 'missing', names: [] };
    if (code === 'ENOTDIR') return { type: 'other', names: [] };
    throw error;
  }
}

/** Whole-file digest (its only block) of a small file, read with one call into `buffer`. */
function smallFileSums(absPath: string, size: number, buffer: Buffer): Buffer[] | undefined {
  if (size === 0) return [];
  let fd: number;
  try {
    fd = openSync(absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined; // Gone or replaced meanwhile: the comparison asks again or sees it differ.
  }
  try {
    const read = readSync(fd, buffer, 0, Math.min(size, buffer.length), 0);
    return [digestOf(buffer.subarray(0, read))];
  } finally {
    closeSync(fd);
  }
}

/**
 * One entry of a directory as the comparison sees it: attributes, the digest of a regular file
 * of at most `digestBytesMax` bytes, xattrs when asked. Synchronous: a page of entries costs
 * a few microseconds each instead of a thread-pool round trip per call.
 */
export function entrySumsSync(
  absDir: string,
  name: string,
  digestBytesMax: number,
  buffer: Buffer,
  readXattrs: XattrReader | undefined,
): DirEntrySums | undefined {
  const absPath = absDir.endsWith('/') ? `${absDir}${name}` : `${absDir}/${name}`;
  const stat = lstatSync(absPath, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return undefined;
  const type = typeOf(stat);
  const size = Number(stat.size);
  let target = '';
  if (type === 'symlink') {
    try {
      target = readlinkSync(absPath);
    } catch {
      return undefined;
    }
  }
  return {
    name,
    type,
    size,
    mode: Number(stat.mode),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
    mtimeNs: stat.mtimeNs,
    target,
    sums: type === 'file' && size <= digestBytesMax ? smallFileSums(absPath, size, buffer) : undefined,
    xattrs: readXattrs === undefined ? undefined : xattrSumsOf(readXattrs(absPath)),
  };
}

/** Bytes of file content a page digests at most (then it stops after the current entry). */
const pageDigestBytesMax = 32 * 1024 * 1024;

/**
 * The secondary's answer to a DirRequest. `names` is the directory's sorted listing when the
 * caller kept it from the previous page of the same directory (a directory of a million names is
 * read once, not once per page). Returns the encoded reply and the listing to keep.
 */
export function dirPage(
  absDir: string,
  request: DirRequest,
  readXattrs: XattrReader | undefined,
  names: readonly string[] | undefined,
): { body: Buffer; names: readonly string[] | undefined; more: boolean } {
  const writer = new DirReplyWriter();
  let listing: readonly string[];
  if (names !== undefined && request.after !== '') listing = names;
  else {
    const read = readNamesSync(absDir);
    if (read.type !== 'dir')
      return { body: writer.finish(request.path, read.type, false), names: undefined, more: false };
    listing = read.names;
  }
  let index = 0;
  if (request.after !== '') {
    // First name sorting after `after` (binary search; the listing is sorted the same way).
    let high = listing.length;
    while (index < high) {
      const middle = (index + high) >>> 1;
      if ((listing[middle] as string) <= request.after) index = middle + 1;
      else high = middle;
    }
  }
  const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(request.digestBytesMax, 16 * 1024 * 1024)));
  const digestBytesMax = Math.min(request.digestBytesMax, buffer.length);
  let digested = 0;
  for (; index < listing.length; index += 1) {
    if (
      writer.entryCount >= dirEntriesPerPageMax ||
      writer.bytes >= dirPageBytesSoftMax ||
      digested >= pageDigestBytesMax
    )
      break;
    const entry = entrySumsSync(absDir, listing[index] as string, digestBytesMax, buffer, readXattrs);
    if (entry === undefined) continue;
    if (entry.sums !== undefined) digested += entry.size;
    writer.add(entry);
  }
  const more = index < listing.length;
  return { body: writer.finish(request.path, 'dir', more), names: more ? listing : undefined, more };
}
