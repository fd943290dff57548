// Heartbeats between two real lab nodes (namespaces, real UDP over the lab bridge, IPv4 and IPv6
// lans): authenticated exchange with measured rate and delay, drops counted by reason (wrong
// key, foreign cluster, replay, malformed), and a partition that stops reception until healed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { heartbeatPortOf } from '../../agent/config/ports.ts';
import type { DropReason } from '../../agent/heartbeat/packet.ts';
import type { LanCounters } from '../../agent/heartbeat/transport.ts';
import { type CtlAnswer, CtlClient } from '../../agent/net/ctl-client.ts';
import { labCliFile, labJson, labSkipReason, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const lab = 'thb';
const skip = labSkipReason();
const repoDir = resolve(import.meta.dirname, '..', '..');
const moduleId = 3;
const port = heartbeatPortOf(moduleId);
const pulseMs = 50;

interface UpReport {
  nodes: LabNode[];
}

interface CountersAnswer extends CtlAnswer {
  counters: LanCounters[];
  text: string;
  stats: {
    accepted: number;
    acceptedByLan: Record<string, number>;
    ratePerSec: number | null;
    delayMsP50: number | null;
    delayMsP99: number | null;
    delayMsMax: number | null;
  };
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

function hbctl(node: string): CtlClient {
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
    'agent/heartbeat/hbctl.ts',
  ]);
}

function lanOf(answer: CountersAnswer, ident: string): LanCounters {
  const lan = answer.counters.find((candidate) => candidate.ident === ident);
  assert.ok(lan, `lan ${ident} in the counters`);
  return lan;
}

describe('heartbeats in the lab', { skip, timeout: 180_000 }, () => {
  let nodes: LabNode[] = [];
  const controls = new Map<string, CtlClient>();
  const keyHex = randomBytes(32).toString('hex');
  const ctl = (node: string) => {
    const found = controls.get(node);
    assert.ok(found, `hbctl on ${node}`);
    return found;
  };
  const node = (name: string) => {
    const found = nodes.find((candidate) => candidate.name === name);
    assert.ok(found, `lab node ${name}`);
    return found;
  };
  const counters = (name: string) => ctl(name).call<CountersAnswer>('counters');

  before(async () => {
    await runLabCli(['down', '--name', lab]);
    nodes = (await labJson<UpReport>(['up', '--name', lab, '--nodes', '2'])).nodes;
    for (const [self, peer] of [
      ['n1', 'n2'],
      ['n2', 'n1'],
    ] as const) {
      const control = hbctl(self);
      controls.set(self, control);
      await control.waitReady();
      await control.call('start', {
        settings: {
          clusterId: 'lab-cluster',
          module: 'mirror',
          localNode: self,
          peerNode: peer,
          keyHex,
          lans: [
            {
              ident: 'v4',
              lan: 'v4',
              localAddress: node(self).ip,
              peerAddress: node(peer).ip,
              port,
              pulseMs,
            },
            {
              ident: 'v6',
              lan: 'v6',
              localAddress: node(self).ip6,
              peerAddress: node(peer).ip6,
              port,
              pulseMs,
            },
          ],
        },
        state: self === 'n1' ? 'PRIM' : 'SECOND',
      });
    }
  });

  after(async () => {
    for (const control of controls.values()) await control.close().catch(() => undefined);
    await runLabCli(['down', '--name', lab]);
  });

  test('n1 and n2 exchange authenticated heartbeats on both lans; rate and delay', async () => {
    await sleep(3_000);
    for (const name of ['n1', 'n2']) {
      const answer = await counters(name);
      for (const ident of ['v4', 'v6']) {
        const lan = lanOf(answer, ident);
        assert.equal(lan.bound, true, `${name} ${ident} bound`);
        assert.ok(lan.accepted >= 40, `${name} ${ident}: ${lan.accepted} accepted in 3 s at ${pulseMs} ms`);
        const drops = Object.entries(lan.dropped).filter(([, count]) => count > 0);
        assert.deepEqual(drops, [], `${name} ${ident} drops`);
        assert.equal(lan.sendErrors, 0);
      }
      const { stats } = answer;
      assert.ok(stats.delayMsP99 !== null && stats.delayMsP99 < 50, `p99 delay ${stats.delayMsP99} ms`);
      console.log(
        `heartbeat at ${name}: ${stats.ratePerSec?.toFixed(1)} packets/s over 2 lans (pulse ${pulseMs} ms each), ` +
          `send-to-receive delay p50 ${stats.delayMsP50?.toFixed(2)} ms, p99 ${stats.delayMsP99?.toFixed(2)} ms, ` +
          `max ${stats.delayMsMax?.toFixed(2)} ms`,
      );
    }
  });

  test('a wrong key, a foreign cluster, a replay and a malformed packet are dropped and counted', async () => {
    const before = lanOf(await counters('n1'), 'v4');
    const from = node('n2').ip;
    const to = node('n1').ip;
    const target = { from, to, port };
    await ctl('n2').call('forge', { ...target, keyHex: randomBytes(32).toString('hex'), fields: {} });
    await ctl('n2').call('forge', { ...target, keyHex, fields: { clusterId: 'another-cluster' } });
    const { hex } = await ctl('n2').call<CtlAnswer & { hex: string }>('lastSent', { lan: 'v4' });
    await sleep(200); // the genuine copy has certainly arrived
    await ctl('n2').call('send', { ...target, hex });
    await ctl('n2').call('send', { ...target, hex: Buffer.from('HKHB\x01 not a heartbeat').toString('hex') });
    await sleep(300);
    const afterAll = lanOf(await counters('n1'), 'v4');
    const delta = (reason: DropReason) => afterAll.dropped[reason] - before.dropped[reason];
    assert.deepEqual(
      {
        badMac: delta('badMac'),
        foreignCluster: delta('foreignCluster'),
        replay: delta('replay'),
        malformed: delta('malformed'),
        unexpectedSource: delta('unexpectedSource'),
      },
      { badMac: 1, foreignCluster: 1, replay: 1, malformed: 1, unexpectedSource: 0 },
    );
    assert.ok(afterAll.accepted > before.accepted, 'genuine heartbeats still accepted');
    console.log((await counters('n1')).text);
  });

  test('a partition stops reception on both sides and heal restores it', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2']);
    try {
      await sleep(300);
      const cut = { n1: (await counters('n1')).stats.accepted, n2: (await counters('n2')).stats.accepted };
      await sleep(1_500);
      const stillCut = {
        n1: (await counters('n1')).stats.accepted,
        n2: (await counters('n2')).stats.accepted,
      };
      assert.deepEqual(stillCut, cut, 'nothing accepted during the partition');
    } finally {
      await labJson(['fault', '--name', lab, 'heal', 'n1', 'n2']);
    }
    const healedAtMs = performance.now();
    const base = (await counters('n1')).stats.accepted;
    let firstAfterMs: number | null = null;
    while (performance.now() - healedAtMs < 5_000) {
      if ((await counters('n1')).stats.accepted > base) {
        firstAfterMs = performance.now() - healedAtMs;
        break;
      }
      await sleep(10);
    }
    assert.ok(firstAfterMs !== null, 'heartbeats accepted again after heal');
    await sleep(1_000);
    for (const name of ['n1', 'n2']) {
      const answer = await counters(name);
      for (const ident of ['v4', 'v6']) assert.equal(lanOf(answer, ident).bound, true);
    }
    console.log(`heartbeats received again ${firstAfterMs.toFixed(0)} ms after heal (pulse ${pulseMs} ms)`);
  });
});
