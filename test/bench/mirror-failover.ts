// Mirror failover in the lab, measured until the client gets an answer on the virtual IP from the
// other node. Repeated, alternating the primary each run. Two ways to lose the primary:
// - `cut` (default): its link goes down (a machine lost: power, cable, kernel panic); the other
//   node can only notice the silence, so detection is bounded by the heartbeat timeout.
// - `kill`: its hakitd is SIGKILLed; the supervisor restarts it, the new daemon drops what the dead
//   one left (VIP, application) and rejoins as SECOND. Kills are spaced so that the supervisor
//   restarts at once, as after a single crash (no back-off).
// Run (root): node --import tsx test/bench/mirror-failover.ts [runs] [pulseMs] [timeoutMs] [cut|kill]
import { kill, link } from '../lab/faults.ts';
import { labJson } from '../lab/harness.ts';
import { eventually, MirrorLab } from '../lab/mirror-lab.ts';

const runs = Number(process.argv[2] ?? '20');
const pulseMs = Number(process.argv[3] ?? '100');
const timeoutMs = Number(process.argv[4] ?? '1000');
const failure = process.argv[5] ?? 'cut';
if (failure !== 'cut' && failure !== 'kill') throw new Error(`failure must be cut or kill, not ${failure}`);
const mirror = new MirrorLab(timeoutMs >= 10_000 ? 'bmirr' : 'bmirf', { pulseMs, timeoutMs });

/** The time of the last log line matching `pattern` (log times are UTC, microseconds). */
function lastLogTimeMs(log: string, pattern: RegExp): number | null {
  let found: number | null = null;
  for (const line of log.split('\n')) {
    if (!pattern.test(line)) continue;
    const match = /\| (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3})/.exec(line);
    if (match) found = Date.parse(`${match[1]}T${match[2]}Z`);
  }
  return found;
}

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
  const cutCallsMs: number[] = [];
  let primary = 'n1';
  // hakitd-supervisor restarts a daemon at once only if it ran for 10 s (STABLE_S); a daemon
  // killed sooner comes back after a growing back-off, which would measure the back-off, not a
  // failover. Kill mode waits until the primary's daemon has run that long.
  const daemonStableMs = 11_000;
  const restartedAtMs = new Map<string, number>();
  for (let run = 0; run < runs; run += 1) {
    const other = primary === 'n1' ? 'n2' : 'n1';
    if (failure === 'kill') {
      const ranMs = Date.now() - (restartedAtMs.get(primary) ?? 0);
      if (ranMs < daemonStableMs) await new Promise((done) => setTimeout(done, daemonStableMs - ranMs));
    }
    // In-process (no CLI to spawn): the fault lands within the call, whose duration is reported.
    const callMs = Date.now();
    if (failure === 'cut') await link(mirror.lab, primary, 'down');
    else await kill(mirror.lab, primary, 'hakitd\\.cjs');
    const cutMs = Date.now();
    cutCallsMs.push(cutMs - callMs);
    await eventually(
      async () => (await mirror.servedBy()) === other,
      timeoutMs + 30_000,
      async () =>
        `the VIP served by ${other}; ${primary}: ${await mirror.state(primary)}, ${other}: ${await mirror.state(other)}\n` +
        `${other} log:\n${(await mirror.cli(other, 'log -m web -s 30')).stdout}`,
    );
    failovers.push(Date.now() - cutMs);
    // Detection from the survivor's own log (same host clock as cutMs): no CLI polling in it.
    const log = (await mirror.cli(other, 'log -m web -s 400 -A')).stdout;
    const detectedAtMs = lastLogTimeMs(log, /Action alone called by heart: (no heartbeat|remote stop)/);
    if (detectedAtMs === null || detectedAtMs < cutMs)
      throw new Error(`no detection logged on ${other}:\n${log}`);
    detections.push(detectedAtMs - cutMs);
    // Where the rest goes: the start scripts done (ALONE Ready), then the VIP added and announced.
    const readyAtMs = lastLogTimeMs(log, /Local state ALONE Ready/);
    const vipSetAtMs = lastLogTimeMs(log, /Virtual IP \S+ set$/);
    const phases = `ALONE Ready +${readyAtMs === null ? '?' : readyAtMs - cutMs} ms, VIP set +${vipSetAtMs === null ? '?' : vipSetAtMs - cutMs} ms`;
    // Back to a pair: the old primary rejoins as SECOND (after a cut: stopped, replugged, started;
    // after a kill: by itself, once its supervisor restarted hakitd).
    if (failure === 'cut') {
      await mirror.cli(primary, 'stop -m web');
      await labJson(['fault', '--name', mirror.lab, 'link', primary, 'up']);
      await mirror.cli(primary, 'start -m web');
    }
    await eventually(
      async () => (await mirror.state(primary)).startsWith('web: SECOND (Ready)'),
      timeoutMs + 60_000,
      async () =>
        `${primary} to rejoin as SECOND; ${primary}: ${await mirror.state(primary)}, ${other}: ${await mirror.state(other)}\n` +
        `${primary} log:\n${(await mirror.cli(primary, 'log -m web -s 40')).stdout}\n` +
        `${other} log:\n${(await mirror.cli(other, 'log -m web -s 40')).stdout}`,
    );
    if (failure === 'kill') restartedAtMs.set(primary, Date.now());
    // The next fault may only hit a pair both sides see as formed: the new primary must have
    // confirmed its SECOND (PRIM, not ALONE), or the next run measures a half-formed pair.
    await eventually(
      async () => (await mirror.state(other)).startsWith('web: PRIM (Ready)'),
      timeoutMs + 30_000,
      async () => `${other} PRIM (Ready); ${other}: ${await mirror.state(other)}`,
    );
    console.log(
      `run ${run + 1}: detection ${detections.at(-1)} ms, ${phases}, failover ${failovers.at(-1)} ms`,
    );
    primary = other;
  }
  console.log(`the fault itself took at most ${Math.max(...cutCallsMs)} ms (times count from its end)`);
  const d = [...detections].sort((a, b) => a - b);
  const f = [...failovers].sort((a, b) => a - b);
  console.log(
    `mirror failover (${failure === 'cut' ? "primary's link cut" : "primary's hakitd SIGKILLed"}), ${runs} runs, pulse ${pulseMs} ms, heartbeat timeout ${timeoutMs} ms (failover includes the client's polling, one TCP try per ~0.1 s)`,
  );
  console.log(
    `detection (fault -> survivor logs 'Action alone called by heart'): p50 ${percentile(d, 0.5)} ms, p99 ${percentile(d, 0.99)} ms`,
  );
  console.log(
    `failover (fault -> VIP answers from the other node): p50 ${percentile(f, 0.5)} ms, p99 ${percentile(f, 0.99)} ms`,
  );
} finally {
  await mirror.tearDown();
}
