// Replicated 4 KiB write + fsync latency between two lab nodes (n1 primary with FUSE over
// /srv/data, n2 secondary, stream over the lab bridge), against baselines measured in the same run
// on the same n1 disk: unreplicated (/srv/base, no FUSE) and FUSE without a peer (ALONE, the
// interception cost alone). The writer is one process in n1 (pwrite of 4 KiB at offset 0, fsync,
// repeated; 20 warm-up operations dropped), back to back and paced (5 ms between operations, so
// that every fsync commits on both sides: ext4 moves mtime once per 4 ms jiffy, and back to back
// most of the unreplicated loop's fsyncs commit nothing). RTT is ping between the nodes.
// Run (as root): node --import tsx test/bench/replication-latency.ts [ops, default 2000] [second|none]
import { type CtlAnswer } from '../../agent/net/ctl-client.ts';
import { labJson } from '../lab/harness.ts';
import { buildFuseAddon, dataDir, RepLab, replicationSkipReason } from '../lab/replication-lab.ts';

const ops = Number(process.argv[2] ?? '2000');
const asyncMode = process.argv[3] === 'none' ? 'none' : 'second';
const pacedMs = 5;

interface Latency extends CtlAnswer {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

async function main(): Promise<void> {
  const skip = replicationSkipReason();
  if (skip !== undefined) {
    console.log(`skipped: ${skip}`);
    return;
  }
  buildFuseAddon();
  const lab = new RepLab('brl', { asyncMode });
  try {
    await lab.up();
    await lab.startPair();
    const n1 = lab.ctl('n1');
    const ping = await lab.sh('n1', `ping -q -c 200 -i 0.005 ${lab.node('n2').ip}`);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(ping.stdout)?.[1] ?? '?';
    await lab.sh('n1', 'mkdir -p /srv/base');
    const measure = (path: string, fsync = true, paceMs = 0) =>
      n1.call<Latency>('latency', { path, count: ops, size: 4096, fsync, paceMs }, 600_000);
    const base = await measure('/srv/base/lat');
    const replicated = await measure(`${dataDir}/lat`);
    const base2 = await measure('/srv/base/lat');
    const replicated2 = await measure(`${dataDir}/lat`);
    // Paced: 5 ms between operations (over a 4 ms jiffy), so every fsync commits on both sides.
    const basePaced = await measure('/srv/base/lat', true, pacedMs);
    const replicatedPaced = await measure(`${dataDir}/lat`, true, pacedMs);
    const baseNoSync = await measure('/srv/base/lat', false);
    const replicatedNoSync = await measure(`${dataDir}/lat`, false);
    const mark = lab.mark('n1');
    await labJson(['fault', '--name', lab.lab, 'kill', 'n2', 'replication/child']);
    await lab.waitEvent('n1', mark, (event) => event.event === 'peer-lost', 10_000);
    const alone = await measure(`${dataDir}/lat-alone`);
    const aloneNoSync = await measure(`${dataDir}/lat-alone`, false);
    const line = (label: string, result: Latency) =>
      `${label.padEnd(34)} p50 ${result.p50Ms.toFixed(3)} ms  p99 ${result.p99Ms.toFixed(3)} ms  mean ${result.meanMs.toFixed(3)} ms`;
    console.log(
      `4 KiB pwrite+fsync, ${ops} ops per run, one writer in n1, async="${asyncMode}", ping RTT avg ${rtt} ms`,
    );
    console.log(line('unreplicated ext4 (run 1)', base));
    console.log(line('unreplicated ext4 (run 2)', base2));
    console.log(line('FUSE, secondary away (ALONE)', alone));
    console.log(line('replicated to n2 (run 1)', replicated));
    console.log(line('replicated to n2 (run 2)', replicated2));
    console.log(`paced, ${pacedMs} ms between operations (each fsync commits):`);
    console.log(line('unreplicated ext4', basePaced));
    console.log(line('replicated to n2', replicatedPaced));
    console.log('4 KiB pwrite without fsync (the replicated round trip without the disks):');
    console.log(line('unreplicated ext4', baseNoSync));
    console.log(line('FUSE, secondary away (ALONE)', aloneNoSync));
    console.log(line('replicated to n2', replicatedNoSync));
    const baseP50 = Math.min(base.p50Ms, base2.p50Ms);
    const repP50 = Math.min(replicated.p50Ms, replicated2.p50Ms);
    const verdict = (label: string, local: number, replicatedP50: number) =>
      console.log(
        `${label}: replicated / unreplicated p50 x${(replicatedP50 / local).toFixed(1)}; target p50 <= local + RTT + 0.25 ms = ` +
          `${(local + Number(rtt) + 0.25).toFixed(3)} ms: ${replicatedP50 <= local + Number(rtt) + 0.25 ? 'met' : 'missed'} (${replicatedP50.toFixed(3)} ms)`,
      );
    verdict('back to back', baseP50, repP50);
    verdict(`paced ${pacedMs} ms`, basePaced.p50Ms, replicatedPaced.p50Ms);
  } finally {
    await lab.down();
  }
}

await main();
