// Errors the console services return to the UI: a message that says what failed and where, and a
// stable code the UI can branch on. Anything else thrown inside a service is a bug and is reported
// as `internal` with its message only (no stack, which may hold paths or values).

export type ConsoleErrorCode =
  'bad-input' | 'not-found' | 'conflict' | 'locked' | 'unreachable' | 'refused' | 'internal';

export class ConsoleError extends Error {
  override name = 'ConsoleError';
  constructor(
    readonly code: ConsoleErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function badInput(message: string): ConsoleError {
  return new ConsoleError('bad-input', message);
}

export function notFound(message: string): ConsoleError {
  return new ConsoleError('not-found', message);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Asserts an invariant; a failure is a bug in the console, not a user error. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`console invariant broken: ${message}`);
}
