// Mirror failover in the lab: the primary's link is cut; measured until the client gets an
// answer on the virtual IP from the other node. Repeated, alternating the primary each run.
// Run (root): node --import tsx test/bench/mirror-failover.ts [runs] [pulseMs] [timeoutMs]
import { labJson } from '../lab/harness.ts';
import { eventually, MirrorLab } from '../lab/mirror-lab.ts';

const runs = Number(process.argv[2] ?? '20');
const pulseMs = Number(process.argv[3] ?? '100');
const timeoutMs = Number(process.argv[4] ?? '1000');
const mirror = new MirrorLab('bmir', { pulseMs, timeoutMs });

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

try {
  await mirror.setUp();
  await mirror.cli('n1', 'prim -m web');
  await mirror.cli('n2', 'second -m web');
  await eventually(
    async () => (await mirror.state('n2')).startsWith('web: SECOND (Ready)'),
    60_000,
    'SECOND',
  );
  await eventually(async () => (await mirror.servedBy()) === 'n1', 30_000, 'VIP on n1');
  const detections: number[] = [];
  const failovers: number[] = [];
  let primary = 'n1';
  for (let run = 0; run < runs; run += 1) {
    const other = primary === 'n1' ? 'n2' : 'n1';
    const cutMs = Date.now();
    await labJson(['fault', '--name', mirror.lab, 'link', primary, 'down']);
    await eventually(
      async () => !(await mirror.state(other)).startsWith('web: SECOND (Ready)'),
      30_000,
      'detection',
    );
    detections.push(Date.now() - cutMs);
    await eventually(async () => (await mirror.servedBy()) === other, 30_000, `VIP on ${other}`);
    failovers.push(Date.now() - cutMs);
    // Back to a pair: the old primary stops, is replugged, and rejoins as SECOND.
    await mirror.cli(primary, 'stop -m web');
    await labJson(['fault', '--name', mirror.lab, 'link', primary, 'up']);
    await mirror.cli(primary, 'start -m web');
    await eventually(
      async () => (await mirror.state(primary)).startsWith('web: SECOND (Ready)'),
      60_000,
      'rejoined',
    );
    primary = other;
  }
  const d = [...detections].sort((a, b) => a - b);
  const f = [...failovers].sort((a, b) => a - b);
  console.log(
    `mirror failover, ${runs} runs, pulse ${pulseMs} ms, heartbeat timeout ${timeoutMs} ms (figures include ~0.3 s of CLI polling)`,
  );
  console.log(
    `detection (link cut -> secondary leaves SECOND Ready): p50 ${percentile(d, 0.5)} ms, p99 ${percentile(d, 0.99)} ms`,
  );
  console.log(
    `failover (link cut -> VIP answers from the other node): p50 ${percentile(f, 0.5)} ms, p99 ${percentile(f, 0.99)} ms`,
  );
} finally {
  await mirror.tearDown();
}
