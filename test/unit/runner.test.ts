// The closing summary line is only worth something if the counts behind it are right.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const rootDir = resolve(import.meta.dirname, '..', '..');

test('the counting reporter counts passes, failures and skips, not suites', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hakit-runner-'));
  try {
    const countsFile = join(dir, 'counts.json');
    const result = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-reporter=${join(rootDir, 'test', 'counts-reporter.mjs')}`,
        `--test-reporter-destination=${countsFile}`,
        join(rootDir, 'test', 'fixtures', 'runner', 'mixed.fixture.ts'),
      ],
      // Without NODE_TEST_CONTEXT the child is a top-level run, not a subtest of this one.
      { cwd: rootDir, encoding: 'utf8', env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
    );
    assert.equal(result.status, 1, 'a failing test makes the run fail');
    const counts = JSON.parse(readFileSync(countsFile, 'utf8')) as Record<string, unknown>;
    assert.equal(counts.passed, 2);
    assert.equal(counts.failed, 1);
    assert.equal(counts.skipped, 1);
    assert.deepEqual(counts.failures, [
      `${join(rootDir, 'test', 'fixtures', 'runner', 'mixed.fixture.ts')}: fails`,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown suite name is refused with the list of suites', () => {
  const result = spawnSync(process.execPath, [join(rootDir, 'dist', 'test', 'run.cjs'), 'nosuchsuite'], {
    cwd: rootDir,
    encoding: 'utf8',
  });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /unknown suite or file: nosuchsuite \(suites: checks, unit, sim, lab, e2e\)/);
});
