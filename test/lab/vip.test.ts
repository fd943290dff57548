// The virtual IP on real lab nodes with a real client `c`: probe before adding (duplicate
// detection names the holder's MAC), gratuitous ARP moving the client's neighbour entry without
// any traffic from it, takeover time measured from the client, tcpreset, the ip checker (VIP
// taken away, conflict), kernel lifetimes, one_side source routing, and IPv6 (DAD, NA).
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CtlAnswer, CtlClient } from '../../agent/net/ctl-client.ts';
import type { AcquireResult, ReleaseResult, VipCheck, VipSpec } from '../../agent/net/vip.ts';
import { labCliFile, labExec, labJson, labSkipReason, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const lab = 'tvip';
const skip = labSkipReason();
const repoDir = resolve(import.meta.dirname, '..', '..');
const servicePort = 7000;
const sourcePort = 7001;

interface UpReport {
  subnet: string;
  subnet6: string;
  nodes: LabNode[];
}

type Answer<T> = CtlAnswer & { result: T; atWallMs: number };

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

function netctl(node: string): CtlClient {
  return new CtlClient(node, process.execPath, [
    labCliFile,
    'exec',
    '--name',
    lab,
    node,
    '--',
    'env',
    '-C',
    repoDir,
    process.execPath,
    '--import',
    'tsx',
    'agent/net/netctl.ts',
  ]);
}

async function macOf(node: string): Promise<string> {
  const { stdout } = await labExec(lab, node, ['ip', '-j', 'link', 'show', 'dev', 'eth0']);
  const [link] = JSON.parse(stdout) as { address: string }[];
  assert.ok(link, `eth0 of ${node}`);
  return link.address.toLowerCase();
}

async function addressesOf(node: string): Promise<string> {
  return (await labExec(lab, node, ['ip', '-br', 'addr', 'show', 'dev', 'eth0'])).stdout;
}

describe('virtual IP in the lab', { skip, timeout: 300_000 }, () => {
  const controls = new Map<string, CtlClient>();
  let vip4 = '';
  let vip6 = '';
  const macs = new Map<string, string>();
  const ctl = (node: string) => {
    const found = controls.get(node);
    assert.ok(found, `netctl on ${node}`);
    return found;
  };
  const mac = (node: string) => macs.get(node) ?? '';
  const spec = (address: string, extra: Partial<VipSpec> = {}): VipSpec => ({
    address,
    where: 'one_side_alias',
    tcpreset: true,
    ...extra,
  });
  const acquire = (node: string, vipSpec: VipSpec, lifetimeSec?: number) =>
    ctl(node).call<Answer<AcquireResult>>('acquire', { spec: vipSpec, lifetimeSec });
  const release = (node: string) => ctl(node).call<Answer<ReleaseResult>>('release');
  const check = async (node: string) => (await ctl(node).call<Answer<VipCheck>>('check')).result;
  const neighbour = (address: string) =>
    ctl('c').call<CtlAnswer & { mac: string | null; state: string[] }>('neigh', { address });

  before(async () => {
    await runLabCli(['down', '--name', lab]);
    const report = await labJson<UpReport>(['up', '--name', lab, '--nodes', '2', '--client']);
    // Host .50 of the lab's subnets: no node, witness or client uses it.
    vip4 = report.subnet.replace(/\.0\/24$/, '.50');
    vip6 = report.subnet6.replace(/::\/64$/, '::50');
    for (const node of ['n1', 'n2', 'c']) {
      const control = netctl(node);
      controls.set(node, control);
      await control.waitReady();
      macs.set(node, await macOf(node));
    }
    await ctl('n1').call('serve', { port: servicePort, reply: 'n1' });
    await ctl('n2').call('serve', { port: servicePort, reply: 'n2' });
    await ctl('c').call('serve', { port: sourcePort, reply: '$peer' });
  });

  after(async () => {
    for (const control of controls.values()) await control.close().catch(() => undefined);
    await runLabCli(['down', '--name', lab]);
  });

  test('n1 adds the VIP after a clean probe, labelled, and the client reaches it', async () => {
    const { result } = await acquire('n1', spec(vip4));
    assert.equal(result.status, 'added');
    assert.ok(result.status === 'added' && result.interfaceName === 'eth0' && result.prefixLength === 24);
    assert.match(
      (await labExec(lab, 'n1', ['ip', 'addr', 'show', 'dev', 'eth0'])).stdout,
      new RegExp(`inet ${vip4.replaceAll('.', '\\.')}/24 .*eth0:hakit`),
    );
    const answer = await ctl('c').call<CtlAnswer & { reply: string }>('connect', {
      address: vip4,
      port: servicePort,
    });
    assert.equal(answer.reply, 'n1');
    assert.equal((await neighbour(vip4)).mac, mac('n1'));
    if (result.status === 'added')
      console.log(
        `VIP ${vip4} added on n1: probe ${result.probeMs.toFixed(0)} ms, total ${result.totalMs.toFixed(0)} ms`,
      );
  });

  test('the probe refuses a VIP another node holds and names its MAC', async () => {
    const { result } = await acquire('n2', spec(vip4));
    assert.equal(result.status, 'conflict');
    assert.ok(result.status === 'conflict');
    assert.deepEqual(result.macs, [mac('n1')]);
    assert.doesNotMatch(await addressesOf('n2'), new RegExp(`${vip4.replaceAll('.', '\\.')}/`));
    assert.deepEqual(await check('n1'), { status: 'ok', detail: `${vip4} on eth0` });
    console.log(`duplicate detected in ${result.probeMs.toFixed(1)} ms (holder ${result.macs.join(', ')})`);
  });

  test('removal resets established connections (tcpreset); the GARP moves the client to n2', async () => {
    const connection = await ctl('c').call<CtlAnswer & { connection: number; reply: string }>('connect', {
      address: vip4,
      port: servicePort,
    });
    assert.equal(connection.reply, 'n1');
    const released = await release('n1');
    assert.deepEqual(released.result.removed, true);
    assert.ok(released.result.connectionsReset >= 1, `${released.result.connectionsReset} reset`);
    await sleep(100);
    const closed = ctl('c').events.find(
      (event) => event.event === 'closed' && event.connection === connection.connection,
    );
    assert.equal(closed?.error, 'ECONNRESET', JSON.stringify(ctl('c').events));
    assert.equal((await neighbour(vip4)).mac, mac('n1'), 'the client still points at n1');

    const { result } = await acquire('n2', spec(vip4));
    assert.equal(result.status, 'added');
    // The client has sent nothing since: only the gratuitous ARP can have changed its entry.
    await sleep(50);
    assert.equal((await neighbour(vip4)).mac, mac('n2'), 'the client learnt n2 from the GARP');
    const answer = await ctl('c').call<CtlAnswer & { reply: string }>('connect', {
      address: vip4,
      port: servicePort,
    });
    assert.equal(answer.reply, 'n2');
  });

  test('takeover: from the VIP removed on n1 to the client reaching n2, measured at the client', async () => {
    const samplesMs: number[] = [];
    let holder = 'n2';
    for (let run = 0; run < 4; run += 1) {
      const next = holder === 'n1' ? 'n2' : 'n1';
      const reached = ctl('c').call<CtlAnswer & { reachedWallMs: number }>('poll', {
        address: vip4,
        port: servicePort,
        want: next,
        intervalMs: 5,
        timeoutMs: 10_000,
      });
      const released = await release(holder);
      const acquired = await acquire(next, spec(vip4));
      assert.equal(acquired.result.status, 'added');
      samplesMs.push((await reached).reachedWallMs - released.atWallMs);
      holder = next;
    }
    const worstMs = Math.max(...samplesMs);
    // Probe (400 ms by default) + add + the first GARP; a client waiting for ARP to expire would take seconds.
    assert.ok(worstMs < 1_500, `takeover ${samplesMs.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    console.log(
      `takeover (release on one node -> client reaches the other): ${samplesMs.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );
    if (holder === 'n1') {
      await release('n1');
      assert.equal((await acquire('n2', spec(vip4))).result.status, 'added');
    }
  });

  test('the ip checker sees the VIP taken away behind its back, and a conflict', async () => {
    assert.equal((await check('n2')).status, 'ok');
    await labExec(lab, 'n2', ['ip', 'addr', 'del', `${vip4}/24`, 'dev', 'eth0']);
    assert.equal((await check('n2')).status, 'missing');
    assert.equal((await acquire('n2', spec(vip4))).result.status, 'added');
    // n1 takes the address without any probe, as a misconfigured host would.
    const added = await labExec(lab, 'n1', ['ip', 'addr', 'add', `${vip4}/24`, 'dev', 'eth0']);
    assert.equal(added.code, 0, added.stderr);
    try {
      const conflict = await check('n2');
      assert.equal(conflict.status, 'conflict');
      assert.ok(conflict.status === 'conflict');
      assert.deepEqual(conflict.macs, [mac('n1')]);
    } finally {
      await labExec(lab, 'n1', ['ip', 'addr', 'del', `${vip4}/24`, 'dev', 'eth0']);
    }
    assert.equal((await check('n2')).status, 'ok');
  });

  test('a VIP with a lifetime disappears unless renewed, and renew never adds it back', async () => {
    await release('n2');
    assert.equal((await acquire('n1', spec(vip4), 2)).result.status, 'added');
    await sleep(1_000);
    assert.equal((await ctl('n1').call<Answer<string>>('renew', { lifetimeSec: 2 })).result, 'renewed');
    await sleep(1_500);
    assert.equal((await check('n1')).status, 'ok', 'renewed: still there after the first lifetime');
    await sleep(1_200);
    assert.equal((await check('n1')).status, 'missing', 'expired');
    assert.equal((await ctl('n1').call<Answer<string>>('renew', { lifetimeSec: 5 })).result, 'missing');
    assert.doesNotMatch(await addressesOf('n1'), new RegExp(`${vip4.replaceAll('.', '\\.')}/`));
  });

  test('one_side: outgoing connections use the VIP as source, and the routes come back on removal', async () => {
    const routesBefore = (await labExec(lab, 'n1', ['ip', '-j', '-4', 'route', 'show', 'table', 'main']))
      .stdout;
    const clientIp = (
      await labExec(lab, 'c', ['ip', '-j', '-4', 'addr', 'show', 'dev', 'eth0'])
    ).stdout.match(/"local":"([\d.]+)"/)?.[1];
    assert.ok(clientIp);
    const sourceSeen = async () =>
      (
        await ctl('n1').call<CtlAnswer & { reply: string }>('connect', {
          address: clientIp,
          port: sourcePort,
        })
      ).reply.replace(/^::ffff:/, '');
    const ownSource = await sourceSeen();
    assert.notEqual(ownSource, vip4);
    assert.equal((await acquire('n1', spec(vip4, { where: 'one_side' }))).result.status, 'added');
    try {
      assert.equal(await sourceSeen(), vip4);
    } finally {
      await release('n1');
    }
    assert.equal(await sourceSeen(), ownSource);
    const routesAfter = (await labExec(lab, 'n1', ['ip', '-j', '-4', 'route', 'show', 'table', 'main']))
      .stdout;
    assert.deepEqual(JSON.parse(routesAfter), JSON.parse(routesBefore));
  });

  test('IPv6: DAD refuses a held VIP; the unsolicited NA moves the client; tcpreset', async () => {
    const first = await acquire('n1', spec(vip6));
    assert.equal(first.result.status, 'added');
    const connection = await ctl('c').call<CtlAnswer & { connection: number; reply: string }>('connect', {
      address: vip6,
      port: servicePort,
    });
    assert.equal(connection.reply, 'n1');
    assert.equal((await neighbour(vip6)).mac, mac('n1'));
    const refused = await acquire('n2', spec(vip6));
    assert.equal(refused.result.status, 'conflict');
    assert.doesNotMatch(await addressesOf('n2'), /::50\//);

    const released = await release('n1');
    assert.ok(released.result.connectionsReset >= 1);
    await sleep(100);
    const closed = ctl('c').events.find(
      (event) => event.event === 'closed' && event.connection === connection.connection,
    );
    assert.equal(closed?.error, 'ECONNRESET');
    const second = await acquire('n2', spec(vip6));
    assert.equal(second.result.status, 'added');
    await sleep(100);
    assert.equal((await neighbour(vip6)).mac, mac('n2'), 'the client learnt n2 from the NA');
    const answer = await ctl('c').call<CtlAnswer & { reply: string }>('connect', {
      address: vip6,
      port: servicePort,
    });
    assert.equal(answer.reply, 'n2');
    await release('n2');
    if (first.result.status === 'added' && refused.result.status === 'conflict')
      console.log(
        `IPv6 VIP: added after DAD in ${first.result.probeMs.toFixed(0)} ms; duplicate refused in ${refused.result.probeMs.toFixed(0)} ms`,
      );
  });
});
