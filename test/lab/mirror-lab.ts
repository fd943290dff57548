// A two-node lab with the agent installed (InstalledLab) and a mirror module `web` configured on
// both nodes, plus a client: what the mirror lab tests and the mirror benchmarks share.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { labExec } from './harness.ts';
import { eventually, InstalledLab } from './installed-lab.ts';

export { eventually } from './installed-lab.ts';

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

/**
 * The two installed nodes n1 and n2 (InstalledLab: client, cluster key, optional witness with
 * `arbitratorLeaseMs`) and the module `web` on both.
 */
export class MirrorLab extends InstalledLab {
  vip = '';

  constructor(
    lab: string,
    readonly timing: MirrorTiming = { pulseMs: 100, timeoutMs: 1000 },
    /** Changed by `reconfigure`. */
    public moduleOptions: MirrorModuleOptions = {},
  ) {
    super(lab, ['n1', 'n2'], 6 * 60_000);
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
    // A client that gives up resets its connection: without an error handler that reset would
    // kill the application (the soak's probes through 5 % loss did).
    const server = `require('net').createServer(s=>{s.on('error',()=>{});s.end(require('os').hostname()+'\\\\n')}).listen(8080)`;
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
  override async setUp(): Promise<void> {
    await super.setUp();
    this.vip = this.node('n1').ip.replace(/\.\d+$/, '.50');
    this.writeModule();
    await this.installModule('web', 1);
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
}
