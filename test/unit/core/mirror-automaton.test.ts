// The mirror automaton against the reference: every row of 6.4 (scripts in order, arguments,
// `force` first on forced stops) and every transition M1-M17 of 2.2, the first start, prim /
// second / primforce, failover off, swap, split brain, maxloop, and the arbitrator's lease.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  defaultLeaseTiming,
  MirrorScenario,
  peer,
  type ScenarioInitial,
  type ScenarioSettings,
} from './mirror-harness.ts';

const me = 1; // our incarnation in every scenario
const them = 7; // the peer's

function fresh(settings: ScenarioSettings = {}, initial: ScenarioInitial = {}): MirrorScenario {
  return new MirrorScenario(settings, initial);
}

/** n1 started with `prim` while its peer is unknown: ALONE Ready, generation 1@n1. */
function alone(settings: ScenarioSettings = {}): MirrorScenario {
  const s = fresh(settings);
  s.play(peer.unknown);
  s.play({ type: 'command', verb: 'prim' });
  s.play({ type: 'runScripts' });
  assert.equal(s.state, 'ALONE Ready');
  return s;
}

/** n1 ALONE, then its peer joined as SECOND and finished: PRIM Ready with a confirmed secondary. */
function primWithSecond(settings: ScenarioSettings = {}): MirrorScenario {
  const s = alone(settings);
  s.play(peer.second(me, 'Transient'));
  s.play(peer.second(me, 'Ready'));
  s.play({ type: 'runScripts' });
  assert.equal(s.state, 'PRIM Ready');
  assert.equal(s.core.confirmedSecondary, them);
  return s;
}

/** n1 joined an ALONE peer as SECOND, reintegrated, and was confirmed: SECOND Ready. */
function second(settings: ScenarioSettings = {}): MirrorScenario {
  const s = fresh(settings, { persisted: { history: ['1@n2'] } });
  s.play(peer.alone(['1@n2']));
  s.play({ type: 'command', verb: 'start' });
  s.play({ type: 'runScripts' });
  assert.equal(s.state, 'SECOND Transient');
  s.play({ type: 'reintegration', outcome: 'done' });
  assert.equal(s.state, 'SECOND Ready');
  s.play(peer.prim(['1@n2', '2@n2'], me));
  assert.equal(s.core.confirmedBy, them);
  return s;
}

function scriptsSince(s: MirrorScenario, from: number): string[] {
  return s.scriptsRun.slice(from);
}

describe('reference 6.4: scripts in order for every transition', () => {
  test('STOP -> WAIT: transition, prestart', () => {
    const s = fresh();
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.deepEqual(s.scriptsRun, ['transition STOP WAIT start', 'prestart STOP WAIT start']);
  });

  test('WAIT -> ALONE: transition, start_both, start_prim, start_sec', () => {
    const s = alone();
    assert.deepEqual(s.scriptsRun.slice(2), [
      'transition WAIT ALONE start',
      'start_both WAIT ALONE start',
      'start_prim WAIT ALONE start',
      'start_sec WAIT ALONE start',
    ]);
    assert.deepEqual(s.core.activeClasses, ['pre', 'both', 'prim', 'sec']);
    assert.ok(s.allActions.includes('vip set'));
  });

  test('WAIT -> PRIM (both started together, elected): transition, start_both, start_prim', () => {
    const s = fresh({}, { persisted: { history: ['3@n1'], lastPrim: true } });
    s.play(peer.waiting(['3@n1']));
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'PRIM Ready');
    assert.deepEqual(s.scriptsRun.slice(2), [
      'transition WAIT PRIM start',
      'start_both WAIT PRIM start',
      'start_prim WAIT PRIM start',
    ]);
  });

  test('WAIT -> SECOND: transition, start_both, start_second, start_sec', () => {
    const s = second();
    assert.deepEqual(s.scriptsRun.slice(2), [
      'transition WAIT SECOND start',
      'start_both WAIT SECOND start',
      'start_second WAIT SECOND start',
      'start_sec WAIT SECOND start',
    ]);
  });

  test('ALONE -> PRIM (peer became SECOND): stop_sec, transition', () => {
    const s = alone();
    const from = s.scriptsRun.length;
    s.play(peer.second(me, 'Transient'));
    s.play(peer.second(me, 'Ready'));
    s.play({ type: 'runScripts' });
    assert.deepEqual(scriptsSince(s, from), ['stop_sec ALONE PRIM start', 'transition ALONE PRIM start']);
  });

  test('PRIM -> ALONE (peer left): transition, start_sec', () => {
    const s = primWithSecond();
    const from = s.scriptsRun.length;
    s.play(peer.stopped(['1@n1']));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.deepEqual(scriptsSince(s, from), ['transition PRIM ALONE start', 'start_sec PRIM ALONE start']);
  });

  test('SECOND -> ALONE (failover): stop_second, transition, start_prim', () => {
    const s = second();
    const from = s.scriptsRun.length;
    s.play(peer.unknown);
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.deepEqual(scriptsSince(s, from), [
      'stop_second SECOND ALONE start',
      'transition SECOND ALONE start',
      'start_prim SECOND ALONE start',
    ]);
  });

  test('ALONE -> SECOND (split brain, exiting alone): stop_prim, transition, start_second', () => {
    // n1 took over from n2 (2@n1 after n2's 1@n2); n2 kept going alone too (2@n2).
    const s = fresh({}, { persisted: { history: ['1@n2'], uptodate: false } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'prim' });
    s.play({ type: 'runScripts' });
    const from = s.scriptsRun.length;
    s.play(peer.alone(['1@n2', '2@n2']));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'SECOND Transient');
    assert.deepEqual(scriptsSince(s, from), [
      'stop_prim ALONE SECOND start',
      'transition ALONE SECOND start',
      'start_second ALONE SECOND start',
    ]);
  });

  test('swap, PRIM -> SECOND: stop_prim, transition, start_second, start_sec', () => {
    const s = primWithSecond();
    const from = s.scriptsRun.length;
    const record = s.play({ type: 'command', verb: 'swap' });
    assert.equal(record.accepted, true);
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'SECOND Transient');
    assert.deepEqual(scriptsSince(s, from), [
      'stop_prim PRIM SECOND start',
      'transition PRIM SECOND start',
      'start_second PRIM SECOND start',
      'start_sec PRIM SECOND start',
    ]);
    assert.equal(s.advert().handover, true);
    assert.equal(s.advert().primary, false);
  });

  test('swap, SECOND -> PRIM: stop_sec, stop_second, transition, start_prim', () => {
    const s = second();
    const from = s.scriptsRun.length;
    s.play(peer.second(me, 'Transient', { secondaryOf: null, handover: true, incarnation: them }));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'PRIM Ready');
    assert.deepEqual(scriptsSince(s, from), [
      'stop_sec SECOND PRIM start',
      'stop_second SECOND PRIM start',
      'transition SECOND PRIM start',
      'start_prim SECOND PRIM start',
    ]);
  });

  for (const [name, build, scripts] of [
    ['PRIM', primWithSecond, ['stop_prim', 'stop_both', 'start_both', 'start_prim']],
    ['ALONE', alone, ['stop_sec', 'stop_prim', 'stop_both', 'start_both', 'start_prim', 'start_sec']],
    ['SECOND', second, ['stop_sec', 'stop_second', 'stop_both', 'start_both', 'start_second', 'start_sec']],
  ] as const) {
    test(`restart in ${name}: ${scripts.join(', ')}`, () => {
      const s = build();
      const from = s.scriptsRun.length;
      const record = s.play({ type: 'command', verb: 'restart' });
      assert.equal(record.after, `${name} Transient`);
      s.play({ type: 'runScripts' });
      assert.equal(s.state, `${name} Ready`);
      assert.deepEqual(
        scriptsSince(s, from),
        scripts.map((script) => `${script} ${name} ${name} restart`),
      );
      assert.ok(!s.allActions.slice(-20).includes('vip unset'), 'a restart keeps the VIP');
    });
  }

  for (const [name, build, scripts] of [
    ['PRIM', primWithSecond, ['stop_prim', 'stop_both', 'transition']],
    ['ALONE', alone, ['stop_sec', 'stop_prim', 'stop_both', 'transition']],
    ['SECOND', second, ['stop_sec', 'stop_second', 'stop_both', 'transition']],
  ] as const) {
    test(`${name} -> WAIT -> STOP (stop): ${scripts.join(', ')}, then the forced stops, poststop, transition`, () => {
      const s = build();
      const from = s.scriptsRun.length;
      s.play({ type: 'command', verb: 'stop' });
      s.play({ type: 'runScripts' });
      assert.equal(s.state, 'STOP NotReady');
      assert.deepEqual(scriptsSince(s, from), [
        ...scripts.map((script) => `${script} ${name} WAIT stop`),
        'stop_sec force WAIT STOP stop',
        'stop_prim force WAIT STOP stop',
        'stop_second force WAIT STOP stop',
        'stop_both force WAIT STOP stop',
        'poststop WAIT STOP stop',
        'transition WAIT STOP stop',
      ]);
      assert.deepEqual(s.core.activeClasses, []);
    });
  }

  test('the VIP is removed after the stop scripts of the primary, before transition', () => {
    const s = alone();
    s.play({ type: 'command', verb: 'stop' });
    s.play({ type: 'runScripts' });
    const actions = s.allActions;
    const vipUnset = actions.indexOf('vip unset');
    assert.ok(vipUnset > actions.indexOf('run stop_both ALONE WAIT stop'));
    assert.ok(vipUnset < actions.indexOf('run transition ALONE WAIT stop'));
  });

  test('without <user> no script runs, the states are the same', () => {
    const s = alone({ scriptsEnabled: false });
    assert.deepEqual(s.scriptsRun, []);
    assert.equal(s.state, 'ALONE Ready');
  });
});

describe('reference 2.2: the transitions M1-M17', () => {
  test('M1: start from STOP goes to WAIT Transient', () => {
    const s = fresh();
    const record = s.play({ type: 'command', verb: 'start' });
    assert.equal(record.after, 'WAIT Transient');
    assert.ok(record.actions.includes('log U heart: Action start called by root'));
  });

  test('M2/M3: a wait rule still at init keeps WAIT Transient, a true one gives WAIT NotReady, the wakeup resumes', () => {
    const s = fresh({}, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'waitStatus', wait: { status: 'pending' } });
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT Transient');
    const blocked = s.play({ type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } });
    assert.equal(blocked.after, 'WAIT NotReady');
    assert.ok(blocked.actions.includes('log E heart: Action wait from failover rule p_gateway'));
    const wake = s.play({ type: 'waitStatus', wait: { status: 'clear' } });
    assert.ok(wake.actions.includes('log E heart: Action wakeup from failover rule Implicit_wakeup'));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
  });

  test('M4: an up-to-date node whose peer is UNKNOWN starts ALONE; so does `prim`', () => {
    const s = fresh({}, { persisted: { history: ['4@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.deepEqual(
      s.core.persisted.history.map((g) => `${g.counter}@${g.node}`),
      ['4@n1', '5@n1'],
    );
  });

  test('M4: a node that is not up to date waits (notuptodate_server) when its peer is UNKNOWN', () => {
    const s = fresh({}, { persisted: { history: ['4@n2'], uptodate: false } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    const record = s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    assert.ok(
      record.actions.includes(
        'log E heart: Data may be not uptodate for replicated directories (wait for the start of the remote server)',
      ),
    );
    assert.ok(record.actions.includes('log E heart: Action wait from failover rule notuptodate_server'));
  });

  test('M5: a node whose peer is ALONE becomes SECOND, reintegrates, then SECOND Ready', () => {
    const s = second();
    assert.equal(s.state, 'SECOND Ready');
    assert.ok(s.allActions.some((action) => action.startsWith(`replication secondary of #${them}`)));
  });

  test('M6: both start together; the node with newer data is elected and goes PRIM, the other waits for it', () => {
    const winner = fresh({}, { persisted: { history: ['1@n1', '2@n1'] } });
    winner.play(peer.waiting(['1@n1']));
    winner.play({ type: 'command', verb: 'start' });
    winner.play({ type: 'runScripts' });
    assert.equal(winner.state, 'PRIM Ready');
    const loser = fresh({}, { persisted: { history: ['1@n1'] } });
    loser.play(peer.waiting(['1@n1', '2@n1']));
    loser.play({ type: 'command', verb: 'start' });
    const record = loser.play({ type: 'runScripts' });
    assert.equal(loser.state, 'WAIT Transient');
    assert.equal(loser.core.hold, 'the remote node is elected primary (newer data)');
    assert.ok(record.actions.length > 0);
  });

  test('M7: ALONE becomes PRIM once its secondary finished reintegrating', () => {
    const s = primWithSecond();
    assert.ok(s.allActions.includes(`replication primary generation=1@n1 secondary=#${them}/1`));
    assert.ok(s.allActions.includes('log E heart: Remote node n2 is SECOND up to date: replication in sync'));
  });

  test('M8: PRIM goes ALONE when heartbeats are lost ("no heartbeat") or the peer stops ("remote stop")', () => {
    const lost = primWithSecond();
    const record = lost.play(peer.unknown);
    assert.ok(record.actions.includes('log U heart: Action alone called by heart: no heartbeat'));
    assert.equal(record.after, 'ALONE Ready', 'no downtime');
    const stopped = primWithSecond();
    const stop = stopped.play(peer.stopped(['1@n1']));
    assert.ok(stop.actions.includes('log U heart: Action alone called by heart: remote stop'));
  });

  test('M8: going ALONE starts a new data generation before writes resume', () => {
    const s = primWithSecond();
    const record = s.play(peer.unknown);
    assert.ok(record.actions.includes('replication primary generation=2@n1 secondary=none'));
    assert.deepEqual(
      s.core.persisted.history.map((g) => `${g.counter}@${g.node}`),
      ['1@n1', '2@n1'],
    );
  });

  test('M9: a confirmed SECOND fails over when its primary is lost', () => {
    const s = second();
    const record = s.play(peer.unknown);
    assert.ok(record.actions.includes('log U heart: Action alone called by heart: no heartbeat'));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.ok(s.allActions.includes('vip set'));
  });

  test('M9: a SECOND fails over when its primary stops (remote stop), once the primary released the role', () => {
    const s = second();
    const stopping = s.play(peer.prim(['1@n2', '2@n2'], me, { state: 'WAIT', readiness: 'Transient' }));
    assert.equal(stopping.after, 'SECOND Ready', 'the primary still runs its stop scripts');
    const released = s.play(peer.stopped(['1@n2', '2@n2']));
    assert.ok(released.actions.includes('log U heart: Action alone called by heart: remote stop'));
  });

  test('M10: with failover="off" the SECOND goes WAIT NotReady through a stopstart', () => {
    const s = second();
    s.play({ type: 'failoverSetting', value: 'off' });
    const record = s.play(peer.unknown);
    assert.ok(record.actions.includes('log E heart: Failover-off configured'));
    assert.ok(record.actions.includes('log U heart: Action stopstart called by failover-off'));
    assert.ok(record.actions.includes('log E heart: Transition STOPSTART from failover-off'));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    assert.equal(s.core.hold, 'Failover-off configured');
    assert.ok(!s.allActions.includes('vip set'));
  });

  test('M10: `prim` promotes the held node where it waits, without a stop; `start` there is refused', () => {
    const s = second();
    s.play({ type: 'failoverSetting', value: 'off' });
    s.play(peer.unknown);
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    const start = s.play({ type: 'command', verb: 'start' });
    assert.equal(start.accepted, false);
    const prim = s.play({ type: 'command', verb: 'prim' });
    assert.equal(prim.accepted, true, prim.message);
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.ok(s.allActions.includes('vip set'));
    assert.equal(s.core.hold, null);
  });

  test('M10: only `prim` promotes it (after stop)', () => {
    const s = second();
    s.play({ type: 'failoverSetting', value: 'off' });
    s.play(peer.unknown);
    s.play({ type: 'runScripts' });
    s.play({ type: 'command', verb: 'stop' });
    s.play({ type: 'runScripts' });
    s.play({ type: 'command', verb: 'prim' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
  });

  test('M11: a SECOND that loses its primary during reintegration waits; prim is refused, primforce works', () => {
    const s = fresh({}, { persisted: { history: ['1@n2'] } });
    s.play(peer.alone(['1@n2', '2@n2']));
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'SECOND Transient');
    const lost = s.play(peer.unknown);
    assert.ok(lost.actions.some((action) => action.includes('Remote primary lost during reintegration')));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    assert.equal(s.core.persisted.reintegrating, true);
    s.play({ type: 'command', verb: 'stop' });
    s.play({ type: 'runScripts' });
    const prim = s.play({ type: 'command', verb: 'prim' });
    assert.equal(prim.accepted, false);
    assert.match(prim.message, /Data may be inconsistent.*primforce.*Requested prim start aborted/);
    s.play({ type: 'command', verb: 'primforce' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    assert.equal(s.core.persisted.peerNeedsFullsync, true, 'the other node resynchronises fully later');
  });

  test('M12: defaultprim names the secondary: after its reintegration the pair swaps ("Transition SWAP from defaultprim")', () => {
    const s = alone({ defaultPrimary: { kind: 'node', node: 'n2' } });
    s.play(peer.second(me, 'Transient'));
    s.play(peer.second(me, 'Ready'));
    const record = s.play({ type: 'runScripts' });
    // M7 first (ALONE -> PRIM), then at once the swap back to the default primary.
    const prim = record.actions.indexOf('log E heart: Local state PRIM Ready');
    const swap = record.actions.indexOf('log E heart: Transition SWAP from defaultprim');
    assert.ok(prim >= 0 && swap > prim, record.actions.join('\n'));
    assert.ok(record.actions.includes('log E heart: Begin of Swap'));
    assert.equal(s.state, 'SECOND Transient');
    assert.equal(s.advert().handover, true);
    // Once only for this secondary incarnation: no swap loop.
    assert.equal(s.core.autoSwapFor, them);
  });

  test('M12: swap asked on the SECOND is carried out by the primary', () => {
    const s = second();
    const record = s.play({ type: 'command', verb: 'swap' });
    assert.equal(record.accepted, true);
    assert.equal(record.message, 'swap requested from the primary');
    assert.equal(s.advert().swapRequest, true);
  });

  test('M12: swap is refused unless the pair is PRIM Ready / SECOND Ready', () => {
    const s = alone();
    const record = s.play({ type: 'command', verb: 'swap' });
    assert.equal(record.accepted, false);
  });

  test('M13: a healed split brain: the former primary stays alone, the other exits and keeps its data aside', () => {
    // n2 was primary (1@n2); both went ALONE during the split: n2 under 2@n2, n1 under 2@n1.
    const staying = fresh({}, { persisted: { history: ['1@n1'] } });
    staying.play(peer.unknown);
    staying.play({ type: 'command', verb: 'prim' });
    staying.play({ type: 'runScripts' });
    const stay = staying.play(peer.alone(['1@n1', '2@n2']));
    assert.ok(
      stay.actions.some((action) => action.startsWith('log E heart: Split brain recovery: staying alone')),
    );
    assert.equal(staying.state, 'ALONE Ready');

    const exiting = fresh({}, { persisted: { history: ['1@n2'] } });
    exiting.play(peer.unknown);
    exiting.play({ type: 'command', verb: 'prim' });
    exiting.play({ type: 'runScripts' });
    const exit = exiting.play(peer.alone(['1@n2', '2@n2']));
    assert.ok(exit.actions.includes('log E heart: Split brain recovery: exiting alone'));
    exiting.play({ type: 'runScripts' });
    assert.ok(
      exiting.allActions.some((action) => action.startsWith('keepAside 2@n1: data of generation 2@n1')),
    );
    const keepAside = exiting.allActions.findIndex((action) => action.startsWith('keepAside'));
    const attach = exiting.allActions.findIndex((action) => action.startsWith('replication secondary'));
    assert.ok(keepAside >= 0 && keepAside < attach, 'kept aside before the reintegration starts');
  });

  test('M14: restart keeps the state and the VIP', () => {
    const s = primWithSecond();
    s.play({ type: 'command', verb: 'restart', identity: 'c_app', rule: 'c_app' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'PRIM Ready');
    assert.equal(s.core.vip, true);
  });

  test('M15: stopstart on PRIM stops then starts again ("Action start called automatically")', () => {
    const s = primWithSecond();
    s.play({ type: 'command', verb: 'stopstart', identity: 'ip_failure', rule: 'ip_failure' });
    s.play({ type: 'runScripts' });
    assert.ok(s.allActions.includes('log U heart: Action start called automatically'));
    assert.ok(s.allActions.includes('vip unset'));
    assert.equal(s.core.state, 'WAIT');
  });

  test('M15: wait on PRIM stops into WAIT with stopwait and the forced stops', () => {
    const s = primWithSecond();
    s.play({ type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } });
    const from = s.scriptsRun.length;
    s.play({ type: 'command', verb: 'wait', identity: 'p_gateway', rule: 'p_gateway' });
    s.play({ type: 'runScripts' });
    assert.deepEqual(scriptsSince(s, from), [
      'stop_prim PRIM WAIT stopwait',
      'stop_both PRIM WAIT stopwait',
      'transition PRIM WAIT stopwait',
      'stop_sec force PRIM WAIT stopwait',
      'stop_prim force PRIM WAIT stopwait',
      'stop_second force PRIM WAIT stopwait',
      'stop_both force PRIM WAIT stopwait',
    ]);
    assert.equal(s.state, 'WAIT NotReady');
  });

  test('M16: the 4th counted action within loop_interval stops the module (maxloop 3)', () => {
    const s = alone();
    for (let round = 1; round <= 3; round += 1) {
      s.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
      s.play({ type: 'runScripts' });
    }
    const fourth = s.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
    assert.ok(fourth.actions.includes('log U heart: Action stop called by maxloop'));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'STOP NotReady');
  });

  test('M17: a node waiting with stale data becomes SECOND when the other node starts as primary', () => {
    const s = fresh({}, { persisted: { history: ['1@n1'] } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    s.play(peer.alone(['1@n1', '2@n2']));
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'SECOND Transient');
    assert.ok(!s.allActions.some((action) => action.startsWith('keepAside')), 'nothing to keep: older data');
  });
});

describe('reference 2.3 and 2.5: first start, prim, second, primforce', () => {
  test('first start: two fresh nodes both wait (NotReady) until prim on one', () => {
    const s = fresh();
    s.play(peer.waiting([]));
    s.play({ type: 'command', verb: 'start' });
    const record = s.play({ type: 'runScripts' });
    assert.equal(s.state, 'WAIT NotReady');
    assert.ok(
      record.actions.includes(
        'log E heart: If you are sure that this server has valid data, run hakit stop, then hakit prim',
      ),
    );
  });

  test('prim is refused when the other node is already primary', () => {
    const s = fresh();
    s.play(peer.alone(['1@n2']));
    const record = s.play({ type: 'command', verb: 'prim' });
    assert.equal(record.accepted, false);
    assert.match(record.message, /already primary/);
  });

  test('second is refused when the other node is not primary', () => {
    const s = fresh();
    s.play(peer.stopped());
    const record = s.play({ type: 'command', verb: 'second' });
    assert.equal(record.accepted, false);
    assert.match(record.message, /not primary/);
  });

  test('second fullsync asks the replication for a full resynchronisation', () => {
    const s = fresh({}, { persisted: { history: ['1@n2'] } });
    s.play(peer.alone(['1@n2']));
    s.play({ type: 'command', verb: 'second', options: { fullsync: true } });
    s.play({ type: 'runScripts' });
    assert.ok(s.allActions.includes(`replication secondary of #${them} attach 1 fullsync`));
  });

  test('prim and second are only possible from STOP', () => {
    const s = alone();
    assert.equal(s.play({ type: 'command', verb: 'prim' }).accepted, false);
    assert.equal(s.play({ type: 'command', verb: 'start' }).accepted, false);
  });
});

describe('the arbitrator lease', () => {
  const arbitrated = { arbitrator: defaultLeaseTiming };

  test('a node becomes primary only once the arbitrator granted a lease recording its generation', () => {
    const s = fresh(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    const asked = s.play({ type: 'runScripts' });
    assert.ok(asked.actions.includes('leaseRequest seq=1 data=1@n1 claim=2@n1'));
    assert.equal(s.state, 'WAIT Transient');
    assert.ok(!s.allActions.includes('vip set'));
    const granted = s.play({ type: 'lease', answer: 'granted' });
    assert.equal(granted.after, 'ALONE Transient');
    assert.ok(granted.actions.some((action) => action.startsWith('authority until')));
  });

  test('a refused lease holds the node in WAIT NotReady with the reason', () => {
    const s = fresh(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    const refused = s.play({ type: 'lease', answer: 'held', holder: 'n2' });
    assert.equal(refused.after, 'WAIT NotReady');
    assert.equal(s.core.hold, 'Arbitrator refused the lease: the lease is held by n2');
  });

  test('a failover needs the lease: refused, the SECOND goes WAIT instead of ALONE', () => {
    const s = second(arbitrated);
    const lost = s.play(peer.unknown);
    assert.ok(lost.actions.some((action) => action.startsWith('leaseRequest')));
    s.play({ type: 'lease', answer: 'held', holder: 'n2' });
    s.play({ type: 'runScripts' });
    assert.equal(s.core.state, 'WAIT');
    assert.ok(!s.allActions.includes('vip set'));
  });

  test('a primary that keeps neither its lease nor its peer promise fences itself at the deadline', () => {
    const s = fresh(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    s.play({ type: 'lease', answer: 'granted' });
    s.play({ type: 'runScripts' });
    assert.equal(s.state, 'ALONE Ready');
    const until = s.core.lease.grant?.validUntilMs ?? 0;
    // Renewals go unanswered; at the deadline the VIP goes first, then the stop scripts.
    const expired = s.play({ type: 'tick', atMs: until });
    assert.equal(expired.actions[0], 'vip unset');
    assert.ok(expired.actions.includes('replication none'));
    s.play({ type: 'runScripts', atMs: until + 1 });
    assert.equal(s.core.state, 'WAIT');
    assert.equal(s.core.primary, false);
  });

  test("the secondary's promise keeps a primary that lost the arbitrator", () => {
    const s = fresh(arbitrated, { persisted: { history: ['1@n1'], uptodate: true } });
    s.play(peer.unknown);
    s.play({ type: 'command', verb: 'start' });
    s.play({ type: 'runScripts' });
    s.play({ type: 'lease', answer: 'granted' });
    s.play({ type: 'runScripts' });
    const until = s.core.lease.grant?.validUntilMs ?? 0;
    s.play({ ...peer.second(me, 'Ready'), promiseFromMs: until - 500, atMs: until - 400 });
    const record = s.play({ type: 'tick', atMs: until + 10 });
    assert.ok(!record.actions.includes('vip unset'), 'the promise extends the authority');
    assert.ok(s.core.vip);
  });
});
