// Every seed the simulator ever failed on, replayed with the step count it failed with, and for
// each core bug a deterministic reproduction on one node (the seeds depend on how the simulator
// draws its random numbers; these do not).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { initialMirrorCore, nextDeadlineMs } from '../../agent/core/mirror-automaton.ts';
import { defaultLeaseTiming, MirrorScenario, peer } from '../unit/core/mirror-harness.ts';
import { simulate } from './simulator.ts';

interface Regression {
  seed: number;
  steps: number;
  revealed: string;
}

const regressions: Regression[] = [
  {
    seed: 3,
    steps: 3000,
    revealed:
      'core: nextDeadlineMs returned a lease retry deadline already past that nothing acted on: endless ticks at one instant',
  },
  {
    seed: 11,
    steps: 5000,
    revealed:
      'simulator: after the primary dropped its secondary, writes were applied locally at once; the data path keeps ' +
      'them blocked until a command names a new generation (modelled since)',
  },
  {
    seed: 27,
    steps: 5000,
    revealed:
      'core/lease: a release marked "unused claim" named a grant whose claim had been written under (a newer claim was ' +
      'pending but not yet asked), so the arbitrator forgot a written generation; and a witness request could not ask ' +
      'again for its own unconfirmed claim, leaving both nodes refused as stale',
  },
  {
    seed: 29,
    steps: 5000,
    revealed:
      'core: after an administrator prim forked the data, the election (former primary survives) and the arbitrator ' +
      '(newest registered generation) disagreed and both nodes waited forever; the election loser now asks the ' +
      'arbitrator as a witness when the elected peer cannot lead',
  },
  {
    seed: 31,
    steps: 5000,
    revealed:
      'core: a PRIM whose secondary was leaving stopped replicating to it under the same generation before going ALONE; ' +
      'writes resumed that neither the secondary nor the arbitrator knew of, and a later witness promotion lost them',
  },
  {
    seed: 33,
    steps: 5000,
    revealed:
      'core: a primary that lost its secondary by heartbeat loss did not remember the attachment it dropped and ' +
      're-confirmed it from its stale SECOND Ready advert after a pause: the secondary missed writes',
  },
  {
    seed: 34,
    steps: 5000,
    revealed:
      'simulator: the peer-view change detection ignored new advert fields (attach, dropped): a node never resynchronised',
  },
  {
    seed: 1006,
    steps: 20_000,
    revealed:
      'core: a primary demoted and promoted again in one daemon incarnation took the old secondary attachment (same ' +
      'incarnation) as in sync with its new tenure; attachments now name the primary tenure',
  },
  { seed: 1069, steps: 20_000, revealed: 'as seed 1006 (another partition shape)' },
  { seed: 1103, steps: 20_000, revealed: 'as seed 1006 (with a daemon pause)' },
  {
    seed: 1168,
    steps: 20_000,
    revealed:
      'core: a primary frozen past its authority resumed and advertised itself primary before its overdue tick; the ' +
      'lease holder took it for a split brain, lost the history rule and put its newest data aside. Adverts now ' +
      'reflect authority at send time, and a valid lease wins a split-brain encounter',
  },
  { seed: 1591, steps: 20_000, revealed: 'as seed 1168' },
  {
    seed: 2073,
    steps: 20_000,
    revealed:
      'lease: an administrator prim on the stale node registered a forced claim; the node crashed before using it, ' +
      'and after its reboot a plain start asked again for "its own claim" and was promoted with stale data. Own ' +
      'claims are granted again only on the same data and, if forced, only when forced again',
  },
  { seed: 2492, steps: 20_000, revealed: 'as seed 2073' },
  {
    seed: 5048,
    steps: 20_000,
    revealed:
      'lease: the arbitrator kept registering a forced claim that its node never used (it crashed, then claimed ' +
      'another counter): both nodes refused as stale forever. A node now disowns a registered claim of its own that ' +
      'its persisted history proves unused, and the arbitrator falls back',
  },
  {
    seed: 5554,
    steps: 20_000,
    revealed: 'as seed 5048 (an unforced claim under a counter the node no longer computes)',
  },
  {
    seed: 5138,
    steps: 20_000,
    revealed:
      'simulator: after an administrator primforce the oracle still compared promotions to the sacrificed data; a ' +
      'forced promotion now sets the reference data',
  },
  { seed: 6034, steps: 20_000, revealed: 'as seed 5138' },
  {
    seed: 8621,
    steps: 20_000,
    revealed:
      'simulator: the forced generation of a prim was committed, then the node froze and crashed before its VIP ' +
      "came up; the oracle forgot the administrator's decision. It now adopts it when the core takes the role",
  },
  { seed: 9623, steps: 20_000, revealed: 'as seed 8621 (primforce, crash after taking the role)' },
  {
    seed: 8761,
    steps: 20_000,
    revealed:
      'core: a reintegration failure reported while the SECOND still ran its start scripts became a wait command ' +
      'refused as busy and was lost: the node stayed SECOND Transient for ever. Such resynchronisations (and a ' +
      'secondary lost during a PRIM transition) are now kept until the transition ends',
  },
  {
    seed: 9621,
    steps: 20_000,
    revealed:
      'core: the arbitrator registered an unused claim of a node held as inconsistent; that node never asked the ' +
      'arbitrator anything, so never disowned it, and the other node was refused as stale for ever. A node held for ' +
      'its data now probes the arbitrator (a request it cannot grant) to learn what it registers',
  },
];

describe('simulator seeds that once failed', () => {
  for (const regression of regressions) {
    test(`seed ${regression.seed} (${regression.steps} steps): ${regression.revealed}`, () => {
      const result = simulate({ seed: regression.seed, steps: regression.steps });
      assert.equal(result.violation, null, result.violation?.message);
      assert.ok(result.converged, 'converged after healing');
    });
  }
});

describe('the core bugs behind them, on one node', () => {
  const arbitrated = { arbitrator: defaultLeaseTiming };

  test('seed 3: the next deadline is always in the future', () => {
    const s = new MirrorScenario(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    s.play({ type: 'lease', answer: 'held', holder: 'n2' });
    for (const nowMs of [500, 1500, 5000, 20_000]) {
      const deadline = nextDeadlineMs(s.core, s.settings, nowMs);
      assert.ok(deadline === null || deadline > nowMs, `deadline ${deadline} at ${nowMs}`);
    }
    assert.equal(nextDeadlineMs(initialMirrorCore(0, 1), s.settings, 0), null);
  });

  test('seed 27: a committed claim is never given back as unused', () => {
    // ALONE under 2@n1 (committed), then PRIM with a secondary, then the secondary goes: a new
    // claim 3@n1 is computed, and the module stops before asking for it.
    const s = new MirrorScenario(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.playAll([
      peer.unknown,
      { type: 'command', verb: 'start' },
      { type: 'runScripts' },
      { type: 'lease', answer: 'granted' },
    ]);
    s.playAll([
      { type: 'runScripts' },
      peer.second(1, 'Transient'),
      peer.second(1, 'Ready'),
      { type: 'runScripts' },
    ]);
    s.play(peer.unknown);
    assert.deepEqual(s.core.claim, { counter: 3, node: 'n1' });
    s.play({ type: 'command', verb: 'stop' });
    s.play({ type: 'runScripts' });
    const releases = s.allActions.filter((action) => action.startsWith('leaseRelease'));
    assert.ok(releases.length > 0);
    for (const release of releases) {
      if (release.includes('unusedClaim')) {
        // Only a release naming the request that carried 3@n1 may say so.
        assert.ok(
          s.allActions.some((action) => action.startsWith('leaseRequest') && action.includes('claim=3@n1')),
          release,
        );
      }
    }
  });

  test('seed 29: the election loser whose elected peer cannot lead asks the arbitrator as a witness', () => {
    // n1 wrote 8@n1, n2 was forced primary (prim) and wrote 9@n2; the arbitrator knows 9@n2.
    const s = new MirrorScenario(
      { ...arbitrated, node: 'n2', peerNode: 'n1' },
      { persisted: { history: ['7@n1', '9@n2'] } },
    );
    s.play(peer.waiting(['7@n1', '8@n1'], { readiness: 'NotReady' }));
    s.play({ type: 'command', verb: 'start' });
    const record = s.play({ type: 'runScripts' });
    assert.ok(
      record.actions.some((action) => action.startsWith('leaseRequest') && action.endsWith('witness')),
      record.actions.join('\n'),
    );
  });

  test('seed 31: a PRIM never stops replicating to its secondary under the same generation', () => {
    const s = new MirrorScenario();
    s.playAll([peer.unknown, { type: 'command', verb: 'prim' }, { type: 'runScripts' }]);
    s.playAll([peer.second(1, 'Transient'), peer.second(1, 'Ready'), { type: 'runScripts' }]);
    const before = s.allActions.length;
    s.play(peer.second(1, 'Ready', { state: 'WAIT', readiness: 'Transient', secondaryOf: null }));
    const replication = s.allActions.slice(before).filter((action) => action.startsWith('replication'));
    assert.deepEqual(replication, ['replication primary generation=2@n1 secondary=none']);
  });

  test('seed 33: a secondary lost by heartbeat loss is not taken back from its stale advert', () => {
    const s = new MirrorScenario();
    s.playAll([peer.unknown, { type: 'command', verb: 'prim' }, { type: 'runScripts' }]);
    s.playAll([peer.second(1, 'Transient'), peer.second(1, 'Ready'), { type: 'runScripts' }]);
    s.playAll([peer.unknown, { type: 'runScripts' }]);
    assert.equal(s.state, 'ALONE Ready');
    // The secondary was paused; its old advert arrives again.
    s.play(peer.second(1, 'Ready'));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready', 'no M7 from a dropped attachment');
    assert.deepEqual(s.advert().dropped, { incarnation: 7, attach: 1 });
  });

  test('seed 5048: a refusal naming an unused claim of ours makes us disown it', () => {
    const s = new MirrorScenario(arbitrated, { persisted: { history: ['1@n1', '6@n1'] } });
    s.playAll([peer.unknown, { type: 'command', verb: 'start' }, { type: 'runScripts' }]);
    const refused = s.play({ type: 'lease', answer: 'stale', registered: '7@n1' });
    assert.ok(
      refused.actions.includes('leaseRelease seq=2 unusedClaim disown=7@n1'),
      refused.actions.join('\n'),
    );
    // A claim in our history was written under: never disowned.
    const t = new MirrorScenario(arbitrated, { persisted: { history: ['1@n1', '7@n1'] } });
    t.playAll([peer.unknown, { type: 'command', verb: 'start' }, { type: 'runScripts' }]);
    const kept = t.play({ type: 'lease', answer: 'stale', registered: '7@n1' });
    assert.ok(!kept.actions.some((action) => action.includes('disown')));
  });

  test('seed 8761: a reintegration failure during the transition into SECOND is not lost', () => {
    const s = new MirrorScenario({}, { persisted: { history: ['1@n2'] } });
    s.playAll([peer.alone(['1@n2']), { type: 'command', verb: 'start' }]);
    // The failure arrives while the start scripts still run.
    while (s.pendingScript() !== 'start_second')
      s.play({ type: 'scriptDone', script: s.pendingScript() ?? '' });
    s.play({ type: 'reintegration', outcome: 'failed' });
    s.play({ type: 'runScripts' });
    assert.ok(s.allActions.includes('log U heart: Action wait called by reintegre'), s.allActions.join('\n'));
    assert.equal(s.state, 'SECOND Transient', 'resynchronised: attached again from WAIT');
    assert.equal(s.core.attach, 2);
  });

  test('seed 9621: a node held for its data probes the arbitrator and disowns its unused claim', () => {
    const s = new MirrorScenario(arbitrated, {
      persisted: { history: ['1@n1', '9@n2'], reintegrating: true },
    });
    s.playAll([peer.unknown, { type: 'command', verb: 'start', who: 'root' }, { type: 'runScripts' }]);
    assert.equal(s.core.hold, 'data inconsistent');
    assert.ok(
      s.allActions.includes('leaseRequest seq=1 data=none claim=none witness'),
      'the probe: a request the arbitrator cannot grant',
    );
    const refused = s.play({ type: 'lease', answer: 'stale', registered: '11@n1', atMs: 5000 });
    assert.ok(
      refused.actions.some((action) => action.endsWith('disown=11@n1')),
      refused.actions.join('\n'),
    );
  });

  test('seed 1006: a secondary attached to an earlier tenure is not confirmed by the new one', () => {
    const s = new MirrorScenario(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.playAll([
      peer.unknown,
      { type: 'command', verb: 'start' },
      { type: 'runScripts' },
      { type: 'lease', answer: 'granted' },
    ]);
    s.play({ type: 'runScripts' });
    const firstTenure = s.core.tenure;
    // Authority lost: demoted; then granted again: primary again in the same incarnation.
    const until = s.core.lease.grant?.validUntilMs ?? 0;
    s.play({ type: 'tick', atMs: until });
    // Back in WAIT it asks again at once (up to date, peer unknown) and is granted.
    s.play({ type: 'runScripts', atMs: until + 1 });
    s.play({ type: 'lease', answer: 'granted', atMs: until + 2 });
    s.play({ type: 'runScripts', atMs: until + 3 });
    assert.equal(s.state, 'ALONE Ready');
    assert.equal(s.core.tenure, firstTenure + 1);
    // A SECOND that attached to the first tenure shows up.
    s.play({ ...peer.second(1, 'Ready', { secondaryTenure: firstTenure }), atMs: until + 4 });
    s.play({ type: 'runScripts', atMs: until + 5 });
    assert.equal(s.state, 'ALONE Ready');
    assert.equal(s.core.confirmedSecondary, null);
  });
});
