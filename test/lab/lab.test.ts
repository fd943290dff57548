// The lab itself: real namespaces, bridge, sshd, nftables faults and a clean `down`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import { labCliFile, labExec, labJson, labSkipReason, pingCount, runLabCli, sshRun } from './harness.ts';
import type { LabNode, LabRemoval } from './lab.ts';

const lab = 'tlab';
const otherLab = 'tlab2';
const skip = labSkipReason();

interface UpReport {
  lab: string;
  subnet: string;
  hostIp: string;
  nodes: LabNode[];
}

function nodeOf(report: UpReport, name: string): LabNode {
  const node = report.nodes.find((candidate) => candidate.name === name);
  assert.ok(node, `node ${name} in the up report`);
  return node;
}

async function leftovers(name: string): Promise<string[]> {
  const found: string[] = [];
  const namespaces = (await runLabCliRaw('ip', ['netns', 'list']))
    .split('\n')
    .filter((line) => line.startsWith(`hlab-${name}-`));
  if (namespaces.length > 0) found.push(`namespaces: ${namespaces.join(' ')}`);
  if (
    (await runLabCliRaw('ip', ['-br', 'link']))
      .split('\n')
      .some((line) => line.startsWith(`hl-${name} `) || line.startsWith(`hl-${name}@`))
  ) {
    found.push('host link');
  }
  const loops = (await runLabCliRaw('losetup', ['-l', '-n', '-O', 'BACK-FILE']))
    .split('\n')
    .filter((line) => line.includes(`/hakit-lab/${name}/`));
  if (loops.length > 0) found.push(`loop devices: ${loops.join(' ')}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(`/hakit-lab/${name}/`));
  if (mounts.length > 0) found.push(`mounts: ${mounts.length}`);
  const processes = (await runLabCliRaw('pgrep', ['-a', '-f', `/hakit-lab/${name}/`])).trim();
  if (processes.length > 0) found.push(`processes: ${processes}`);
  if (existsSync(`/var/lib/hakit-lab/${name}`)) found.push('lab directory');
  return found;
}

async function runLabCliRaw(file: string, args: string[]): Promise<string> {
  const { runCommand } = await import('./command.ts');
  return (await runCommand(file, args, { allowFailure: true })).stdout;
}

/** Whether UDP datagrams sent from one node arrive at the other (a Node listener inside `to`). */
async function udpDelivered(report: UpReport, from: string, to: string): Promise<boolean> {
  // The listener says when it is bound, and stops once a datagram arrived or after its deadline,
  // so a slow start on a loaded machine cannot be mistaken for a dropped packet.
  const listener =
    "const s=require('dgram').createSocket('udp4');" +
    "s.on('message',()=>{console.log('got');process.exit(0)});" +
    "s.bind(9999,()=>console.log('ready'));setTimeout(()=>{console.log('none');process.exit(0)},3000)";
  const child = spawn(process.execPath, [
    labCliFile,
    'exec',
    '--name',
    lab,
    to,
    '--',
    process.execPath,
    '-e',
    listener,
  ]);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const ended = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const deadlineMs = Date.now() + 20_000;
  while (!output.includes('ready')) {
    assert.ok(Date.now() < deadlineMs, 'the UDP listener did not start within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // Where the sender's own output is cut, its send fails with EPERM: that is the fault working.
  await labExec(lab, from, [
    'bash',
    '-c',
    `for i in 1 2 3 4 5; do echo x > /dev/udp/${nodeOf(report, to).ip}/9999; sleep 0.1; done`,
  ]);
  await ended;
  return output.includes('got');
}

describe('hakit-lab', { skip, timeout: 240_000 }, () => {
  let report: UpReport;

  before(async () => {
    await runLabCli(['down', '--name', lab]);
    await runLabCli(['down', '--name', otherLab]);
    report = await labJson<UpReport>(['up', '--name', lab, '--nodes', '2', '--witness', '--client']);
  });

  // A failed assertion must not leave its fault behind for the next test.
  afterEach(async () => {
    if (existsSync(`/var/lib/hakit-lab/${lab}/lab.json`)) await labJson(['fault', '--name', lab, 'heal']);
  });

  after(async () => {
    await runLabCli(['down', '--name', lab]);
    await runLabCli(['down', '--name', otherLab]);
  });

  test('up reports every node with address and ssh details as the contract says', () => {
    assert.equal(report.lab, lab);
    assert.match(report.subnet, /^10\.231\.\d+\.0\/24$/);
    assert.deepEqual(
      report.nodes.map((node) => node.name),
      ['n1', 'n2', 'w', 'c'],
    );
    for (const node of report.nodes) {
      assert.match(node.ip, /^10\.231\.\d+\.\d+$/);
      assert.equal(node.ssh.host, node.ip);
      assert.equal(node.ssh.port, 22);
      assert.equal(node.ssh.user, 'root');
      assert.ok(existsSync(node.ssh.keyFile), `key file ${node.ssh.keyFile} exists`);
    }
  });

  test('nodes reach each other by address and by name, and the host reaches them', async () => {
    assert.equal(await pingCount(lab, 'n1', nodeOf(report, 'n2').ip, 3), 3);
    assert.equal(await pingCount(lab, 'n2', 'w', 3), 3);
    assert.equal(await pingCount(lab, 'c', 'n1', 3), 3);
    assert.equal(await pingCount(lab, 'n1', report.hostIp, 1), 1);
  });

  test('nodes have no route out of the lab', async () => {
    const result = await labExec(lab, 'n1', ['ip', 'route', 'get', '198.51.100.7']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /unreachable/i);
  });

  test('ssh with ssh2 reaches every node, host key checked', async () => {
    for (const node of report.nodes) {
      assert.equal((await sshRun(node, 'hostname')).trim(), node.name);
    }
  });

  test('ssh refuses a node whose host key does not match the pinned one', async () => {
    const n1 = nodeOf(report, 'n1');
    const n2 = nodeOf(report, 'n2');
    await assert.rejects(sshRun(n1, 'true', n2.hostPublicKey), /verification failed/i);
  });

  test('exec passes the exit code and output through', async () => {
    const result = await labExec(lab, 'n2', ['sh', '-c', 'hostname; echo oops >&2; exit 7']);
    assert.equal(result.code, 7);
    assert.equal(result.stdout.trim(), 'n2');
    assert.equal(result.stderr.trim(), 'oops');
  });

  test('file systems are private per node', async () => {
    for (const path of ['/srv', '/opt/hakit', '/var/hakit', '/etc/hakit', '/tmp']) {
      const marker = `${path}/isolation-${process.pid}`;
      assert.equal((await labExec(lab, 'n1', ['sh', '-c', `echo n1 > ${marker}`])).code, 0);
      assert.notEqual((await labExec(lab, 'n2', ['test', '-e', marker])).code, 0, `${marker} not on n2`);
      assert.equal(existsSync(marker), false, `${marker} not on the host`);
      assert.equal((await labExec(lab, 'n1', ['cat', marker])).stdout.trim(), 'n1');
    }
  });

  test('PID spaces and hostnames are per node', async () => {
    const started = await labExec(lab, 'n1', [
      'sh',
      '-c',
      'setsid sleep 4242 </dev/null >/dev/null 2>&1 & echo $!',
    ]);
    assert.equal(started.code, 0);
    const ownList = await labExec(lab, 'n1', ['pgrep', '-f', 'sleep 4242']);
    assert.equal(ownList.code, 0, 'n1 sees its process');
    assert.equal((await labExec(lab, 'n2', ['pgrep', '-f', 'sleep 4242'])).code, 1, 'n2 does not');
    const init = await labExec(lab, 'n1', ['cat', '/proc/1/cmdline']);
    assert.match(init.stdout, /node-init\.sh/);
    assert.equal((await labExec(lab, 'w', ['hostname'])).stdout.trim(), 'w');
    await labJson(['fault', '--name', lab, 'kill', 'n1', 'sleep 4242']);
  });

  test('partition cuts both ways and heal A B restores', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 2), 0);
    assert.equal(await pingCount(lab, 'n2', 'n1', 2), 0);
    assert.equal(await pingCount(lab, 'n1', 'w', 2), 2, 'other links stay up');
    await labJson(['fault', '--name', lab, 'heal', 'n1', 'n2']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 2), 2);
  });

  test('a one-way partition drops only one direction', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2', '--oneway']);
    assert.equal(await udpDelivered(report, 'n2', 'n1'), true, 'n2 to n1 still flows');
    assert.equal(await udpDelivered(report, 'n1', 'n2'), false, 'n1 to n2 is cut');
    const status = await labJson<{ faults: { cuts: { from: string; to: string }[] } }>([
      'status',
      '--name',
      lab,
    ]);
    assert.deepEqual(status.faults.cuts, [{ from: 'n1', to: 'n2' }]);
    await labJson(['fault', '--name', lab, 'heal']);
    assert.equal(await udpDelivered(report, 'n1', 'n2'), true);
  });

  test('partition from the host cuts the console off a node', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n2', 'host']);
    assert.equal(await pingCount(lab, 'n2', report.hostIp, 1), 0);
    assert.equal(await pingCount(lab, 'n2', 'n1', 1), 1);
    await labJson(['fault', '--name', lab, 'heal', 'n2', 'host']);
    assert.equal(await pingCount(lab, 'n2', report.hostIp, 1), 1);
  });

  test('loss drops packets and loss 0 lifts it', async () => {
    await labJson(['fault', '--name', lab, 'loss', 'n1', '100']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 5), 0);
    await labJson(['fault', '--name', lab, 'loss', 'n1', '30']);
    const received = await pingCount(lab, 'n1', 'n2', 200);
    // 30 % each way: about 49 % of round trips come back; far from 0 and from 200.
    assert.ok(received > 40 && received < 160, `received ${received} of 200 at 30 % loss`);
    await labJson(['fault', '--name', lab, 'loss', 'n1', '0']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 20), 20);
  });

  test('link down unplugs the node and link up replugs it', async () => {
    await labJson(['fault', '--name', lab, 'link', 'n2', 'down']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 1), 0);
    const carrier = await labExec(lab, 'n2', ['cat', '/sys/class/net/eth0/carrier']);
    assert.equal(carrier.stdout.trim(), '0', 'n2 sees its carrier lost');
    await labJson(['fault', '--name', lab, 'link', 'n2', 'up']);
    assert.equal(await pingCount(lab, 'n1', 'n2', 3), 3);
  });

  test('freeze stops matching processes, thaw resumes them, kill ends them', async () => {
    await labExec(lab, 'n1', ['sh', '-c', 'setsid sleep 5151 </dev/null >/dev/null 2>&1 &']);
    const frozen = await labJson<{ pids: number[] }>(['fault', '--name', lab, 'freeze', 'n1', 'sleep 5151']);
    assert.equal(frozen.pids.length, 1);
    const stateOf = async () =>
      (await labExec(lab, 'n1', ['ps', '-o', 'stat=', '-p', String(frozen.pids[0])])).stdout.trim();
    assert.match(await stateOf(), /^T/);
    await labJson(['fault', '--name', lab, 'thaw', 'n1', 'sleep 5151']);
    assert.match(await stateOf(), /^S/);
    await labJson(['fault', '--name', lab, 'freeze', 'n1', 'sleep 5151']);
    const healed = await labJson<{ thawed: number }>(['fault', '--name', lab, 'heal']);
    assert.ok(healed.thawed >= 1, 'heal thaws frozen processes');
    assert.match(await stateOf(), /^S/);
    const killed = await labJson<{ signal: string }>([
      'fault',
      '--name',
      lab,
      'kill',
      'n1',
      'sleep 5151',
      '--signal',
      'TERM',
    ]);
    assert.equal(killed.signal, 'TERM');
    assert.equal((await labExec(lab, 'n1', ['pgrep', '-f', 'sleep 5151'])).code, 1);
    const none = await runLabCli(['fault', '--name', lab, 'kill', 'n1', 'sleep 5151']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no process on n1 matches/);
  });

  test('disk-full fills the node disk holding the path, disk-free empties it', async () => {
    const write = () =>
      labExec(lab, 'n2', ['dd', 'if=/dev/zero', 'of=/srv/disk-test', 'bs=64k', 'count=4', 'conv=fsync']);
    await labJson(['fault', '--name', lab, 'disk-full', 'n2', '/srv']);
    const failed = await write();
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /No space left on device/);
    assert.equal(
      (await labExec(lab, 'n2', ['sh', '-c', 'echo ok > /var/hakit/still-writable'])).code,
      0,
      'only the /srv disk is full',
    );
    assert.equal(
      (await labExec(lab, 'n1', ['dd', 'if=/dev/zero', 'of=/srv/disk-test', 'bs=64k', 'count=4'])).code,
      0,
      'n1 is not full',
    );
    await labJson(['fault', '--name', lab, 'disk-free', 'n2', '/srv']);
    assert.equal((await write()).code, 0);
    const refused = await runLabCli(['fault', '--name', lab, 'disk-full', 'n2', '/usr']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not on the node's own disks/);
  });

  test('heal with no arguments undoes every kind of fault', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'w']);
    await labJson(['fault', '--name', lab, 'loss', 'c', '100']);
    await labJson(['fault', '--name', lab, 'link', 'n2', 'down']);
    await labJson(['fault', '--name', lab, 'disk-full', 'n1', '/var/hakit']);
    await labJson(['fault', '--name', lab, 'heal']);
    assert.equal(await pingCount(lab, 'n1', 'w', 1), 1);
    assert.equal(await pingCount(lab, 'c', 'n1', 1), 1);
    assert.equal(await pingCount(lab, 'n1', 'n2', 3), 3);
    assert.equal(
      (await labExec(lab, 'n1', ['sh', '-c', 'head -c 100000 /dev/zero > /var/hakit/after-heal'])).code,
      0,
    );
    const status = await labJson<{ faults: Record<string, unknown> }>(['status', '--name', lab]);
    assert.deepEqual(status.faults, { cuts: [], lossPercent: {}, linksDown: [], disksFull: [] });
  });

  test('bad input gets a clear error and a non-zero exit', async () => {
    const cases: [string[], RegExp][] = [
      [['up', '--name', 'Bad_Name', '--nodes', '2'], /bad lab name 'Bad_Name'/],
      [['up', '--name', lab, '--nodes', '2'], /already up/],
      [['up', '--name', 'tlab3', '--nodes', '0'], /--nodes must be a whole number from 1 to 32/],
      [['exec', '--name', lab, 'n9', '--', 'true'], /has no node 'n9'/],
      [['exec', '--name', lab, 'n1'], /give the command after --/],
      [['fault', '--name', lab, 'loss', 'n1', 'lots'], /PERCENT must be a whole number/],
      [['fault', '--name', lab, 'link', 'n1', 'sideways'], /say 'up' or 'down'/],
      [['fault', '--name', lab, 'explode', 'n1'], /unknown fault 'explode'/],
      [['status', '--name', 'nosuch'], /lab 'nosuch' is not up/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const result = await runLabCli(args);
      assert.notEqual(result.code, 0, `hakit-lab ${args.join(' ')} fails`);
      assert.match(result.stderr, message, `hakit-lab ${args.join(' ')}`);
    }
  });

  test('two labs with different names coexist', async () => {
    const other = await labJson<UpReport>(['up', '--name', otherLab, '--nodes', '1']);
    assert.notEqual(other.subnet, report.subnet);
    assert.equal(await pingCount(otherLab, 'n1', report.hostIp, 1), 0, 'labs do not see each other');
    assert.equal((await sshRun(nodeOf(other, 'n1'), 'hostname')).trim(), 'n1');
    await labJson(['down', '--name', otherLab]);
    assert.equal(await pingCount(lab, 'n1', 'n2', 1), 1, 'the first lab is untouched');
  });

  test('down removes everything, also after a crash lost the state file, and is idempotent', async () => {
    const crashed = 'tlab3';
    await labJson<UpReport>(['up', '--name', crashed, '--nodes', '2']);
    await runLabCli([
      'exec',
      '--name',
      crashed,
      'n1',
      '--',
      'sh',
      '-c',
      'setsid sleep 777 </dev/null >/dev/null 2>&1 &',
    ]);
    rmSync(`/var/lib/hakit-lab/${crashed}/lab.json`);
    const removal = await labJson<LabRemoval>(['down', '--name', crashed]);
    assert.equal(removal.namespaces.length, 3);
    assert.ok(removal.processesKilled >= 5, `killed ${removal.processesKilled} processes`);
    assert.deepEqual(await leftovers(crashed), []);
    const again = await labJson<LabRemoval>(['down', '--name', crashed]);
    assert.deepEqual(again.namespaces, []);

    await labJson(['down', '--name', lab]);
    assert.deepEqual(await leftovers(lab), []);
  });
});
