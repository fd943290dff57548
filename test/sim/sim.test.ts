// The deterministic simulator run as tests: at least 1,000,000 simulated steps over many seeds
// (every seed with its own random configuration: arbitrator or not, replication or not, one or
// two heartbeat lans, timings, drift, fault intensity), split over two worker threads. Every
// step checks: at most one node acting as primary while an arbitrator is configured; no node
// promoted without prim/primforce holds data older than the newest write (arbitrator); no
// reintegration overwrites unique data that was not kept aside; a synchronous secondary holds
// its primary's data; the core never throws. After the faults heal, the pair must be
// PRIM/SECOND within the stated bound (convergenceBoundMs).
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { simulate } from './simulator.ts';
import type { WorkerJob, WorkerSeedResult } from './sim-worker.ts';

const stepsTotalMin = 1_000_000;
const seedCount = 200;
const faultStepsPerSeed = 5000;
const firstSeed = 1;

function runWorker(job: WorkerJob): Promise<WorkerSeedResult[]> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const file = new URL('./sim-worker.ts', import.meta.url).href;
  const code = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(file)});`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: job });
    worker.once('message', (results: WorkerSeedResult[]) => resolve(results));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`simulator worker exited with ${code}`));
    });
  });
}

test(`${stepsTotalMin} simulated steps over ${seedCount} seeds: no invariant violated, every run converges`, async () => {
  const startedMs = performance.now();
  const workers = Math.max(1, Math.min(2, availableParallelism()));
  const seeds = Array.from({ length: seedCount }, (_, index) => firstSeed + index);
  const batches = Array.from({ length: workers }, (_, worker) =>
    seeds.filter((_, index) => index % workers === worker),
  );
  const results = (
    await Promise.all(batches.map((batch) => runWorker({ seeds: batch, steps: faultStepsPerSeed })))
  ).flat();
  const elapsedS = (performance.now() - startedMs) / 1000;
  const steps = results.reduce((total, result) => total + result.steps, 0);
  const checks = results.reduce((total, result) => total + result.dualPrimaryChecks, 0);
  const writes = results.reduce((total, result) => total + result.writes, 0);
  const promotions = results.reduce((total, result) => total + result.promotions, 0);
  const keepAsides = results.reduce((total, result) => total + result.keepAsides, 0);
  const simulatedH = results.reduce((total, result) => total + result.simulatedMs, 0) / 3_600_000;
  const convergeMaxMs = Math.max(...results.map((result) => result.convergeMs ?? 0));
  const arbitrated = results.filter((result) => result.arbitrator).length;
  process.stdout.write(
    `simulator: ${results.length} seeds (${arbitrated} with an arbitrator), ${steps} steps, ` +
      `${simulatedH.toFixed(1)} simulated hours, ${Math.round(steps / elapsedS)} steps/s on ${workers} worker(s), ` +
      `${checks} dual-primary checks, ${writes} writes, ${promotions} promotions, ${keepAsides} data kept aside, ` +
      `slowest convergence ${(convergeMaxMs / 1000).toFixed(1)} s\n`,
  );
  const failures = results.filter((result) => result.violation !== null || !result.converged);
  assert.deepEqual(
    failures.map(
      (result) =>
        `seed ${result.seed}: ${result.violation?.kind}: ${result.violation?.message.slice(0, 300)}`,
    ),
    [],
    'replay one with: npm run sim -- --seed S --steps 5000',
  );
  assert.ok(steps >= stepsTotalMin, `${steps} steps < ${stepsTotalMin}`);
  for (const result of results) assert.ok((result.convergeMs ?? Infinity) <= result.convergeBoundMs);
});

test('a seed replays exactly: same steps, same statistics, same trace', () => {
  const first = simulate({ seed: 4242, steps: 3000, trace: true, traceLinesMax: 500 });
  const second = simulate({ seed: 4242, steps: 3000, trace: true, traceLinesMax: 500 });
  assert.equal(first.steps, second.steps);
  assert.deepEqual(first.stats, second.stats);
  assert.deepEqual(first.trace, second.trace);
  assert.ok(first.trace.length > 100);
  const other = simulate({ seed: 4243, steps: 3000 });
  assert.notDeepEqual(other.stats, first.stats, 'another seed, another run');
});

test('the dual-primary check is not vacuous: clocks drifting 40 % with no margin give two primaries', () => {
  // The core assumes perfect clocks here (driftPpm 0, marginMs 0) while the simulated clocks
  // drift up to 40 %: the lease argument no longer holds and the simulator must notice.
  let found: string | null = null;
  for (let seed = 1; seed <= 60 && found === null; seed += 1) {
    const result = simulate({
      seed,
      steps: 4000,
      config: { arbitrator: true, replication: true, driftPpm: 0, actualDriftPpmMax: 400_000, marginMs: 0 },
    });
    if (result.violation?.kind === 'dualPrimary') found = `seed ${seed}: ${result.violation.message}`;
  }
  assert.ok(found !== null, 'no dual primary found with broken clock assumptions');
});

test('with drift at the bound the core assumes (10,000 ppm), the arbitrator keeps one primary', () => {
  for (let seed = 500; seed < 530; seed += 1) {
    const result = simulate({
      seed,
      steps: 4000,
      config: { arbitrator: true, replication: true, driftPpm: 10_000, actualDriftPpmMax: 10_000, chaos: 2 },
    });
    assert.equal(result.violation, null, `seed ${seed}: ${result.violation?.message}`);
    assert.ok(result.converged);
  }
});
