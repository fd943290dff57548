// The module log (reference 7.9): levels U (user action), E (event), C (critical), S (script),
// I and D (verbose). One JSON line per message, bounded by size with rotation, so `hakit log`
// can read the last N messages without parsing free text.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LogLevel } from '../core/job.ts';

export interface LogEntry {
  timeMs: number;
  component: string;
  level: LogLevel;
  message: string;
}

export const logLevels: readonly LogLevel[] = ['U', 'E', 'C', 'S', 'I', 'D'];
const verboseLevels: ReadonlySet<LogLevel> = new Set(['I', 'D']);
export const logMessageCharsMax = 4096;

export interface ModuleLogLimits {
  fileBytesMax: number;
  /** Rotated files kept besides the current one. */
  rotatedFilesMax: number;
}

export const moduleLogLimitsDefault: ModuleLogLimits = { fileBytesMax: 4 * 1024 * 1024, rotatedFilesMax: 3 };

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** `| 2026-11-22 10:00:00.123456 | heart | E | Local state UP Ready` (the reference's layout). */
export function formatLogEntry(entry: LogEntry): string {
  const date = new Date(entry.timeMs);
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}000`;
  return `| ${day} ${time} | ${entry.component} | ${entry.level} | ${entry.message}`;
}

export function isVerbose(level: LogLevel): boolean {
  return verboseLevels.has(level);
}

export class ModuleLog {
  constructor(
    private readonly file: string,
    private readonly limits: ModuleLogLimits = moduleLogLimitsDefault,
  ) {
    mkdirSync(dirname(file), { recursive: true });
  }

  append(entry: LogEntry): void {
    const message =
      entry.message.length > logMessageCharsMax
        ? `${entry.message.slice(0, logMessageCharsMax)}…`
        : entry.message;
    const line = `${JSON.stringify({ ...entry, message })}\n`;
    this.rotateIfFull(line.length);
    appendFileSync(this.file, line, { mode: 0o640 });
  }

  private rotateIfFull(incomingBytes: number): void {
    if (!existsSync(this.file) || statSync(this.file).size + incomingBytes <= this.limits.fileBytesMax)
      return;
    rmSync(`${this.file}.${this.limits.rotatedFilesMax}`, { force: true });
    for (let index = this.limits.rotatedFilesMax - 1; index >= 1; index -= 1) {
      if (existsSync(`${this.file}.${index}`))
        renameSync(`${this.file}.${index}`, `${this.file}.${index + 1}`);
    }
    renameSync(this.file, `${this.file}.1`);
  }

  /** The last `count` entries, oldest first; verbose levels only with `includeVerbose`. */
  tail(count: number, includeVerbose: boolean): LogEntry[] {
    const files = [this.file];
    for (let index = 1; index <= this.limits.rotatedFilesMax; index += 1) files.push(`${this.file}.${index}`);
    const collected: LogEntry[] = [];
    for (const file of files) {
      if (collected.length >= count || !existsSync(file)) break;
      const lines = readFileSync(file, 'utf8').split('\n');
      for (let index = lines.length - 1; index >= 0 && collected.length < count; index -= 1) {
        const line = lines[index];
        if (!line) continue;
        try {
          const entry = JSON.parse(line) as LogEntry;
          if (includeVerbose || !isVerbose(entry.level)) collected.push(entry);
        } catch {
          // A line cut by a crash mid-write: skip it, the rest of the log stays readable.
        }
      }
    }
    return collected.reverse();
  }
}
