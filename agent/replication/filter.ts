// `<notreplicated path|regexpath>` (reference §4.7), pure. A path is relative to the replicated
// directory, "/"-rooted. `path` excludes that entry and everything below it; `regexpath` is a
// POSIX ERE (case-sensitive on Linux) matched against the path without its leading "/"; a leading
// "!" inverts it ("replicate only matches").
import type { NotReplicated } from '../config/model.ts';

export type ExclusionRule =
  | { readonly kind: 'path'; readonly path: string }
  | { readonly kind: 'regexpath'; readonly regex: string; readonly negated: boolean };

export interface PathFilter {
  /** True when changes to `path` are replicated. */
  readonly isReplicated: (path: string) => boolean;
  readonly rules: readonly ExclusionRule[];
}

function normalise(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `/${trimmed}`;
}

export function rulesFromConfig(entries: readonly NotReplicated[]): ExclusionRule[] {
  return entries.map((entry) =>
    entry.kind === 'path'
      ? { kind: 'path', path: entry.path }
      : { kind: 'regexpath', regex: entry.regex, negated: entry.negated },
  );
}

export function makePathFilter(rules: readonly ExclusionRule[]): PathFilter {
  const prefixes = rules.filter((rule) => rule.kind === 'path').map((rule) => normalise(rule.path));
  const regexes = rules
    .filter((rule): rule is Extract<ExclusionRule, { kind: 'regexpath' }> => rule.kind === 'regexpath')
    .map((rule) => ({ regex: new RegExp(rule.regex), negated: rule.negated }));
  const isReplicated = (path: string): boolean => {
    if (path === '/' || path === '') return true;
    for (const prefix of prefixes) {
      if (prefix === '') continue;
      if (path === prefix || path.startsWith(`${prefix}/`)) return false;
    }
    const relative = path.replace(/^\/+/, '');
    for (const { regex, negated } of regexes) {
      const matches = regex.test(relative);
      if (matches !== negated) return false;
    }
    return true;
  };
  return { isReplicated, rules };
}
