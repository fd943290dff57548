// Farm benchmark in the lab (3 installed nodes and a client, module `farm` of test/lab/farm-lab.ts,
// pulse 100 ms, slost_count 10, mlost_count 20):
//   rebalance: n3's link is cut; the client polls, every 20 ms, client ports whose bucket n3 owned
//              until all are answered by n1 or n2. Time from the cut to that, p50/p99 over N runs
//              (n3 is a follower: lost after 10 pulses). Then the link comes back and n3 rejoins.
//   throughput: connections per second from the client to the VIP (through the bucket filter,
//              spread over 3 nodes) versus to n1's own address (no filter), same server, same
//              client, 20 connections in flight.
// Run (as root, after `node build.mjs`): node --import tsx test/bench/farm-rebalance.ts [runs, default 20]
import { assignBuckets, bucketOf } from '../../agent/core/farm-buckets.ts';
import { FarmLab } from '../lab/farm-lab.ts';
import { labExec, labJson, labSkipReason } from '../lab/harness.ts';

const runs = Number(process.argv[2] ?? '20');
const farm = new FarmLab('bfarm');

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

function summary(label: string, samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${label}: p50 ${percentile(sorted, 0.5).toFixed(0)} ms, p99 ${percentile(sorted, 0.99).toFixed(0)} ms, min ${sorted[0]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms (${sorted.length} runs)`;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function allUp(): Promise<boolean> {
  for (const name of ['n1', 'n2', 'n3']) {
    if (!/membership n1 n2 n3/.test(await farm.state(name))) return false;
  }
  return true;
}

/** Connections per second from the client to host:8080, `total` connections, 20 in flight. */
async function connectionsPerSecond(host: string, total: number): Promise<number> {
  const script = `const net=require('net');let left=${total},done=0;const t=Date.now();function one(){if(left<=0)return;left--;const s=net.connect({host:'${host}',port:8080});s.on('data',()=>{});s.on('error',()=>{});s.on('close',()=>{done++;if(done===${total}){console.log(${total}*1000/(Date.now()-t));}else one();});}for(let i=0;i<20;i++)one();`;
  const result = await labExec(farm.lab, 'c', [process.execPath, '-e', script]);
  if (result.code !== 0) throw new Error(result.stderr);
  return Number(result.stdout.trim());
}

/** On a failure: what each node believes, for the report. */
async function dumpNodes(): Promise<void> {
  for (const name of ['n1', 'n2', 'n3']) {
    console.log(`--- ${name}: ${await farm.state(name)}`);
    console.log((await farm.cli(name, 'log -m farm -s 40 -A')).stdout);
    console.log((await labExec(farm.lab, name, ['nft', 'list', 'table', 'inet', 'hakit_farm_1'])).stdout);
  }
}

async function main(): Promise<void> {
  const skip = labSkipReason();
  if (skip) {
    console.log(`farm-rebalance: skipped (${skip})`);
    return;
  }
  await farm.setUp();
  try {
    for (const name of ['n1', 'n2', 'n3']) await farm.cli(name, 'start -m farm');
    await waitFor(allUp, 60_000, 'the three nodes in one view');
    const map = assignBuckets(['n1', 'n2', 'n3'].map((node) => ({ node, power: 1 })));
    const samples: number[] = [];
    // The fault command takes a few hundred ms: the cut happens between its start and its return.
    const samplesFromReturn: number[] = [];
    let unanswered = 0;
    for (let run = 0; run < runs; run += 1) {
      const ownedByN3 = (port: number) => map.owners[bucketOf('on_port', { port })] === 'n3';
      const polling = farm.pollUntilServedBy(8080, ownedByN3, ['n1', 'n2'], 20_000);
      await new Promise((done) => setTimeout(done, 800));
      const cutMs = Date.now();
      await labJson(['fault', '--name', farm.lab, 'link', 'n3', 'down']);
      const cutDoneMs = Date.now();
      const result = await polling;
      if (result.atWallMs === null) {
        await dumpNodes();
        throw new Error(`run ${run}: n3's buckets never served elsewhere (${JSON.stringify(result)})`);
      }
      samples.push(result.atWallMs - cutMs);
      samplesFromReturn.push(result.atWallMs - cutDoneMs);
      unanswered += result.unanswered;
      await labJson(['fault', '--name', farm.lab, 'link', 'n3', 'up']);
      await waitFor(allUp, 30_000, 'n3 back in the view');
      const back = await farm.pollUntilServedBy(8080, ownedByN3, ['n3'], 20_000);
      if (back.atWallMs === null) {
        await dumpNodes();
        throw new Error(`run ${run}: n3 never got its buckets back`);
      }
    }
    console.log(summary('farm rebalance, from the fault command start', samples));
    console.log(summary('farm rebalance, from the fault command return', samplesFromReturn));
    console.log(
      `  probe connections unanswered during the cuts: ${unanswered} (4 fresh client ports per round, one round every ~20 ms plus 250 ms per unanswered round)`,
    );
    const viaVip = await connectionsPerSecond(farm.vip, 3000);
    const direct = await connectionsPerSecond(farm.node('n1').ip, 3000);
    console.log(
      `farm throughput: ${viaVip.toFixed(0)} connections/s through the VIP and bucket filter (3 nodes) vs ${direct.toFixed(0)} connections/s to n1 directly (no filter)`,
    );
  } finally {
    await farm.tearDown();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
