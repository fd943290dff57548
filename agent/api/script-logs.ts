// Script logs (userlogs): one file per script run in the module's state folder, named
// `userlog_<date>T<time>_<script>.ulog` by the script runner. Listed newest first; one file read
// from its end, bounded, so a script that wrote gigabytes cannot take the agent's memory.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const scriptLogsListMax = 500;
export const scriptLogBytesMax = 256 * 1024;

export interface ScriptLogFile {
  name: string;
  script: string;
  /** From the name (local time of the node when the run started), as ms since the epoch. */
  startedMs: number | null;
  bytes: number;
  modifiedMs: number;
}

const namePattern = /^userlog_(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})_([A-Za-z0-9_.-]{1,128})\.ulog$/;

export function isScriptLogName(name: string): boolean {
  return namePattern.test(name);
}

export function parseScriptLogName(name: string): { script: string; startedMs: number | null } | null {
  const match = namePattern.exec(name);
  if (!match) return null;
  const [, year, month, day, hour, minute, second, script] = match;
  const started = new Date(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
  ).getTime();
  return { script: script ?? '', startedMs: Number.isNaN(started) ? null : started };
}

/** The module's script logs, newest first (at most scriptLogsListMax). */
export function listScriptLogs(moduleVarDir: string): ScriptLogFile[] {
  if (!existsSync(moduleVarDir)) return [];
  const files: ScriptLogFile[] = [];
  for (const name of readdirSync(moduleVarDir)) {
    const parsed = parseScriptLogName(name);
    if (!parsed) continue;
    try {
      const info = statSync(join(moduleVarDir, name));
      if (!info.isFile()) continue;
      files.push({ name, ...parsed, bytes: info.size, modifiedMs: info.mtimeMs });
    } catch {
      // Removed by the size bound between readdir and stat: not listed.
    }
  }
  files.sort((a, b) => b.modifiedMs - a.modifiedMs || b.name.localeCompare(a.name));
  return files.slice(0, scriptLogsListMax);
}

/** The end of one script log; null when there is no such file. */
export function readScriptLog(
  moduleVarDir: string,
  name: string,
  bytesMax = scriptLogBytesMax,
): { name: string; bytes: number; truncated: boolean; text: string } | null {
  if (!isScriptLogName(name)) return null;
  let fd: number;
  try {
    fd = openSync(join(moduleVarDir, name), 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytesMax);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const got = readSync(fd, buffer, read, length - read, size - length + read);
      if (got === 0) break;
      read += got;
    }
    return { name, bytes: size, truncated: size > length, text: buffer.subarray(0, read).toString('utf8') };
  } finally {
    closeSync(fd);
  }
}
