// Runs one external program (ip, nft, nsenter, ssh-keygen...) with a bounded time and
// turns a failure into an error that names the command and what it printed.
import { spawn } from 'node:child_process';

export class LabError extends Error {
  override name = 'LabError';
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  input?: string;
  timeoutMs?: number;
  /** When true a non-zero exit is returned instead of thrown. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

const outputBytesMax = 16 * 1024 * 1024;
const timeoutMsDefault = 30_000;

export function runCommand(
  file: string,
  args: readonly string[],
  options: CommandOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? timeoutMsDefault;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let outputBytes = 0;
    const commandLine = [file, ...args].join(' ');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new LabError(`command timed out after ${timeoutMs} ms: ${commandLine}`));
    }, timeoutMs);
    const collect = (chunk: Buffer, into: 'out' | 'err') => {
      outputBytes += chunk.length;
      if (outputBytes > outputBytesMax) {
        child.kill('SIGKILL');
        return;
      }
      if (into === 'out') stdout += chunk.toString('utf8');
      else stderr += chunk.toString('utf8');
    };
    child.stdout.on('data', (chunk: Buffer) => collect(chunk, 'out'));
    child.stderr.on('data', (chunk: Buffer) => collect(chunk, 'err'));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new LabError(`cannot run ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const exitCode = code ?? 128;
      if (exitCode !== 0 && !options.allowFailure) {
        const why = signal ? `killed by ${signal}` : `exit ${exitCode}`;
        const detail = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join('\n');
        reject(new LabError(`${commandLine}: ${why}${detail ? `\n${detail}` : ''}`));
        return;
      }
      resolve({ code: exitCode, stdout, stderr });
    });
    child.stdin.on('error', () => {
      // The program may exit before reading its input; its exit status reports the problem.
    });
    child.stdin.end(options.input ?? '');
  });
}
