// `npm run sim -- --seed S --steps N [--seeds K] [--trace]`: runs the deterministic simulator and
// prints a summary; on a failure, the seed, the violation and the last steps of a replay with
// full tracing.
import { simulate, type SimResult } from './simulator.ts';

interface CliOptions {
  seed: number;
  steps: number;
  seeds: number;
  trace: boolean;
}

function parse(argv: readonly string[]): CliOptions {
  const options: CliOptions = { seed: 1, steps: 20_000, seeds: 1, trace: false };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index];
    const value = argv[index + 1];
    const number = () => {
      const parsed = Number(value);
      if (value === undefined || !Number.isInteger(parsed) || parsed < 0) {
        throw new Error(`${arg} needs a non-negative integer`);
      }
      index += 1;
      return parsed;
    };
    if (arg === '--seed') options.seed = number();
    else if (arg === '--steps') options.steps = number();
    else if (arg === '--seeds') options.seeds = number();
    else if (arg === '--trace') options.trace = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: npm run sim -- --seed S --steps N [--seeds K] [--trace]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

function summary(result: SimResult): string {
  const c = result.config;
  return (
    `seed ${result.seed}: ${result.violation ? `FAILED (${result.violation.kind})` : 'ok'}, ` +
    `${result.steps} steps (${result.faultSteps} with faults, ${result.healSteps} healing), ` +
    `${(result.simulatedMs / 1000).toFixed(1)} s simulated, ` +
    `converged ${result.converged ? `in ${((result.convergeMs ?? 0) / 1000).toFixed(1)} s` : 'no'} ` +
    `(bound ${(result.convergeBoundMs / 1000).toFixed(1)} s); ` +
    `arbitrator ${c.arbitrator ? 'yes' : 'no'}, rfs ${c.replication ? 'yes' : 'no'}, lans ${c.lans.join('+')}, ` +
    `pulse ${c.pulseMs} ms, timeout ${c.timeoutMs} ms, lease ${c.leaseMs} ms, drift ${c.actualDriftPpmMax} ppm; ` +
    `writes ${result.stats.writes}, promotions ${result.stats.promotions}, keepAsides ${result.stats.keepAsides}, ` +
    `crashes ${result.stats.crashes}, pauses ${result.stats.pauses}, partitions ${result.stats.partitions}`
  );
}

function main(): number {
  const options = parse(process.argv.slice(2));
  const startedMs = performance.now();
  let steps = 0;
  let failures = 0;
  for (let index = 0; index < options.seeds; index += 1) {
    const seed = (options.seed + index) >>> 0;
    const result = simulate({ seed, steps: options.steps, trace: options.trace });
    steps += result.steps;
    process.stdout.write(`${summary(result)}\n`);
    if (result.violation !== null) {
      failures += 1;
      const replay = options.trace
        ? result
        : simulate({ seed, steps: options.steps, trace: true, traceLinesMax: 80 });
      process.stdout.write(
        `\n${result.violation.kind} at ${result.violation.atMs} ms: ${result.violation.message}\n` +
          `replay: npm run sim -- --seed ${seed} --steps ${options.steps} --trace\nlast steps:\n` +
          `${replay.trace.join('\n')}\n\n`,
      );
    }
  }
  const elapsedS = (performance.now() - startedMs) / 1000;
  process.stdout.write(
    `${options.seeds} seed(s), ${steps} steps in ${elapsedS.toFixed(2)} s ` +
      `(${Math.round(steps / Math.max(elapsedS, 0.001))} steps/s), ${failures} failed\n`,
  );
  return failures === 0 ? 0 : 1;
}

process.exitCode = main();
