// The replay window: fresh once, reordering inside the window, replays and older incarnations
// refused, bounded memory; and a model check against a set of everything seen (fixed seed).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkReplay,
  emptyReplayWindow,
  type ReplayVerdict,
  type ReplayWindow,
  replaySendersMax,
  replayWindowSeqs,
} from '../../../agent/heartbeat/replay-window.ts';

const peer = { module: 'mirror', node: 'n2' };

function run(ids: readonly [number, number][], sender = peer): ReplayVerdict[] {
  let window: ReplayWindow = emptyReplayWindow();
  return ids.map(([incarnation, seq]) => {
    const result = checkReplay(window, sender, { incarnation, seq });
    window = result.window;
    return result.verdict;
  });
}

describe('replay window', () => {
  test('in-order packets are fresh, a repeat is a replay', () => {
    assert.deepEqual(
      run([
        [1, 1],
        [1, 2],
        [1, 3],
        [1, 3],
        [1, 2],
      ]),
      ['fresh', 'fresh', 'fresh', 'replay', 'replay'],
    );
  });

  test('reordering inside the window is accepted once', () => {
    assert.deepEqual(
      run([
        [1, 10],
        [1, 8],
        [1, 9],
        [1, 8],
        [1, 11],
      ]),
      ['fresh', 'fresh', 'fresh', 'replay', 'fresh'],
    );
  });

  test('a packet older than the window is a replay, one just inside is fresh', () => {
    const top = 1000;
    assert.deepEqual(
      run([
        [1, top],
        [1, top - replayWindowSeqs + 1],
        [1, top - replayWindowSeqs],
      ]),
      ['fresh', 'fresh', 'replay'],
    );
  });

  test('a jump larger than the window forgets the old bits without false replays', () => {
    assert.deepEqual(
      run([
        [1, 5],
        [1, 5 + 3 * replayWindowSeqs],
        [1, 6 + 3 * replayWindowSeqs],
        [1, 5],
      ]),
      ['fresh', 'fresh', 'fresh', 'replay'],
    );
  });

  test('a new incarnation restarts the sequence; the old one is refused afterwards', () => {
    assert.deepEqual(
      run([
        [5, 900],
        [6, 1],
        [6, 2],
        [5, 901],
        [4, 1],
      ]),
      ['fresh', 'fresh', 'fresh', 'oldIncarnation', 'oldIncarnation'],
    );
  });

  test('senders are independent: the same id from another node or module is fresh', () => {
    let window = emptyReplayWindow();
    for (const sender of [peer, { module: 'mirror', node: 'n3' }, { module: 'other', node: 'n2' }]) {
      const result = checkReplay(window, sender, { incarnation: 1, seq: 1 });
      assert.equal(result.verdict, 'fresh');
      window = result.window;
    }
    assert.equal(checkReplay(window, peer, { incarnation: 1, seq: 1 }).verdict, 'replay');
  });

  test('names that would collide when joined with a separator stay apart', () => {
    let window = emptyReplayWindow();
    window = checkReplay(window, { module: 'a|b', node: 'c' }, { incarnation: 1, seq: 1 }).window;
    assert.equal(
      checkReplay(window, { module: 'a', node: 'b|c' }, { incarnation: 1, seq: 1 }).verdict,
      'fresh',
    );
  });

  test('the window is pure: a judged window is never changed', () => {
    const first = checkReplay(emptyReplayWindow(), peer, { incarnation: 1, seq: 1 }).window;
    const snapshot = JSON.stringify([...first.senders.entries()], (_key, value: unknown) =>
      typeof value === 'bigint' ? value.toString() : value,
    );
    checkReplay(first, peer, { incarnation: 1, seq: 2 });
    checkReplay(first, peer, { incarnation: 2, seq: 1 });
    assert.equal(
      JSON.stringify([...first.senders.entries()], (_key, value: unknown) =>
        typeof value === 'bigint' ? value.toString() : value,
      ),
      snapshot,
    );
  });

  test('memory is bounded: the least recently used sender is forgotten', () => {
    let window = emptyReplayWindow();
    for (let index = 0; index < replaySendersMax * 3; index += 1) {
      window = checkReplay(window, { module: 'm', node: `n${index}` }, { incarnation: 1, seq: 1 }).window;
      assert.ok(window.senders.size <= replaySendersMax);
    }
    assert.equal(window.senders.size, replaySendersMax);
    // The newest are remembered, the first were evicted.
    const last = { module: 'm', node: `n${replaySendersMax * 3 - 1}` };
    assert.equal(checkReplay(window, last, { incarnation: 1, seq: 1 }).verdict, 'replay');
    assert.equal(
      checkReplay(window, { module: 'm', node: 'n0' }, { incarnation: 1, seq: 1 }).verdict,
      'fresh',
    );
  });

  test('invalid ids are a bug of the caller', () => {
    assert.throws(() => checkReplay(emptyReplayWindow(), peer, { incarnation: 1, seq: 0 }), /invalid/);
    assert.throws(() => checkReplay(emptyReplayWindow(), peer, { incarnation: 1, seq: 2 ** 53 }), /invalid/);
  });

  test('model: fresh exactly when never seen, within the window, and not of an older incarnation', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 200 })), {
          maxLength: 300,
        }),
        (ids) => {
          let window = emptyReplayWindow();
          const seen = new Set<string>();
          let incarnation = 0;
          let highest = 0;
          for (const [inc, seq] of ids) {
            const result = checkReplay(window, peer, { incarnation: inc, seq });
            let expected: ReplayVerdict;
            if (inc < incarnation) expected = 'oldIncarnation';
            else if (inc > incarnation) expected = 'fresh';
            else if (seen.has(`${inc}/${seq}`) || highest - seq >= replayWindowSeqs) expected = 'replay';
            else expected = 'fresh';
            assert.equal(result.verdict, expected, `${inc}/${seq}`);
            if (expected === 'fresh') {
              if (inc > incarnation) highest = 0;
              incarnation = inc;
              highest = Math.max(highest, seq);
              seen.add(`${inc}/${seq}`);
            }
            window = result.window;
          }
        },
      ),
      { seed: 20_260_706, numRuns: 500 },
    );
  });
});
