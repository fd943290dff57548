// Heartbeat bookkeeping: per-lan liveness and timeouts, remote UNKNOWN only when every lan is
// lost, duplicates across lans, replays, reordering, incarnations, foreign packets, and the
// promise a secondary gives by acknowledging a primary's adverts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  expireLans,
  type HeartbeatPacket,
  heartbeatResources,
  initialLiveness,
  type LivenessSettings,
  type LivenessState,
  minimumTimeoutMs,
  nextLivenessDeadlineMs,
  peerView,
  preparePacket,
  receivePacket,
  recheckLostLans,
} from '../../../agent/core/peer-liveness.ts';

interface Advert {
  primary: boolean;
  state: string;
}

const settings: LivenessSettings = {
  cluster: 'c1',
  module: 'mirror',
  localNode: 'n1',
  peerNode: 'n2',
  heartbeats: [
    { ident: 'default', timeoutMs: 1000 },
    { ident: 'flow', timeoutMs: 3000 },
  ],
};

const peerSettings: LivenessSettings = { ...settings, localNode: 'n2', peerNode: 'n1' };

function packet(
  seq: number,
  overrides: {
    incarnation?: number;
    primary?: boolean;
    ack?: { incarnation: number; seq: number } | null;
  } = {},
): HeartbeatPacket<Advert> {
  return {
    header: {
      cluster: 'c1',
      module: 'mirror',
      node: 'n2',
      incarnation: overrides.incarnation ?? 5,
      seq,
      timeMs: 123_456,
      ack: overrides.ack ?? null,
    },
    advert: { primary: overrides.primary ?? false, state: 'SECOND' },
  };
}

function start(): LivenessState<Advert> {
  return initialLiveness<Advert>(settings, 1, 0);
}

describe('peer liveness', () => {
  test('before any packet the peer is init, then UNKNOWN once every lan timed out', () => {
    let state = start();
    assert.deepEqual(peerView(state), { status: 'init' });
    assert.equal(nextLivenessDeadlineMs(state), 1000);
    let expired = expireLans(state, 999);
    assert.deepEqual(expired.changes, []);
    expired = expireLans(state, 1000);
    assert.deepEqual(expired.changes, [{ resource: 'heartbeat.default', value: 'down' }]);
    state = expired.state;
    assert.deepEqual(peerView(state), { status: 'init' }, 'one lan is still within its timeout');
    state = expireLans(state, 3000).state;
    assert.deepEqual(peerView(state), { status: 'unknown' });
    assert.deepEqual(heartbeatResources(state), { 'heartbeat.default': 'down', 'heartbeat.flow': 'down' });
    assert.equal(nextLivenessDeadlineMs(state), null);
  });

  test('a start with every lan lost looks again for one timeout: a returning peer is seen, a gone one lost again', () => {
    let state = expireLans(start(), 5000).state;
    assert.deepEqual(peerView(state), { status: 'unknown' });
    const rechecked = recheckLostLans(state, 10_000);
    assert.deepEqual(rechecked.changes, [
      { resource: 'heartbeat.default', value: 'init' },
      { resource: 'heartbeat.flow', value: 'init' },
    ]);
    state = rechecked.state;
    assert.deepEqual(peerView(state), { status: 'init' }, 'not UNKNOWN while looking again');
    assert.equal(nextLivenessDeadlineMs(state), 11_000);
    const seen = receivePacket(state, settings, 'default', packet(1), 10_100);
    assert.equal(peerView(seen.state).status, 'up', 'the peer whose link came back is seen');
    state = expireLans(state, 11_000).state;
    assert.deepEqual(peerView(state), { status: 'init' });
    state = expireLans(state, 13_000).state;
    assert.deepEqual(peerView(state), { status: 'unknown' }, 'still silent: lost again');
    assert.deepEqual(recheckLostLans(seen.state, 10_200).changes, [], 'nothing to recheck while a lan is up');
  });

  test('a packet brings its lan up and the peer view with its advert', () => {
    const received = receivePacket(start(), settings, 'default', packet(1), 10);
    assert.equal(received.verdict, 'accepted');
    assert.deepEqual(received.changes, [{ resource: 'heartbeat.default', value: 'up' }]);
    const view = peerView(received.state);
    assert.equal(view.status, 'up');
    assert.equal(view.status === 'up' ? view.incarnation : 0, 5);
  });

  test('the same packet on the other lan proves that lan alive but is a duplicate for the state', () => {
    let state = receivePacket(start(), settings, 'default', packet(1), 10).state;
    const copy = receivePacket(state, settings, 'flow', packet(1), 11);
    assert.equal(copy.verdict, 'duplicate');
    assert.deepEqual(copy.changes, [{ resource: 'heartbeat.flow', value: 'up' }]);
    state = copy.state;
    assert.equal(state.counters.duplicate, 1);
  });

  test('a replayed packet on the same lan is dropped and counted, and keeps nothing alive', () => {
    let state = receivePacket(start(), settings, 'default', packet(2), 10).state;
    const replay = receivePacket(state, settings, 'default', packet(2), 900);
    assert.equal(replay.verdict, 'replay');
    state = replay.state;
    assert.equal(state.counters.replay, 1);
    // The lan's clock was not refreshed by the replay: it times out 1000 ms after the real packet.
    assert.deepEqual(expireLans(state, 1010).changes, [{ resource: 'heartbeat.default', value: 'down' }]);
  });

  test('an older packet arriving late (reordered) is new on its lan but old for the state', () => {
    let state = receivePacket(start(), settings, 'default', packet(5), 10).state;
    const late = receivePacket(state, settings, 'flow', packet(4, { primary: true }), 20);
    assert.equal(late.verdict, 'old');
    state = late.state;
    const view = peerView(state);
    assert.equal(view.status === 'up' && view.advert.primary, false, 'the newer advert stays');
  });

  test('packets of an older incarnation are dropped; a newer incarnation starts its sequence again', () => {
    let state = receivePacket(start(), settings, 'default', packet(50, { incarnation: 5 }), 10).state;
    const restarted = receivePacket(state, settings, 'default', packet(1, { incarnation: 6 }), 20);
    assert.equal(restarted.verdict, 'accepted');
    state = restarted.state;
    const old = receivePacket(state, settings, 'flow', packet(51, { incarnation: 5 }), 30);
    assert.equal(old.verdict, 'oldIncarnation');
  });

  test('foreign, own, unknown-node and unknown-lan packets are dropped and counted', () => {
    const base = packet(1);
    let state = start();
    const verdicts = [
      receivePacket(state, settings, 'default', { ...base, header: { ...base.header, cluster: 'other' } }, 1),
      receivePacket(state, settings, 'default', { ...base, header: { ...base.header, module: 'web' } }, 1),
      receivePacket(state, settings, 'default', { ...base, header: { ...base.header, node: 'n1' } }, 1),
      receivePacket(state, settings, 'default', { ...base, header: { ...base.header, node: 'n9' } }, 1),
      receivePacket(state, settings, 'lan9', base, 1),
    ].map((result) => {
      state = result.state;
      return result.verdict;
    });
    assert.deepEqual(verdicts, ['foreign', 'foreign', 'self', 'unknownNode', 'unknownLan']);
    assert.deepEqual(peerView(state), { status: 'init' });
  });

  test('remote UNKNOWN only when all heartbeats are lost, each lan with its own timeout', () => {
    let state = receivePacket(start(), settings, 'default', packet(1), 100).state;
    state = receivePacket(state, settings, 'flow', packet(1), 100).state;
    state = expireLans(state, 1100).state;
    assert.equal(peerView(state).status, 'up', 'flow is still alive');
    assert.equal(minimumTimeoutMs(settings), 1000);
    state = expireLans(state, 3100).state;
    assert.deepEqual(peerView(state), { status: 'unknown' });
  });

  test('the sequence grows by one per packet and carries the acknowledgement of the peer', () => {
    let state = start();
    state = receivePacket(state, settings, 'default', packet(9), 5).state;
    const first = preparePacket(state, settings, { primary: false, state: 'WAIT' }, 10);
    const second = preparePacket(first.state, settings, { primary: false, state: 'WAIT' }, 20);
    assert.equal(first.packet.header.seq, 1);
    assert.equal(second.packet.header.seq, 2);
    assert.deepEqual(second.packet.header.ack, { incarnation: 5, seq: 9 });
  });

  describe("the secondary's promise", () => {
    function primaryRun(): LivenessState<Advert> {
      let state = start();
      state = preparePacket(state, settings, { primary: false, state: 'WAIT' }, 100).state; // seq 1
      state = preparePacket(state, settings, { primary: true, state: 'ALONE' }, 200).state; // seq 2
      state = preparePacket(state, settings, { primary: true, state: 'ALONE' }, 300).state; // seq 3
      return state;
    }

    test('an acknowledgement of a primary advert by a non-primary peer starts the promise at its send time', () => {
      const state = primaryRun();
      const acked = receivePacket(
        state,
        settings,
        'default',
        packet(1, { ack: { incarnation: 1, seq: 3 } }),
        310,
      );
      assert.equal(acked.state.promiseFromMs, 300);
      const view = peerView(acked.state);
      assert.equal(view.status === 'up' ? view.promiseFromMs : null, 300);
    });

    test('an acknowledgement of an advert sent before the primary run promises nothing', () => {
      const acked = receivePacket(
        primaryRun(),
        settings,
        'default',
        packet(1, { ack: { incarnation: 1, seq: 1 } }),
        310,
      );
      assert.equal(acked.state.promiseFromMs, null);
    });

    test('a peer that claims to be primary promises nothing', () => {
      let state = receivePacket(
        primaryRun(),
        settings,
        'default',
        packet(1, { ack: { incarnation: 1, seq: 3 } }),
        310,
      ).state;
      state = receivePacket(
        state,
        settings,
        'default',
        packet(2, { primary: true, ack: { incarnation: 1, seq: 3 } }),
        320,
      ).state;
      assert.equal(state.promiseFromMs, null);
    });

    test('once we advertise not primary, every earlier promise is void', () => {
      let state = receivePacket(
        primaryRun(),
        settings,
        'default',
        packet(1, { ack: { incarnation: 1, seq: 3 } }),
        310,
      ).state;
      state = preparePacket(state, settings, { primary: false, state: 'WAIT' }, 400).state;
      assert.equal(state.promiseFromMs, null);
      // A late acknowledgement of the old primary run counts no more.
      state = receivePacket(
        state,
        settings,
        'default',
        packet(2, { ack: { incarnation: 1, seq: 3 } }),
        410,
      ).state;
      assert.equal(state.promiseFromMs, null);
    });

    test('acknowledgements for another incarnation of ours promise nothing', () => {
      const acked = receivePacket(
        primaryRun(),
        settings,
        'default',
        packet(1, { ack: { incarnation: 9, seq: 3 } }),
        310,
      );
      assert.equal(acked.state.promiseFromMs, null);
    });

    test('both sides agree on sequence numbers: a round trip between two liveness states', () => {
      let primary = initialLiveness<Advert>(settings, 1, 0);
      let secondary = initialLiveness<Advert>(peerSettings, 5, 0);
      const sent = preparePacket(primary, settings, { primary: true, state: 'PRIM' }, 1000);
      primary = sent.state;
      secondary = receivePacket(secondary, peerSettings, 'default', sent.packet, 1001).state;
      const reply = preparePacket(secondary, peerSettings, { primary: false, state: 'SECOND' }, 1002);
      primary = receivePacket(primary, settings, 'default', reply.packet, 1003).state;
      assert.equal(primary.promiseFromMs, 1000);
    });
  });
});
