// N lab nodes with the agent installed, one cluster.xml and key on all of them, plus a client and,
// on request, a witness host running the arbitrator: the shared setup of the multi-node lab tests
// (MirrorLab, FarmLab and their users build their modules on top of it).
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCommand } from './command.ts';
import { labExec, labJson, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const repoDir = resolve(import.meta.dirname, '..', '..');
export const hakitOnNode = '/opt/hakit/hakit';

export class InstalledLab {
  /** Inside the repository, not /tmp: lab nodes have their own /tmp but see this folder. */
  readonly workDir: string;
  nodes: LabNode[] = [];
  /**
   * Set before setUp: a witness host `w` gets the agent and the cluster key, runs
   * `hakitd --arbitrator` with this lease, and cluster.xml names it as the arbitrator.
   */
  arbitratorLeaseMs: number | null = null;
  /** The cluster key on every node (and the witness), known after setUp. */
  clusterKey = '';

  constructor(
    readonly lab: string,
    readonly nodeNames: readonly string[],
    /** Bound on `hakit-lab install` of every node at once. */
    readonly installTimeoutMs = 8 * 60_000,
  ) {
    this.workDir = resolve(repoDir, 'node_modules', '.cache', `hakit-${lab}`);
  }

  node(name: string): LabNode {
    const found = this.nodes.find((candidate) => candidate.name === name);
    assert.ok(found, `lab node ${name}`);
    return found;
  }

  cli(name: string, args: string) {
    return labExec(this.lab, name, ['sh', '-c', `${hakitOnNode} ${args}`]);
  }

  /**
   * Builds the agent package, brings the lab up, installs on every node (and the witness), same
   * cluster.xml and key everywhere, then starts the arbitrator if asked.
   */
  async setUp(): Promise<void> {
    const witness = this.arbitratorLeaseMs !== null;
    await runLabCli(['down', '--name', this.lab]);
    rmSync(this.workDir, { recursive: true, force: true });
    mkdirSync(this.workDir, { recursive: true });
    const built = await runCommand(
      process.execPath,
      ['--import', 'tsx', 'agent/package/build-package.ts', '--out-dir', this.workDir],
      { timeoutMs: 5 * 60_000 },
    );
    const packageFile = (JSON.parse(built.stdout) as { file: string }).file;
    this.nodes = (
      await labJson<{ nodes: LabNode[] }>([
        'up',
        '--name',
        this.lab,
        '--nodes',
        String(this.nodeNames.length),
        '--client',
        ...(witness ? ['--witness'] : []),
      ])
    ).nodes;
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    try {
      const installed = await runLabCli(
        ['install', '--name', this.lab, ...this.nodeNames, ...(witness ? ['w'] : [])],
        this.installTimeoutMs,
      );
      assert.equal(installed.code, 0, installed.stderr);
    } finally {
      delete process.env.HAKIT_AGENT_PACKAGE;
    }
    const lanNodes = this.nodeNames
      .map((name) => `<node name="${name}" addr="${this.node(name).ip}"/>`)
      .join('\n');
    const arbitrator =
      this.arbitratorLeaseMs === null
        ? ''
        : `<arbitrator addr="${this.node('w').ip}" lease="${this.arbitratorLeaseMs}ms"/>\n`;
    writeFileSync(
      `${this.workDir}/cluster.xml`,
      `<?xml version="1.0"?>\n<cluster>\n<lans>\n<lan name="default">\n${lanNodes}\n</lan>\n</lans>\n${arbitrator}</cluster>\n`,
    );
    const first = this.nodeNames[0] ?? 'n1';
    assert.equal((await this.cli(first, 'cluster genkey')).code, 0);
    const key = (await labExec(this.lab, first, ['cat', '/var/hakit/cluster/cluster.key'])).stdout.trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    this.clusterKey = key;
    for (const name of this.nodeNames) {
      assert.equal((await this.cli(name, `cluster config ${this.workDir}/cluster.xml`)).code, 0);
      const written = await labExec(this.lab, name, [
        'sh',
        '-c',
        `umask 077; echo ${key} > /var/hakit/cluster/cluster.key`,
      ]);
      assert.equal(written.code, 0);
    }
    if (this.arbitratorLeaseMs !== null) await this.startArbitrator(this.arbitratorLeaseMs);
  }

  /** Starts `hakitd --arbitrator` on `w` with the cluster key, detached, logging to arbitrator.log. */
  private async startArbitrator(leaseMs: number): Promise<void> {
    const started = await labExec(this.lab, 'w', [
      'sh',
      '-c',
      `umask 077; mkdir -p /var/hakit/cluster /var/hakit/log && echo ${this.clusterKey} > /var/hakit/cluster/cluster.key && ` +
        `setsid /opt/hakit/private/bin/node /opt/hakit/private/bin/hakitd.cjs --arbitrator --lease ${leaseMs}ms ` +
        '</dev/null >>/var/hakit/log/arbitrator.log 2>&1 &',
    ]);
    assert.equal(started.code, 0, started.stderr);
    await eventually(
      async () =>
        (await labExec(this.lab, 'w', ['cat', '/var/hakit/log/arbitrator.log'])).stdout.includes(
          'arbitrator for',
        ),
      10_000,
      async () =>
        `the arbitrator on w: ${(await labExec(this.lab, 'w', ['cat', '/var/hakit/log/arbitrator.log'])).stdout}`,
    );
  }

  /** Installs and configures a module folder of workDir on every node with the same id. */
  async installModule(module: string, id: number): Promise<void> {
    for (const name of this.nodeNames) {
      const installed = await this.cli(name, `module install -M ${id} ${this.workDir}/${module}`);
      assert.equal(installed.code, 0, installed.stderr + installed.stdout);
      const configured = await this.cli(name, `config -m ${module}`);
      assert.equal(configured.code, 0, configured.stderr + configured.stdout);
    }
  }

  async tearDown(): Promise<void> {
    await runLabCli(['down', '--name', this.lab]);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Polls `check` every 50 ms until it holds; fails after `timeoutMs` saying what it waited for. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string | (() => Promise<string> | string),
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadlineMs) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : await what()}`,
      );
    }
    await new Promise((done) => setTimeout(done, 50));
  }
}
