// Invariant checks for the configuration core. A failed assertion is a bug in hakit, never a
// problem in the user's file: user mistakes become ConfigProblems, not exceptions.
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(`invariant violated: ${message}`);
}
