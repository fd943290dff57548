// The legacy failover rule grammar: AST shape, precedence, assignments, errors with offsets and
// the writer that prints rules back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { effectiveJson, formatRule } from '../../../agent/config/effective.ts';
import { isLuaBlock, parseLegacyRules, ruleResources } from '../../../agent/config/failover-rules.ts';

const noPosition = () => ({ line: 1, column: 1 });

function parse(text: string) {
  return parseLegacyRules(text, 0, noPosition);
}

describe('legacy failover rules', () => {
  test('a rule becomes label, condition AST and action', () => {
    const { rules, errors } = parse('p_gw: if (ping.gw == down) then wait();');
    assert.deepEqual(errors, []);
    assert.deepEqual(effectiveJson(rules), [
      {
        label: 'p_gw',
        condition: {
          kind: 'compare',
          op: '==',
          left: { kind: 'resource', class: 'ping', name: 'gw' },
          right: { kind: 'state', value: 'down' },
        },
        action: { kind: 'command', command: 'wait' },
      },
    ]);
  });

  test('|| binds looser than &&, which binds looser than !; parentheses group', () => {
    const [rule] = parse('r: if (a.x == up || !b.y == down && (c.z != up || d.w == up)) then stop();').rules;
    assert.ok(rule);
    assert.equal(rule.condition.kind, 'or');
    assert.equal(
      formatRule(rule),
      'r: if (a.x == up || !(b.y == down) && (c.z != up || d.w == up)) then stop();',
    );
    const condition = rule.condition;
    assert.ok(
      condition.kind === 'or' && condition.right.kind === 'and' && condition.right.left.kind === 'not',
    );
    assert.equal(condition.right.left.operand.kind, 'compare', '! applies to the comparison');
  });

  test('scopes, wildcards, cluster() and assignment actions (rfs_forceuptodate)', () => {
    const text =
      'rfs_forceuptodate: if (heartbeat.* == down && cluster() == down && rfs.synced == up && rfs.uptodate == down) then rfs.uptodate=up;\n' +
      'remote_rule: if (remote.custom.? == down && local.intf.10.0.0.0 == up) then swap();';
    const { rules, errors } = parse(text);
    assert.deepEqual(errors, []);
    assert.equal(rules.length, 2);
    assert.deepEqual(rules[0]?.action.kind, 'assign');
    assert.deepEqual(
      rules
        .flatMap((rule) => ruleResources(rule))
        .map((resource) => [resource.scope ?? '', resource.class, resource.name]),
      [
        ['', 'heartbeat', '*'],
        ['', 'rfs', 'synced'],
        ['', 'rfs', 'uptodate'],
        ['', 'rfs', 'uptodate'],
        ['remote', 'custom', '?'],
        ['local', 'intf', '10.0.0.0'],
      ],
    );
    for (const rule of rules)
      assert.deepEqual(effectiveJson(parse(formatRule(rule)).rules[0]), effectiveJson(rule));
  });

  test('comments are skipped; errors carry offsets and the next rule is still read', () => {
    const text = '/* first */ bad: if (x.y == up) then reboot();\n good: if (x.y == down) then stop();';
    const { rules, errors } = parse(text);
    assert.deepEqual(
      rules.map((rule) => rule.label),
      ['good'],
    );
    assert.equal(errors.length, 1);
    assert.match(errors[0]?.message ?? '', /unknown action reboot\(\)/);
    assert.equal(text.slice(errors[0]?.start, errors[0]?.end), 'reboot');
  });

  test('truncated and garbled rules produce errors, not exceptions', () => {
    for (const text of [
      'r: if (',
      'r: if (a.b == ) then wait();',
      ': if',
      'r if (a.b) then wait();',
      'r: if (a.b) then wait()',
      '/* open',
      '#',
    ]) {
      const { errors } = parse(text);
      assert.ok(errors.length > 0, `${JSON.stringify(text)} has an error`);
      for (const error of errors)
        assert.ok(error.start >= 0 && error.end <= text.length && error.start <= error.end);
    }
  });

  test('Lua blocks are recognised by their leading comment', () => {
    assert.equal(isLuaBlock('\n  --Lua Rules\nRules.disable("ip_failure")'), true);
    assert.equal(isLuaBlock('r: if (a.b == up) then wait();'), false);
  });
});
