// Replay protection for authenticated heartbeats, pure and bounded: per (module, node) the
// newest incarnation seen and a sliding window of the last `replayWindowSeqs` sequence numbers,
// as IPsec does (RFC 4303 3.4.3). A packet is fresh once; reordering within the window is
// accepted, anything older or already seen is a replay. A lower incarnation than the current one
// is refused: incarnations grow across daemon restarts (packet.ts newIncarnation).
//
// The transport keeps one window per lan, because the same (incarnation, seq) is legitimately
// sent on every lan and each copy proves its lan alive.

/** Sequence numbers remembered below the highest seen: enough for any reordering on a LAN. */
export const replayWindowSeqs = 64;
/** Senders remembered per window; a mirror lan has one peer, the rest is slack. */
export const replaySendersMax = 32;

const windowMask = (1n << BigInt(replayWindowSeqs)) - 1n;

interface SenderEntry {
  readonly incarnation: number;
  readonly highestSeq: number;
  /** Bit i set: highestSeq - i was seen. */
  readonly seen: bigint;
  /** For least-recently-used eviction. */
  readonly usedTick: number;
}

export interface ReplayWindow {
  readonly senders: ReadonlyMap<string, SenderEntry>;
  readonly tick: number;
}

export type ReplayVerdict = 'fresh' | 'replay' | 'oldIncarnation';

export interface ReplaySender {
  readonly module: string;
  readonly node: string;
}

export interface ReplayId {
  readonly incarnation: number;
  readonly seq: number;
}

export function emptyReplayWindow(): ReplayWindow {
  return { senders: new Map(), tick: 0 };
}

function senderKey(sender: ReplaySender): string {
  return JSON.stringify([sender.module, sender.node]);
}

function judge(entry: SenderEntry | undefined, id: ReplayId): ReplayVerdict {
  if (entry === undefined || id.incarnation > entry.incarnation) return 'fresh';
  if (id.incarnation < entry.incarnation) return 'oldIncarnation';
  if (id.seq > entry.highestSeq) return 'fresh';
  const back = entry.highestSeq - id.seq;
  if (back >= replayWindowSeqs) return 'replay';
  return (entry.seen >> BigInt(back)) & 1n ? 'replay' : 'fresh';
}

function record(entry: SenderEntry | undefined, id: ReplayId, tick: number): SenderEntry {
  if (entry === undefined || id.incarnation > entry.incarnation) {
    return { incarnation: id.incarnation, highestSeq: id.seq, seen: 1n, usedTick: tick };
  }
  if (id.seq > entry.highestSeq) {
    const shift = id.seq - entry.highestSeq;
    const seen = shift >= replayWindowSeqs ? 1n : ((entry.seen << BigInt(shift)) | 1n) & windowMask;
    return { incarnation: entry.incarnation, highestSeq: id.seq, seen, usedTick: tick };
  }
  const back = BigInt(entry.highestSeq - id.seq);
  return { ...entry, seen: entry.seen | (1n << back), usedTick: tick };
}

/** Judges a packet and, when fresh, returns the window that remembers it. */
export function checkReplay(
  window: ReplayWindow,
  sender: ReplaySender,
  id: ReplayId,
): { verdict: ReplayVerdict; window: ReplayWindow } {
  if (!Number.isSafeInteger(id.incarnation) || !Number.isSafeInteger(id.seq) || id.seq < 1)
    throw new Error(`replay window: invalid packet id ${id.incarnation}/${id.seq}`);
  const key = senderKey(sender);
  const entry = window.senders.get(key);
  const verdict = judge(entry, id);
  if (verdict !== 'fresh') return { verdict, window };
  const tick = window.tick + 1;
  const senders = new Map(window.senders);
  senders.set(key, record(entry, id, tick));
  if (senders.size > replaySendersMax) {
    let oldestKey: string | undefined;
    let oldestTick = Number.POSITIVE_INFINITY;
    for (const [candidate, value] of senders) {
      if (value.usedTick < oldestTick) {
        oldestTick = value.usedTick;
        oldestKey = candidate;
      }
    }
    if (oldestKey !== undefined) senders.delete(oldestKey);
  }
  return { verdict, window: { senders, tick } };
}
