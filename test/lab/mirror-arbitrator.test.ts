// A mirror module with the arbitrator (`hakitd --arbitrator` on the witness host w): the frozen
// primary and the cut heartbeat link, the two shapes where the reference can run two primaries.
// "One primary" is checked where it matters, on the network: the client asks who has the VIP
// (ARP) and counts the distinct MAC addresses that answer, many times a second, all along.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labExec, labJson, labSkipReason } from './harness.ts';
import { eventually, MirrorLab } from './mirror-lab.ts';

const skip = labSkipReason();
const leaseMs = 3000;
const mirror = new MirrorLab('tmarb');
mirror.arbitratorLeaseMs = leaseMs;
const lab = mirror.lab;

/** The MAC addresses that answer an ARP request for the VIP from the client within `waitS`. */
async function vipOwners(waitS = 1): Promise<string[]> {
  const result = await labExec(lab, 'c', [
    'arping',
    '-c',
    '3',
    '-w',
    String(waitS),
    '-I',
    'eth0',
    mirror.vip,
  ]);
  const macs = new Set<string>();
  for (const match of result.stdout.matchAll(/reply from [\d.]+ \[([0-9a-fA-F:]{17})\]/gi)) {
    macs.add((match[1] ?? '').toLowerCase());
  }
  return [...macs];
}

async function macOf(node: string): Promise<string> {
  const result = await labExec(lab, node, ['cat', '/sys/class/net/eth0/address']);
  return result.stdout.trim().toLowerCase();
}

/** Watches the client's ARP view until stopped; records every sample with two or more owners. */
function watchOwners(): { stop: () => Promise<{ samples: number; doubles: string[]; owners: Set<string> }> } {
  let running = true;
  let samples = 0;
  const doubles: string[] = [];
  const owners = new Set<string>();
  const loop = (async () => {
    while (running) {
      const macs = await vipOwners();
      samples += 1;
      for (const mac of macs) owners.add(mac);
      if (macs.length > 1) doubles.push(`${new Date().toISOString()} ${macs.join(' and ')}`);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { samples, doubles, owners };
    },
  };
}

async function arbitratorLog(): Promise<string> {
  return (await labExec(lab, 'w', ['cat', '/var/hakit/log/arbitrator.log'])).stdout;
}

describe('mirror module with the arbitrator', { skip, timeout: 900_000 }, () => {
  before(() => mirror.setUp());
  after(() => mirror.tearDown());

  test('prim/second: the primary holds the lease and the kernel fence lets its VIP through', async () => {
    const prim = await mirror.cli('n1', 'prim -m web');
    assert.equal(prim.code, 0, prim.stdout + prim.stderr);
    await eventually(
      async () => (await mirror.state('n1')).startsWith('web: ALONE (Ready)'),
      30_000,
      () => mirror.state('n1'),
    );
    const second = await mirror.cli('n2', 'second -m web');
    assert.equal(second.code, 0, second.stdout + second.stderr);
    // The arbitrator grants nothing for one lease after it starts (old leases must end).
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
    assert.match(await arbitratorLog(), /module web: lease granted to n1/);
    const fence = await labExec(lab, 'n1', ['nft', 'list', 'set', 'arp', 'hakit_fence_web', 'authority']);
    assert.match(fence.stdout, new RegExp(`${mirror.vip.replaceAll('.', '\\.')} timeout`), fence.stdout);
    assert.deepEqual(await vipOwners(), [await macOf('n1')]);
  });

  test('the primary frozen for 60 s: one VIP owner at every sample; n2 takes over after the lease; n1 demoted on thaw', async () => {
    const n1Mac = await macOf('n1');
    const n2Mac = await macOf('n2');
    const watcher = watchOwners();
    const frozenAtMs = Date.now();
    await labJson(['fault', '--name', lab, 'freeze', 'n1', 'hakitd']);
    const takeover = { ms: Number.NaN };
    try {
      await eventually(
        async () => (await mirror.state('n2')).startsWith('web: ALONE (Ready)'),
        30_000,
        () => mirror.state('n2'),
      );
      await eventually(async () => (await mirror.servedBy()) === 'n2', 15_000, 'the VIP served by n2');
      takeover.ms = Date.now() - frozenAtMs;
      const remainingMs = 60_000 - (Date.now() - frozenAtMs);
      if (remainingMs > 0) await new Promise((done) => setTimeout(done, remainingMs));
    } finally {
      await labJson(['fault', '--name', lab, 'thaw', 'n1', 'hakitd']);
    }
    const thawedAtMs = Date.now();
    await eventually(
      async () => (await mirror.state('n1')).startsWith('web: SECOND (Ready)'),
      30_000,
      () => mirror.state('n1'),
    );
    const rejoinMs = Date.now() - thawedAtMs;
    const { samples, doubles, owners } = await watcher.stop();
    console.log(
      `frozen primary: n2 serving after ${takeover.ms} ms (heartbeat timeout 1000 ms, lease ${leaseMs} ms); ` +
        `n1 SECOND ${rejoinMs} ms after thaw; ${samples} ARP samples, ${doubles.length} with two owners`,
    );
    assert.deepEqual(doubles, [], 'two hosts answered ARP for the VIP at once');
    assert.ok(owners.has(n2Mac) && owners.has(n1Mac), `owners seen: ${[...owners].join(', ')}`);
    assert.ok(samples >= 10, `only ${samples} samples`);
    assert.match(
      (await mirror.cli('n1', 'log -m web -s 200')).stdout,
      /authority expired|Local state (WAIT|SECOND)/,
    );
    assert.equal(await mirror.servedBy(), 'n2');
  });

  test('the heartbeat link between the nodes cut while both reach the arbitrator: one primary', async () => {
    const primaryBefore = (await mirror.state('n2')).startsWith('web: PRIM') ? 'n2' : 'n1';
    const other = primaryBefore === 'n1' ? 'n2' : 'n1';
    const watcher = watchOwners();
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2']);
    try {
      // Each side loses the other; only the lease holder may stay or become primary.
      await eventually(
        async () => (await mirror.state(primaryBefore)).startsWith('web: ALONE (Ready)'),
        30_000,
        () => mirror.state(primaryBefore),
      );
      await new Promise((done) => setTimeout(done, 3 * leaseMs));
      const otherState = await mirror.state(other);
      assert.ok(
        !/web: (ALONE|PRIM)/.test(otherState),
        `${other} is ${otherState} while ${primaryBefore} is ALONE`,
      );
      assert.equal(await mirror.servedBy(), primaryBefore);
    } finally {
      await labJson(['fault', '--name', lab, 'heal', 'n1', 'n2']);
    }
    await eventually(
      async () => (await mirror.state(other)).startsWith('web: SECOND (Ready)'),
      30_000,
      () => mirror.state(other),
    );
    const { samples, doubles } = await watcher.stop();
    console.log(
      `heartbeat cut with the arbitrator: ${samples} ARP samples, ${doubles.length} with two owners`,
    );
    assert.deepEqual(doubles, []);
  });
});
