// Crash-safe small files: write a temporary file, fsync it, rename over the old one, fsync the
// directory. After a crash the file holds either the old or the new content, never half of one.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const durableFileBytesMax = 16 * 1024 * 1024;

export function writeFileDurably(path: string, content: string | Buffer, mode = 0o600): void {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  if (bytes.length > durableFileBytesMax) {
    throw new Error(
      `${path}: ${bytes.length} bytes exceed the ${durableFileBytesMax}-byte limit for state files`,
    );
  }
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temporary = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w', mode);
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

export function writeJsonDurably(path: string, value: unknown): void {
  writeFileDurably(path, `${JSON.stringify(value, null, 2)}\n`);
}

export type JsonReadResult<T> =
  { kind: 'missing' } | { kind: 'ok'; value: T } | { kind: 'corrupt'; reason: string };

/** Reads a JSON state file; `validate` says whether the parsed value has the expected shape. */
export function readJsonFile<T>(path: string, validate: (value: unknown) => value is T): JsonReadResult<T> {
  if (!existsSync(path)) return { kind: 'missing' };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { kind: 'corrupt', reason: (error as Error).message };
  }
  try {
    const value: unknown = JSON.parse(text);
    return validate(value) ? { kind: 'ok', value } : { kind: 'corrupt', reason: 'unexpected content' };
  } catch (error) {
    return { kind: 'corrupt', reason: `not JSON: ${(error as Error).message}` };
  }
}
