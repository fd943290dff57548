// Golden cases for the failover machine: a module's <check> and <failover> (as written in
// userconfig.xml), then resource tables over time; recorded: the wait status and the action
// fired at each evaluation. UPDATE_GOLDEN=1 rewrites the expected part; review it like code.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { type ResourceTable, setResource } from '../../../agent/core/resources.ts';
import { compileFailover } from '../../../agent/core/rule-compiler.ts';
import { evaluateRules, initialRuleEngine } from '../../../agent/core/rule-engine.ts';

const goldenDir = resolve(import.meta.dirname, '..', '..', 'golden', 'rules');

interface GoldenRules {
  description: string;
  /** The inside of <service mode="light">. */
  service: string;
  steps: { atMs: number; resources: Record<string, string> }[];
  expected?: { rules: string[]; skipped: string[]; steps: { wait: string; fire: string | null }[] };
}

const files = readdirSync(goldenDir)
  .filter((name) => name.endsWith('.json'))
  .sort();

test('there are rule golden cases', () => {
  assert.ok(files.length >= 8, `${files.length} cases in ${goldenDir}`);
});

for (const file of files) {
  test(`rules golden ${file}`, () => {
    const path = join(goldenDir, file);
    const golden = JSON.parse(readFileSync(path, 'utf8')) as GoldenRules;
    const loaded = loadUserconfig(
      `<!DOCTYPE safe>\n<safe>\n<service mode="light">\n${golden.service}\n</service>\n</safe>\n`,
    );
    assert.ok(loaded.config, loaded.problems.map((problem) => problem.message).join('\n'));
    const compiled = compileFailover(loaded.config.checkers, loaded.config.failover);
    const handleTimeMs = loaded.config.failover?.handleTimeMs ?? 15_000;
    let state = initialRuleEngine();
    let table: ResourceTable = {};
    const steps = golden.steps.map((step) => {
      for (const [name, value] of Object.entries(step.resources))
        table = setResource(table, name, value, 'golden', step.atMs).table;
      const evaluation = evaluateRules(compiled.rules, table, state, step.atMs, handleTimeMs);
      state = evaluation.state;
      const wait =
        evaluation.wait.status === 'blocked' ? `blocked by ${evaluation.wait.rule}` : evaluation.wait.status;
      return {
        wait,
        fire: evaluation.fire ? `${evaluation.fire.action} from ${evaluation.fire.rule}` : null,
      };
    });
    const actual = {
      rules: compiled.rules.map((rule) => `${rule.name} -> ${rule.action}`),
      skipped: compiled.skipped,
      steps,
    };
    if (process.env.UPDATE_GOLDEN === '1') {
      writeFileSync(path, `${JSON.stringify({ ...golden, expected: actual }, null, 2)}\n`);
      return;
    }
    assert.ok(golden.expected, `${file} has no expected part; run with UPDATE_GOLDEN=1 and review it`);
    assert.deepEqual(actual, golden.expected);
  });
}
