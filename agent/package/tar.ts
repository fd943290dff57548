// A deterministic tar.gz writer: POSIX ustar headers, entries sorted by path, one fixed mtime,
// owner root:root, modes reduced to 0755 or 0644. Two builds of the same inputs are byte-identical
// (gzip through the same zlib; Node's gzip header carries mtime 0). Files are streamed, never
// held whole in memory.
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { assertChecksumPath } from './checksums.ts';

export const tarBlockBytes = 512;
/** 2020-01-01T00:00:00Z: the mtime of every entry (any fixed value would do). */
export const tarMtimeSecondsFixed = 1_577_836_800;
/** ustar's 11 octal digits of size. */
export const tarFileBytesMax = 8 ** 11 - 1;
const nameBytesMax = 100;
const prefixBytesMax = 155;
const fileReadChunkBytes = 1024 * 1024;

export type TarSource = { bytes: Uint8Array } | { file: string; sizeBytes: number };

export interface TarEntry {
  /** Path inside the archive, relative, '/'-separated; a directory without its trailing '/'. */
  path: string;
  type: 'file' | 'directory';
  executable: boolean;
  /** Files only. */
  source?: TarSource;
}

export class TarError extends Error {
  override name = 'TarError';
}

export function tarEntrySizeBytes(entry: TarEntry): number {
  if (entry.type === 'directory') return 0;
  if (!entry.source) throw new TarError(`tar entry ${entry.path} is a file without content`);
  return 'bytes' in entry.source ? entry.source.bytes.length : entry.source.sizeBytes;
}

function writeOctal(header: Buffer, offset: number, fieldBytes: number, value: number): void {
  const digits = value.toString(8).padStart(fieldBytes - 1, '0');
  if (digits.length > fieldBytes - 1) throw new TarError(`value ${value} does not fit a tar field`);
  header.write(`${digits}\0`, offset, fieldBytes, 'ascii');
}

/** Splits a path into ustar's name (100 bytes) and prefix (155 bytes) at a '/'. */
export function splitUstarPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= nameBytesMax) return { name: path, prefix: '' };
  for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= prefixBytesMax && Buffer.byteLength(name) <= nameBytesMax)
      return { name, prefix };
  }
  throw new TarError(`path too long for a ustar archive: ${path}`);
}

/** The 512-byte ustar header of one entry. */
export function tarHeader(entry: TarEntry, mtimeSeconds = tarMtimeSecondsFixed): Buffer {
  assertChecksumPath(entry.path);
  const sizeBytes = tarEntrySizeBytes(entry);
  if (sizeBytes > tarFileBytesMax) throw new TarError(`${entry.path} is larger than ustar allows`);
  const isDirectory = entry.type === 'directory';
  const { name, prefix } = splitUstarPath(isDirectory ? `${entry.path}/` : entry.path);
  const header = Buffer.alloc(tarBlockBytes, 0);
  header.write(name, 0, nameBytesMax, 'ascii');
  writeOctal(header, 100, 8, isDirectory || entry.executable ? 0o755 : 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, sizeBytes);
  writeOctal(header, 136, 12, mtimeSeconds);
  header.write(isDirectory ? '5' : '0', 156, 1, 'ascii');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  header.write(prefix, 345, prefixBytesMax, 'ascii');
  // The checksum is computed with its own field full of spaces, then stored as 6 octal digits,
  // NUL, space.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

function compareBytes(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/** Entries in archive order: by path in byte order (a directory comes before what it holds). */
export function sortTarEntries(entries: readonly TarEntry[]): TarEntry[] {
  const sorted = [...entries].sort((left, right) => compareBytes(left.path, right.path));
  for (let index = 1; index < sorted.length; index += 1) {
    if (sorted[index]?.path === sorted[index - 1]?.path)
      throw new TarError(`tar entry '${sorted[index]?.path ?? ''}' appears twice`);
  }
  return sorted;
}

async function* fileChunks(file: string, sizeBytesExpected: number): AsyncGenerator<Buffer> {
  let sizeBytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: fileReadChunkBytes })) {
    const buffer = chunk as Buffer;
    sizeBytes += buffer.length;
    if (sizeBytes > sizeBytesExpected)
      throw new TarError(`${file} grew while being archived (expected ${sizeBytesExpected} bytes)`);
    yield buffer;
  }
  if (sizeBytes !== sizeBytesExpected)
    throw new TarError(`${file} has ${sizeBytes} bytes, expected ${sizeBytesExpected}`);
}

/** The uncompressed archive as a sequence of chunks: headers, contents, padding, end blocks. */
export async function* tarChunks(
  entries: readonly TarEntry[],
  mtimeSeconds = tarMtimeSecondsFixed,
): AsyncGenerator<Buffer> {
  for (const entry of sortTarEntries(entries)) {
    yield tarHeader(entry, mtimeSeconds);
    if (entry.type === 'directory') continue;
    const sizeBytes = tarEntrySizeBytes(entry);
    const source = entry.source!;
    if ('bytes' in source) yield Buffer.from(source.bytes);
    else yield* fileChunks(source.file, sizeBytes);
    const paddingBytes = (tarBlockBytes - (sizeBytes % tarBlockBytes)) % tarBlockBytes;
    if (paddingBytes > 0) yield Buffer.alloc(paddingBytes, 0);
  }
  yield Buffer.alloc(2 * tarBlockBytes, 0);
}

export async function tarBytes(entries: readonly TarEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tarChunks(entries)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Writes `outFile` as gzip level 9, through a temporary file renamed at the end. */
export async function writeTarGz(entries: readonly TarEntry[], outFile: string): Promise<void> {
  const partFile = `${outFile}.part`;
  try {
    await pipeline(Readable.from(tarChunks(entries)), createGzip({ level: 9 }), createWriteStream(partFile));
    renameSync(partFile, outFile);
  } catch (error) {
    rmSync(partFile, { force: true });
    throw new TarError(`cannot write ${outFile}: ${(error as Error).message}`);
  }
}
