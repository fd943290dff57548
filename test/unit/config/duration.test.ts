// Durations (reference §4.1): units, bare numbers in the attribute's unit, rounding, zero rules,
// and the reference's error wording.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDuration } from '../../../agent/config/duration.ts';

const seconds = { unit: 's', zeroAllowed: true } as const;
const milliseconds = { unit: 'ms', zeroAllowed: false } as const;

function value(raw: string, rule: { unit: 's' | 'ms' | 'h' | 'm'; zeroAllowed: boolean }): number {
  const result = parseDuration(raw, 'attr', rule);
  assert.ok(result.ok, `${raw} parses: ${result.ok ? '' : result.message}`);
  return result.value;
}

describe('durations', () => {
  test('a bare number is in the attribute unit', () => {
    assert.equal(value('700', milliseconds), 700);
    assert.equal(value('24', { unit: 'h', zeroAllowed: true }), 24);
  });

  test('every unit converts to the attribute unit', () => {
    assert.equal(value('1d', seconds), 86_400);
    assert.equal(value('2h', seconds), 7_200);
    assert.equal(value('3m', seconds), 180);
    assert.equal(value('4s', milliseconds), 4_000);
    assert.equal(value('5000ms', seconds), 5);
    assert.equal(value('7000us', milliseconds), 7);
    assert.equal(value('90s', { unit: 'm', zeroAllowed: true }), 2, '1.5 min rounds to even: 2');
    assert.equal(value('1.5h', milliseconds), 5_400_000);
  });

  test('rounding is to the nearest, ties to even', () => {
    assert.equal(value('1400ms', seconds), 1);
    assert.equal(value('1500ms', seconds), 2);
    assert.equal(value('1600ms', seconds), 2);
    assert.equal(value('2500ms', seconds), 2);
    assert.equal(value('3500ms', seconds), 4);
  });

  test("a non-zero value that rounds to 0 fails with the reference's wording", () => {
    const result = parseDuration('500ms', 'boot_delay', { unit: 's', zeroAllowed: true });
    assert.deepEqual(result, {
      ok: false,
      message: "invalid value '500ms' for the attribute boot_delay (expected time unit: 's')",
    });
  });

  test('zero is accepted only where it means something', () => {
    assert.equal(value('0', seconds), 0);
    assert.equal(value('0h', seconds), 0);
    const result = parseDuration('0ms', 'pulse', milliseconds);
    assert.ok(!result.ok);
    assert.match(result.message, /^invalid value '0ms' for the attribute pulse \(must be greater than 0\)$/);
  });

  test('malformed values are rejected with the expected syntax', () => {
    for (const raw of ['', 'abc', '10 s', '-5', '1e3', '5sec', '1.', '.5', '10S']) {
      const result = parseDuration(raw, 'timeout', milliseconds);
      assert.ok(!result.ok, `${JSON.stringify(raw)} is rejected`);
      assert.match(result.message, /^invalid value '.*' for the attribute timeout \(expected a number/);
    }
  });

  test('values past a C int are rejected', () => {
    assert.ok(!parseDuration('3000000000', 'timeout', milliseconds).ok);
    assert.ok(parseDuration('2147483647', 'timeout', milliseconds).ok);
    assert.ok(!parseDuration('30d', 'timeout', milliseconds).ok, '30 days in ms overflows');
  });
});
