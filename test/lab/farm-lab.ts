// The farm module `farm` of the farm lab test and benchmark on three installed nodes and a client
// (InstalledLab): a small TCP server on every node answering its node name on 8080 (on_port), 8081
// (on_addr) and 8082 (on_port, n3 power 0), behind one VIP in vmac_invisible mode.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { labExec } from './harness.ts';
import { hakitOnNode, InstalledLab } from './installed-lab.ts';

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
    writeFileSync(`${this.workDir}/farm-client.js`, clientScript);
    writeFileSync(`${this.workDir}/farm-poll.js`, pollScript);
    await this.installModules();
  }

  /** The modules of the farm lab test: `farm` (vmac_invisible) and `farmd` (vmac_directed). */
  protected async installModules(): Promise<void> {
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

/** Runs on the client: `count` GETs of the mosaic's tile through the VIP, each on a new connection. */
const tilesScript = `
const http = require('http');
const [vip, countText] = process.argv.slice(2);
const count = Number(countText);
const out = [];
let next = 0;
function one() {
  if (next >= count) return Promise.resolve();
  const index = next++;
  return new Promise((done) => {
    const request = http.get({ host: vip, port: 9010, path: '/hakit/mosaic/tile?round=1&tile=' + index, agent: false, timeout: 3000 }, (response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => { try { out.push(JSON.parse(body)); } catch { out.push(null); } done(); });
    });
    request.on('timeout', () => { request.destroy(); });
    request.on('error', () => { out.push(null); done(); });
  }).then(one);
}
Promise.all(Array.from({ length: 6 }, one)).then(() => process.stdout.write(JSON.stringify(out)));
`;

export interface MosaicTile {
  node: string;
  colour: string;
  clientAddress: string;
  clientPort: number;
}

/**
 * The farm lab with one module `farmctl` (vmac_invisible, VIP .60) whose scripts control the
 * traffic (`<vip scriptcontrol="on">`): start_both starts the application but does not open the
 * traffic, stop_both closes it with the reference's SETGROUPS call, the update script records
 * its arguments and reopens it. Group `web` balances 8080 (on_port, equal powers); group
 * `mosaic` balances the agent's HTTP port 9010 (on_port) with `mosaicPowers`, for the mosaic page.
 */
export class FarmControlLab extends FarmLab {
  mosaicPowers: Record<string, number> = { n1: 1, n2: 1, n3: 1 };

  userconfig(): string {
    const hosts = Object.entries(this.mosaicPowers)
      .map(([node, power]) => `<host name="${node}" power="${power}"/>`)
      .join('');
    return `<!DOCTYPE safe>
<safe>
<service mode="farm" maxloop="100">
  <farm pulse="100ms" mlost_count="20" slost_count="10"><lan name="default"/></farm>
  <vip scriptcontrol="on">
    <interface_list><interface check="off"><virtual_interface type="vmac_invisible">
      <virtual_addr addr="${this.vip}" where="alias" check="off"/>
    </virtual_interface></interface></interface_list>
    <loadbalancing_list>
      <group name="web"><rule port="8080" proto="tcp" filter="on_port"/></group>
      <group name="mosaic"><cluster>${hosts}</cluster><rule port="9010" proto="tcp" filter="on_port"/></group>
    </loadbalancing_list>
  </vip>
  <user nicestoptimeout="5" forcestoptimeout="5"/>
</service>
</safe>
`;
  }

  protected override async installModules(): Promise<void> {
    const moduleDir = `${this.workDir}/farmctl`;
    mkdirSync(`${moduleDir}/conf`, { recursive: true });
    mkdirSync(`${moduleDir}/bin`, { recursive: true });
    writeFileSync(`${moduleDir}/conf/userconfig.xml`, this.userconfig());
    const server = `require('net').createServer(s=>{s.on('error',()=>{});s.end(require('os').hostname()+'\\\\n')}).listen(8080)`;
    const setGroups = (groups: string) => `"$SAFE/safekit" -r saferpc_send vipd SETGROUPS ${groups}`;
    const scripts: Record<string, string> = {
      start_both: `[ "$1" = force ] && exit 0\nsetsid /opt/hakit/private/bin/node -e "${server}" farmctlapp </dev/null >/dev/null 2>&1 &\nexit 0`,
      stop_both: `[ "$1" = force ] && exit 0\n${setGroups('none none none')}\npkill -f 'farmctlapp' || true\nexit 0`,
      update: `echo "update $*" >> "$SAFEUSERVAR/update.log"\n[ "$1" = UP ] && [ "$2" = UP ] && ${setGroups('all all all')}\nexit 0`,
    };
    for (const [name, body] of Object.entries(scripts)) {
      writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
      chmodSync(`${moduleDir}/bin/${name}`, 0o755);
    }
    writeFileSync(`${this.workDir}/farm-tiles.js`, tilesScript);
    await this.installModule('farmctl', 1);
  }

  /** New mosaic powers written to every node's edited module, then `hakit config` while UP. */
  async reconfigure(
    powers: Record<string, number>,
  ): Promise<{ code: number; stdout: string; stderr: string }[]> {
    this.mosaicPowers = powers;
    writeFileSync(`${this.workDir}/farmctl/conf/userconfig.xml`, this.userconfig());
    const results = [];
    for (const name of this.nodeNames) {
      const copied = await labExec(this.lab, name, [
        'sh',
        '-c',
        `cp ${this.workDir}/farmctl/conf/userconfig.xml "$(${hakitOnNode} -p | sed -n 's/^SAFE=//p')/modules/farmctl/conf/userconfig.xml"`,
      ]);
      assert.equal(copied.code, 0, copied.stderr);
      results.push(await this.cli(name, 'config -m farmctl'));
    }
    return results;
  }

  /** `count` mosaic tiles fetched from the client through the VIP (null: no answer). */
  async tiles(count: number): Promise<(MosaicTile | null)[]> {
    const result = await labExec(this.lab, 'c', [
      process.execPath,
      `${this.workDir}/farm-tiles.js`,
      this.vip,
      String(count),
    ]);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as (MosaicTile | null)[];
  }
}
