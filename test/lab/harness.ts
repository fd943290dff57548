// Helpers for tests that drive the lab through its command line, exactly as users do.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Client } from 'ssh2';
import type { LabNode } from './lab.ts';

const repoDir = resolve(import.meta.dirname, '..', '..');
export const labCliFile = resolve(repoDir, 'dist', 'lab', 'hakit-lab.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Why lab tests cannot run here, or undefined when they can. */
export function labSkipReason(): string | undefined {
  if (!isRoot()) return 'lab tests create namespaces and need root';
  if (!existsSync(labCliFile)) return `the lab command is not built (${labCliFile}); run npm run build`;
  return undefined;
}

export function runLabCli(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [labCliFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hakit-lab ${args.join(' ')} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** Runs the lab command and parses its JSON report, failing loudly on a non-zero exit. */
export async function labJson<T>(args: readonly string[]): Promise<T> {
  const result = await runLabCli(args);
  if (result.code !== 0)
    throw new Error(`hakit-lab ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

export async function labExec(lab: string, node: string, command: readonly string[]): Promise<CliResult> {
  return runLabCli(['exec', '--name', lab, node, '--', ...command]);
}

/** How many of `count` pings from `from` to `to` come back. */
export async function pingCount(lab: string, from: string, to: string, count: number): Promise<number> {
  const result = await labExec(lab, from, [
    'ping',
    '-n',
    '-q',
    '-c',
    String(count),
    '-i',
    '0.01',
    '-W',
    '1',
    to,
  ]);
  // No route at all (another lab's subnet) means nothing gets through.
  if (/Network is unreachable/.test(result.stderr)) return 0;
  const received = /(\d+) received/.exec(result.stdout)?.[1];
  if (received === undefined) throw new Error(`ping output not understood: ${result.stdout}${result.stderr}`);
  return Number(received);
}

/** Connects with ssh2, checking the host key against the one the lab reported, and runs a command. */
export function sshRun(
  node: LabNode,
  command: string,
  expectedHostKey = node.hostPublicKey,
): Promise<string> {
  const expectedKey = Buffer.from(expectedHostKey.split(' ')[1] ?? '', 'base64');
  return new Promise((resolvePromise, reject) => {
    const client = new Client();
    client
      .on('ready', () => {
        client.exec(command, (error, stream) => {
          if (error) {
            client.end();
            reject(error);
            return;
          }
          let output = '';
          stream
            .on('close', () => {
              client.end();
              resolvePromise(output);
            })
            .on('data', (chunk: Buffer) => {
              output += chunk.toString();
            });
        });
      })
      .on('error', reject)
      .connect({
        host: node.ssh.host,
        port: node.ssh.port,
        username: node.ssh.user,
        privateKey: readFileSync(node.ssh.keyFile),
        readyTimeout: 10_000,
        hostVerifier: (key: Buffer) => key.equals(expectedKey),
      });
  });
}
