// The farm/light automaton against the reference: script order and arguments (6.4), maxloop
// (2.7), wait and wakeup (M2), failures, queued commands.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FarmScenario } from './farm-harness.ts';

const settings = { maxloop: 3, loopIntervalMs: 24 * 3600_000, scriptsEnabled: true };

function started(): FarmScenario {
  const scenario = new FarmScenario(settings);
  scenario.play({ type: 'command', verb: 'start' });
  scenario.play({ type: 'runScripts' });
  return scenario;
}

describe('farm automaton', () => {
  test('start runs transition, prestart, then transition and the start scripts, and ends UP Ready', () => {
    const scenario = started();
    assert.deepEqual(scenario.scriptsRun, [
      'transition STOP WAIT start',
      'prestart STOP WAIT start',
      'transition WAIT UP start',
      'start_both WAIT UP start',
      'start_prim WAIT UP start',
      'start_sec WAIT UP start',
    ]);
    assert.equal(scenario.core.state, 'UP');
    assert.equal(scenario.core.readiness, 'Ready');
    assert.deepEqual(scenario.core.activeClasses, ['pre', 'both', 'prim', 'sec']);
  });

  test('stop runs the graceful stops, then the forced ones with force first, poststop and transition', () => {
    const scenario = started();
    scenario.scriptsRun.length = 0;
    scenario.play({ type: 'command', verb: 'stop' });
    scenario.play({ type: 'runScripts' });
    assert.deepEqual(scenario.scriptsRun, [
      'stop_sec UP WAIT stop',
      'stop_prim UP WAIT stop',
      'stop_both UP WAIT stop',
      'transition UP WAIT stop',
      'stop_sec force WAIT STOP stop',
      'stop_prim force WAIT STOP stop',
      'stop_second force WAIT STOP stop',
      'stop_both force WAIT STOP stop',
      'poststop WAIT STOP stop',
      'transition WAIT STOP stop',
    ]);
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'STOP NotReady');
    assert.deepEqual(scenario.core.activeClasses, []);
  });

  test('restart in UP runs only the stop then start scripts and stays UP', () => {
    const scenario = started();
    scenario.scriptsRun.length = 0;
    const record = scenario.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
    assert.equal(record.state, 'UP Transient');
    assert.ok(record.actions.includes('log U heart: Action restart called by errd'));
    scenario.play({ type: 'runScripts' });
    assert.deepEqual(scenario.scriptsRun, [
      'stop_sec UP UP restart',
      'stop_prim UP UP restart',
      'stop_both UP UP restart',
      'start_both UP UP restart',
      'start_prim UP UP restart',
      'start_sec UP UP restart',
    ]);
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'UP Ready');
  });

  test('the 4th counted action within loop_interval stops the module (maxloop 3)', () => {
    const scenario = started();
    for (let round = 1; round <= 3; round += 1) {
      const record = scenario.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
      assert.equal(record.accepted, true, `restart ${round}`);
      scenario.play({ type: 'runScripts' });
      assert.equal(scenario.core.state, 'UP');
    }
    const fourth = scenario.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
    assert.ok(
      fourth.actions.includes('log U heart: Action stop called by maxloop'),
      fourth.actions.join('\n'),
    );
    scenario.play({ type: 'runScripts' });
    assert.equal(scenario.core.state, 'STOP');
  });

  test('an admin action without identity resets the maxloop count', () => {
    const scenario = started();
    for (let round = 1; round <= 3; round += 1) {
      scenario.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
      scenario.play({ type: 'runScripts' });
    }
    scenario.play({ type: 'command', verb: 'restart' });
    scenario.play({ type: 'runScripts' });
    const next = scenario.play({ type: 'command', verb: 'restart', identity: 'errd', who: 'errd' });
    assert.ok(!next.actions.some((action) => action.includes('maxloop')));
    scenario.play({ type: 'runScripts' });
    assert.equal(scenario.core.state, 'UP');
  });

  test('actions outside loop_interval do not count', () => {
    const scenario = new FarmScenario({ ...settings, loopIntervalMs: 10_000 });
    scenario.play({ type: 'command', verb: 'start' });
    scenario.play({ type: 'runScripts' });
    for (let round = 1; round <= 6; round += 1) {
      scenario.play({
        type: 'command',
        verb: 'restart',
        identity: 'errd',
        who: 'errd',
        atMs: round * 20_000,
      });
      scenario.play({ type: 'runScripts', atMs: round * 20_000 + 1 });
    }
    assert.equal(scenario.core.state, 'UP');
  });

  test('a failing start script leads to a stopstart counted against maxloop, ending in STOP', () => {
    const scenario = new FarmScenario(settings);
    scenario.play({ type: 'command', verb: 'start' });
    const record = scenario.play({ type: 'runScripts', exitCodesAlways: { start_both: 1 } });
    assert.equal(scenario.core.state, 'STOP');
    assert.equal(
      scenario.scriptsRun.filter((line) => line.startsWith('start_both')).length,
      4,
      'first try + 3 retries',
    );
    assert.ok(
      scenario.records.some((entry) => entry.actions.includes('log U heart: Action stop called by maxloop')),
      'maxloop stopped the retries',
    );
    assert.ok(record.actions.length > 0);
    assert.match(scenario.core.lastFailure ?? '', /start_both failed/);
  });

  test('a blocking wait rule holds the start in WAIT NotReady and the wakeup resumes it', () => {
    const scenario = new FarmScenario(settings);
    scenario.play({ type: 'command', verb: 'start' });
    scenario.play({ type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } });
    scenario.play({ type: 'runScripts' });
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'WAIT NotReady');
    assert.equal(scenario.core.blockingRule, 'p_gateway');
    assert.ok(!scenario.scriptsRun.some((line) => line.startsWith('start_both')));
    const wake = scenario.play({ type: 'waitStatus', wait: { status: 'clear' } });
    assert.ok(wake.actions.includes('log E heart: Action wakeup from failover rule Implicit_wakeup'));
    scenario.play({ type: 'runScripts' });
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'UP Ready');
  });

  test('a wait rule still at init keeps WAIT Transient', () => {
    const scenario = new FarmScenario(settings);
    scenario.play({ type: 'waitStatus', wait: { status: 'pending' } });
    scenario.play({ type: 'command', verb: 'start' });
    scenario.play({ type: 'runScripts' });
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'WAIT Transient');
  });

  test('a wait action in UP stops the application with stopwait and waits', () => {
    const scenario = started();
    scenario.play({ type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } });
    scenario.scriptsRun.length = 0;
    scenario.play({ type: 'command', verb: 'wait', identity: 'p_gateway', rule: 'p_gateway' });
    scenario.play({ type: 'runScripts' });
    assert.deepEqual(scenario.scriptsRun, [
      'stop_sec UP WAIT stopwait',
      'stop_prim UP WAIT stopwait',
      'stop_both UP WAIT stopwait',
      'transition UP WAIT stopwait',
      'stop_sec force UP WAIT stopwait',
      'stop_prim force UP WAIT stopwait',
      'stop_second force UP WAIT stopwait',
      'stop_both force UP WAIT stopwait',
    ]);
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'WAIT NotReady');
  });

  test('a stop during the start is queued and runs at the next script boundary', () => {
    const scenario = new FarmScenario(settings);
    scenario.play({ type: 'command', verb: 'start' });
    const stop = scenario.play({ type: 'command', verb: 'stop' });
    assert.equal(stop.accepted, true);
    assert.match(stop.message, /queued/);
    scenario.play({ type: 'runScripts' });
    assert.equal(scenario.core.state, 'STOP');
    assert.ok(!scenario.scriptsRun.some((line) => line.startsWith('start_both')), 'the start did not go on');
  });

  test('commands that do not apply are refused with a reason', () => {
    const scenario = new FarmScenario(settings);
    assert.match(scenario.play({ type: 'command', verb: 'restart' }).message, /not possible in state STOP/);
    const stopped = scenario.play({ type: 'command', verb: 'stop' });
    assert.equal(stopped.accepted, true);
    assert.match(stopped.message, /already stopped/);
    scenario.play({ type: 'command', verb: 'start' });
    assert.match(scenario.play({ type: 'command', verb: 'start' }).message, /already starting/);
  });

  test('forcestop during a hung script kills it and goes to STOP', () => {
    const scenario = new FarmScenario(settings);
    scenario.play({ type: 'command', verb: 'start' });
    scenario.play({ type: 'scriptDone', script: 'transition' });
    const force = scenario.play({ type: 'command', verb: 'forcestop' });
    assert.ok(force.actions.includes('kill running script'));
    scenario.play({ type: 'runScripts', exitCodes: { prestart: 137 } });
    assert.equal(scenario.core.state, 'STOP');
  });

  test('without <user> no script runs but the states are the same', () => {
    const scenario = new FarmScenario({ ...settings, scriptsEnabled: false });
    scenario.play({ type: 'command', verb: 'start' });
    assert.equal(`${scenario.core.state} ${scenario.core.readiness}`, 'UP Ready');
    assert.deepEqual(scenario.scriptsRun, []);
  });
});
