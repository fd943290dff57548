// Shared by the replication lab test and benchmarks: a two-node lab with one repctl
// (replication-ctl.ts) per node, a cluster key, the data path's configuration, event waits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { replicationPortOf } from '../../agent/config/ports.ts';
import { type CtlAnswer, CtlClient } from '../../agent/net/ctl-client.ts';
import type { DataPathConfig, DataPathStatus } from '../../agent/replication/data-path.ts';
import { labCliFile, labJson, labSkipReason, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

export const repoDir = resolve(import.meta.dirname, '..', '..');
export const scratchDir = join(repoDir, 'node_modules', '.cache', 'hakit-rep-lab');
export const dataDir = '/srv/data';
export const stateDir = '/srv/rep-state';

export const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Why the replication lab cannot run here (lab prerequisites, then libfuse-dev for the addon). */
export function replicationSkipReason(): string | undefined {
  const lab = labSkipReason();
  if (lab !== undefined) return lab;
  if (!['/usr/include/fuse3/fuse.h', '/usr/include/fuse/fuse.h', '/usr/include/fuse.h'].some(existsSync))
    return 'neither libfuse3-dev nor libfuse-dev is installed (no fuse.h): the FUSE addon cannot be built';
  return undefined;
}

/** Builds the vendored FUSE addon (a no-op when up to date); throws with the build's output. */
export function buildFuseAddon(): void {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(repoDir, 'agent', 'replication', 'fuse', 'build-addon.ts')],
    { cwd: repoDir, encoding: 'utf8', timeout: 300_000 },
  );
  if (result.status !== 0)
    throw new Error(`building the FUSE addon failed (${result.status}): ${result.stdout}${result.stderr}`);
}

export interface StatusAnswer extends CtlAnswer {
  status: DataPathStatus;
}

export interface RepEvent {
  readonly event: string;
  readonly [field: string]: unknown;
}

export class RepLab {
  nodes: LabNode[] = [];
  readonly controls = new Map<string, CtlClient>();
  readonly keyFile: string;

  constructor(
    readonly lab: string,
    readonly overrides: Partial<DataPathConfig> = {},
  ) {
    this.keyFile = join(scratchDir, `${lab}.key`);
  }

  node(name: string): LabNode {
    const found = this.nodes.find((candidate) => candidate.name === name);
    assert.ok(found, `lab node ${name}`);
    return found;
  }

  ctl(name: string): CtlClient {
    const found = this.controls.get(name);
    assert.ok(found, `repctl on ${name}`);
    return found;
  }

  config(nodeName: string): DataPathConfig {
    return {
      moduleName: 'am',
      nodeName,
      stateDir,
      clusterKeyFile: this.keyFile,
      dirs: [{ dir: dataDir, exclusions: [] }],
      port: replicationPortOf(1),
      asyncMode: 'second',
      acl: false,
      locktimeoutMs: 3000,
      sendtimeoutMs: 2000,
      reiallowedbwBytesPerSec: 0,
      // The product's default (userconfig-schema.ts): reintegrations run files in parallel.
      nbrei: 6,
      ...this.overrides,
    };
  }

  async up(): Promise<void> {
    mkdirSync(scratchDir, { recursive: true });
    writeFileSync(this.keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    chmodSync(this.keyFile, 0o600);
    await runLabCli(['down', '--name', this.lab]);
    for (const name of ['n1', 'n2']) rmSync(join(scratchDir, `${this.lab}-${name}.log`), { force: true });
    this.nodes = (await labJson<{ nodes: LabNode[] }>(['up', '--name', this.lab, '--nodes', '2'])).nodes;
    for (const name of ['n1', 'n2']) {
      await this.spawnCtl(name);
      const answer = await this.sh(name, `rm -rf ${dataDir} ${stateDir} && mkdir -p ${dataDir}`);
      assert.equal(answer.code, 0, `preparing ${name}: ${answer.stderr}`);
    }
  }

  async spawnCtl(name: string): Promise<CtlClient> {
    await this.controls.get(name)?.close();
    const control = new CtlClient(name, process.execPath, [
      labCliFile,
      'exec',
      '--name',
      this.lab,
      name,
      '--',
      'env',
      '-C',
      repoDir,
      'sh',
      '-c',
      // The data path's stderr (warnings, crashes) goes to a log per lab and node.
      `exec "$0" --import tsx test/lab/replication-ctl.ts 2>>${join(scratchDir, `${this.lab}-${name}.log`)}`,
      process.execPath,
    ]);
    this.controls.set(name, control);
    await control.waitReady();
    return control;
  }

  async sh(
    name: string,
    cmd: string,
    timeoutMs = 60_000,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.ctl(name).call<CtlAnswer & { code: number; stdout: string; stderr: string }>(
      'sh',
      { cmd, timeoutMs },
      timeoutMs + 5_000,
    );
  }

  async status(name: string): Promise<DataPathStatus> {
    return (await this.ctl(name).call<StatusAnswer>('status')).status;
  }

  /** Starts n2 as secondary and n1 as primary; resolves once n1 reports the secondary up to date. */
  async startPair(fullSync = false, timeoutMs = 60_000): Promise<void> {
    await this.startSecondary();
    const mark = this.mark('n1');
    await this.ctl('n1').call('init', { config: this.config('n1') });
    await this.ctl('n1').call('startPrimary', { peerHost: this.node('n2').ip, fullSync }, 60_000);
    await this.waitEvent('n1', mark, (event) => event.event === 'secondary-up-to-date', timeoutMs);
  }

  async startSecondary(): Promise<void> {
    await this.ctl('n2').call('init', { config: this.config('n2') });
    await this.ctl('n2').call('startSecondary', { listenHost: this.node('n2').ip });
  }

  /** Index of the next event of the node's repctl. */
  mark(name: string): number {
    return this.ctl(name).events.length;
  }

  /** Waits for a data path event after `from` matching `match`. */
  async waitEvent(
    name: string,
    from: number,
    match: (event: RepEvent) => boolean,
    timeoutMs: number,
  ): Promise<RepEvent> {
    const deadline = performance.now() + timeoutMs;
    const control = this.ctl(name);
    for (;;) {
      for (const answer of control.events.slice(from)) {
        const data = answer.data as RepEvent | undefined;
        if (answer.event === 'rep' && data !== undefined && match(data)) return data;
      }
      if (performance.now() > deadline)
        throw new Error(
          `${name}: no matching data path event in ${timeoutMs} ms; events: ${JSON.stringify(control.events.slice(from)).slice(0, 2000)}`,
        );
      await sleep(50);
    }
  }

  async down(): Promise<void> {
    for (const control of this.controls.values()) await control.close(25_000).catch(() => undefined);
    const result = await runLabCli(['down', '--name', this.lab], 120_000);
    if (result.code !== 0)
      throw new Error(`hakit-lab down --name ${this.lab} exited ${result.code}: ${result.stderr}`);
  }
}
