// N lab nodes with the agent installed, one cluster.xml and key on all of them, plus a client:
// the shared setup of multi-node lab tests (a general form of MirrorLab's setUp), and on top of it
// the farm module `farm` of the farm lab test and benchmark: a small TCP server on every node
// answering its node name on 8080 (on_port), 8081 (on_addr) and 8082 (on_port, n3 power 0),
// behind one VIP in vmac_invisible mode.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
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

  constructor(
    readonly lab: string,
    readonly nodeNames: readonly string[],
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

  /** Builds the agent package, brings the lab up, installs on every node, same cluster.xml and key. */
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
        String(this.nodeNames.length),
        '--client',
      ])
    ).nodes;
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    try {
      const installed = await runLabCli(['install', '--name', this.lab, ...this.nodeNames], 8 * 60_000);
      assert.equal(installed.code, 0, installed.stderr);
    } finally {
      delete process.env.HAKIT_AGENT_PACKAGE;
    }
    const lanNodes = this.nodeNames
      .map((name) => `<node name="${name}" addr="${this.node(name).ip}"/>`)
      .join('\n');
    writeFileSync(
      `${this.workDir}/cluster.xml`,
      `<?xml version="1.0"?>\n<cluster>\n<lans>\n<lan name="default">\n${lanNodes}\n</lan>\n</lans>\n</cluster>\n`,
    );
    const first = this.nodeNames[0] ?? 'n1';
    assert.equal((await this.cli(first, 'cluster genkey')).code, 0);
    const key = (await labExec(this.lab, first, ['cat', '/var/hakit/cluster/cluster.key'])).stdout.trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    for (const name of this.nodeNames) {
      assert.equal((await this.cli(name, `cluster config ${this.workDir}/cluster.xml`)).code, 0);
      const written = await labExec(this.lab, name, [
        'sh',
        '-c',
        `umask 077; echo ${key} > /var/hakit/cluster/cluster.key`,
      ]);
      assert.equal(written.code, 0);
    }
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

export interface FarmConnection {
  /** Client source address and port. */
  address: string;
  port: number;
  /** The node that answered, or null (refused, timed out). */
  servedBy: string | null;
}

/** Runs on the client: connects to vip:port from each (address, port) pair and reads the answer. */
const clientScript = `
const net = require('net');
const [vip, portText, pairsJson, parallelText] = process.argv.slice(2);
const port = Number(portText);
const parallel = Number(parallelText);
const pairs = JSON.parse(pairsJson);
const out = [];
let next = 0;
function one() {
  if (next >= pairs.length) return Promise.resolve();
  const [address, localPort] = pairs[next++];
  return new Promise((done) => {
    let data = '';
    const options = { host: vip, port, timeout: 1500 };
    if (address) options.localAddress = address;
    if (localPort) options.localPort = localPort;
    const socket = net.connect(options);
    const finish = (servedBy) => { out.push([address, socket.localPort || localPort, servedBy]); socket.destroy(); done(); };
    socket.on('data', (chunk) => { data += chunk; });
    socket.on('end', () => finish(data.trim() || null));
    socket.on('timeout', () => finish(null));
    socket.on('error', () => finish(null));
  }).then(one);
}
Promise.all(Array.from({ length: parallel }, one)).then(() => process.stdout.write(JSON.stringify(out)));
`;

/**
 * Runs on the client: every 20 ms, one round of `perRound` connections, each from a client port
 * not used before in this poll (250 ms timeout, so a dropped SYN costs one round, not a
 * retransmission), until every connection of a round is answered by one of the allowed nodes;
 * prints the wall-clock time it first happened. Fresh ports matter: a port whose last connection
 * was closing when its bucket's owner vanished stays bound until its FIN retransmission reaches
 * the new owner, seconds later, which would measure the client, not the farm.
 */
const pollScript = `
const net = require('net');
const [vip, portText, portsJson, perRoundText, allowedJson, timeoutText] = process.argv.slice(2);
const ports = JSON.parse(portsJson);
const perRound = Number(perRoundText);
const allowed = JSON.parse(allowedJson);
const deadline = Date.now() + Number(timeoutText);
let attempts = 0;
let unanswered = 0;
let next = 0;
function one(localPort) {
  return new Promise((done) => {
    let data = '';
    const socket = net.connect({ host: vip, port: Number(portText), localPort, timeout: 250 });
    socket.on('data', (chunk) => { data += chunk; });
    const finish = (servedBy) => { socket.destroy(); done(servedBy); };
    socket.on('end', () => finish(data.trim() || null));
    socket.on('timeout', () => finish(null));
    socket.on('error', () => finish(null));
  });
}
(async () => {
  while (Date.now() < deadline) {
    const round = [];
    for (let index = 0; index < perRound; index += 1) round.push(ports[next++ % ports.length]);
    const served = await Promise.all(round.map(one));
    attempts += 1;
    unanswered += served.filter((who) => who === null).length;
    if (served.every((who) => allowed.includes(who))) {
      process.stdout.write(JSON.stringify({ atWallMs: Date.now(), attempts, unanswered }));
      return;
    }
    await new Promise((done) => setTimeout(done, 20));
  }
  process.stdout.write(JSON.stringify({ atWallMs: null, attempts, unanswered }));
})();
`;

export interface PollResult {
  /** When every probe was first answered by an allowed node, or null on timeout. */
  atWallMs: number | null;
  attempts: number;
  /** Probe connections nobody answered before that. */
  unanswered: number;
}

export class FarmLab extends InstalledLab {
  vip = '';
  /** The VIP of module `farmd` (vmac_directed, on_port on 9080). */
  vipDirected = '';
  /** Next client port handed out by freshPorts. */
  private portCursor = 30_000;

  constructor(lab: string) {
    super(lab, ['n1', 'n2', 'n3']);
  }

  override async setUp(): Promise<void> {
    await super.setUp();
    this.vip = this.node('n1').ip.replace(/\.\d+$/, '.60');
    this.vipDirected = this.node('n1').ip.replace(/\.\d+$/, '.61');
    this.writeModule();
    this.writeDirectedModule();
    await this.installModule('farm', 1);
    await this.installModule('farmd', 2);
  }

  async state(name: string, module = 'farm'): Promise<string> {
    return (await this.cli(name, `state -m ${module}`)).stdout.trim();
  }

  private writeModule(): void {
    const moduleDir = `${this.workDir}/farm`;
    const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="farm" maxloop="100">
  <farm pulse="100ms" mlost_count="20" slost_count="10"><lan name="default"/></farm>
  <vip>
    <interface_list><interface check="off"><virtual_interface type="vmac_invisible">
      <virtual_addr addr="${this.vip}" where="alias" check="off"/>
    </virtual_interface></interface></interface_list>
    <loadbalancing_list>
      <group name="byport"><rule port="8080" proto="tcp" filter="on_port"/></group>
      <group name="byaddr"><rule port="8081" proto="tcp" filter="on_addr"/></group>
      <group name="nothree">
        <cluster><host name="n1" power="1"/><host name="n2" power="1"/><host name="n3" power="0"/></cluster>
        <rule port="8082" proto="tcp" filter="on_port"/>
      </group>
    </loadbalancing_list>
  </vip>
  <user nicestoptimeout="5" forcestoptimeout="5"/>
</service>
</safe>
`;
    mkdirSync(`${moduleDir}/conf`, { recursive: true });
    mkdirSync(`${moduleDir}/bin`, { recursive: true });
    writeFileSync(`${moduleDir}/conf/userconfig.xml`, userconfig);
    // The application: every connection on 8080-8082 gets the node's name.
    const server = `const n=require('net');for(const p of [8080,8081,8082])n.createServer(s=>{s.on('error',()=>{});s.end(require('os').hostname()+'\\\\n')}).listen(p)`;
    const scripts: Record<string, string> = {
      start_both: `[ "$1" = force ] && exit 0\nsetsid /opt/hakit/private/bin/node -e "${server}" farmapp </dev/null >/dev/null 2>&1 &\nexit 0`,
      stop_both: `pkill -f 'farmapp' || true\nexit 0`,
    };
    for (const [name, body] of Object.entries(scripts)) {
      writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
      chmodSync(`${moduleDir}/bin/${name}`, 0o755);
    }
    writeFileSync(`${this.workDir}/farm-client.js`, clientScript);
    writeFileSync(`${this.workDir}/farm-poll.js`, pollScript);
  }

  /** Module `farmd`: the same application on 9080 behind a second VIP in vmac_directed mode. */
  private writeDirectedModule(): void {
    const moduleDir = `${this.workDir}/farmd`;
    const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="farm" maxloop="100">
  <farm pulse="100ms" mlost_count="20" slost_count="10"><lan name="default"/></farm>
  <vip>
    <interface_list><interface check="off"><virtual_interface type="vmac_directed">
      <virtual_addr addr="${this.vipDirected}" where="alias" check="off"/>
    </virtual_interface></interface></interface_list>
    <loadbalancing_list>
      <group name="directed"><rule port="9080" proto="tcp" filter="on_port"/></group>
    </loadbalancing_list>
  </vip>
  <user nicestoptimeout="5" forcestoptimeout="5"/>
</service>
</safe>
`;
    mkdirSync(`${moduleDir}/conf`, { recursive: true });
    mkdirSync(`${moduleDir}/bin`, { recursive: true });
    writeFileSync(`${moduleDir}/conf/userconfig.xml`, userconfig);
    const server = `require('net').createServer(s=>{s.on('error',()=>{});s.end(require('os').hostname()+'\\n')}).listen(9080)`;
    const scripts: Record<string, string> = {
      start_both: `[ "$1" = force ] && exit 0\nsetsid /opt/hakit/private/bin/node -e "${server}" farmdapp </dev/null >/dev/null 2>&1 &\nexit 0`,
      stop_both: `pkill -f 'farmdapp' || true\nexit 0`,
    };
    for (const [name, body] of Object.entries(scripts)) {
      writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
      chmodSync(`${moduleDir}/bin/${name}`, 0o755);
    }
  }

  /** Connections from the client, `parallel` at a time; address '' = the client's own. */
  async connect(
    port: number,
    pairs: readonly (readonly [string, number])[],
    parallel = 20,
    vip = this.vip,
  ): Promise<FarmConnection[]> {
    const result = await labExec(this.lab, 'c', [
      process.execPath,
      `${this.workDir}/farm-client.js`,
      vip,
      String(port),
      JSON.stringify(pairs),
      String(parallel),
    ]);
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as [string, number, string | null][]).map(
      ([address, localPort, servedBy]) => ({
        address,
        port: localPort,
        servedBy,
      }),
    );
  }

  /**
   * Client ports never used before whose bucket `owns(port)` accepts. Probes that straddle a
   * membership change must not reuse a 4-tuple: a server's TIME_WAIT socket for it answers the
   * client's retransmitted FIN with an ACK instead of a RST and the client port stays busy for
   * minutes, which measures the test, not the farm.
   */
  freshPorts(owns: (port: number) => boolean, count: number): number[] {
    const ports: number[] = [];
    while (ports.length < count && this.portCursor < 65_000) {
      const port = this.portCursor;
      this.portCursor += 1;
      if (owns(port)) ports.push(port);
    }
    assert.equal(ports.length, count, 'client ports exhausted');
    return ports;
  }

  /**
   * Polls from the client until a round of connections (4 fresh ports of `owns`) is all served by
   * `allowed` nodes (see pollScript).
   */
  async pollUntilServedBy(
    port: number,
    owns: (port: number) => boolean,
    allowed: readonly string[],
    timeoutMs: number,
    vip = this.vip,
  ): Promise<PollResult> {
    const perRound = 4;
    const probes = this.freshPorts(owns, 240);
    const result = await labExec(this.lab, 'c', [
      process.execPath,
      `${this.workDir}/farm-poll.js`,
      vip,
      String(port),
      JSON.stringify(probes),
      String(perRound),
      JSON.stringify(allowed),
      String(timeoutMs),
    ]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as PollResult;
  }
}
