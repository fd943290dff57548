// False-failover soak (issue 6, opt-in, not part of `npm test`): a PRIM/SECOND pair with the
// fast profile (pulse 100 ms, heartbeat timeout 1000 ms) under 5 % packet loss on both nodes,
// and the primary's hakitd paused 500 ms every 30 s, for 10 minutes. Counts failovers (the
// secondary's "Action alone called by heart") and state changes; the target is 0 failovers.
// Run (root): node --import tsx test/bench/mirror-soak.ts [minutes] [lossPercent] [pauseMs]
import { freeze, thaw } from '../lab/faults.ts';
import { labExec, labJson } from '../lab/harness.ts';
import { eventually, MirrorLab } from '../lab/mirror-lab.ts';

const minutes = Number(process.argv[2] ?? '10');
const lossPercent = Number(process.argv[3] ?? '5');
const pauseMs = Number(process.argv[4] ?? '500');
const pauseEveryMs = 30_000;
const mirror = new MirrorLab('bsoak', { pulseMs: 100, timeoutMs: 1000 });

/** A log line's time (UTC, from `| YYYY-MM-DD hh:mm:ss.uuuuuu |`), or null. */
function timeOf(line: string): number | null {
  const match = /\| (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}\.\d{3})/.exec(line);
  return match ? Date.parse(`${match[1]}T${match[2]}Z`) : null;
}

function count(log: string, pattern: RegExp): number {
  return log.split('\n').filter((line) => pattern.test(line)).length;
}

try {
  await mirror.setUp();
  await mirror.cli('n1', 'prim -m web');
  await eventually(async () => (await mirror.state('n1')).startsWith('web: ALONE (Ready)'), 60_000, 'ALONE');
  await mirror.cli('n2', 'second -m web');
  await eventually(
    async () => (await mirror.state('n2')).startsWith('web: SECOND (Ready)'),
    60_000,
    'SECOND',
  );
  const before = (await mirror.cli('n2', 'log -m web -s 10000 -A')).stdout;
  for (const node of ['n1', 'n2']) {
    await labJson(['fault', '--name', mirror.lab, 'loss', node, String(lossPercent)]);
  }
  const endMs = Date.now() + minutes * 60_000;
  let pauses = 0;
  const pausesMs: number[] = [];
  let unanswered = 0;
  let probes = 0;
  while (Date.now() < endMs) {
    const nextPauseMs = Date.now() + pauseEveryMs;
    // In-process: a `hakit-lab` command per freeze and thaw would add its own start-up time (a
    // second or more on a loaded host) to the pause. The pause actually applied is measured.
    await freeze(mirror.lab, 'n1', 'hakitd\\.cjs');
    const frozenMs = Date.now();
    await new Promise((done) => setTimeout(done, pauseMs));
    await thaw(mirror.lab, 'n1', 'hakitd\\.cjs');
    pausesMs.push(Date.now() - frozenMs);
    pauses += 1;
    while (Date.now() < Math.min(nextPauseMs, endMs)) {
      probes += 1;
      if ((await mirror.servedBy()) !== 'n1') unanswered += 1;
      await new Promise((done) => setTimeout(done, 1000));
    }
  }
  await labJson(['fault', '--name', mirror.lab, 'heal']);
  const after = (await mirror.cli('n2', 'log -m web -s 10000 -A')).stdout;
  const failovers =
    count(after, /Action alone called by heart/) - count(before, /Action alone called by heart/);
  const stateChanges = count(after, /Local state/) - count(before, /Local state/);
  console.log(
    `soak ${minutes} min, ${lossPercent} % loss each way on both nodes, ${pauses} pauses of ${pauseMs} ms of the primary's hakitd: ` +
      `${failovers} failovers, ${stateChanges} state changes on the secondary, ` +
      `${unanswered} of ${probes} client probes (TCP through the 5 % loss, 1 s timeout) not answered by n1`,
  );
  const sortedPausesMs = [...pausesMs].sort((a, b) => a - b);
  console.log(
    `pauses applied: median ${sortedPausesMs[Math.floor(sortedPausesMs.length / 2)]} ms, longest ${sortedPausesMs.at(-1)} ms`,
  );
  console.log(`final: ${await mirror.state('n1')} | ${await mirror.state('n2')}`);
  if (failovers > 0) {
    // Both logs, verbose, around the first failover: what led to it and what followed.
    const soakLines = after.split('\n').slice(before.split('\n').length - 1);
    const firstLine = soakLines.find((line) => /Action alone called by heart/.test(line));
    const atMs = timeOf(firstLine ?? '');
    const around = (text: string) =>
      text
        .split('\n')
        .filter((line) => {
          const lineMs = timeOf(line);
          return atMs !== null && lineMs !== null && Math.abs(lineMs - atMs) <= 5_000;
        })
        .join('\n');
    console.log(`n2 log within 5 s of its first failover:\n${around(after)}`);
    console.log(
      `n1 log within 5 s of it:\n${around((await mirror.cli('n1', 'log -m web -s 10000 -A')).stdout)}`,
    );
    for (const node of ['n1', 'n2', 'c']) {
      const shown = await labExec(mirror.lab, node, ['sh', '-c', 'ip -br addr; ip neigh']);
      console.log(`${node} addresses and neighbours:\n${shown.stdout}${shown.stderr}`);
    }
  }
  process.exitCode = failovers === 0 ? 0 : 1;
} finally {
  await mirror.tearDown();
}
