import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { countAction, initialMaxloop, maxloopReached, resetMaxloop } from '../../../agent/core/maxloop.ts';
import { type ResourceTable, setResource } from '../../../agent/core/resources.ts';
import {
  classDownRule,
  evaluateRules,
  initialRuleEngine,
  resourceDownRule,
} from '../../../agent/core/rule-engine.ts';

function table(entries: Record<string, string>): ResourceTable {
  let result: ResourceTable = {};
  for (const [name, value] of Object.entries(entries))
    result = setResource(result, name, value, 'test', 0).table;
  return result;
}

describe('maxloop', () => {
  const settings = { maxloop: 3, loopIntervalMs: 1000 };
  test('the 4th counted action within the window exceeds, the 3rd does not', () => {
    let state = initialMaxloop(0);
    for (let index = 1; index <= 3; index += 1) {
      const outcome = countAction(state, settings, index * 10);
      assert.equal(outcome.exceeded, false);
      state = outcome.state;
    }
    assert.equal(countAction(state, settings, 40).exceeded, true);
    assert.equal(maxloopReached(state, settings, 40), false);
    assert.equal(maxloopReached(countAction(state, settings, 40).state, settings, 41), true);
  });
  test('entries older than loop_interval fall out; 0 disables counting; reset clears', () => {
    let state = initialMaxloop(0);
    for (let index = 0; index < 10; index += 1) state = countAction(state, settings, index * 600).state;
    assert.ok(state.countedAtMs.length <= 2);
    assert.equal(countAction(state, { maxloop: 0, loopIntervalMs: 0 }, 1).exceeded, false);
    assert.deepEqual(resetMaxloop(99), { countedAtMs: [], initialisedAtMs: 99 });
  });
});

describe('rule engine', () => {
  const rules = [
    resourceDownRule('p_gw', 'ping.gw', 'wait'),
    resourceDownRule('c_app', 'custom.app', 'stopstart'),
    classDownRule('interface_failure', 'intf', 'wait'),
  ];

  test('a wait rule on an init resource keeps the start pending; down blocks; up clears', () => {
    const state = initialRuleEngine();
    assert.deepEqual(evaluateRules(rules, table({ 'ping.gw': 'init' }), state, 0, 15_000).wait, {
      status: 'pending',
    });
    assert.deepEqual(evaluateRules(rules, table({ 'ping.gw': 'down' }), state, 0, 15_000).wait, {
      status: 'blocked',
      rule: 'p_gw',
    });
    assert.deepEqual(evaluateRules(rules, table({ 'ping.gw': 'up' }), state, 0, 15_000).wait, {
      status: 'clear',
    });
  });

  test('an action fires only after its rule held for handle_time, then not again at once', () => {
    let state = initialRuleEngine();
    const down = table({ 'ping.gw': 'up', 'custom.app': 'down' });
    let evaluation = evaluateRules(rules, down, state, 0, 15_000);
    assert.equal(evaluation.fire, null);
    state = evaluation.state;
    evaluation = evaluateRules(rules, down, state, 10_000, 15_000);
    assert.equal(evaluation.fire, null);
    state = evaluation.state;
    evaluation = evaluateRules(rules, down, state, 15_000, 15_000);
    assert.deepEqual(evaluation.fire, { rule: 'c_app', action: 'stopstart' });
    state = evaluation.state;
    assert.equal(evaluateRules(rules, down, state, 20_000, 15_000).fire, null);
  });

  test('an interruption restarts the handle_time count; wait rules come first', () => {
    let state = initialRuleEngine();
    state = evaluateRules(rules, table({ 'custom.app': 'down' }), state, 0, 10_000).state;
    state = evaluateRules(rules, table({ 'custom.app': 'up' }), state, 5_000, 10_000).state;
    assert.equal(evaluateRules(rules, table({ 'custom.app': 'down' }), state, 12_000, 10_000).fire, null);
    const both = table({ 'custom.app': 'down', 'intf.eth0': 'down' });
    let evaluation = evaluateRules(rules, both, initialRuleEngine(), 0, 0);
    assert.deepEqual(evaluation.fire, { rule: 'interface_failure', action: 'wait' });
    evaluation = evaluateRules(
      rules,
      table({ 'intf.eth0': 'up', 'intf.eth1': 'init' }),
      initialRuleEngine(),
      0,
      0,
    );
    assert.deepEqual(evaluation.wait, { status: 'pending' });
  });
});
