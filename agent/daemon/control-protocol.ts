// The local control channel between the `hakit` command and `hakitd`: one JSON request and one
// JSON response per connection over a Unix socket only root can open. The HTTP API (later) calls
// the same command handler, so the CLI and the API stay one to one.

export const controlMessageBytesMax = 4 * 1024 * 1024;

/** Verbs that act on a module's automaton (the CLI sends them, the daemon hands them to it). */
export const moduleActionVerbs: readonly string[] = [
  'start',
  'stop',
  'restart',
  'stopstart',
  'forcestop',
  'prim',
  'second',
  'swap',
  'primforce',
];

export interface ControlRequest {
  verb: string;
  /** The module, from -m or $SAFEMODULE. */
  module?: string;
  args: string[];
  /** `-i IDENTITY`: who asks (a checker, a script); counts toward maxloop. */
  identity?: string;
  /** Who the caller is, for the log (`root`, `admin@10.0.0.1`). */
  caller: string;
}

export interface ControlResponse {
  exitCode: number;
  /** What the CLI prints on stdout. */
  text: string;
  /** What the CLI prints on stderr. */
  error?: string;
  /** Structured result for API clients. */
  data?: unknown;
}

export function isControlRequest(value: unknown): value is ControlRequest {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.verb === 'string' &&
    Array.isArray(candidate.args) &&
    candidate.args.every((arg) => typeof arg === 'string') &&
    (candidate.module === undefined || typeof candidate.module === 'string') &&
    (candidate.identity === undefined || typeof candidate.identity === 'string') &&
    typeof candidate.caller === 'string'
  );
}
