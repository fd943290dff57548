// Golden cases of the mirror automaton (Pacemaker-style): each step of each scenario is one
// case, (state before, event) -> (state after, accepted, message, actions), compared as data.
// UPDATE_GOLDEN=1 rewrites the expected parts; review the diff like code. The event lists come
// from mirror-golden-scenarios.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import {
  type MirrorRecord,
  MirrorScenario,
  type MirrorScenarioEvent,
  type ScenarioInitial,
  type ScenarioSettings,
} from './mirror-harness.ts';

const goldenDir = resolve(import.meta.dirname, '..', '..', 'golden', 'mirror');
const casesMin = 200;

interface GoldenFile {
  description: string;
  settings: ScenarioSettings;
  initial: ScenarioInitial;
  events: MirrorScenarioEvent[];
  expected?: MirrorRecord[];
}

const files = readdirSync(goldenDir)
  .filter((name) => name.endsWith('.json'))
  .sort();

const goldens = files.map((file) => ({
  file,
  golden: JSON.parse(readFileSync(join(goldenDir, file), 'utf8')) as GoldenFile,
}));

test(`there are at least ${casesMin} golden cases`, () => {
  const cases = goldens.reduce((total, { golden }) => total + golden.events.length, 0);
  assert.ok(cases >= casesMin, `${cases} cases in ${files.length} files under ${goldenDir}`);
});

for (const { file, golden } of goldens) {
  test(`golden ${file}`, () => {
    const scenario = new MirrorScenario(golden.settings, golden.initial);
    const records = golden.events.map((event) => scenario.play(event));
    if (process.env.UPDATE_GOLDEN === '1') {
      const { expected: _old, ...rest } = golden;
      writeFileSync(join(goldenDir, file), `${JSON.stringify({ ...rest, expected: records }, null, 2)}\n`);
      return;
    }
    assert.ok(golden.expected, `${file} has no expected part; run with UPDATE_GOLDEN=1 and review it`);
    assert.equal(records.length, golden.expected.length, `${file}: number of cases`);
    for (const [index, record] of records.entries()) {
      assert.deepEqual(record, golden.expected[index], `${file}: case ${index + 1} (${record.event})`);
    }
  });
}
