// Runs one module script: no shell between the configuration and the program, its own process
// group so a timeout kills everything it started in the foreground, one userlog file per run.
import { spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';

export interface ScriptRunRequest {
  script: string;
  args: string[];
  /** The runtime copy of the module's bin/ ($SAFEUSERBIN). */
  binDir: string;
  env: Record<string, string>;
  /** 0 = no limit (start scripts: reference 6.5 gives none). */
  timeoutMs: number;
  /** Directory for userlog files, or null when logging="none". */
  userlogDir: string | null;
  /** Upper bound of all userlog files of the module together (userlogsize). */
  userlogBytesMax: number;
}

export interface ScriptRunResult {
  script: string;
  /** The script does not exist: skipped, as the reference does. */
  missing: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  userlogFile: string | null;
}

const scriptNamePattern = /^[A-Za-z0-9_.-]{1,128}$/;
/** After SIGKILL of the group, how long to wait for the exit before reporting anyway. */
const killGraceMs = 5_000;

function userlogName(script: string, now: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  return `userlog_${date}T${time}_${script}.ulog`;
}

/** Keeps the module's userlog files under their size bound, removing the oldest first. */
export function pruneUserlogs(dir: string, bytesMax: number): number {
  if (!existsSync(dir)) return 0;
  const files = readdirSync(dir)
    .filter((name) => name.startsWith('userlog_') && name.endsWith('.ulog'))
    .map((name) => {
      const path = join(dir, name);
      const stat = statSync(path);
      return { path, bytes: stat.size, mtimeMs: stat.mtimeMs };
    })
    .sort((a, b) => a.mtimeMs - b.mtimeMs || a.path.localeCompare(b.path));
  let totalBytes = files.reduce((sum, file) => sum + file.bytes, 0);
  let removed = 0;
  // The newest file always stays, whatever its size: it is the run being looked at.
  for (const file of files.slice(0, -1)) {
    if (totalBytes <= bytesMax) break;
    rmSync(file.path, { force: true });
    totalBytes -= file.bytes;
    removed += 1;
  }
  return removed;
}

export interface RunningScript {
  result: Promise<ScriptRunResult>;
  /** Kills the script's whole process group (forcestop); the result then reports the signal. */
  kill(): void;
}

export function runScript(request: ScriptRunRequest): Promise<ScriptRunResult> {
  return startScript(request).result;
}

export function startScript(request: ScriptRunRequest): RunningScript {
  const done = (result: ScriptRunResult): RunningScript => ({
    result: Promise.resolve(result),
    kill: () => undefined,
  });
  if (!scriptNamePattern.test(request.script)) throw new Error(`bad script name '${request.script}'`);
  const path = join(request.binDir, request.script);
  const startedMs = Date.now();
  const base: Omit<ScriptRunResult, 'missing' | 'exitCode' | 'signal' | 'timedOut' | 'durationMs'> = {
    script: request.script,
    userlogFile: null,
  };
  if (!existsSync(path)) {
    return done({ ...base, missing: true, exitCode: null, signal: null, timedOut: false, durationMs: 0 });
  }
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return done({ ...base, missing: false, exitCode: 126, signal: null, timedOut: false, durationMs: 0 });
  }
  let logFd: number | 'ignore' = 'ignore';
  let userlogFile: string | null = null;
  if (request.userlogDir !== null) {
    mkdirSync(request.userlogDir, { recursive: true });
    userlogFile = join(request.userlogDir, userlogName(request.script, new Date()));
    logFd = openSync(userlogFile, 'a', 0o640);
  }
  let killGroup: () => void = () => undefined;
  const result = new Promise<ScriptRunResult>((resolve) => {
    const child = spawn(path, request.args, {
      cwd: request.binDir,
      env: request.env,
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
    if (typeof logFd === 'number') closeSync(logFd);
    let timedOut = false;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = (exitCode: number | null, signal: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      if (request.userlogDir !== null) pruneUserlogs(request.userlogDir, request.userlogBytesMax);
      resolve({
        ...base,
        userlogFile,
        missing: false,
        exitCode,
        signal,
        timedOut,
        durationMs: Date.now() - startedMs,
      });
    };
    killGroup = () => {
      if (settled || child.pid === undefined) return;
      try {
        // The negative pid is the whole process group the script leads.
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      graceTimer ??= setTimeout(() => finish(null, 'SIGKILL'), killGraceMs);
    };
    const timer =
      request.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            killGroup();
          }, request.timeoutMs)
        : undefined;
    child.on('error', () => finish(127, null));
    child.on('exit', (code, signal) => finish(code, signal));
  });
  return { result, kill: () => killGroup() };
}
