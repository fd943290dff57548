// A two-node lab with the agent installed and a mirror module `web` configured on both nodes,
// plus a client: what the mirror lab test and the failover benchmark share.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCommand } from './command.ts';
import { labExec, labJson, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const repoDir = resolve(import.meta.dirname, '..', '..');
const hakit = '/opt/hakit/hakit';

export interface MirrorTiming {
  pulseMs: number;
  timeoutMs: number;
}

/** What the module `web` differs in from the default (defaultprim alone, failover on, no checker). */
export interface MirrorModuleOptions {
  /** `<service defaultprim>`: alone (the default), a node name, or lastprim. */
  defaultprim?: string;
  /** `<service failover>`: on (the default) or off. */
  failover?: 'on' | 'off';
  /** Extra XML inside `<service>`, e.g. a `<check>` block. */
  serviceXml?: string;
  /** Extra executables in the module's bin/ (name -> shell script body, without the #! line). */
  scripts?: Record<string, string>;
}

export class MirrorLab {
  /** Inside the repository, not /tmp: lab nodes have their own /tmp but see this folder. */
  readonly workDir: string;
  nodes: LabNode[] = [];
  vip = '';

  /** Set before setUp: a witness host `w` runs `hakitd --arbitrator` with this lease. */
  arbitratorLeaseMs: number | null = null;

  constructor(
    readonly lab: string,
    readonly timing: MirrorTiming = { pulseMs: 100, timeoutMs: 1000 },
    /** Changed by `reconfigure`. */
    public moduleOptions: MirrorModuleOptions = {},
  ) {
    this.workDir = resolve(repoDir, 'node_modules', '.cache', `hakit-${lab}`);
  }

  node(name: string): LabNode {
    const found = this.nodes.find((candidate) => candidate.name === name);
    assert.ok(found, `lab node ${name}`);
    return found;
  }

  cli(name: string, args: string) {
    return labExec(this.lab, name, ['sh', '-c', `${hakit} ${args}`]);
  }

  async state(name: string): Promise<string> {
    return (await this.cli(name, 'state -m web')).stdout.trim();
  }

  /** What answers on the VIP, seen from the client node: the serving node's name, or null. */
  async servedBy(): Promise<string | null> {
    const result = await labExec(this.lab, 'c', [
      process.execPath,
      '-e',
      `require('net').connect({host:'${this.vip}',port:8080,timeout:1000}).on('data',d=>{process.stdout.write(d);process.exit(0)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`,
    ]);
    return result.code === 0 ? result.stdout.trim() : null;
  }

  private writeModule(): void {
    const moduleDir = `${this.workDir}/web`;
    const options = this.moduleOptions;
    const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="mirror" defaultprim="${options.defaultprim ?? 'alone'}" failover="${options.failover ?? 'on'}">
  <heart pulse="${this.timing.pulseMs}ms" timeout="${this.timing.timeoutMs}ms"><heartbeat name="default" ident="default"/></heart>
  <vip><interface_list><interface><real_interface><virtual_addr addr="${this.vip}" where="one_side_alias"/></real_interface></interface></interface_list></vip>
  <user nicestoptimeout="5" forcestoptimeout="5"/>${options.serviceXml === undefined ? '' : `\n${options.serviceXml}`}
</service>
</safe>
`;
    mkdirSync(`${moduleDir}/conf`, { recursive: true });
    mkdirSync(`${moduleDir}/bin`, { recursive: true });
    writeFileSync(`${moduleDir}/conf/userconfig.xml`, userconfig);
    // The application: answers each TCP connection on 8080 with the node's name.
    const server = `require('net').createServer(s=>s.end(require('os').hostname()+'\\\\n')).listen(8080)`;
    const scripts: Record<string, string> = {
      start_prim: `[ "$1" = force ] && exit 0\nsetsid /opt/hakit/private/bin/node -e "${server}" </dev/null >/dev/null 2>&1 &\nexit 0`,
      stop_prim: `pkill -f 'listen\\(8080\\)'\nexit 0`,
      ...options.scripts,
    };
    for (const [name, body] of Object.entries(scripts)) {
      writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
      chmodSync(`${moduleDir}/bin/${name}`, 0o755);
    }
  }

  /** Builds the agent package, installs it on n1 and n2, configures cluster and module on both. */
  async setUp(): Promise<void> {
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
        '2',
        '--client',
        ...(this.arbitratorLeaseMs === null ? [] : ['--witness']),
      ])
    ).nodes;
    this.vip = this.node('n1').ip.replace(/\.\d+$/, '.50');
    this.writeModule();
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    try {
      const installed = await runLabCli(
        ['install', '--name', this.lab, 'n1', 'n2', ...(this.arbitratorLeaseMs === null ? [] : ['w'])],
        6 * 60_000,
      );
      assert.equal(installed.code, 0, installed.stderr);
    } finally {
      delete process.env.HAKIT_AGENT_PACKAGE;
    }
    writeFileSync(
      `${this.workDir}/cluster.xml`,
      `<?xml version="1.0"?>\n<cluster>\n<lans>\n<lan name="default">\n<node name="n1" addr="${this.node('n1').ip}"/>\n<node name="n2" addr="${this.node('n2').ip}"/>\n</lan>\n</lans>\n${this.arbitratorLeaseMs === null ? '' : `<arbitrator addr="${this.node('w').ip}" lease="${this.arbitratorLeaseMs}ms"/>\n`}</cluster>\n`,
    );
    // The same cluster configuration and key on both nodes, then the module with the same id.
    assert.equal((await this.cli('n1', 'cluster genkey')).code, 0);
    const key = (await labExec(this.lab, 'n1', ['cat', '/var/hakit/cluster/cluster.key'])).stdout.trim();
    for (const name of ['n1', 'n2']) {
      assert.equal((await this.cli(name, `cluster config ${this.workDir}/cluster.xml`)).code, 0);
      const written = await labExec(this.lab, name, [
        'sh',
        '-c',
        `umask 077; echo ${key} > /var/hakit/cluster/cluster.key`,
      ]);
      assert.equal(written.code, 0);
      assert.equal((await this.cli(name, `module install -M 1 ${this.workDir}/web`)).code, 0);
      const configured = await this.cli(name, 'config -m web');
      assert.equal(configured.code, 0, configured.stderr + configured.stdout);
    }
    if (this.arbitratorLeaseMs !== null) await this.startArbitrator(key);
  }

  /** Starts `hakitd --arbitrator` on `w` with the cluster key, detached, logging to arbitrator.log. */
  private async startArbitrator(key: string): Promise<void> {
    const started = await labExec(this.lab, 'w', [
      'sh',
      '-c',
      `umask 077; mkdir -p /var/hakit/cluster /var/hakit/log && echo ${key} > /var/hakit/cluster/cluster.key && ` +
        `setsid /opt/hakit/private/bin/node /opt/hakit/private/bin/hakitd.cjs --arbitrator --lease ${this.arbitratorLeaseMs}ms ` +
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

  /** New module options on both nodes: stops the module on both, installs and applies it again. */
  async reconfigure(options: MirrorModuleOptions): Promise<void> {
    this.moduleOptions = options;
    this.writeModule();
    for (const name of ['n2', 'n1']) {
      assert.equal((await this.cli(name, 'stop -m web')).code, 0);
      await eventually(
        async () => (await this.state(name)).startsWith('web: STOP'),
        30_000,
        async () => `${name} STOP: ${await this.state(name)}`,
      );
    }
    for (const name of ['n1', 'n2']) {
      const installed = await this.cli(name, `module install -r -M 1 ${this.workDir}/web`);
      assert.equal(installed.code, 0, installed.stderr + installed.stdout);
      const configured = await this.cli(name, 'config -m web');
      assert.equal(configured.code, 0, configured.stderr + configured.stdout);
    }
  }

  async tearDown(): Promise<void> {
    await runLabCli(['down', '--name', this.lab]);
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

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
