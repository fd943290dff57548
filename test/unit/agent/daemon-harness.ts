// Runs a real hakitd and the real hakit CLI against a private directory tree (HAKIT_SAFE,
// HAKIT_SAFEVAR, HAKIT_RUN), for tests that need the whole agent but no lab node.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repoDir = resolve(import.meta.dirname, '..', '..', '..');
export const hakitdFile = join(repoDir, 'dist', 'agent', 'hakitd.cjs');
export const hakitFile = join(repoDir, 'dist', 'agent', 'hakit.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class AgentSandbox {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;
  private daemon: ChildProcess | null = null;
  daemonLog = '';

  constructor(prefix: string) {
    this.root = mkdtempSync(join(tmpdir(), `hakit-${prefix}-`));
    this.env = {
      ...process.env,
      HAKIT_SAFE: join(this.root, 'opt'),
      HAKIT_SAFEVAR: join(this.root, 'var'),
      HAKIT_RUN: join(this.root, 'run'),
      SAFEMODULE: '',
    };
  }

  get safeVar(): string {
    return join(this.root, 'var');
  }

  async startDaemon(): Promise<void> {
    const child = spawn(process.execPath, [hakitdFile], {
      env: this.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.daemonLog += chunk.toString();
    });
    this.daemon = child;
    const deadlineMs = Date.now() + 10_000;
    while (Date.now() < deadlineMs) {
      if (this.cli(['ping']).code === 0) return;
      if (child.exitCode !== null) throw new Error(`hakitd exited ${child.exitCode}: ${this.daemonLog}`);
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error(`hakitd did not answer within 10 s: ${this.daemonLog}`);
  }

  daemonPid(): number {
    return Number(readFileSync(join(this.root, 'run', 'hakitd.pid'), 'utf8'));
  }

  /** SIGKILL: the daemon dies as in a crash, without cleaning anything. */
  async killDaemon(): Promise<void> {
    const child = this.daemon;
    if (!child) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
    this.daemon = null;
  }

  async stopDaemon(): Promise<void> {
    const child = this.daemon;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
    this.daemon = null;
  }

  cli(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): CliResult {
    const result = spawnSync(process.execPath, [hakitFile, ...args], {
      env: { ...this.env, ...extraEnv },
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
  }

  /** Writes a module folder: conf/userconfig.xml and executable bin/ scripts. */
  writeModule(name: string, userconfig: string, scripts: Record<string, string>): string {
    const dir = join(this.root, 'src', name);
    mkdirSync(join(dir, 'conf'), { recursive: true });
    mkdirSync(join(dir, 'bin'), { recursive: true });
    writeFileSync(join(dir, 'conf', 'userconfig.xml'), userconfig);
    for (const [script, body] of Object.entries(scripts)) {
      writeFileSync(join(dir, 'bin', script), `#!/bin/bash\n${body}\n`);
      chmodSync(join(dir, 'bin', script), 0o755);
    }
    return dir;
  }

  moduleVar(module: string, file: string): string {
    return join(this.safeVar, 'modules', module, file);
  }

  readIfExists(path: string): string {
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  async cleanup(): Promise<void> {
    await this.stopDaemon();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Polls until `check` is true, failing with `what` after `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}
