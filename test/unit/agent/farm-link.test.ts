// The farm daemon side without a lab: three FarmLinks on loopback addresses exchanging real
// authenticated UDP packets agree on a view; a stopped link drops out within the membership
// timeout; a foreign key is refused. And the farm driver opens traffic before start_both and
// closes it after stop_both.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { FarmDriver } from '../../../agent/daemon/automaton-driver.ts';
import { FarmModuleDriver, type FarmTrafficAction } from '../../../agent/daemon/farm-driver.ts';
import { decodeFarmAdvert, encodeFarmAdvert, FarmLink } from '../../../agent/daemon/farm-link.ts';
import type { FarmRuntime } from '../../../agent/daemon/farm-runtime.ts';
import type { FarmView } from '../../../agent/core/farm-membership.ts';
import type { CoreAction } from '../../../agent/core/job.ts';

const nodes = ['n1', 'n2', 'n3'];
const addressOf = (node: string) => `127.0.0.${10 + nodes.indexOf(node)}`;

function runtimeOf(node: string, key: Buffer, port: number): FarmRuntime {
  return {
    localNode: node,
    peers: nodes.filter((name) => name !== node),
    clusterId: 'hakit-test',
    key,
    lans: [
      {
        ident: 'default',
        localAddress: addressOf(node),
        peers: nodes
          .filter((name) => name !== node)
          .map((name) => ({ node: name, address: addressOf(name) })),
        port,
      },
    ],
    pulseMs: 50,
    mlostCount: 20,
    slostCount: 10,
    groups: [],
    vips: [],
    virtualMac: null,
    directed: false,
    scriptControl: false,
  };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const startMs = performance.now();
  while (!check()) {
    if (performance.now() - startMs > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 10));
  }
  return performance.now() - startMs;
}

describe('farm link over real UDP on loopback', () => {
  test('three nodes agree; one stops and is dropped; a foreign key is never accepted', async () => {
    const key = randomBytes(32);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const views = new Map<string, FarmView>();
    const links = nodes.map((node) => {
      // n3 has another cluster's key: its packets must be dropped (badMac) and it sees no one.
      const link = new FarmLink(runtimeOf(node, node === 'n3' ? randomBytes(32) : key, port), 'web', {
        moduleState: () => ({ state: 'UP', readiness: 'Ready' }),
        onView: (view) => views.set(node, view),
        onLanResource: () => undefined,
        onError: (error) => assert.fail(error.message),
      });
      return link;
    });
    try {
      for (const link of links) await link.start();
      for (const link of links) link.setOpen(true);
      const agreeMs = await until(
        () => ['n1', 'n2'].every((node) => views.get(node)?.members.join(' ') === 'n1 n2'),
        3000,
        'n1 and n2 to agree',
      );
      assert.deepEqual(views.get('n3')?.members, ['n3']);
      assert.ok((links[0]?.counters.dropped.badMac ?? 0) > 0, 'packets of the foreign key are dropped');
      const stopMs = performance.now();
      await links[1]?.stop();
      await until(() => views.get('n1')?.members.join(' ') === 'n1', 5000, 'n1 alone');
      const lostMs = performance.now() - stopMs;
      console.log(
        `farm link: agreed in ${agreeMs.toFixed(0)} ms; stopped peer dropped in ${lostMs.toFixed(0)} ms (slost 10 x 50 ms)`,
      );
      assert.ok(lostMs >= 400, `dropped too early: ${lostMs} ms`);
    } finally {
      for (const link of links) await link.stop();
    }
  });

  test('adverts round-trip; garbage is refused', () => {
    assert.deepEqual(decodeFarmAdvert(encodeFarmAdvert({ open: true, candidate: ['a', 'b'] })), {
      open: true,
      candidate: ['a', 'b'],
    });
    assert.equal(decodeFarmAdvert(Buffer.from('{"o":1}')), null);
    assert.equal(decodeFarmAdvert(Buffer.from('not json')), null);
  });
});

describe('farm driver: traffic around start_both and stop_both', () => {
  function drive(scriptControl: boolean): string[] {
    const driver = new FarmModuleDriver(
      new FarmDriver({ maxloop: 3, loopIntervalMs: 86_400_000, scriptsEnabled: true }, 0),
      scriptControl,
    );
    const log: string[] = [];
    const pending: string[] = [];
    const record = (actions: (CoreAction | FarmTrafficAction)[]) => {
      for (const action of actions) {
        if (action.type === 'farmTraffic') {
          const check = !action.open && action.leftToScripts === true ? ' (check)' : '';
          log.push(`traffic ${action.open ? 'open' : 'close'}${check}`);
          record(action.then);
        } else if (action.type === 'runScript') {
          log.push(action.script);
          pending.push(action.script);
        }
      }
    };
    const finishAll = () => {
      for (let guard = 0; pending.length > 0 && guard < 50; guard += 1) {
        const script = pending.shift() ?? '';
        record(driver.step({ type: 'scriptDone', script, exitCode: 0, timedOut: false, nowMs: 1 }).actions);
      }
    };
    record(
      driver.step({ type: 'command', verb: 'start', origin: { kind: 'caller', who: 'test' }, nowMs: 0 })
        .actions,
    );
    finishAll();
    record(driver.step({ type: 'waitStatus', wait: { status: 'clear' }, nowMs: 1 }).actions);
    finishAll();
    record(
      driver.step({ type: 'command', verb: 'stop', origin: { kind: 'caller', who: 'test' }, nowMs: 2 })
        .actions,
    );
    finishAll();
    return log;
  }

  test('opened before start_both, closed right after stop_both', () => {
    const log = drive(false);
    const open = log.indexOf('traffic open');
    const close = log.indexOf('traffic close');
    assert.ok(open >= 0 && open < log.indexOf('start_both'), log.join(', '));
    assert.equal(log[close - 1], 'stop_both', log.join(', '));
    assert.equal(log.filter((entry) => entry.startsWith('traffic')).length, 2);
  });

  test('scriptcontrol on: the automaton never opens the traffic, only makes sure it is closed after UP', () => {
    const log = drive(true);
    assert.ok(!log.includes('traffic open'), log.join(', '));
    assert.ok(!log.includes('traffic close'), log.join(', '));
    // After stop_both left UP (the scripts should have closed it), and when STOP is reached.
    const checks = log.flatMap((entry, index) => (entry === 'traffic close (check)' ? [index] : []));
    assert.ok(checks.length >= 1, log.join(', '));
    assert.equal(log[(checks[0] ?? 0) - 1], 'stop_both', log.join(', '));
    assert.ok(
      checks.every((index) => index > log.indexOf('stop_both')),
      log.join(', '),
    );
  });
});
