// The change journal (pure): what the primary changed while the secondary could not receive it,
// so reintegration sends only that. It keeps, in order, the namespace operations (replayed first
// on the returning node, idempotently) and, per current path, the changed byte ranges and whether
// metadata changed. Every path a namespace operation touched is also marked "compare": the resync
// checks it against the peer by block checksums, which repairs whatever an idempotent replay could
// not (an operation the peer had partly applied before the link broke). Bounded: past
// `namespaceEntriesMax` entries or `pathsMax` paths the journal overflows and asks for a full sync.
import type { ByteRange } from './range-set.ts';
import { RangeSet } from './range-set.ts';

export type NamespaceEntry =
  | { readonly kind: 'create'; readonly path: string }
  | { readonly kind: 'mkdir'; readonly path: string }
  | { readonly kind: 'mknod'; readonly path: string }
  | { readonly kind: 'symlink'; readonly path: string }
  | { readonly kind: 'link'; readonly path: string; readonly existing: string }
  | { readonly kind: 'unlink'; readonly path: string }
  | { readonly kind: 'rmdir'; readonly path: string }
  | { readonly kind: 'removeTree'; readonly path: string }
  | { readonly kind: 'rename'; readonly path: string; readonly to: string };

/** One durable journal record (one JSON line in the journal file). */
export type JournalRecord =
  | { readonly t: 'w'; readonly p: string; readonly s: number; readonly e: number }
  | { readonly t: 'tr'; readonly p: string; readonly s: number }
  | { readonly t: 'm'; readonly p: string }
  | { readonly t: 'c'; readonly p: string }
  | { readonly t: 'n'; readonly n: NamespaceEntry }
  /** The peer's activity log or a crash fallback: compare these paths whole. */
  | { readonly t: 'x'; readonly p: string };

export interface PathChange {
  readonly path: string;
  readonly ranges: readonly ByteRange[];
  readonly metadata: boolean;
  /** Compare with the peer by block checksums (content unknown to the journal). */
  readonly compare: boolean;
}

export interface ResyncPlan {
  readonly overflowed: boolean;
  readonly namespace: readonly NamespaceEntry[];
  /** Directories whose listing must be reconciled with the peer. */
  readonly directories: readonly string[];
  readonly paths: readonly PathChange[];
}

export interface JournalLimits {
  readonly namespaceEntriesMax: number;
  readonly pathsMax: number;
  readonly rangesPerFileMax: number;
}

export const journalLimitsDefault: JournalLimits = {
  namespaceEntriesMax: 200_000,
  pathsMax: 500_000,
  rangesPerFileMax: 4096,
};

interface Entry {
  ranges: RangeSet;
  metadata: boolean;
  compare: boolean;
}

export function parentOf(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut <= 0 ? '/' : path.slice(0, cut);
}

function isAtOrUnder(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

export class ChangeJournal {
  private readonly namespace: NamespaceEntry[] = [];
  private readonly entries = new Map<string, Entry>();
  private readonly directories = new Set<string>();
  private overflow = false;
  private recordsApplied = 0;

  constructor(private readonly limits: JournalLimits = journalLimitsDefault) {}

  get overflowed(): boolean {
    return this.overflow;
  }

  get isEmpty(): boolean {
    return (
      !this.overflow && this.namespace.length === 0 && this.entries.size === 0 && this.directories.size === 0
    );
  }

  get records(): number {
    return this.recordsApplied;
  }

  get pathCount(): number {
    return this.entries.size;
  }

  private entry(path: string): Entry | undefined {
    let entry = this.entries.get(path);
    if (entry === undefined) {
      if (this.entries.size >= this.limits.pathsMax) {
        this.overflow = true;
        return undefined;
      }
      entry = { ranges: new RangeSet(this.limits.rangesPerFileMax), metadata: false, compare: false };
      this.entries.set(path, entry);
    }
    return entry;
  }

  private markDirectory(path: string): void {
    if (this.directories.size >= this.limits.pathsMax) this.overflow = true;
    else this.directories.add(path);
  }

  apply(record: JournalRecord): void {
    this.recordsApplied += 1;
    if (this.overflow) return;
    switch (record.t) {
      case 'w':
        this.entry(record.p)?.ranges.add(record.s, record.e);
        break;
      case 'tr': {
        // Everything from the new size on is "changed": a later growth reads as zeros here.
        this.entry(record.p)?.ranges.add(record.s, Infinity);
        const entry = this.entry(record.p);
        if (entry !== undefined) entry.metadata = true;
        break;
      }
      case 'm': {
        const entry = this.entry(record.p);
        if (entry !== undefined) entry.metadata = true;
        break;
      }
      case 'c':
      case 'x': {
        const entry = this.entry(record.p);
        if (entry !== undefined) {
          entry.compare = true;
          entry.metadata = true;
        }
        if (record.t === 'x') this.markDirectory(parentOf(record.p));
        break;
      }
      case 'n':
        this.applyNamespace(record.n);
        break;
    }
  }

  private applyNamespace(entry: NamespaceEntry): void {
    if (this.namespace.length >= this.limits.namespaceEntriesMax) {
      this.overflow = true;
      return;
    }
    this.namespace.push(entry);
    this.markDirectory(parentOf(entry.path));
    switch (entry.kind) {
      case 'create':
      case 'mkdir':
      case 'mknod':
      case 'symlink':
      case 'link': {
        this.dropUnder(entry.path);
        const fresh = this.entry(entry.path);
        if (fresh !== undefined) {
          fresh.metadata = true;
          fresh.compare = entry.kind === 'link';
        }
        break;
      }
      case 'unlink':
      case 'rmdir':
      case 'removeTree':
        this.dropUnder(entry.path);
        break;
      case 'rename': {
        this.markDirectory(parentOf(entry.to));
        this.dropUnder(entry.to);
        const moved: [string, Entry][] = [];
        for (const [path, value] of this.entries) {
          if (isAtOrUnder(path, entry.path)) moved.push([entry.to + path.slice(entry.path.length), value]);
        }
        this.dropUnder(entry.path);
        for (const [path, value] of moved) this.entries.set(path, value);
        const target = this.entry(entry.to);
        if (target !== undefined) {
          // The peer may have applied this rename before the link broke: compare, do not trust.
          target.compare = true;
          target.metadata = true;
        }
        const movedDirectories = [...this.directories].filter((dir) => isAtOrUnder(dir, entry.path));
        for (const dir of movedDirectories) this.directories.add(entry.to + dir.slice(entry.path.length));
        break;
      }
    }
  }

  private dropUnder(root: string): void {
    for (const path of [...this.entries.keys()]) if (isAtOrUnder(path, root)) this.entries.delete(path);
  }

  plan(): ResyncPlan {
    const paths: PathChange[] = [];
    for (const [path, entry] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      paths.push({ path, ranges: entry.ranges.toArray(), metadata: entry.metadata, compare: entry.compare });
    }
    return {
      overflowed: this.overflow,
      namespace: [...this.namespace],
      directories: [...this.directories].sort(),
      paths,
    };
  }

  /** Records that rebuild this journal's state (for compaction): namespace first, then paths. */
  snapshot(): JournalRecord[] {
    if (this.overflow) return [{ t: 'x', p: '/' }];
    const out: JournalRecord[] = this.namespace.map((n) => ({ t: 'n', n }));
    for (const [path, entry] of this.entries) {
      for (const range of entry.ranges.toArray()) {
        if (range.end === Infinity) out.push({ t: 'tr', p: path, s: range.start });
        else out.push({ t: 'w', p: path, s: range.start, e: range.end });
      }
      if (entry.compare) out.push({ t: 'c', p: path });
      else if (entry.metadata) out.push({ t: 'm', p: path });
    }
    return out;
  }
}

/** Parses one journal line; a torn last line (crash mid-append) returns undefined. */
export function parseJournalLine(line: string): JournalRecord | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line) as JournalRecord;
    if (typeof value !== 'object' || value === null || typeof (value as { t?: unknown }).t !== 'string')
      return undefined;
    return value;
  } catch {
    return undefined;
  }
}

export function formatJournalRecord(record: JournalRecord): string {
  // Infinity is not JSON: a truncation record carries only its start.
  return `${JSON.stringify(record)}\n`;
}
