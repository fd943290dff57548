// Stale heartbeats (issue 6): a packet held in a queue while a link was down (a NIC without
// carrier keeps its transmit queue; the lab's veths do too) arrives seconds late, in a burst,
// and its advert describes a past the sender has left (e.g. ALONE, when it has since stopped).
// Acting on it can start a needless split-brain recovery. Each packet carries the sender's
// monotonic clock; the receiver compares it with its own, and a packet whose one-way delay
// exceeds the smallest seen by more than `staleMs` is stale. Only differences of one pair of
// clocks are used (never a clock against another), and the baseline creeps up by the allowed
// drift so clocks that run at slightly different rates never make fresh packets look old.
// Pure: the daemon keeps the state.

export interface FreshnessState {
  incarnation: number;
  /** Smallest (receiver time - sender time) seen, drift-corrected, and when it was updated. */
  baselineMs: number;
  baselineAtMs: number;
}

/** Relative rate error allowed between two monotonic clocks (1 %, far above any quartz). */
export const clockDriftMax = 0.01;

export type FreshnessVerdict = { fresh: true; state: FreshnessState } | { fresh: false; lateMs: number };

export function checkFreshness(
  state: FreshnessState | null,
  incarnation: number,
  senderMonotonicMs: number,
  receivedAtMs: number,
  staleMs: number,
): FreshnessVerdict {
  const offsetMs = receivedAtMs - senderMonotonicMs;
  if (state === null || incarnation !== state.incarnation) {
    // A new incarnation of the sender: its clock origin is new, start over.
    if (state !== null && incarnation < state.incarnation)
      return { fresh: false, lateMs: Number.POSITIVE_INFINITY };
    return { fresh: true, state: { incarnation, baselineMs: offsetMs, baselineAtMs: receivedAtMs } };
  }
  const baselineMs = state.baselineMs + clockDriftMax * Math.max(0, receivedAtMs - state.baselineAtMs);
  const lateMs = offsetMs - baselineMs;
  if (lateMs > staleMs) return { fresh: false, lateMs };
  return {
    fresh: true,
    state: { incarnation, baselineMs: Math.min(baselineMs, offsetMs), baselineAtMs: receivedAtMs },
  };
}
