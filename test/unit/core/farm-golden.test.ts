// Golden scenarios (Pacemaker-style): events in, states and actions out, compared by diff.
// UPDATE_GOLDEN=1 rewrites the expected part; review the diff like code.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import type { FarmSettings } from '../../../agent/core/farm-automaton.ts';
import { FarmScenario, type ScenarioEvent, type ScenarioRecord } from './farm-harness.ts';

const goldenDir = resolve(import.meta.dirname, '..', '..', 'golden', 'farm');

interface GoldenFile {
  description: string;
  settings: FarmSettings;
  events: ScenarioEvent[];
  expected?: ScenarioRecord[];
}

const files = readdirSync(goldenDir)
  .filter((name) => name.endsWith('.json'))
  .sort();

test('there are golden scenarios', () => {
  assert.ok(files.length >= 5, `found ${files.length} scenarios in ${goldenDir}`);
});

for (const file of files) {
  test(`golden ${file}`, () => {
    const path = join(goldenDir, file);
    const golden = JSON.parse(readFileSync(path, 'utf8')) as GoldenFile;
    const scenario = new FarmScenario(golden.settings);
    const records = golden.events.map((event) => scenario.play(event));
    if (process.env.UPDATE_GOLDEN === '1') {
      writeFileSync(path, `${JSON.stringify({ ...golden, expected: records }, null, 2)}\n`);
      return;
    }
    assert.ok(golden.expected, `${file} has no expected part; run with UPDATE_GOLDEN=1 and review it`);
    assert.deepEqual(records, golden.expected);
  });
}
