// Flow control of the replication stream (pure). The primary numbers every operation, keeps it
// in a bounded window until the secondary reports it applied, and refuses to grow past
// `framesMax` or `bytesMax` (the caller waits for room). An acknowledgement carries two
// cumulative numbers: received (the caller of the operation may go on) and applied (the entry
// leaves the window). With async="second" a secondary acknowledges on receipt: what it received
// and had not applied when it died is still in the window, so the primary journals it on the drop
// and the reintegration resends it. The secondary's AckTracker says how far it may acknowledge:
// with async="second" up to what it received, with async="none" up to what it applied, and never
// past a barrier (fsync) it has not finished.

export interface WindowLimits {
  readonly framesMax: number;
  readonly bytesMax: number;
}

export interface InflightEntry<T> {
  readonly seq: bigint;
  readonly bytes: number;
  readonly sentAtMs: number;
  readonly item: T;
}

export class InflightWindow<T> {
  private readonly entries: InflightEntry<T>[] = [];
  private head = 0;
  private bytesInFlight = 0;
  private nextSeqValue: bigint;
  private ackedSeqValue: bigint;
  private receivedSeqValue: bigint;

  constructor(
    private readonly limits: WindowLimits,
    firstSeq = 1n,
  ) {
    if (!(limits.framesMax >= 1 && limits.bytesMax >= 1))
      throw new Error('InflightWindow: limits must be >= 1');
    this.nextSeqValue = firstSeq;
    this.ackedSeqValue = firstSeq - 1n;
    this.receivedSeqValue = firstSeq - 1n;
  }

  /** The highest sequence number the secondary reported received. */
  get receivedSeq(): bigint {
    return this.receivedSeqValue;
  }

  get nextSeq(): bigint {
    return this.nextSeqValue;
  }

  get ackedSeq(): bigint {
    return this.ackedSeqValue;
  }

  get frames(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.bytesInFlight;
  }

  /** Whether an entry of `bytes` fits now; an empty window always takes one entry. */
  hasRoomFor(bytes: number): boolean {
    if (this.frames === 0) return true;
    return this.frames < this.limits.framesMax && this.bytesInFlight + bytes <= this.limits.bytesMax;
  }

  push(item: T, bytes: number, nowMs: number): InflightEntry<T> {
    if (!this.hasRoomFor(bytes)) throw new Error('InflightWindow.push: no room (call hasRoomFor first)');
    const entry = { seq: this.nextSeqValue, bytes, sentAtMs: nowMs, item };
    this.nextSeqValue += 1n;
    this.entries.push(entry);
    this.bytesInFlight += bytes;
    return entry;
  }

  /**
   * A cumulative receipt: returns the entries it newly covers, oldest first (their callers may go
   * on); they stay in the window until applied (`ack`).
   */
  receive(seq: bigint): InflightEntry<T>[] {
    if (seq >= this.nextSeqValue)
      throw new Error(`receipt ${seq} for a sequence never sent (next ${this.nextSeqValue})`);
    if (seq <= this.receivedSeqValue) return [];
    const covered: InflightEntry<T>[] = [];
    for (let index = this.firstUnreceivedIndex(); index < this.entries.length; index += 1) {
      const entry = this.entries[index] as InflightEntry<T>;
      if (entry.seq > seq) break;
      covered.push(entry);
    }
    this.receivedSeqValue = seq;
    return covered;
  }

  /** The oldest entry not yet received: what the caller is waiting on (locktimeout). */
  oldestUnreceived(): InflightEntry<T> | undefined {
    return this.entries[this.firstUnreceivedIndex()];
  }

  private firstUnreceivedIndex(): number {
    const first = this.entries[this.head];
    if (first === undefined || this.receivedSeqValue < first.seq) return this.head;
    // Sequence numbers in the window are consecutive.
    return this.head + Number(this.receivedSeqValue - first.seq) + 1;
  }

  /** A cumulative "applied" ack (implies received); returns the entries it released, oldest first. */
  ack(seq: bigint): InflightEntry<T>[] {
    if (seq >= this.nextSeqValue)
      throw new Error(`ack ${seq} for a sequence never sent (next ${this.nextSeqValue})`);
    if (seq > this.receivedSeqValue) this.receivedSeqValue = seq;
    if (seq <= this.ackedSeqValue) return [];
    const released: InflightEntry<T>[] = [];
    while (this.head < this.entries.length && (this.entries[this.head] as InflightEntry<T>).seq <= seq) {
      const entry = this.entries[this.head] as InflightEntry<T>;
      released.push(entry);
      this.bytesInFlight -= entry.bytes;
      this.head += 1;
    }
    this.ackedSeqValue = seq;
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    return released;
  }

  /** Empties the window (peer dropped); returns what was not reported applied, oldest first. */
  drain(): InflightEntry<T>[] {
    const rest = this.entries.slice(this.head);
    this.entries.length = 0;
    this.head = 0;
    this.bytesInFlight = 0;
    return rest;
  }
}

export type AckMode = 'received' | 'applied';

/** Secondary side: the highest sequence number that may be acknowledged. */
export class AckTracker {
  private receivedSeq: bigint;
  private appliedSeq: bigint;
  /** Barriers received but not yet applied, ascending. */
  private readonly pendingBarriers: bigint[] = [];

  constructor(
    private readonly mode: AckMode,
    lastSeq = 0n,
  ) {
    this.receivedSeq = lastSeq;
    this.appliedSeq = lastSeq;
  }

  /** Records a received operation; sequence numbers must arrive without gaps. */
  received(seq: bigint, barrier: boolean): void {
    if (seq !== this.receivedSeq + 1n) throw new Error(`sequence gap: got ${seq} after ${this.receivedSeq}`);
    this.receivedSeq = seq;
    if (barrier) this.pendingBarriers.push(seq);
  }

  applied(seq: bigint): void {
    if (seq !== this.appliedSeq + 1n) throw new Error(`apply order broken: ${seq} after ${this.appliedSeq}`);
    if (seq > this.receivedSeq) throw new Error(`applied ${seq} before receiving it`);
    this.appliedSeq = seq;
    while (this.pendingBarriers.length > 0 && (this.pendingBarriers[0] as bigint) <= seq)
      this.pendingBarriers.shift();
  }

  get lastReceived(): bigint {
    return this.receivedSeq;
  }

  get lastApplied(): bigint {
    return this.appliedSeq;
  }

  ackable(): bigint {
    if (this.mode === 'applied') return this.appliedSeq;
    const barrier = this.pendingBarriers[0];
    return barrier === undefined ? this.receivedSeq : barrier - 1n;
  }
}
