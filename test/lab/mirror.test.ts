// A mirror module on two installed lab nodes, seen from a client: PRIM/SECOND, failover when
// the primary's node drops off the network, the virtual IP answering from the survivor.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCommand } from './command.ts';
import { labExec, labJson, labSkipReason, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const lab = 'tmir';
const skip = labSkipReason();
const repoDir = resolve(import.meta.dirname, '..', '..');
// Inside the repository, not /tmp: lab nodes have their own /tmp but see this folder.
const workDir = resolve(repoDir, 'node_modules', '.cache', 'hakit-mirror-test');
const hakit = '/opt/hakit/hakit';
const moduleDir = `${workDir}/web`;

let nodes: LabNode[] = [];
let vip = '';

function node(name: string): LabNode {
  const found = nodes.find((candidate) => candidate.name === name);
  assert.ok(found, `lab node ${name}`);
  return found;
}

async function cli(name: string, args: string) {
  return labExec(lab, name, ['sh', '-c', `${hakit} ${args}`]);
}

async function state(name: string): Promise<string> {
  return (await cli(name, 'state -m web')).stdout.trim();
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** What answers on the VIP, seen from the client node: the serving node's name, or null. */
async function servedBy(): Promise<string | null> {
  const result = await labExec(lab, 'c', [
    process.execPath,
    '-e',
    `require('net').connect({host:'${vip}',port:8080,timeout:1000}).on('data',d=>{process.stdout.write(d);process.exit(0)}).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))`,
  ]);
  return result.code === 0 ? result.stdout.trim() : null;
}

function writeModule(): void {
  const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="mirror" defaultprim="alone" failover="on">
  <heart pulse="100ms" timeout="1000ms"><heartbeat name="default" ident="default"/></heart>
  <vip><interface_list><interface><real_interface><virtual_addr addr="${vip}" where="one_side_alias"/></real_interface></interface></interface_list></vip>
  <user nicestoptimeout="5" forcestoptimeout="5"/>
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
  };
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
    chmodSync(`${moduleDir}/bin/${name}`, 0o755);
  }
}

describe('mirror module on two lab nodes', { skip, timeout: 600_000 }, () => {
  before(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    const built = await runCommand(
      process.execPath,
      ['--import', 'tsx', 'agent/package/build-package.ts', '--out-dir', workDir],
      { timeoutMs: 5 * 60_000 },
    );
    const packageFile = (JSON.parse(built.stdout) as { file: string }).file;
    nodes = (await labJson<{ nodes: LabNode[] }>(['up', '--name', lab, '--nodes', '2', '--client'])).nodes;
    vip = node('n1').ip.replace(/\.\d+$/, '.50');
    writeModule();
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    try {
      const installed = await runLabCli(['install', '--name', lab, 'n1', 'n2'], 6 * 60_000);
      assert.equal(installed.code, 0, installed.stderr);
    } finally {
      delete process.env.HAKIT_AGENT_PACKAGE;
    }
    writeFileSync(
      `${workDir}/cluster.xml`,
      `<?xml version="1.0"?>\n<cluster>\n<lans>\n<lan name="default">\n<node name="n1" addr="${node('n1').ip}"/>\n<node name="n2" addr="${node('n2').ip}"/>\n</lan>\n</lans>\n</cluster>\n`,
    );
    // The same cluster configuration and key on both nodes, then the module with the same id.
    assert.equal((await cli('n1', 'cluster genkey')).code, 0);
    const key = (await labExec(lab, 'n1', ['cat', '/var/hakit/cluster/cluster.key'])).stdout.trim();
    for (const name of ['n1', 'n2']) {
      assert.equal((await cli(name, `cluster config ${workDir}/cluster.xml`)).code, 0);
      const written = await labExec(lab, name, [
        'sh',
        '-c',
        `umask 077; echo ${key} > /var/hakit/cluster/cluster.key`,
      ]);
      assert.equal(written.code, 0);
      assert.equal((await cli(name, `module install -M 1 ${moduleDir}`)).code, 0);
      const configured = await cli(name, 'config -m web');
      assert.equal(configured.code, 0, configured.stderr + configured.stdout);
    }
  });

  after(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
  });

  test('prim on n1 and second on n2 reach PRIM and SECOND; the VIP answers from n1', async () => {
    assert.equal((await cli('n1', 'prim -m web')).code, 0);
    assert.equal((await cli('n2', 'second -m web')).code, 0);
    await eventually(
      async () => (await state('n1')).startsWith('web: PRIM (Ready)'),
      30_000,
      `n1 PRIM Ready (${await state('n1')})`,
    );
    await eventually(
      async () => (await state('n2')).startsWith('web: SECOND (Ready)'),
      30_000,
      `n2 SECOND Ready (${await state('n2')})`,
    );
    await eventually(async () => (await servedBy()) === 'n1', 15_000, 'the VIP served by n1');
    assert.equal((await cli('n1', 'state -m web -lq')).code, 3);
    assert.equal((await cli('n2', 'state -m web -lq')).code, 4);
  });

  test('the primary node drops off the network: n2 goes ALONE and the VIP answers from n2', async () => {
    const cutMs = Date.now();
    await labJson(['fault', '--name', lab, 'link', 'n1', 'down']);
    await eventually(
      async () => (await state('n2')).startsWith('web: ALONE (Ready)'),
      30_000,
      `n2 ALONE (${await state('n2')})`,
    );
    await eventually(async () => (await servedBy()) === 'n2', 15_000, 'the VIP served by n2');
    const failoverMs = Date.now() - cutMs;
    console.log(`failover: link cut -> VIP answered by n2 in ${failoverMs} ms (heartbeat timeout 1000 ms)`);
    assert.match(
      (await cli('n2', 'log -m web -s 100')).stdout,
      /Action alone called by heart|Local state ALONE/,
    );
  });

  test('n1 back: stopped then started, it comes back as SECOND of n2', async () => {
    assert.equal((await cli('n1', 'stop -m web')).code, 0);
    await eventually(async () => (await state('n1')).startsWith('web: STOP'), 30_000, 'n1 stopped');
    await labJson(['fault', '--name', lab, 'link', 'n1', 'up']);
    assert.equal((await cli('n1', 'start -m web')).code, 0);
    await eventually(
      async () => (await state('n1')).startsWith('web: SECOND (Ready)'),
      30_000,
      `n1 SECOND (${await state('n1')})`,
    );
    await eventually(
      async () => (await state('n2')).startsWith('web: PRIM (Ready)'),
      30_000,
      `n2 PRIM (${await state('n2')})`,
    );
    assert.equal(await servedBy(), 'n2');
  });
});
