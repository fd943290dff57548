// "did you mean pulse?": the nearest known name by edit distance (Levenshtein with transpositions),
// only when it is close enough to be a typo rather than a different word.

/** Inputs longer than this are not typos of a schema name; also bounds the O(n*m) work. */
const nameLengthMax = 64;

/**
 * Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment),
 * since `rsf` for `rfs` is one slip of the fingers, not two.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  const width = b.length + 1;
  const rows = new Array<number>((a.length + 1) * width).fill(0);
  const at = (i: number, j: number): number => rows[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) rows[i * width] = i;
  for (let j = 0; j <= b.length; j++) rows[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      rows[i * width + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The closest candidate within a typo-sized distance, or undefined. Ties keep the first candidate. */
export function closestName(input: string, candidates: Iterable<string>): string | undefined {
  if (input.length === 0 || input.length > nameLengthMax) return undefined;
  const lowered = input.toLowerCase();
  const distanceMax = Math.max(1, Math.floor(input.length / 3));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === input) continue;
    if (candidate.length > nameLengthMax) continue;
    // Case-only differences count as the closest possible match.
    const distance =
      candidate.toLowerCase() === lowered ? 0.5 : editDistance(lowered, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= distanceMax ? best : undefined;
}

export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  const closest = closestName(input, candidates);
  return closest === undefined ? undefined : `did you mean ${closest}?`;
}
