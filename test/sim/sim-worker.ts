// Runs a batch of simulator seeds in a worker thread and posts a compact result per seed, so
// sim.test.ts can use every core.
import { parentPort, workerData } from 'node:worker_threads';
import { type SimConfig, simulate } from './simulator.ts';

export interface WorkerJob {
  seeds: number[];
  steps: number;
  config?: Partial<SimConfig>;
}

export interface WorkerSeedResult {
  seed: number;
  steps: number;
  simulatedMs: number;
  converged: boolean;
  convergeMs: number | null;
  convergeBoundMs: number;
  arbitrator: boolean;
  violation: { kind: string; message: string } | null;
  dualPrimaryChecks: number;
  writes: number;
  promotions: number;
  keepAsides: number;
}

const job = workerData as WorkerJob;
const results: WorkerSeedResult[] = [];
for (const seed of job.seeds) {
  const result = simulate({ seed, steps: job.steps, ...(job.config ? { config: job.config } : {}) });
  results.push({
    seed,
    steps: result.steps,
    simulatedMs: result.simulatedMs,
    converged: result.converged,
    convergeMs: result.convergeMs,
    convergeBoundMs: result.convergeBoundMs,
    arbitrator: result.config.arbitrator,
    violation:
      result.violation === null ? null : { kind: result.violation.kind, message: result.violation.message },
    dualPrimaryChecks: result.stats.dualPrimaryChecks,
    writes: result.stats.writes,
    promotions: result.stats.promotions,
    keepAsides: result.stats.keepAsides,
  });
}
parentPort?.postMessage(results);
