// `npm test`: every suite in order (checks, unit, sim, lab, e2e), then one closing line
// `N passed, N failed, N skipped`. `npm test -- lab` runs one suite; a path runs one file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { allSystemPackages, ensureSystemPackages } from './system-packages.ts';

const rootDir = resolve(import.meta.dirname, '..', '..');
const suites = ['checks', 'unit', 'sim', 'lab', 'e2e'] as const;
type Suite = (typeof suites)[number];

/** Files of one suite run in parallel up to this many; lab tests share the machine's namespaces. */
const concurrencyBySuite: Record<Suite, number> = { checks: 1, unit: 2, sim: 2, lab: 1, e2e: 1 };
const suiteTimeoutMs = 30 * 60_000;

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  failures: string[];
}

function emptyCounts(): Counts {
  return { passed: 0, failed: 0, skipped: 0, failures: [] };
}

function add(into: Counts, from: Counts): void {
  into.passed += from.passed;
  into.failed += from.failed;
  into.skipped += from.skipped;
  into.failures.push(...from.failures);
}

function testFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...testFilesUnder(path));
    else if (entry.name.endsWith('.test.ts')) files.push(path);
  }
  return files.sort();
}

function runProcess(file: string, args: readonly string[], timeoutMs: number): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(file, args, { cwd: rootDir, stdio: 'inherit' });
    const timer = setTimeout(() => {
      process.stderr.write(`test runner: ${file} ${args.join(' ')} ran over ${timeoutMs} ms; killing it\n`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      process.stderr.write(`test runner: cannot start ${file}: ${error.message}\n`);
      resolvePromise(127);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise(code ?? 1);
    });
  });
}

async function runChecks(): Promise<Counts> {
  const counts = emptyCounts();
  const bin = (name: string) => join(rootDir, 'node_modules', '.bin', name);
  const checks: [string, string, string[]][] = [
    ['lint (eslint)', bin('eslint'), ['--max-warnings', '0', '.']],
    ['format (prettier)', bin('prettier'), ['--check', '--log-level', 'warn', '.']],
    ['type-check (tsc)', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']],
    [
      'type-check (svelte-check)',
      bin('svelte-check'),
      ['--tsconfig', 'renderer/tsconfig.json', '--fail-on-warnings', '--output', 'human'],
    ],
  ];
  for (const [name, file, args] of checks) {
    process.stdout.write(`\n▶ ${name}\n`);
    const code = await runProcess(file, args, 10 * 60_000);
    if (code === 0) {
      counts.passed += 1;
      process.stdout.write(`✔ ${name}\n`);
    } else {
      counts.failed += 1;
      counts.failures.push(name);
      process.stdout.write(`✖ ${name} (exit ${code})\n`);
    }
  }
  return counts;
}

async function runNodeTests(files: readonly string[], concurrency: number): Promise<Counts> {
  const scratchDir = mkdtempSync(join(tmpdir(), 'hakit-test-'));
  const countsFile = join(scratchDir, 'counts.json');
  try {
    const code = await runProcess(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${concurrency}`,
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        `--test-reporter=${join(rootDir, 'test', 'counts-reporter.mjs')}`,
        `--test-reporter-destination=${countsFile}`,
        ...files.map((file) => relative(rootDir, file)),
      ],
      suiteTimeoutMs,
    );
    const counts = existsSync(countsFile)
      ? (JSON.parse(readFileSync(countsFile, 'utf8')) as Counts)
      : emptyCounts();
    if (code !== 0 && counts.failed === 0) {
      // The runner itself failed (a file that does not load, a timeout): count it, never hide it.
      counts.failed += 1;
      counts.failures.push(`test process for ${files.length} file(s) exited ${code}`);
    }
    return counts;
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const requested = argv.filter((arg) => !arg.startsWith('-'));
  const unknown = requested.filter(
    (arg) => !suites.includes(arg as Suite) && !existsSync(resolve(rootDir, arg)),
  );
  if (unknown.length > 0) {
    process.stderr.write(
      `test runner: unknown suite or file: ${unknown.join(', ')} (suites: ${suites.join(', ')})\n`,
    );
    return 2;
  }
  try {
    await ensureSystemPackages(allSystemPackages, 'npm test');
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  // The FUSE binding needs libfuse-dev, which the step above provides: build it now (only when its
  // sources changed), so replication code and tests find it. A failure is reported and the tests
  // that need the binding say why they cannot run.
  const addonBuild = await runProcess(
    process.execPath,
    ['--import', 'tsx', join('agent', 'replication', 'fuse', 'build-addon.ts')],
    10 * 60_000,
  );
  if (addonBuild !== 0)
    process.stderr.write(`test runner: the FUSE binding did not build (exit ${addonBuild})\n`);
  const total = emptyCounts();
  // A directory stands for every test file below it.
  const fileArgs = requested
    .filter((arg) => !suites.includes(arg as Suite))
    .map((arg) => resolve(rootDir, arg))
    .flatMap((path) => (statSync(path).isDirectory() ? testFilesUnder(path) : [path]));
  const suiteArgs = requested.filter((arg): arg is Suite => suites.includes(arg as Suite));
  const selected: Suite[] = suiteArgs.length > 0 || fileArgs.length > 0 ? suiteArgs : [...suites];
  for (const suite of selected) {
    const startedMs = Date.now();
    process.stdout.write(`\n━━ suite: ${suite} ━━\n`);
    if (suite === 'checks') add(total, await runChecks());
    else {
      const files = testFilesUnder(join(rootDir, 'test', suite));
      if (files.length === 0) {
        process.stdout.write(`(no tests in test/${suite} yet)\n`);
        continue;
      }
      add(total, await runNodeTests(files, concurrencyBySuite[suite]));
    }
    process.stdout.write(`━━ ${suite} done in ${((Date.now() - startedMs) / 1000).toFixed(1)} s ━━\n`);
  }
  if (fileArgs.length > 0) add(total, await runNodeTests(fileArgs, 1));
  if (total.failures.length > 0) {
    process.stdout.write(`\nFailed:\n${total.failures.map((failure) => `  ${failure}`).join('\n')}\n`);
  }
  process.stdout.write(`\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
  return total.failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `test runner: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
