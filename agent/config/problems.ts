// Validation problems: every one carries the file, a 1-based line and column, the element path,
// a severity, a message and an optional hint. Errors block applying a configuration; warnings do not.
import { assert } from './assert.ts';
import type { LineIndex } from './positions.ts';

export type Severity = 'error' | 'warning';

/** Stable machine-readable codes, so the console can group problems and tests can match them. */
export type ProblemCode =
  | 'xml-syntax'
  | 'document-structure'
  | 'unknown-element'
  | 'unknown-attribute'
  | 'misplaced-element'
  | 'duplicate-element'
  | 'invalid-value'
  | 'missing-value'
  | 'empty-placeholder'
  | 'template-placeholder'
  | 'undefined-macro'
  | 'mode-mismatch'
  | 'legacy-syntax'
  | 'unexpected-text'
  | 'unknown-lan'
  | 'unknown-node'
  | 'node-count'
  | 'replicated-dir'
  | 'duplicate-name'
  | 'flow-without-rfs'
  | 'rule-syntax'
  | 'unknown-resource'
  | 'lua-unsupported'
  | 'missing-file'
  | 'cluster'
  | 'cross-module'
  | 'package'
  | 'too-many-problems';

export interface ConfigProblem {
  readonly severity: Severity;
  readonly code: ProblemCode;
  readonly message: string;
  readonly hint?: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
  /** Element path such as `safe/service/rfs/replicated[2]` (`[n]` only when a name repeats). */
  readonly path: string;
}

/** Where a problem is, in offsets of the collector's source text. */
export interface ProblemSite {
  readonly start: number;
  readonly end: number;
  readonly path: string;
}

/** Bounds the output on a pathological file; the last slot says how many were dropped. */
export const problemsMax = 1000;

export class ProblemCollector {
  private readonly items: ConfigProblem[] = [];
  private dropped = 0;

  constructor(
    readonly file: string,
    private readonly lines: LineIndex,
  ) {}

  add(severity: Severity, code: ProblemCode, site: ProblemSite, message: string, hint?: string): void {
    assert(site.start <= site.end, `problem span ${site.start}..${site.end} is ordered`);
    assert(message.length > 0, 'a problem has a message');
    if (this.items.length >= problemsMax) {
      this.dropped += 1;
      return;
    }
    const start = this.lines.position(site.start);
    const end = this.lines.position(site.end);
    this.items.push({
      severity,
      code,
      message,
      ...(hint === undefined ? {} : { hint }),
      file: this.file,
      line: start.line,
      column: start.column,
      endLine: end.line,
      endColumn: end.column,
      path: site.path,
    });
  }

  /** 1-based line of an offset, for messages that mention another place ("used at line 19"). */
  lineOf(offset: number): number {
    return this.lines.position(offset).line;
  }

  error(code: ProblemCode, site: ProblemSite, message: string, hint?: string): void {
    this.add('error', code, site, message, hint);
  }

  warning(code: ProblemCode, site: ProblemSite, message: string, hint?: string): void {
    this.add('warning', code, site, message, hint);
  }

  /** Problems sorted by position (stable), with a closing note when some were dropped. */
  list(): ConfigProblem[] {
    const sorted = sortProblems(this.items);
    if (this.dropped > 0) {
      sorted.push({
        severity: 'error',
        code: 'too-many-problems',
        message: `${this.dropped} more problems not shown (at most ${problemsMax} are reported)`,
        file: this.file,
        line: 1,
        column: 1,
        endLine: 1,
        endColumn: 1,
        path: '',
      });
    }
    return sorted;
  }
}

export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort(
      (a, b) =>
        a.problem.file.localeCompare(b.problem.file) ||
        a.problem.line - b.problem.line ||
        a.problem.column - b.problem.column ||
        a.index - b.index,
    )
    .map((entry) => entry.problem);
}

export function hasErrors(problems: readonly ConfigProblem[]): boolean {
  return problems.some((problem) => problem.severity === 'error');
}

/** `file:line:col: error: message (hint)`, the format compilers use, so editors can jump to it. */
export function formatProblem(problem: ConfigProblem): string {
  const hint = problem.hint === undefined ? '' : ` (${problem.hint})`;
  return `${problem.file}:${problem.line}:${problem.column}: ${problem.severity}: ${problem.message}${hint}`;
}

/** A problem about a whole file (unreadable, not a module), placed at its first character. */
export function fileProblem(
  file: string,
  code: ProblemCode,
  message: string,
  severity: Severity = 'error',
): ConfigProblem {
  return { severity, code, message, file, line: 1, column: 1, endLine: 1, endColumn: 1, path: '' };
}
