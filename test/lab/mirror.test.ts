// A mirror module on two installed lab nodes, seen from a client: PRIM/SECOND, failover when
// the primary's node drops off the network, the virtual IP answering from the survivor.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labJson, labSkipReason } from './harness.ts';
import { eventually, MirrorLab } from './mirror-lab.ts';

const skip = labSkipReason();
const mirror = new MirrorLab('tmir');
const lab = mirror.lab;

describe('mirror module on two lab nodes', { skip, timeout: 600_000 }, () => {
  before(() => mirror.setUp());
  after(() => mirror.tearDown());

  test('prim on n1 and second on n2 reach PRIM and SECOND; the VIP answers from n1', async () => {
    assert.equal((await mirror.cli('n1', 'prim -m web')).code, 0);
    assert.equal((await mirror.cli('n2', 'second -m web')).code, 0);
    await eventually(
      async () => (await mirror.state('n1')).startsWith('web: PRIM (Ready)'),
      30_000,
      () => mirror.state('n1'),
    );
    await eventually(
      async () => (await mirror.state('n2')).startsWith('web: SECOND (Ready)'),
      30_000,
      () => mirror.state('n2'),
    );
    await eventually(async () => (await mirror.servedBy()) === 'n1', 15_000, 'the VIP served by n1');
    assert.equal((await mirror.cli('n1', 'state -m web -lq')).code, 3);
    assert.equal((await mirror.cli('n2', 'state -m web -lq')).code, 4);
  });

  test('the primary node drops off the network: n2 goes ALONE and the VIP answers from n2', async () => {
    const cutMs = Date.now();
    await labJson(['fault', '--name', lab, 'link', 'n1', 'down']);
    await eventually(
      async () => (await mirror.state('n2')).startsWith('web: ALONE (Ready)'),
      30_000,
      () => mirror.state('n2'),
    );
    await eventually(async () => (await mirror.servedBy()) === 'n2', 15_000, 'the VIP served by n2');
    console.log(
      `failover: link cut -> VIP answered by n2 in ${Date.now() - cutMs} ms (heartbeat timeout 1000 ms)`,
    );
    assert.match((await mirror.cli('n2', 'log -m web -s 100')).stdout, /Local state ALONE/);
  });

  test('n1 back: stopped then started, it comes back as SECOND of n2', async () => {
    assert.equal((await mirror.cli('n1', 'stop -m web')).code, 0);
    await eventually(
      async () => (await mirror.state('n1')).startsWith('web: STOP'),
      30_000,
      () => mirror.state('n1'),
    );
    await labJson(['fault', '--name', lab, 'link', 'n1', 'up']);
    assert.equal((await mirror.cli('n1', 'start -m web')).code, 0);
    await eventually(
      async () => (await mirror.state('n1')).startsWith('web: SECOND (Ready)'),
      30_000,
      () => mirror.state('n1'),
    );
    await eventually(
      async () => (await mirror.state('n2')).startsWith('web: PRIM (Ready)'),
      30_000,
      () => mirror.state('n2'),
    );
    assert.equal(await mirror.servedBy(), 'n2');
  });
});
