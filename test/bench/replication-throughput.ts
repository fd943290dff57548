// Replication throughput between two lab nodes (n1 primary with FUSE over /srv/data, n2
// secondary, stream over the lab bridge), against baselines measured in the same run:
// 1. sequential write (1 MiB writes then one fsync, default 256 MiB, not the 1 GiB, to
//    keep the run short): unreplicated on n1's disk (/srv/base) vs through the replicated mount;
// 2. reintegration of a large file (default 1024 MiB) of which 10 MiB changed while the secondary
//    was away (killed), vs a full copy of the same file to an empty secondary (full sync).
// Run (as root): node --import tsx test/bench/replication-throughput.ts [seq MiB, 256] [large MiB, 1024]
import assert from 'node:assert/strict';
import { type CtlAnswer } from '../../agent/net/ctl-client.ts';
import { labJson } from '../lab/harness.ts';
import { buildFuseAddon, dataDir, RepLab, replicationSkipReason, stateDir } from '../lab/replication-lab.ts';

const seqMib = Number(process.argv[2] ?? '256');
const largeMib = Number(process.argv[3] ?? '1024');
const changedMib = 10;

interface Throughput extends CtlAnswer {
  mibPerSec: number;
  seconds: number;
}

async function main(): Promise<void> {
  const skip = replicationSkipReason();
  if (skip !== undefined) {
    console.log(`skipped: ${skip}`);
    return;
  }
  buildFuseAddon();
  // Timeouts as a deployment would set them: the final fsync of a 1 GiB file on a loop disk can
  // take longer than the lab test's 3 s locktimeout, which would drop and restart the full copy.
  const lab = new RepLab('brt', { locktimeoutMs: 60_000, sendtimeoutMs: 20_000 });
  try {
    await lab.up();
    await lab.startPair();
    const n1 = lab.ctl('n1');
    await lab.sh('n1', 'mkdir -p /srv/base');
    const write = (path: string, mib: number, keep = false) =>
      n1.call<Throughput>('throughput', { path, mib, keep }, 900_000);
    const runs: { base: Throughput; replicated: Throughput }[] = [];
    for (let run = 0; run < 2; run += 1) {
      runs.push({
        base: await write('/srv/base/seq', seqMib),
        replicated: await write(`${dataDir}/seq`, seqMib),
      });
    }
    console.log(`sequential write, ${seqMib} MiB in 1 MiB writes + fsync, one writer in n1, async="second"`);
    runs.forEach(({ base, replicated }, index) =>
      console.log(
        `run ${index + 1}: unreplicated ${base.mibPerSec.toFixed(0)} MiB/s, replicated ${replicated.mibPerSec.toFixed(0)} MiB/s ` +
          `(${((100 * replicated.mibPerSec) / base.mibPerSec).toFixed(0)} % of unreplicated; target >= 50 %)`,
      ),
    );

    // Reintegration: a large file replicated, the secondary killed, 10 MiB changed, the secondary back.
    const large = await write(`${dataDir}/large`, largeMib, true);
    console.log(
      `large file: ${largeMib} MiB written through replication at ${large.mibPerSec.toFixed(0)} MiB/s`,
    );
    const lost = lab.mark('n1');
    await labJson(['fault', '--name', lab.lab, 'kill', 'n2', 'replication/child']);
    await lab.waitEvent('n1', lost, (event) => event.event === 'peer-lost', 10_000);
    const stride = Math.floor(largeMib / changedMib);
    const changed = await lab.sh(
      'n1',
      Array.from(
        { length: changedMib },
        (_unused, index) =>
          `dd if=/dev/urandom of=${dataDir}/large bs=1M count=1 seek=${index * stride} conv=notrunc,fsync status=none`,
      ).join(' && '),
    );
    assert.equal(changed.code, 0, changed.stderr);
    const back = lab.mark('n1');
    await lab.spawnCtl('n2');
    const reStarted = performance.now();
    await lab.startSecondary();
    await lab.waitEvent('n1', back, (event) => event.event === 'secondary-up-to-date', 600_000);
    const reMs = performance.now() - reStarted;
    const incremental = await lab.status('n1');
    assert.deepEqual(
      (await n1.call<CtlAnswer & { differences: unknown[] }>('verify', {}, 600_000)).differences,
      [],
    );

    // Full copy: the secondary's data removed, a full sync of the same tree.
    await lab.ctl('n2').call('stop', { force: true }, 60_000);
    await lab.ctl('n2').call('close');
    assert.equal((await lab.sh('n2', `rm -rf ${dataDir} ${stateDir} && mkdir ${dataDir}`)).code, 0);
    const again = lab.mark('n1');
    const fullStarted = performance.now();
    await lab.startSecondary();
    await lab.waitEvent('n1', again, (event) => event.event === 'secondary-up-to-date', 900_000);
    const fullMs = performance.now() - fullStarted;
    const full = await lab.status('n1');
    const drops = lab
      .ctl('n1')
      .events.slice(again)
      .filter((answer) => (answer.data as { event?: string } | undefined)?.event === 'peer-lost').length;
    const mibOf = (value: unknown) => (Number(value) / 1024 / 1024).toFixed(1);
    console.log(
      `reintegration of ${largeMib} MiB with ${changedMib} MiB changed (secondary killed, back): ` +
        `${(reMs / 1000).toFixed(2)} s from the secondary's start to up to date, ${mibOf(incremental.counters['lastResyncBytesSent'])} MiB sent, ` +
        `full=${incremental.counters['lastResyncFull']}`,
    );
    console.log(
      `full copy to an empty secondary: ${(fullMs / 1000).toFixed(2)} s, ${mibOf(full.counters['lastResyncBytesSent'])} MiB sent, ` +
        `full=${full.counters['lastResyncFull']}, ${drops} drop(s) on the way; reintegration / full copy: ${((100 * reMs) / fullMs).toFixed(1)} % of the time`,
    );
  } finally {
    await lab.down();
  }
}

await main();
