// Who becomes primary when both nodes of a mirror start together (reference M6), and who survives
// when a split brain heals (2.6). Pure and symmetric: both nodes compute it from the same pair of
// adverts and reach the same answer, so no extra message round is needed.
//
// Election rule (documented in docs/mirror.md):
//   1. A node is eligible when it has data (a generation history) and was not stopped in the
//      middle of a reintegration. No eligible node: nobody is elected (first start: `prim`).
//   2. One eligible node: it wins.
//   3. Both eligible: the newer data wins (its history contains the other's newest generation).
//   4. Same data: the `defaultprim` node if it names one of the two; then the node that was
//      primary at its last stop (lastprim) if only one was; then the node whose persisted
//      uptodate flag is set if only one has it; then the smaller node name (byte order).
//   5. Forked data (both wrote): the split-brain survivor below; the other keeps its data aside.
//
// Split-brain survivor: the node that wrote the last generation both share (it was the primary
// when the split began: the reference keeps the former PRIM and sacrifices the former SECOND);
// otherwise the larger newest counter; otherwise the smaller node name.
import type { DefaultPrimary } from '../config/model.ts';
import { compareData, type Generation, headOf, lastCommonGeneration } from './mirror-data.ts';

export interface Candidate {
  node: string;
  history: readonly Generation[];
  reintegrating: boolean;
  lastPrim: boolean;
  uptodate: boolean;
}

export interface ElectionResult {
  winner: string | null;
  reason: string;
}

export function eligible(candidate: Candidate): boolean {
  return !candidate.reintegrating && candidate.history.length > 0;
}

function byName(a: string, b: string): string {
  if (a === b) throw new Error(`both candidates are named ${a}`);
  return a < b ? a : b;
}

export function splitBrainSurvivor(a: Candidate, b: Candidate): ElectionResult {
  const common = lastCommonGeneration(a.history, b.history);
  if (common !== null && (common.node === a.node || common.node === b.node)) {
    return { winner: common.node, reason: 'primary when the split began' };
  }
  const aCounter = headOf(a.history)?.counter ?? 0;
  const bCounter = headOf(b.history)?.counter ?? 0;
  if (aCounter !== bCounter) {
    return { winner: aCounter > bCounter ? a.node : b.node, reason: 'newest generation' };
  }
  return { winner: byName(a.node, b.node), reason: 'smaller node name' };
}

function tieBreak(a: Candidate, b: Candidate, defaultPrimary: DefaultPrimary): ElectionResult {
  if (defaultPrimary.kind === 'node' && (defaultPrimary.node === a.node || defaultPrimary.node === b.node)) {
    return { winner: defaultPrimary.node, reason: 'defaultprim' };
  }
  if (a.lastPrim !== b.lastPrim) return { winner: a.lastPrim ? a.node : b.node, reason: 'last primary' };
  if (a.uptodate !== b.uptodate) return { winner: a.uptodate ? a.node : b.node, reason: 'uptodate' };
  return { winner: byName(a.node, b.node), reason: 'smaller node name' };
}

export function electPrimary(a: Candidate, b: Candidate, defaultPrimary: DefaultPrimary): ElectionResult {
  const aEligible = eligible(a);
  const bEligible = eligible(b);
  if (!aEligible && !bEligible) return { winner: null, reason: 'no node has data known to be good' };
  if (aEligible !== bEligible) {
    return { winner: aEligible ? a.node : b.node, reason: 'the only node with consistent data' };
  }
  switch (compareData(a.history, b.history)) {
    case 'newer':
      return { winner: a.node, reason: 'newer data' };
    case 'older':
      return { winner: b.node, reason: 'newer data' };
    case 'equal':
      return tieBreak(a, b, defaultPrimary);
    case 'fork':
    case 'unknown':
      return splitBrainSurvivor(a, b);
  }
}
