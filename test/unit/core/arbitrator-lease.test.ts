// The arbitrator's lease: the timing argument (property-tested over clock rates and delays),
// the arbitrator's decisions (exclusivity, quiet period, stale data, witness, force), ordering
// of requests and releases, unused claims, and the node's side of the protocol.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type ArbitratorDurable,
  arbitratorDurable,
  arbitratorHandleRelease,
  arbitratorHandleRequest,
  disownClaim,
  type ArbitratorState,
  assertLeaseTiming,
  handleLeaseReply,
  holderLeaseMs,
  initialArbitrator,
  initialLeaseClient,
  type LeaseRequest,
  type LeaseTiming,
  leaseConfirms,
  promiseMs,
  releaseLease,
  requestLease,
  shrinkForDrift,
} from '../../../agent/core/arbitrator-lease.ts';
import type { Generation } from '../../../agent/core/mirror-data.ts';

const timing: LeaseTiming = { leaseMs: 3000, driftPpm: 1000, marginMs: 100, renewMs: 1000, retryMs: 1000 };
const g = (counter: number, node: string): Generation => ({ counter, node });

function request(
  node: string,
  seq: number,
  fields: Partial<Pick<LeaseRequest, 'dataGeneration' | 'claim' | 'force' | 'witness' | 'incarnation'>> = {},
): LeaseRequest {
  return {
    type: 'leaseRequest',
    module: 'mirror',
    node,
    incarnation: fields.incarnation ?? 1,
    seq,
    dataGeneration: fields.dataGeneration ?? null,
    claim: fields.claim ?? null,
    force: fields.force ?? false,
    witness: fields.witness ?? false,
  };
}

/** The durable state of an arbitrator that knows `generation` as the newest of module mirror. */
function known(generation: Generation): Record<string, ArbitratorDurable> {
  return { mirror: { registered: generation, unconfirmedClaim: null } };
}

/** An arbitrator past its quiet period. */
function arbitrator(): ArbitratorState {
  return initialArbitrator(-timing.leaseMs, timing);
}

function ask(state: ArbitratorState, req: LeaseRequest, nowMs: number) {
  return arbitratorHandleRequest(state, req, timing, nowMs);
}

describe('lease timing', () => {
  test('durations shrink by the drift bound on both clocks', () => {
    assert.equal(shrinkForDrift(3000, 0), 3000);
    assert.equal(shrinkForDrift(3000, 1000), 2994);
    assert.equal(holderLeaseMs(timing), 2894);
    assert.equal(promiseMs(2000, timing), 1896);
  });

  test('bad timings are refused', () => {
    assert.throws(() => assertLeaseTiming({ ...timing, leaseMs: 0 }));
    assert.throws(() => assertLeaseTiming({ ...timing, driftPpm: -1 }));
    assert.throws(() => assertLeaseTiming({ ...timing, renewMs: 5000 }), /renew/);
    assertLeaseTiming(timing);
  });

  test("property: the holder's authority always ends before the arbitrator can grant anyone else", () => {
    // Real time is the reference. Each clock runs at 1 + e with |e| <= drift. The holder sends at
    // real s, the arbitrator receives at s + d1, the holder hears the grant at s + d1 + d2.
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 60_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.double({ min: -1, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 500 }),
        (leaseMs, driftPpm, holderRate, arbitratorRate, requestDelayMs, marginMs) => {
          const t: LeaseTiming = { leaseMs, driftPpm, marginMs, renewMs: 1, retryMs: 1 };
          const holderAuthorityMs = holderLeaseMs(t);
          if (holderAuthorityMs <= 0) return;
          const rh = 1 + (holderRate * driftPpm) / 1_000_000;
          const ra = 1 + (arbitratorRate * driftPpm) / 1_000_000;
          const sentRealMs = 0;
          // The holder's clock reads holderAuthorityMs more after (real) holderAuthorityMs / rh.
          const holderEndRealMs = sentRealMs + holderAuthorityMs / rh;
          const arbitratorEndRealMs = sentRealMs + requestDelayMs + leaseMs / ra;
          return holderEndRealMs + marginMs <= arbitratorEndRealMs + 1e-6;
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('the arbitrator', () => {
  test('grants the first node, refuses the other while the lease runs, grants it after', () => {
    let state = arbitrator();
    const first = ask(state, request('n1', 1), 0);
    assert.equal(first.reply?.type, 'leaseGranted');
    state = first.state;
    const second = ask(state, request('n2', 1), timing.leaseMs - 1);
    assert.equal(second.reply?.type, 'leaseRefused');
    assert.equal(second.reply?.type === 'leaseRefused' ? second.reply.reason : '', 'held');
    state = second.state;
    const later = ask(state, request('n2', 2), timing.leaseMs);
    assert.equal(later.reply?.type, 'leaseGranted');
  });

  test('the holder renews', () => {
    let state = ask(arbitrator(), request('n1', 1), 0).state;
    state = ask(state, request('n1', 2), 2000).state;
    const other = ask(state, request('n2', 1), 4000);
    assert.equal(other.reply?.type, 'leaseRefused', 'the renewal at 2000 holds until 5000');
  });

  test('after a restart it grants nothing for a whole lease (it forgot the holder)', () => {
    const state = initialArbitrator(10_000, timing);
    assert.equal(ask(state, request('n1', 1), 12_000).reply?.type, 'leaseRefused');
    assert.equal(ask(state, request('n1', 1), 13_000).reply?.type, 'leaseGranted');
  });

  test('old and repeated requests get no answer', () => {
    let state = ask(arbitrator(), request('n1', 5), 0).state;
    assert.equal(ask(state, request('n1', 5), 10).reply, null);
    assert.equal(ask(state, request('n1', 4), 10).reply, null);
    state = ask(state, request('n1', 1, { incarnation: 2 }), 10).state;
    assert.equal(ask(state, request('n1', 9, { incarnation: 1 }), 20).reply, null, 'older incarnation');
  });

  test('records the claim and refuses a node whose data is older (stale) unless forced', () => {
    let state = ask(
      arbitrator(),
      request('n1', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n1') }),
      0,
    ).state;
    state = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 1,
      unusedClaim: false,
      disown: null,
    }).state;
    const stale = ask(state, request('n2', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2') }), 10);
    assert.equal(stale.reply?.type === 'leaseRefused' ? stale.reply.reason : '', 'stale');
    const forced = ask(
      stale.state,
      request('n2', 2, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2'), force: true }),
      20,
    );
    assert.equal(forced.reply?.type, 'leaseGranted');
  });

  test('a witness request is granted only when the arbitrator knows the requester has the newest data', () => {
    const unknown = ask(
      arbitrator(),
      request('n1', 1, { dataGeneration: g(3, 'n1'), claim: g(4, 'n1'), witness: true }),
      0,
    );
    assert.equal(unknown.reply?.type === 'leaseRefused' ? unknown.reply.reason : '', 'stale');
    const aware = initialArbitrator(-timing.leaseMs, timing, known(g(3, 'n1')));
    const granted = ask(
      aware,
      request('n1', 1, { dataGeneration: g(3, 'n1'), claim: g(4, 'n1'), witness: true }),
      0,
    );
    assert.equal(granted.reply?.type, 'leaseGranted');
  });

  test('an unused claim given back restores the previous generation; a delayed release ends no newer lease', () => {
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(1, 'n1')));
    state = ask(state, request('n1', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n1') }), 0).state;
    state = ask(state, request('n1', 2, { dataGeneration: g(1, 'n1'), claim: g(2, 'n1') }), 100).state;
    // The release of seq 1 arrives late: seq 2 is the holder's grant now.
    state = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 1,
      unusedClaim: true,
      disown: null,
    }).state;
    assert.equal(state.modules.mirror?.holder?.seq, 2);
    assert.deepEqual(state.modules.mirror?.registered, g(2, 'n1'));
    const released = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 2,
      unusedClaim: true,
      disown: null,
    });
    assert.equal(released.reply.type, 'leaseReleased');
    assert.equal(released.state.modules.mirror?.holder, null);
    assert.deepEqual(released.state.modules.mirror?.registered, g(1, 'n1'));
  });

  test('a claim written under (the holder renewed with it as its data) can no longer be given back', () => {
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(1, 'n1')));
    state = ask(state, request('n1', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n1') }), 0).state;
    state = ask(state, request('n1', 2, { dataGeneration: g(2, 'n1'), claim: g(2, 'n1') }), 1000).state;
    state = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 2,
      unusedClaim: true,
      disown: null,
    }).state;
    assert.deepEqual(state.modules.mirror?.registered, g(2, 'n1'));
  });

  test('a release closes its sequence: the request it gives back, arriving after it, is dropped', () => {
    let state = arbitrator();
    state = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 3,
      unusedClaim: true,
      disown: null,
    }).state;
    // The module is unknown to this arbitrator: nothing recorded, nothing closed; a known one:
    state = ask(state, request('n1', 1), 0).state;
    state = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n1',
      incarnation: 1,
      seq: 3,
      unusedClaim: true,
      disown: null,
    }).state;
    assert.equal(ask(state, request('n1', 3), 10).reply, null);
  });

  test('seed 2073: a forced claim never used is not granted again to a plain request of its node', () => {
    // n2 wrote up to 9@n2; an administrator's prim on stale n1 (6@n1) registered 7@n1, forced;
    // n1 crashed before using it. Its plain start later must not be promoted by that claim.
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(9, 'n2')));
    state = ask(
      state,
      request('n1', 1, { dataGeneration: g(6, 'n1'), claim: g(7, 'n1'), force: true }),
      0,
    ).state;
    assert.equal(state.modules.mirror?.unconfirmedClaim?.forced, true);
    const plain = ask(
      state,
      request('n1', 1, { incarnation: 2, dataGeneration: g(6, 'n1'), claim: g(7, 'n1') }),
      10,
    );
    assert.equal(plain.reply?.type === 'leaseRefused' ? plain.reply.reason : '', 'stale');
    const forcedAgain = ask(
      plain.state,
      request('n1', 2, { incarnation: 2, dataGeneration: g(6, 'n1'), claim: g(7, 'n1'), force: true }),
      20,
    );
    assert.equal(forcedAgain.reply?.type, 'leaseGranted');
  });

  test('the unconfirmed claim survives a restart of the arbitrator (its durable state)', () => {
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(1, 'n1')));
    state = ask(state, request('n2', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2') }), 0).state;
    const restarted = initialArbitrator(10_000, timing, arbitratorDurable(state));
    const again = ask(
      restarted,
      request('n2', 2, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2'), witness: true }),
      10_000 + timing.leaseMs,
    );
    assert.equal(again.reply?.type, 'leaseGranted');
  });

  test('a node disowns a registered claim of its own that it never wrote under: the arbitrator falls back', () => {
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(10, 'n2')));
    state = ask(
      state,
      request('n1', 1, { dataGeneration: g(6, 'n1'), claim: g(11, 'n1'), force: true }),
      0,
    ).state;
    assert.deepEqual(state.modules.mirror?.registered, g(11, 'n1'));
    // Another node cannot disown it; the claimer can, from any incarnation.
    const foreign = arbitratorHandleRelease(state, {
      type: 'leaseRelease',
      module: 'mirror',
      node: 'n2',
      incarnation: 3,
      seq: 1,
      unusedClaim: true,
      disown: g(11, 'n1'),
    }).state;
    assert.deepEqual(foreign.modules.mirror?.registered, g(11, 'n1'));
    const client = requestLease(
      initialLeaseClient(),
      { module: 'mirror', node: 'n1', incarnation: 9 },
      {
        dataGeneration: g(6, 'n1'),
        claim: g(12, 'n1'),
        force: false,
        witness: false,
      },
      0,
    ).client;
    const disowned = disownClaim(client, { module: 'mirror', node: 'n1', incarnation: 9 }, g(11, 'n1'), 10);
    assert.equal(disowned.client.releasing?.disown?.counter, 11);
    state = arbitratorHandleRelease(state, disowned.release).state;
    assert.deepEqual(state.modules.mirror?.registered, g(10, 'n2'));
    assert.equal(
      ask(state, request('n2', 1, { dataGeneration: g(10, 'n2'), claim: g(12, 'n2') }), 20).reply?.type,
      'leaseGranted',
    );
    assert.throws(() =>
      disownClaim(client, { module: 'mirror', node: 'n1', incarnation: 9 }, g(11, 'n2'), 10),
    );
  });

  test('an own claim asked again is granted even as a witness (the first answer was lost)', () => {
    let state = initialArbitrator(-timing.leaseMs, timing, known(g(1, 'n1')));
    state = ask(
      state,
      request('n2', 1, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2'), witness: true }),
      0,
    ).state;
    const again = ask(
      state,
      request('n2', 2, { dataGeneration: g(1, 'n1'), claim: g(2, 'n2'), witness: true }),
      10,
    );
    assert.equal(again.reply?.type, 'leaseGranted');
  });
});

describe("the node's side", () => {
  const identity = { module: 'mirror', node: 'n1', incarnation: 1 };

  test('a grant is valid from the send time of its request for holderLeaseMs', () => {
    const asked = requestLease(
      initialLeaseClient(),
      identity,
      { dataGeneration: null, claim: g(1, 'n1'), force: false, witness: false },
      1000,
    );
    const granted = handleLeaseReply(
      asked.client,
      { type: 'leaseGranted', module: 'mirror', node: 'n1', incarnation: 1, seq: asked.request.seq },
      identity,
      timing,
      1500,
    );
    assert.equal(granted.outcome, 'granted');
    assert.equal(granted.client.grant?.validUntilMs, 1000 + holderLeaseMs(timing));
    assert.ok(leaseConfirms(granted.client, g(1, 'n1'), 1000 + holderLeaseMs(timing) - 1));
    assert.ok(!leaseConfirms(granted.client, g(1, 'n1'), 1000 + holderLeaseMs(timing)));
    assert.ok(!leaseConfirms(granted.client, g(2, 'n1'), 2000), 'another claim');
  });

  test('answers to other requests are ignored', () => {
    const asked = requestLease(
      initialLeaseClient(),
      identity,
      { dataGeneration: null, claim: null, force: false, witness: false },
      0,
    );
    const stale = handleLeaseReply(
      asked.client,
      { type: 'leaseGranted', module: 'mirror', node: 'n1', incarnation: 1, seq: asked.request.seq + 1 },
      identity,
      timing,
      10,
    );
    assert.equal(stale.outcome, 'ignored');
    const otherIncarnation = handleLeaseReply(
      asked.client,
      { type: 'leaseGranted', module: 'mirror', node: 'n1', incarnation: 2, seq: asked.request.seq },
      identity,
      timing,
      10,
    );
    assert.equal(otherIncarnation.outcome, 'ignored');
  });

  test('an unused claim is given back only if the last request carried it', () => {
    let client = requestLease(
      initialLeaseClient(),
      identity,
      { dataGeneration: g(1, 'n1'), claim: g(2, 'n1'), force: false, witness: false },
      0,
    ).client;
    assert.equal(releaseLease(client, identity, g(2, 'n1'), 10).release.unusedClaim, true);
    // A newer claim was computed but never asked for: the last grant's claim may be in use.
    client = requestLease(
      client,
      identity,
      { dataGeneration: g(2, 'n1'), claim: g(2, 'n1'), force: false, witness: false },
      20,
    ).client;
    assert.equal(releaseLease(client, identity, g(3, 'n1'), 30).release.unusedClaim, false);
  });
});
