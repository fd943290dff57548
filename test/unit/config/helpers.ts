// Shared helpers of the configuration tests: fixture paths and small assertions on problems.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConfigProblem } from '../../../agent/config/problems.ts';

export const rootDir = resolve(import.meta.dirname, '..', '..', '..');
export const fixturesDir = join(rootDir, 'test', 'fixtures', 'config');
export const goldenDir = join(rootDir, 'test', 'golden', 'config');

export function fixture(name: string): string {
  return readFileSync(join(fixturesDir, name), 'utf8');
}

/** 1-based line of the first occurrence of `needle` in `text` (after `from`, when given). */
export function lineOf(text: string, needle: string, from = 0): number {
  const index = text.indexOf(needle, from);
  assert.ok(index >= 0, `${JSON.stringify(needle)} occurs in the text`);
  return text.slice(0, index).split('\n').length;
}

export function errors(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems.filter((problem) => problem.severity === 'error');
}

export function warnings(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems.filter((problem) => problem.severity === 'warning');
}

/** The one problem with `code` whose message matches; fails listing all problems otherwise. */
export function findProblem(
  problems: readonly ConfigProblem[],
  code: string,
  message: RegExp,
): ConfigProblem {
  const found = problems.filter((problem) => problem.code === code && message.test(problem.message));
  assert.equal(
    found.length,
    1,
    `one ${code} problem matching ${message}; got:\n${problems.map((p) => `  ${p.line}:${p.column} ${p.severity} ${p.code} ${p.message}`).join('\n')}`,
  );
  return found[0] as ConfigProblem;
}

/** A minimal valid mirror userconfig.xml around `inner` (inside <service>). */
export function mirror(inner: string, serviceAttributes = ''): string {
  return `<!DOCTYPE safe>
<safe>
<service mode="mirror"${serviceAttributes}>
  <heart><heartbeat name="default"/></heart>
${inner}
</service>
</safe>
`;
}

export const twoNodeCluster = `<cluster>
  <lans>
    <lan name="default">
      <node name="node1" addr="10.0.0.1"/>
      <node name="node2" addr="10.0.0.2"/>
    </lan>
    <lan name="repli">
      <node name="node1" addr="192.168.0.1"/>
      <node name="node2" addr="192.168.0.2"/>
    </lan>
  </lans>
</cluster>
`;
