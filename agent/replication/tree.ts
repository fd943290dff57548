// Paths of the replication stream and per-block digests of real files. A module may replicate
// several directories; on the wire a path is "/<index>/<path inside that directory>", so one
// ordered stream serves them all (the kernel refuses renames across two mounts with EXDEV).
import { createHash } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import type { PathSums } from './protocol.ts';
import { blockDigestBytes, sumsPerReplyMax } from './protocol.ts';

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
  return createHash('sha256').update(data).digest().subarray(0, blockDigestBytes);
}

const readChunkBytes = 1024 * 1024;

/** Digest of each block of a regular file (a symlink or directory has none). */
export async function pathSums(absPath: string, wirePath: string, blockBytes: number): Promise<PathSums> {
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
