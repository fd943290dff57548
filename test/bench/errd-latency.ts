// How fast errd sees a watched process die: kill -> resource down. hakit watches the pids it
// found between full scans (pidPollMs); the baseline is a scan-only monitor, as a polltimer-
// driven errd works, with a 1 s polltimer (the reference's templates use 10 s).
// Run: node --import tsx test/bench/errd-latency.ts [trials]
import { type ChildProcess, spawn } from 'node:child_process';
import { ErrdMonitor, type ErrdReport } from '../../agent/checkers/errd-monitor.ts';

const trials = Number(process.argv[2] ?? '20');

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

async function measure(label: string, pollTimerMs: number, pidPollMs: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let trial = 0; trial < trials; trial += 1) {
    const tag = `${process.pid}${trial}${pollTimerMs}`;
    const child: ChildProcess = spawn('sleep', [`1000.${tag}`], { stdio: 'ignore' });
    const reports: ErrdReport[] = [];
    let downAtMs = 0;
    const monitor = new ErrdMonitor(
      [
        {
          name: 'sleep',
          nameRegex: null,
          argRegex: new RegExp(`^1000\\.${tag}$`),
          atLeast: 1,
          atMax: -1,
          watchClass: 'both',
          action: 'restart',
          startAfter: 0,
          isService: false,
        },
      ],
      {
        pollTimerMs,
        pidPollMs,
        onReport: (report) => {
          reports.push(report);
          if (!report.up) downAtMs = performance.now();
        },
        onError: (error) => {
          throw error;
        },
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    monitor.setActiveClasses(['both']);
    if (reports[0]?.up !== true) throw new Error(`${label}: the process was not seen running`);
    // Kill at a random point of the poll cycle, as a real crash would.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * pollTimerMs));
    const killedAtMs = performance.now();
    child.kill('SIGKILL');
    while (downAtMs === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    latencies.push(downAtMs - killedAtMs);
    monitor.stop();
  }
  return latencies.sort((a, b) => a - b);
}

function line(label: string, sorted: number[]): string {
  return `${label.padEnd(34)} p50 ${percentile(sorted, 0.5).toFixed(1).padStart(7)} ms   p95 ${percentile(sorted, 0.95).toFixed(1).padStart(7)} ms   max ${(sorted.at(-1) ?? Number.NaN).toFixed(1).padStart(7)} ms`;
}

const hakit = await measure('hakit', 10_000, 50);
const baseline = await measure('baseline', 1000, 1_000_000);
console.log(`errd death detection, ${trials} kills each`);
console.log(line('hakit (pid watch 50 ms, polltimer 10 s)', hakit));
console.log(line('baseline (scan every 1 s)', baseline));
console.log(
  `ratio baseline/hakit at p50: ${(percentile(baseline, 0.5) / percentile(hakit, 0.5)).toFixed(1)}x (target: hakit p50 <= 200 ms)`,
);
