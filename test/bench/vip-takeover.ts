// VIP takeover in the lab: from "n1 is gone" to "the client c reaches the VIP on n2", when n2
// runs hakit's takeover sequence (ARP probe, add, gratuitous ARP burst). Two ways n1 goes:
//   removed: n1 releases the VIP (tcpreset, ip addr del); the clock starts when that returns;
//   link:    n1's cable is pulled (hakit-lab fault link n1 down); the clock starts when the
//            fault is in place. n1 keeps its address, as a crashed or isolated node would.
// c polls the VIP with TCP connections every 5 ms; each server answers its node name. The
// client's neighbour entry points at n1 before every run (it just talked to n1), so without the
// gratuitous ARP it would keep sending to n1 for seconds. Detection time (heartbeats) is not
// included: see the mirror failover benchmark for that.
// Run (as root): node --import tsx test/bench/vip-takeover.ts [runs per mode, default 20]
import { resolve } from 'node:path';
import { type CtlAnswer, CtlClient } from '../../agent/net/ctl-client.ts';
import type { AcquireResult, VipSpec } from '../../agent/net/vip.ts';
import { labCliFile, labJson, labSkipReason, runLabCli } from '../lab/harness.ts';

const lab = 'bvip';
const runs = Number(process.argv[2] ?? '20');
const repoDir = resolve(import.meta.dirname, '..', '..');
const port = 7000;

type Answer = CtlAnswer & { result: AcquireResult; startedWallMs: number; atWallMs: number };

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

function summary(label: string, samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${label}: p50 ${percentile(sorted, 0.5).toFixed(0)} ms, p99 ${percentile(sorted, 0.99).toFixed(0)} ms, min ${sorted[0]?.toFixed(0)} ms, max ${sorted.at(-1)?.toFixed(0)} ms (${sorted.length} runs)`;
}

function netctl(node: string): CtlClient {
  return new CtlClient(node, process.execPath, [
    labCliFile,
    'exec',
    '--name',
    lab,
    node,
    '--',
    'env',
    '-C',
    repoDir,
    process.execPath,
    '--import',
    'tsx',
    'agent/net/netctl.ts',
  ]);
}

const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

async function main(): Promise<void> {
  const skip = labSkipReason();
  if (skip !== undefined) throw new Error(skip);
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000)
    throw new Error(`runs must be 1..1000, got ${runs}`);
  await runLabCli(['down', '--name', lab]);
  const report = await labJson<{ subnet: string }>(['up', '--name', lab, '--nodes', '2', '--client']);
  const vip = report.subnet.replace(/\.0\/24$/, '.50');
  const spec: VipSpec = { address: vip, where: 'one_side_alias', tcpreset: true };
  const controls = { n1: netctl('n1'), n2: netctl('n2'), c: netctl('c') };
  try {
    for (const control of Object.values(controls)) await control.waitReady();
    await controls.n1.call('serve', { port, reply: 'n1' });
    await controls.n2.call('serve', { port, reply: 'n2' });

    const results: Record<string, { total: number[]; probe: number[]; acquire: number[] }> = {};
    for (const mode of ['removed', 'link'] as const) {
      const samples = { total: [] as number[], probe: [] as number[], acquire: [] as number[] };
      results[mode] = samples;
      for (let run = 0; run < runs; run += 1) {
        // n1 holds the VIP and the client has just talked to it.
        const first = await controls.n1.call<Answer>('acquire', { spec });
        if (first.result.status === 'conflict') throw new Error(`run ${run}: n1 could not take the VIP`);
        const hello = await controls.c.call<CtlAnswer & { reply: string }>('connect', { address: vip, port });
        if (hello.reply !== 'n1') throw new Error(`run ${run}: the client reached ${hello.reply}, not n1`);
        const reached = controls.c.call<CtlAnswer & { reachedWallMs: number }>('poll', {
          address: vip,
          port,
          want: 'n2',
          intervalMs: 5,
          timeoutMs: 15_000,
        });
        let downWallMs: number;
        if (mode === 'removed') {
          downWallMs = (await controls.n1.call<Answer>('release')).atWallMs;
        } else {
          await labJson(['fault', '--name', lab, 'link', 'n1', 'down']);
          downWallMs = performance.timeOrigin + performance.now();
        }
        const acquired = await controls.n2.call<Answer>('acquire', { spec });
        if (acquired.result.status !== 'added')
          throw new Error(`run ${run} (${mode}): n2 got ${JSON.stringify(acquired.result)}`);
        samples.total.push((await reached).reachedWallMs - downWallMs);
        samples.probe.push(acquired.result.probeMs);
        samples.acquire.push(acquired.result.totalMs);
        // Back to the start: n2 lets go, n1 comes back.
        await controls.n2.call('release');
        if (mode === 'link') {
          await labJson(['fault', '--name', lab, 'link', 'n1', 'up']);
          await controls.n1.call('release');
        }
        await sleep(50);
      }
    }
    console.log(`VIP takeover in the lab (lab ${lab}, VIP ${vip}, ARP probe 3 x 100 ms + 200 ms listen)`);
    for (const [mode, samples] of Object.entries(results)) {
      console.log(summary(`  n1 ${mode} -> c reaches n2`, samples.total));
      console.log(summary(`    of which n2's acquire (probe, add, first GARP)`, samples.acquire));
      console.log(summary(`    of which the ARP probe`, samples.probe));
    }
  } finally {
    for (const control of Object.values(controls)) await control.close().catch(() => undefined);
    await runLabCli(['down', '--name', lab]);
  }
}

main().catch((error: unknown) => {
  console.error(`vip-takeover: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
