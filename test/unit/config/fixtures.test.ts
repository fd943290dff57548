// Every real userconfig.xml (seeds, vendor modules) and hakit's own full examples: they validate
// with their cluster.xml, templates fail at each empty placeholder and pass once it is filled, and
// the effective configuration matches its golden file. UPDATE_GOLDEN=1 rewrites the golden files.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadClusterXml } from '../../../agent/config/cluster-config.ts';
import { type ElementSelector, setAttribute, setMacro } from '../../../agent/config/edit.ts';
import { effectiveJson, renderEffectiveXml } from '../../../agent/config/effective.ts';
import { formatProblem } from '../../../agent/config/problems.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { errors, fixture, fixturesDir, goldenDir, lineOf } from './helpers.ts';

type Fill = { macro: [string, string] } | { attribute: [ElementSelector, string, string] };

interface FixtureEntry {
  userconfig: string;
  source: string;
  cluster: string;
  placeholders: string[];
  fill: Fill[];
}

const manifest = JSON.parse(readFileSync(join(fixturesDir, 'fixtures.json'), 'utf8')) as {
  fixtures: FixtureEntry[];
};
const updateGolden = process.env.UPDATE_GOLDEN === '1';

function compareGolden(name: string, actual: string): void {
  const path = join(goldenDir, name);
  if (updateGolden) {
    mkdirSync(goldenDir, { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `golden file ${name} exists (run with UPDATE_GOLDEN=1 to create it)`);
  assert.equal(
    actual,
    readFileSync(path, 'utf8'),
    `${name} changed; review the diff, then UPDATE_GOLDEN=1 if intended`,
  );
}

/**
 * JSON as the repository's formatter writes it (objects expanded, arrays of scalars on one line
 * when they fit in 110 columns), so golden files pass the lint unchanged.
 */
function goldenJson(value: unknown, indent = '', prefixLength = 0): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const scalars = value.every((item) => item === null || typeof item !== 'object');
    const oneLine = `[${value.map((item) => JSON.stringify(item)).join(', ')}]`;
    if (scalars && indent.length + prefixLength + oneLine.length + 1 <= 110) return oneLine;
    return `[\n${value.map((item) => `${inner}${goldenJson(item, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${goldenJson(item, inner, JSON.stringify(key).length + 2)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

function fill(text: string, edits: readonly Fill[]): string {
  let result = text;
  for (const edit of edits) {
    result = 'macro' in edit ? setMacro(result, ...edit.macro) : setAttribute(result, ...edit.attribute);
  }
  return result;
}

describe('fixtures from the seeds and the vendor modules', () => {
  test('the manifest lists every userconfig.xml fixture', () => {
    const listed = new Set(manifest.fixtures.map((entry) => entry.userconfig));
    const onDisk = readFileSync(join(fixturesDir, 'fixtures.json'), 'utf8') && existsSync(fixturesDir);
    assert.ok(onDisk);
    for (const name of [
      'seed-000-mirror-windows',
      'seed-000-mirror-linux',
      'seed-003-farm-windows',
      'seed-003-farm-linux',
      'seed-004-kvm',
      'compat-apache_farm',
      'compat-postgresql',
    ]) {
      assert.ok(listed.has(`${name}.userconfig.xml`), name);
    }
  });

  for (const entry of manifest.fixtures) {
    describe(entry.userconfig, () => {
      const text = fixture(entry.userconfig);
      const clusterLoaded = loadClusterXml(fixture(entry.cluster), { file: entry.cluster });
      const cluster = clusterLoaded.cluster;

      test('its cluster.xml is valid', () => {
        assert.deepEqual(clusterLoaded.problems.map(formatProblem), []);
        assert.ok(cluster);
      });

      test(
        entry.placeholders.length === 0
          ? 'validates without errors'
          : 'fails exactly at its empty placeholders',
        () => {
          assert.ok(cluster);
          const loaded = loadUserconfig(text, { file: entry.userconfig, cluster });
          const expectedLines = [...new Set(entry.placeholders.map((needle) => lineOf(text, needle)))].sort(
            (a, b) => a - b,
          );
          const errorLines = [...new Set(errors(loaded.problems).map((problem) => problem.line))].sort(
            (a, b) => a - b,
          );
          assert.deepEqual(errorLines, expectedLines, loaded.problems.map(formatProblem).join('\n'));
          for (const problem of errors(loaded.problems))
            assert.equal(problem.code, 'empty-placeholder', formatProblem(problem));
          assert.equal(loaded.ok, entry.placeholders.length === 0);
        },
      );

      test('validates once its placeholders are filled, and matches the golden effective configuration', () => {
        assert.ok(cluster);
        const filled = fill(text, entry.fill);
        const loaded = loadUserconfig(filled, { file: entry.userconfig, cluster });
        assert.deepEqual(errors(loaded.problems).map(formatProblem), []);
        assert.ok(loaded.config);
        const base = entry.userconfig.replace(/\.userconfig\.xml$/, '');
        compareGolden(`${base}.effective.json`, `${goldenJson(effectiveJson(loaded.config))}\n`);
        compareGolden(`${base}.effective.xml`, renderEffectiveXml(loaded.config));
        compareGolden(
          `${base}.problems.txt`,
          loaded.problems.map(formatProblem).join('\n') + (loaded.problems.length > 0 ? '\n' : ''),
        );
      });

      test('its effective XML loads back to the same configuration', () => {
        assert.ok(cluster);
        const loaded = loadUserconfig(fill(text, entry.fill), { cluster });
        assert.ok(loaded.config);
        const rendered = renderEffectiveXml(loaded.config);
        const reloaded = loadUserconfig(rendered, { cluster });
        assert.deepEqual(errors(reloaded.problems).map(formatProblem), []);
        assert.ok(reloaded.config);
        const { macros: _macros, ...expected } = effectiveJson(loaded.config) as Record<string, unknown>;
        const { macros: reloadedMacros, ...actual } = effectiveJson(reloaded.config) as Record<
          string,
          unknown
        >;
        assert.deepEqual(reloadedMacros, [], 'the effective configuration has its macros expanded');
        assert.deepEqual(actual, expected);
      });
    });
  }
});
