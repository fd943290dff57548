// Runs the network tools (ip, arping, ndptool, ss, sysctl) without a shell, bounded in time and
// output. A failure names the command line, the exit status and stderr, so a log line alone says
// what went wrong and where. The runner is injectable so the modules above it can be unit-tested.
import { execFile } from 'node:child_process';

export const commandOutputBytesMax = 1024 * 1024;
export const commandTimeoutMsDefault = 5_000;

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

export interface CommandOptions {
  readonly timeoutMs?: number;
  /** Exit codes that are results rather than failures (arping -D exits 1 on a duplicate). */
  readonly okCodes?: readonly number[];
  /** Called with each stdout chunk as it arrives (to stop waiting early). */
  readonly onStdout?: (chunk: string) => void;
  /** Aborting kills the command; the promise then resolves with what it printed (code -1). */
  readonly signal?: AbortSignal;
}

export type CommandRunner = (
  file: string,
  args: readonly string[],
  options?: CommandOptions,
) => Promise<CommandResult>;

export class NetCommandError extends Error {
  override name = 'NetCommandError';
  constructor(
    readonly commandLine: string,
    readonly code: number | string,
    readonly stderr: string,
    message: string,
  ) {
    super(message);
  }
}

export function commandLine(file: string, args: readonly string[]): string {
  return [file, ...args]
    .map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part)))
    .join(' ');
}

function firstLines(text: string, linesMax = 5): string {
  return text.trim().split('\n').slice(0, linesMax).join(' | ');
}

/** The real runner: execFile, never a shell. */
export const runCommand: CommandRunner = (file, args, options = {}) => {
  const timeoutMs = options.timeoutMs ?? commandTimeoutMsDefault;
  const okCodes = options.okCodes ?? [0];
  const line = commandLine(file, args);
  const startedMs = performance.now();
  return new Promise((resolve, reject) => {
    let aborted = false;
    const child = execFile(
      file,
      [...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: commandOutputBytesMax, encoding: 'utf8' },
      (error, stdout, stderr) => {
        options.signal?.removeEventListener('abort', onAbort);
        const elapsedMs = performance.now() - startedMs;
        if (aborted) {
          resolve({ code: -1, stdout, stderr, elapsedMs });
          return;
        }
        if (error === null) {
          resolve({ code: 0, stdout, stderr, elapsedMs });
          return;
        }
        const failure = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (typeof failure.code === 'number' && okCodes.includes(failure.code)) {
          resolve({ code: failure.code, stdout, stderr, elapsedMs });
          return;
        }
        let why: string;
        if (failure.code === 'ENOENT') why = `${file} is not installed (not found in PATH)`;
        else if (failure.killed === true) why = `timed out after ${timeoutMs} ms`;
        else if (failure.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
          why = `printed more than ${commandOutputBytesMax} bytes`;
        else if (typeof failure.code === 'number') why = `exited ${failure.code}`;
        else why = failure.message;
        const detail = firstLines(stderr) || firstLines(stdout);
        reject(
          new NetCommandError(
            line,
            failure.code ?? 'unknown',
            stderr,
            `${line}: ${why}${detail === '' ? '' : `: ${detail}`}`,
          ),
        );
      },
    );
    const onAbort = () => {
      aborted = true;
      child.kill('SIGKILL');
    };
    if (options.signal?.aborted === true) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.onStdout !== undefined) {
      const onStdout = options.onStdout;
      child.stdout?.on('data', (chunk: string | Buffer) => onStdout(chunk.toString()));
    }
  });
};
