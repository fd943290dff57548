// A set of byte ranges [start, end) kept sorted, disjoint and merged (pure). Used by the change
// journal for "which bytes of this file changed while the peer was away". Bounded: past
// `rangesMax` ranges, neighbours are merged (the set only grows, never loses a changed byte).

export interface ByteRange {
  readonly start: number;
  /** Exclusive; Infinity means "to the end of the file, whatever its size". */
  readonly end: number;
}

export const rangesMaxDefault = 4096;

export class RangeSet {
  private ranges: ByteRange[] = [];

  constructor(private readonly rangesMax = rangesMaxDefault) {
    if (!(rangesMax >= 1)) throw new Error(`RangeSet: rangesMax ${rangesMax} must be >= 1`);
  }

  static of(ranges: readonly ByteRange[], rangesMax = rangesMaxDefault): RangeSet {
    const set = new RangeSet(rangesMax);
    for (const range of ranges) set.add(range.start, range.end);
    return set;
  }

  get size(): number {
    return this.ranges.length;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  toArray(): ByteRange[] {
    return this.ranges.map((range) => ({ ...range }));
  }

  /** Bytes covered, with open-ended ranges clipped at `fileSize`. */
  bytesWithin(fileSize: number): number {
    let bytes = 0;
    for (const range of this.clippedTo(fileSize)) bytes += range.end - range.start;
    return bytes;
  }

  clippedTo(fileSize: number): ByteRange[] {
    const out: ByteRange[] = [];
    for (const range of this.ranges) {
      const end = Math.min(range.end, fileSize);
      if (end > range.start) out.push({ start: range.start, end });
    }
    return out;
  }

  add(start: number, end: number): void {
    if (!(start >= 0) || !(end >= start) || Number.isNaN(end)) {
      throw new Error(`RangeSet.add: bad range [${start}, ${end})`);
    }
    if (end === start) return;
    // Find the first range whose end >= start (touching ranges merge).
    let low = 0;
    let high = this.ranges.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.ranges[mid] as ByteRange).end < start) low = mid + 1;
      else high = mid;
    }
    let mergedStart = start;
    let mergedEnd = end;
    let removeUntil = low;
    while (removeUntil < this.ranges.length && (this.ranges[removeUntil] as ByteRange).start <= mergedEnd) {
      const range = this.ranges[removeUntil] as ByteRange;
      mergedStart = Math.min(mergedStart, range.start);
      mergedEnd = Math.max(mergedEnd, range.end);
      removeUntil += 1;
    }
    this.ranges.splice(low, removeUntil - low, { start: mergedStart, end: mergedEnd });
    if (this.ranges.length > this.rangesMax) this.coarsen();
    this.assertInvariant();
  }

  /** Forgets bytes at and past `size` and marks nothing: a truncation's data is gone, not changed. */
  clipAt(size: number): void {
    this.ranges = this.clippedTo(size);
  }

  /** Merges the two closest neighbours until under the bound (over-approximates, never loses). */
  private coarsen(): void {
    while (this.ranges.length > this.rangesMax) {
      let bestIndex = 0;
      let bestGap = Infinity;
      for (let index = 0; index + 1 < this.ranges.length; index += 1) {
        const gap = (this.ranges[index + 1] as ByteRange).start - (this.ranges[index] as ByteRange).end;
        if (gap < bestGap) {
          bestGap = gap;
          bestIndex = index;
        }
      }
      const left = this.ranges[bestIndex] as ByteRange;
      const right = this.ranges[bestIndex + 1] as ByteRange;
      this.ranges.splice(bestIndex, 2, { start: left.start, end: right.end });
    }
  }

  private assertInvariant(): void {
    for (let index = 1; index < this.ranges.length; index += 1) {
      const previous = this.ranges[index - 1] as ByteRange;
      const current = this.ranges[index] as ByteRange;
      if (!(previous.end < current.start))
        throw new Error('RangeSet invariant broken: ranges overlap or touch');
    }
  }
}
