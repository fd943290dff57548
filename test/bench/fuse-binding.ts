// Chooses the FUSE binding on numbers: the vendored addon built against libfuse 2.9 and against
// libfuse 3, each through the real interceptor, (1) unreplicated (a passthrough, no secondary) and
// (2) replicated to a secondary over 127.0.0.1 (two replication child processes, as hakitd runs
// them, async="second"), against the local disk measured in the same run. A separate client process
// writes sequentially (1 MiB writes, then one fsync) and does 4 KiB pwrite+fsync loops.
// Run (as root): node --import tsx test/bench/fuse-binding.ts [seq MiB, 256] [ops, 1000]
// (HAKIT_BENCH_FUSE_APIS=3: the libfuse 3 build only)
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FuseAddon } from '../../agent/replication/fuse/addon.ts';
import { buildFuseAddon, type FuseApi } from '../../agent/replication/fuse/build-addon.ts';
import { FuseMount } from '../../agent/replication/fuse/fuse-mount.ts';
import { fuseMountOptions } from '../../agent/replication/data-path.ts';
import { ReplicationProcess } from '../../agent/replication/process.ts';
import {
  directInterceptor,
  loopbackConfig,
  loopbackPort,
  startPair,
  writeClusterKey,
} from '../unit/replication/loopback.ts';

const seqMib = Number(process.argv[2] ?? '256');
const ops = Number(process.argv[3] ?? '1000');
const root = mkdtempSync(join(tmpdir(), 'hakit-fuse-bench-'));

interface ClientResult {
  seqMibPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

// The client: never in the process that serves the mount (a sync call there would deadlock).
const clientJs = `
const fs = require('fs');
const dir = process.argv[1], mib = Number(process.argv[2]), ops = Number(process.argv[3]);
const block = Buffer.alloc(1024 * 1024, 0x5a);
let fd = fs.openSync(dir + '/seq', 'w');
let started = performance.now();
for (let i = 0; i < mib; i += 1) { block.writeUInt32LE(i, 0); fs.writeSync(fd, block, 0, block.length, i * block.length); }
fs.fsyncSync(fd); fs.closeSync(fd);
const seqMibPerSec = mib / ((performance.now() - started) / 1000);
fs.unlinkSync(dir + '/seq');
const small = Buffer.alloc(4096, 0x33);
fd = fs.openSync(dir + '/lat', 'w');
const samples = [];
for (let i = 0; i < ops + 20; i += 1) {
  small.writeUInt32LE(i, 0);
  started = performance.now();
  fs.writeSync(fd, small, 0, small.length, 0);
  fs.fsyncSync(fd);
  if (i >= 20) samples.push(performance.now() - started);
}
fs.closeSync(fd); fs.unlinkSync(dir + '/lat');
samples.sort((a, b) => a - b);
process.stdout.write(JSON.stringify({ seqMibPerSec, p50Ms: samples[Math.floor(samples.length / 2)], p99Ms: samples[Math.floor(samples.length * 0.99)] }));
`;

/** Runs the client in its own process (asynchronously: the mount may be served by this one). */
function client(dir: string): Promise<ClientResult> {
  return new Promise((resolvePromise, reject) =>
    execFile(
      process.execPath,
      ['-e', clientJs, dir, String(seqMib), String(ops)],
      { timeout: 600_000 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`client in ${dir}: ${error.message} ${stderr}`))
          : resolvePromise(JSON.parse(stdout) as ClientResult),
    ),
  );
}

function line(label: string, result: ClientResult, baseline?: ClientResult): string {
  const ratio =
    baseline === undefined
      ? ''
      : ` (${Math.round((100 * result.seqMibPerSec) / baseline.seqMibPerSec)} % of local)`;
  return `${label.padEnd(40)} sequential ${result.seqMibPerSec.toFixed(0).padStart(4)} MiB/s${ratio}; 4 KiB write+fsync p50 ${result.p50Ms.toFixed(3)} ms p99 ${result.p99Ms.toFixed(3)} ms`;
}

async function passthrough(addon: FuseAddon, api: FuseApi): Promise<ClientResult> {
  const real = join(root, `real-${api}`);
  const mountPoint = join(root, `mnt-${api}`);
  mkdirSync(real);
  mkdirSync(mountPoint);
  const interceptor = directInterceptor(real, undefined, addon, (message) => console.error(message));
  const mount = new FuseMount(addon, mountPoint, interceptor, {
    options: fuseMountOptions('bench', api),
    onInternalError: (op, error) => console.error(`FUSE ${op}: ${String(error)}`),
  });
  await mount.mount();
  try {
    return await client(mountPoint);
  } finally {
    await mount.unmount(true);
  }
}

async function replicated(addonFile: string, api: FuseApi): Promise<ClientResult> {
  const port = loopbackPort();
  const config = (side: string, noMounts: boolean) =>
    loopbackConfig(root, `${api}-${side}`, port, {
      moduleName: `bench${api}`,
      asyncMode: 'second',
      locktimeoutMs: 30_000,
      sendtimeoutMs: 10_000,
      noMounts,
    });
  for (const side of ['p', 's']) mkdirSync(join(root, `data-${api}-${side}`));
  // The child loads the addon named here (addon-paths.ts), the build under test.
  process.env['HAKIT_FUSE_ADDON'] = addonFile;
  const secondary = new ReplicationProcess(config('s', true));
  const primary = new ReplicationProcess(config('p', false));
  await secondary.start();
  await primary.start();
  try {
    await startPair(primary, secondary);
    const before = (await primary.status()).counters;
    const result = await client(join(root, `data-${api}-p`));
    // Proof that it was replicated: what the stream carried, and identical trees after.
    const after = (await primary.status()).counters;
    const sent = (name: string) => Number(after[name] ?? 0) - Number(before[name] ?? 0);
    const differences = await primary.verify();
    console.log(
      `  (stream: ${sent('opsSent')} operations, ${(sent('dataBytesSent') / 1024 / 1024).toFixed(0)} MiB of writes; ` +
        `trees after: ${differences.length === 0 ? 'identical' : `${differences.length} difference(s)`})`,
    );
    if (differences.length > 0)
      throw new Error(`libfuse ${api}: trees differ: ${JSON.stringify(differences[0])}`);
    return result;
  } finally {
    await primary.stop(true);
    await secondary.stop(true);
    await primary.close();
    await secondary.close();
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('skipped: needs root (FUSE mounts, bind mounts)');
    return;
  }
  writeClusterKey(root);
  mkdirSync(join(root, 'local'));
  try {
    const local = await client(join(root, 'local'));
    console.log(
      `${seqMib} MiB sequential (1 MiB writes + fsync), ${ops} x 4 KiB pwrite+fsync; one client process`,
    );
    console.log(line('local disk', local));
    // HAKIT_BENCH_FUSE_APIS=3 measures one binding only (quicker, when profiling the data path).
    const apis = (process.env['HAKIT_BENCH_FUSE_APIS'] ?? '2,3').split(',').map(Number);
    for (const api of [2, 3] as const) {
      if (!apis.includes(api)) continue;
      let file: string;
      try {
        file = buildFuseAddon(false, api);
      } catch (error) {
        console.log(`libfuse ${api}: not measured: ${(error as Error).message.split('\n')[0]}`);
        continue;
      }
      const addon = createRequire(import.meta.filename)(file) as FuseAddon;
      console.log(line(`libfuse ${api}, interceptor, no secondary`, await passthrough(addon, api), local));
      console.log(line(`libfuse ${api}, replicated over 127.0.0.1`, await replicated(file, api), local));
    }
    const again = await client(join(root, 'local'));
    console.log(line('local disk (again)', again));
  } finally {
    spawnSync('sh', ['-c', `grep -o '${root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
