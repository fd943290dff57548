// Data generations of a mirror module: which node's replicated data is newer, and whether two
// nodes' data have forked (a split brain wrote on both sides). Pure.
//
// A generation is started each time a node becomes the only writer of the data: entering
// ALONE or PRIM from a non-primary state, and PRIM -> ALONE when its secondary goes away. It is
// named (counter, node); a node never reuses a counter, so names are unique. Each node keeps the
// last `historyMax` generations its data went through, newest last. A secondary adopts its
// primary's history once the primary has confirmed it in sync. Data A is newer than data B when
// B's newest generation is in A's history; when neither contains the other the data forked.

export interface Generation {
  readonly counter: number;
  readonly node: string;
}

/** Enough to find the common ancestor across any realistic run of failovers between two nodes. */
export const historyMax = 16;

export function sameGeneration(a: Generation | null, b: Generation | null): boolean {
  if (a === null || b === null) return a === b;
  return a.counter === b.counter && a.node === b.node;
}

export function formatGeneration(generation: Generation | null): string {
  return generation === null ? 'none' : `${generation.counter}@${generation.node}`;
}

export function headOf(history: readonly Generation[]): Generation | null {
  return history[history.length - 1] ?? null;
}

function assertHistory(history: readonly Generation[]): void {
  if (history.length > historyMax) throw new Error(`generation history of ${history.length} > ${historyMax}`);
  for (let index = 1; index < history.length; index += 1) {
    const previous = history[index - 1];
    const current = history[index];
    if (previous === undefined || current === undefined || current.counter <= previous.counter) {
      throw new Error('generation history must have strictly increasing counters');
    }
  }
}

/** The history with one more generation, oldest entries dropped beyond the limit. */
export function extendHistory(history: readonly Generation[], generation: Generation): Generation[] {
  assertHistory(history);
  const head = headOf(history);
  if (head !== null && generation.counter <= head.counter) {
    throw new Error(`generation ${formatGeneration(generation)} does not follow ${formatGeneration(head)}`);
  }
  return [...history, generation].slice(-historyMax);
}

/** The next generation this node starts: above every counter it has seen, its own or the peer's. */
export function nextGeneration(
  node: string,
  history: readonly Generation[],
  peerHistory: readonly Generation[] | null,
): Generation {
  const own = headOf(history)?.counter ?? 0;
  const peer = peerHistory === null ? 0 : (headOf(peerHistory)?.counter ?? 0);
  return { counter: Math.max(own, peer) + 1, node };
}

function contains(history: readonly Generation[], generation: Generation): boolean {
  return history.some((entry) => sameGeneration(entry, generation));
}

/**
 * How `mine` relates to `theirs`. `fork`: both wrote since their last common generation.
 * `unknown`: the histories do not overlap within `historyMax`; treated like a fork.
 */
export type DataOrder = 'equal' | 'newer' | 'older' | 'fork' | 'unknown';

export function compareData(mine: readonly Generation[], theirs: readonly Generation[]): DataOrder {
  const myHead = headOf(mine);
  const theirHead = headOf(theirs);
  if (myHead === null && theirHead === null) return 'equal';
  if (theirHead === null) return 'newer';
  if (myHead === null) return 'older';
  if (sameGeneration(myHead, theirHead)) return 'equal';
  if (contains(mine, theirHead)) return 'newer';
  if (contains(theirs, myHead)) return 'older';
  const overlap = mine.some((entry) => contains(theirs, entry));
  return overlap ? 'fork' : 'unknown';
}

/** The newest generation both histories contain, or null. */
export function lastCommonGeneration(
  mine: readonly Generation[],
  theirs: readonly Generation[],
): Generation | null {
  for (let index = mine.length - 1; index >= 0; index -= 1) {
    const entry = mine[index];
    if (entry !== undefined && contains(theirs, entry)) return entry;
  }
  return null;
}

/** True when reintegrating from `primary` would overwrite writes that exist only in `mine`. */
export function wouldLoseWrites(mine: readonly Generation[], primary: readonly Generation[]): boolean {
  const order = compareData(mine, primary);
  return order === 'newer' || order === 'fork' || order === 'unknown';
}
