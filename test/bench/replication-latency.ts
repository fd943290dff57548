// Replicated 4 KiB write + fsync latency between two lab nodes (n1 primary with FUSE over
// /srv/data, n2 secondary, stream over the lab bridge), against baselines measured in the same run
// on the same n1 disk: unreplicated (/srv/base, no FUSE) and FUSE without a peer (ALONE, the
// interception cost alone). The writer is one process in n1 (pwrite of 4 KiB at offset 0, fsync,
// repeated; 20 warm-up operations dropped). RTT is ping between the nodes.
// Run (as root): node --import tsx test/bench/replication-latency.ts [ops, default 2000] [second|none]
import { type CtlAnswer } from '../../agent/net/ctl-client.ts';
import { labJson } from '../lab/harness.ts';
import { buildFuseAddon, dataDir, RepLab, replicationSkipReason } from '../lab/replication-lab.ts';

const ops = Number(process.argv[2] ?? '2000');
const asyncMode = process.argv[3] === 'none' ? 'none' : 'second';

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
    const measure = (path: string, fsync = true) =>
      n1.call<Latency>('latency', { path, count: ops, size: 4096, fsync }, 600_000);
    const base = await measure('/srv/base/lat');
    const replicated = await measure(`${dataDir}/lat`);
    const base2 = await measure('/srv/base/lat');
    const replicated2 = await measure(`${dataDir}/lat`);
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
    console.log('4 KiB pwrite without fsync (the replicated round trip without the disks):');
    console.log(line('unreplicated ext4', baseNoSync));
    console.log(line('FUSE, secondary away (ALONE)', aloneNoSync));
    console.log(line('replicated to n2', replicatedNoSync));
    const baseP50 = Math.min(base.p50Ms, base2.p50Ms);
    const repP50 = Math.min(replicated.p50Ms, replicated2.p50Ms);
    console.log(
      `replicated / unreplicated p50: x${(repP50 / baseP50).toFixed(1)}; target p50 <= local + RTT + 0.25 ms = ` +
        `${(baseP50 + Number(rtt) + 0.25).toFixed(3)} ms: ${repP50 <= baseP50 + Number(rtt) + 0.25 ? 'met' : 'missed'}`,
    );
  } finally {
    await lab.down();
  }
}

await main();
