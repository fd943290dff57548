// Stale heartbeats: a burst held in a queue while a link was down is recognised by the sender's
// monotonic clock against the receiver's, with clocks offset arbitrarily and drifting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkFreshness, clockDriftMax, type FreshnessState } from '../../../agent/core/packet-freshness.ts';

const staleMs = 500;

function feed(
  packets: { sentMs: number; receivedMs: number }[],
  offsetMs: number,
  incarnation = 7,
): boolean[] {
  let state: FreshnessState | null = null;
  return packets.map(({ sentMs, receivedMs }) => {
    const verdict = checkFreshness(state, incarnation, sentMs, receivedMs + offsetMs, staleMs);
    if (verdict.fresh) state = verdict.state;
    return verdict.fresh;
  });
}

describe('packet freshness', () => {
  test('a burst delivered seconds late after a link comes back is stale; the packets sent after it are fresh', () => {
    const packets: { sentMs: number; receivedMs: number }[] = [];
    for (let sentMs = 0; sentMs < 5000; sentMs += 100) packets.push({ sentMs, receivedMs: sentMs + 1 });
    // The link goes down at 5000 ms; packets sent until 9000 are queued and delivered at 9000.
    for (let sentMs = 5000; sentMs < 9000; sentMs += 100) packets.push({ sentMs, receivedMs: 9000 });
    for (let sentMs = 9000; sentMs < 10_000; sentMs += 100) packets.push({ sentMs, receivedMs: sentMs + 1 });
    const verdicts = feed(packets, 123_456_789);
    assert.ok(verdicts.slice(0, 50).every(Boolean), 'before the cut');
    const burst = verdicts.slice(50, 90);
    // Only the last few of the burst (sent within staleMs of delivery) are fresh.
    assert.equal(burst.filter(Boolean).length, 5);
    assert.deepEqual(burst.slice(0, 35), Array(35).fill(false));
    assert.ok(verdicts.slice(90).every(Boolean), 'after the link came back');
  });

  test('clocks drifting apart at the bound never make on-time packets stale, over a day', () => {
    const packets: { sentMs: number; receivedMs: number }[] = [];
    // The receiver's clock runs 1 % fast: on-time packets look later and later.
    for (let sentMs = 0; sentMs < 86_400_000; sentMs += 60_000) {
      packets.push({ sentMs, receivedMs: Math.floor(sentMs * (1 + clockDriftMax)) + 2 });
    }
    assert.ok(feed(packets, -5_000_000).every(Boolean));
  });

  test('a new incarnation starts over; an older one is stale', () => {
    let state: FreshnessState | null = null;
    const first = checkFreshness(state, 5, 1_000_000, 10, staleMs);
    assert.ok(first.fresh);
    state = first.fresh ? first.state : null;
    const restarted = checkFreshness(state, 6, 20, 5_000, staleMs);
    assert.ok(restarted.fresh, 'a restarted sender has a new clock origin');
    const older = checkFreshness(restarted.fresh ? restarted.state : null, 5, 1_000_100, 5_100, staleMs);
    assert.equal(older.fresh, false);
  });
});
