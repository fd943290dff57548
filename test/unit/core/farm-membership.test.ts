// Farm membership: views agreed after a change, timeouts from pulse x slost/mlost, replays and
// old incarnations dropped; and a small deterministic simulation of N nodes exchanging packets
// with loss, crashes and restarts, checking that once the network is quiet every node holds the
// same view and so the same bucket map.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assignBuckets, bucketsOf } from '../../../agent/core/farm-buckets.ts';
import {
  advertOf,
  checkMembershipSettings,
  farmLanStatus,
  type FarmMembershipSettings,
  type FarmMembershipState,
  initialMembership,
  leaderOf,
  receiveFarmPacket,
  setLocalOpen,
  tickMembership,
} from '../../../agent/core/farm-membership.ts';

const nodes = ['n1', 'n2', 'n3'];

function settingsOf(node: string, all = nodes): FarmMembershipSettings {
  return {
    localNode: node,
    peers: all.filter((name) => name !== node),
    lans: ['default'],
    pulseMs: 100,
    mlostCount: 20,
    slostCount: 10,
  };
}

function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** Virtual nodes on a virtual network; every packet goes to every other live node. */
class FarmSim {
  states = new Map<string, FarmMembershipState>();
  seq = new Map<string, number>();
  incarnation = new Map<string, number>();
  alive = new Set<string>();
  nowMs = 0;
  lossRate = 0;
  changesAtMs: number[] = [];

  constructor(
    readonly names: string[],
    readonly random: () => number,
  ) {
    for (const name of names) this.boot(name);
  }

  boot(name: string): void {
    this.states.set(name, initialMembership(this.nowMs));
    this.seq.set(name, 0);
    this.incarnation.set(name, (this.incarnation.get(name) ?? 0) + 1);
    this.alive.add(name);
  }

  open(name: string, open: boolean): void {
    const outcome = setLocalOpen(this.get(name), settingsOf(name, this.names), open, this.nowMs);
    this.states.set(name, outcome.state);
    if (outcome.sendNow) this.send(name);
  }

  get(name: string): FarmMembershipState {
    const state = this.states.get(name);
    assert.ok(state);
    return state;
  }

  send(from: string): void {
    const seq = (this.seq.get(from) ?? 0) + 1;
    this.seq.set(from, seq);
    const advert = advertOf(this.get(from));
    for (const to of this.names) {
      if (to === from || !this.alive.has(to) || this.random() < this.lossRate) continue;
      const outcome = receiveFarmPacket(
        this.get(to),
        settingsOf(to, this.names),
        { node: from, lan: 'default', incarnation: this.incarnation.get(from) ?? 0, seq, advert },
        this.nowMs,
      );
      this.states.set(to, outcome.state);
      if (outcome.viewChanged) this.changesAtMs.push(this.nowMs);
      if (outcome.sendNow) this.send(to);
    }
  }

  /** Advances by `ms` in 10 ms steps; each node pulses every 100 ms (with its own phase). */
  run(ms: number): void {
    const end = this.nowMs + ms;
    while (this.nowMs < end) {
      this.nowMs += 10;
      this.names.forEach((name, index) => {
        if (!this.alive.has(name)) return;
        const ticked = tickMembership(this.get(name), settingsOf(name, this.names), this.nowMs);
        this.states.set(name, ticked.state);
        if (ticked.viewChanged) this.changesAtMs.push(this.nowMs);
        if (ticked.sendNow || (this.nowMs + index * 30) % 100 === 0) this.send(name);
      });
    }
  }

  views(): string[][] {
    return [...this.alive].map((name) => [...this.get(name).view.members]);
  }
}

describe('farm membership', () => {
  test('settings are checked with the field named', () => {
    assert.throws(() => checkMembershipSettings({ ...settingsOf('n1'), pulseMs: 1 }), /pulse 1 ms/);
    assert.throws(() => checkMembershipSettings({ ...settingsOf('n1'), slostCount: 0 }), /slost_count 0/);
    assert.throws(
      () => checkMembershipSettings({ ...settingsOf('n1'), peers: ['n1'] }),
      /local node is a peer/,
    );
    checkMembershipSettings(settingsOf('n1'));
  });

  test('three nodes open: one agreed view of all three within a few pulses, same map everywhere', () => {
    const sim = new FarmSim(nodes, prng(1));
    for (const name of nodes) sim.open(name, true);
    sim.run(500);
    assert.deepEqual(sim.views(), [nodes, nodes, nodes]);
    assert.ok(nodes.every((name) => sim.get(name).view.agreed));
    assert.equal(leaderOf(sim.get('n2').view), 'n1');
    const map = assignBuckets(nodes.map((node) => ({ node, power: 1 })));
    assert.equal(
      bucketsOf(map, 'n1').length + bucketsOf(map, 'n2').length + bucketsOf(map, 'n3').length,
      256,
    );
  });

  test('a follower crashes: lost after slost_count pulses; the leader after mlost_count', () => {
    const sim = new FarmSim(nodes, prng(2));
    for (const name of nodes) sim.open(name, true);
    sim.run(500);
    const crashAtMs = sim.nowMs;
    sim.alive.delete('n3');
    sim.changesAtMs = [];
    sim.run(3000);
    assert.deepEqual(sim.views(), [
      ['n1', 'n2'],
      ['n1', 'n2'],
    ]);
    const followerMs = Math.max(...sim.changesAtMs) - crashAtMs;
    assert.ok(followerMs >= 900 && followerMs <= 1200, `follower lost after ${followerMs} ms`);
    // Now the leader n1.
    const leaderCrashMs = sim.nowMs;
    sim.alive.delete('n1');
    sim.changesAtMs = [];
    sim.run(3000);
    assert.deepEqual(sim.views(), [['n2']]);
    const leaderMs = Math.max(...sim.changesAtMs) - leaderCrashMs;
    assert.ok(leaderMs >= 1900 && leaderMs <= 2200, `leader lost after ${leaderMs} ms`);
    console.log(`membership: follower lost in ${followerMs} ms, leader in ${leaderMs} ms (pulse 100 ms)`);
  });

  test('a graceful close is seen at once (no timeout); reopening rejoins', () => {
    const sim = new FarmSim(nodes, prng(3));
    for (const name of nodes) sim.open(name, true);
    sim.run(500);
    const closedAtMs = sim.nowMs;
    sim.changesAtMs = [];
    sim.open('n2', false);
    sim.run(200);
    assert.deepEqual(sim.views(), [
      ['n1', 'n3'],
      ['n1', 'n3'],
      ['n1', 'n3'],
    ]);
    assert.ok(Math.max(...sim.changesAtMs) - closedAtMs <= 20);
    sim.open('n2', true);
    sim.run(300);
    assert.deepEqual(sim.views(), [nodes, nodes, nodes]);
  });

  test('replays and old incarnations are dropped; a restarted peer (new incarnation) is accepted', () => {
    const settings = settingsOf('n1');
    let state = initialMembership(0);
    const advert = { open: true, candidate: ['n2'] };
    state = receiveFarmPacket(
      state,
      settings,
      { node: 'n2', lan: 'default', incarnation: 5, seq: 10, advert },
      0,
    ).state;
    const replay = receiveFarmPacket(
      state,
      settings,
      { node: 'n2', lan: 'default', incarnation: 5, seq: 10, advert },
      1,
    );
    assert.equal(replay.verdict, 'duplicate');
    const old = receiveFarmPacket(
      state,
      settings,
      { node: 'n2', lan: 'default', incarnation: 4, seq: 99, advert },
      1,
    );
    assert.equal(old.verdict, 'oldIncarnation');
    const restarted = receiveFarmPacket(
      state,
      settings,
      { node: 'n2', lan: 'default', incarnation: 6, seq: 1, advert },
      2,
    );
    assert.equal(restarted.verdict, 'accepted');
    const stranger = receiveFarmPacket(
      state,
      settings,
      { node: 'x9', lan: 'default', incarnation: 1, seq: 1, advert },
      2,
    );
    assert.equal(stranger.verdict, 'unknownNode');
    // Not open locally, peer n2 open and agreeing: the view is n2 alone.
    assert.deepEqual(tickMembership(state, settings, 10).state.view.members, ['n2']);
    assert.deepEqual(farmLanStatus(state, settings, 10), { default: 'up' });
    assert.deepEqual(farmLanStatus(state, settings, 5000), { default: 'down' });
  });

  test('simulation: random loss, crashes and restarts; after quiet, every live node agrees', () => {
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (let seed = 1; seed <= 20; seed += 1) {
      const random = prng(seed);
      const sim = new FarmSim(names, random);
      for (const name of names) sim.open(name, true);
      for (let round = 0; round < 10; round += 1) {
        sim.lossRate = random() * 0.3;
        const victim = names[Math.floor(random() * names.length)] ?? 'a';
        if (sim.alive.has(victim) && sim.alive.size > 1) sim.alive.delete(victim);
        else if (!sim.alive.has(victim)) {
          sim.boot(victim);
          sim.open(victim, true);
        }
        sim.run(Math.floor(random() * 1500));
      }
      sim.lossRate = 0;
      sim.run(3000);
      const expected = [...sim.alive].sort();
      for (const view of sim.views()) assert.deepEqual(view, expected, `seed ${seed}`);
    }
  });
});
