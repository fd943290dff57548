// Shared set-up of the console's lab tests: the agent package built once per file, a lab, and
// console services over a fresh data folder (secrets in the encrypted file, unlocked).
import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCommand } from '../lab/command.ts';
import { labJson, labSkipReason, runLabCli } from '../lab/harness.ts';
import type { LabNode } from '../lab/lab.ts';

export const repoDir = resolve(import.meta.dirname, '..', '..');

/** Why these tests cannot run here, or undefined. */
export function consoleLabSkipReason(): string | undefined {
  return labSkipReason();
}

/** Inside the repository (lab nodes have their own /tmp but see this folder). */
export function workDirFor(name: string): string {
  const dir = resolve(repoDir, 'node_modules', '.cache', `hakit-console-${name}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function buildAgentPackage(outDir: string): Promise<string> {
  const built = await runCommand(
    process.execPath,
    ['--import', 'tsx', 'agent/package/build-package.ts', '--out-dir', outDir],
    {
      timeoutMs: 5 * 60_000,
    },
  );
  return (JSON.parse(built.stdout) as { file: string }).file;
}

export async function labUp(lab: string, nodes: number): Promise<LabNode[]> {
  await runLabCli(['down', '--name', lab]);
  const up = await labJson<{ nodes: LabNode[] }>(['up', '--name', lab, '--nodes', String(nodes)]);
  return up.nodes;
}

export async function labDown(lab: string): Promise<void> {
  await runLabCli(['down', '--name', lab]);
}

export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string | (() => string),
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadlineMs)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** Debian's Chromium for Playwright; launch() gives it a fresh profile of its own each time. */
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];
