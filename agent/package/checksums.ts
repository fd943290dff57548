// Checksum files of the agent package, in the format `sha256sum -c` reads: one line per file,
// `<64 hex digits><two spaces><path>`, sorted by path. `SHA256SUMS` inside the package lists every
// file but itself; `<tarball>.sha256` beside the package holds the tarball's own line.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface FileChecksum {
  /** Path relative to the directory the checksum file sits in, '/'-separated. */
  path: string;
  sha256Hex: string;
}

const sha256HexPattern = /^[0-9a-f]{64}$/;
// Printable ASCII without spaces and backslashes: sha256sum escapes those, install.sh compares
// the listed paths with what `find` prints, and both must see the same text.
const checksumPathPattern = /^[\x21-\x5b\x5d-\x7e]+$/;

export class ChecksumFormatError extends Error {
  override name = 'ChecksumFormatError';
}

export function assertChecksumPath(path: string): string {
  if (!checksumPathPattern.test(path))
    throw new ChecksumFormatError(
      `checksum path '${path}' must be printable ASCII without spaces or backslashes`,
    );
  const segments = path.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..'))
    throw new ChecksumFormatError(`checksum path '${path}' must be relative, without '.', '..' or '//'`);
  return path;
}

function compareBytes(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/** One `sha256sum` line. */
export function sha256SumLine(checksum: FileChecksum): string {
  if (!sha256HexPattern.test(checksum.sha256Hex))
    throw new ChecksumFormatError(
      `'${checksum.sha256Hex}' (for ${checksum.path}) is not 64 lower-case hex digits`,
    );
  return `${checksum.sha256Hex}  ${assertChecksumPath(checksum.path)}\n`;
}

/** The whole checksum file: sorted by path (byte order, as `LC_ALL=C sort`), no duplicates. */
export function sha256SumsText(checksums: readonly FileChecksum[]): string {
  const sorted = [...checksums].sort((left, right) => compareBytes(left.path, right.path));
  for (let index = 1; index < sorted.length; index += 1) {
    if (sorted[index]?.path === sorted[index - 1]?.path)
      throw new ChecksumFormatError(`path '${sorted[index]?.path ?? ''}' is listed twice`);
  }
  return sorted.map(sha256SumLine).join('');
}

/** Reads a checksum file back; throws on any line that `sha256sum -c --strict` would reject. */
export function parseSha256Sums(text: string): FileChecksum[] {
  if (text.length > 0 && !text.endsWith('\n'))
    throw new ChecksumFormatError('checksum file does not end with a newline');
  const lines = text.length === 0 ? [] : text.slice(0, -1).split('\n');
  return lines.map((line, index) => {
    const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!match) throw new ChecksumFormatError(`checksum line ${index + 1} is malformed: '${line}'`);
    return { sha256Hex: match[1]!, path: assertChecksumPath(match[2]!) };
  });
}

export function sha256HexOfBytes(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hashes a file by streaming it (the Node runtime is 120 MB: never read it whole). */
export function sha256HexOfFile(file: string): Promise<string> {
  return hashFile(file, 'sha256', 'hex');
}

export function hashFile(file: string, algorithm: string, encoding: 'hex' | 'base64'): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash(algorithm);
    createReadStream(file)
      .on('error', (error) => reject(new Error(`cannot read ${file} to hash it: ${error.message}`)))
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest(encoding)));
  });
}
