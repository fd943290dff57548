// Full comparison of many small files between a primary and a secondary: two replication child
// processes (ReplicationProcess, as hakitd runs them, without FUSE: noMounts) over the real
// stream on 127.0.0.1. Both trees are made directly on disk with the same content and mtimes,
// plus a few planted differences; the pair is then connected (an incremental reintegration with
// an empty journal, so nothing is compared yet) and the benchmark times:
//   1. rfsverify (DataPath.verify) of the two trees: the differences found must be the planted ones;
//   2. a full sync (DataPath.fullSync, as after `second fullsync` or `primforce`): only the
//      differences are sent;
//   3. rfsverify again: no difference.
// The trees live on an ext4 loop image (1 KiB blocks, enough inodes) made for the run and removed
// after it, so 1,000,000 files do not fill the host disk's inode table nor RAM (tmpfs).
// Run (as root): node --import tsx test/bench/replication-compare.ts [files, 100000] [files per dir, 1000] [file bytes, 1024]
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
  chmodSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataPathConfig, DataPathEvent, DataPathStatus } from '../../agent/replication/data-path.ts';
import { ReplicationProcess } from '../../agent/replication/process.ts';
import type { Difference } from '../../agent/replication/compare.ts';

const files = Number(process.argv[2] ?? '100000');
const filesPerDir = Number(process.argv[3] ?? '1000');
const fileBytes = Number(process.argv[4] ?? '1024');
const mtime = new Date('2024-01-02T03:04:05.678Z');

function run(command: string, args: readonly string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** An ext4 image sized for both trees: N files of `fileBytes` twice, 1 KiB blocks, an inode per file. */
function makeFileSystem(root: string): { image: string; mountPoint: string } {
  const image = join(root, 'fs.img');
  const mountPoint = join(root, 'mnt');
  mkdirSync(mountPoint);
  const blocksPerFile = Math.max(1, Math.ceil(fileBytes / 1024));
  const bytes = Math.ceil(2 * files * (blocksPerFile * 1024 + 512) * 1.3) + 256 * 1024 * 1024;
  run('truncate', ['-s', String(bytes), image]);
  run('mkfs.ext4', [
    '-q',
    '-F',
    '-b',
    '1024',
    '-N',
    String(Math.ceil(2.2 * files + 10_000)),
    '-E',
    'lazy_itable_init=1,lazy_journal_init=1',
    image,
  ]);
  run('mount', ['-o', 'loop', image, mountPoint]);
  return { image, mountPoint };
}

function contentOf(base: Buffer, index: number): Buffer {
  const content = Buffer.from(base);
  content.write(`file ${index}\n`, 0);
  return content;
}

function writeFile(path: string, content: Buffer): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  lutimesSync(path, mtime, mtime);
}

interface Planted {
  readonly path: string;
  readonly what: RegExp;
}

/** Both trees, identical but for the planted differences (returned with the verify text they must give). */
function makeTrees(primaryDir: string, secondaryDir: string): Planted[] {
  const base = randomBytes(fileBytes);
  const dirs = Math.ceil(files / filesPerDir);
  const fileAt = (index: number) => `/d${Math.floor(index / filesPerDir)}/f${index % filesPerDir}`;
  for (let dir = 0; dir < dirs; dir += 1) {
    for (const root of [primaryDir, secondaryDir]) mkdirSync(join(root, `d${dir}`), { mode: 0o755 });
    for (let index = dir * filesPerDir; index < Math.min(files, (dir + 1) * filesPerDir); index += 1) {
      const content = contentOf(base, index);
      for (const root of [primaryDir, secondaryDir]) writeFile(join(root, fileAt(index)), content);
    }
  }
  const pick = (fraction: number) => Math.min(files - 1, Math.floor(files * fraction));
  const planted: Planted[] = [];
  // Same size, one byte different on the secondary.
  const changed = fileAt(pick(0.11));
  const flipped = contentOf(base, pick(0.11));
  flipped[fileBytes - 1] = (flipped[fileBytes - 1] ?? 0) ^ 0xff;
  writeFile(join(secondaryDir, changed), flipped);
  planted.push({ path: changed, what: /^content differs/ });
  // Shorter on the secondary.
  const shorter = fileAt(pick(0.37));
  writeFile(join(secondaryDir, shorter), contentOf(base, pick(0.37)).subarray(0, fileBytes - 100));
  planted.push({ path: shorter, what: /^size / });
  // Missing on the secondary.
  const missing = fileAt(pick(0.52));
  rmSync(join(secondaryDir, missing));
  planted.push({ path: missing, what: /^missing on the secondary/ });
  // Only on the secondary.
  const extra = `/d${Math.floor(pick(0.64) / filesPerDir)}/extra`;
  writeFile(join(secondaryDir, extra), base);
  planted.push({ path: extra, what: /^only on the secondary/ });
  // Mode and mtime.
  const moded = fileAt(pick(0.78));
  chmodSync(join(secondaryDir, moded), 0o600);
  planted.push({ path: moded, what: /^mode 644 vs 600/ });
  const timed = fileAt(pick(0.93));
  lutimesSync(join(secondaryDir, timed), mtime, new Date(mtime.getTime() + 1000));
  planted.push({ path: timed, what: /^mtime / });
  return planted.map((entry) => ({ ...entry, path: `/0${entry.path}` }));
}

function config(root: string, name: string, port: number): DataPathConfig {
  return {
    moduleName: 'am',
    nodeName: name,
    stateDir: join(root, `state-${name}`),
    clusterKeyFile: join(root, 'key'),
    dirs: [{ dir: join(root, 'mnt', name), exclusions: [] }],
    port,
    asyncMode: 'second',
    acl: false,
    locktimeoutMs: 60_000,
    sendtimeoutMs: 20_000,
    reiallowedbwBytesPerSec: 0,
    noMounts: true,
  };
}

class Pair {
  readonly primary: ReplicationProcess;
  readonly secondary: ReplicationProcess;
  private readonly events: DataPathEvent[] = [];

  constructor(root: string, port: number) {
    this.primary = new ReplicationProcess(config(root, 'p', port), 3_600_000);
    this.secondary = new ReplicationProcess(config(root, 's', port), 3_600_000);
    this.primary.on('event', (event: DataPathEvent) => this.events.push(event));
  }

  async start(): Promise<void> {
    await this.secondary.start();
    await this.primary.start();
    await this.secondary.startSecondary({ listenHost: '127.0.0.1', fullSync: false });
    const from = this.events.length;
    await this.primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false, peerWanted: true });
    const deadlineMs = Date.now() + 120_000;
    while (!this.events.slice(from).some((event) => event.event === 'secondary-up-to-date')) {
      if (Date.now() > deadlineMs) throw new Error(`no secondary-up-to-date: ${JSON.stringify(this.events)}`);
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 20));
    }
  }

  async stop(): Promise<void> {
    await this.primary.stop(true).catch(() => undefined);
    await this.secondary.stop(true).catch(() => undefined);
    await this.primary.close();
    await this.secondary.close();
  }
}

function counters(status: DataPathStatus): { sent: number; received: number } {
  return {
    sent: Number(status.counters['bytesSent'] ?? 0),
    received: Number(status.counters['bytesReceived'] ?? 0),
  };
}

async function timed<T>(what: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const startedMs = performance.now();
  const value = await what();
  return { value, seconds: (performance.now() - startedMs) / 1000 };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('skipped: needs root (loop-mounted ext4 image)');
    return;
  }
  const root = join(tmpdir(), `hakit-compare-${process.pid}`);
  mkdirSync(root);
  let mounted = false;
  let pair: Pair | undefined;
  try {
    makeFileSystem(root);
    mounted = true;
    writeFileSync(join(root, 'key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const primaryDir = join(root, 'mnt', 'p');
    const secondaryDir = join(root, 'mnt', 's');
    mkdirSync(primaryDir);
    mkdirSync(secondaryDir);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    // A first pairing on empty trees: the secondary's state records a completed sync, so the
    // next connection is incremental (empty journal) and compares nothing by itself.
    pair = new Pair(root, port);
    await pair.start();
    await pair.stop();
    const made = await timed(async () => makeTrees(primaryDir, secondaryDir));
    const planted = made.value;
    console.log(
      `${files} files of ${fileBytes} bytes in ${Math.ceil(files / filesPerDir)} dirs, both sides, ` +
        `made in ${made.seconds.toFixed(1)} s (ext4 loop image, 1 KiB blocks)`,
    );
    run('sync', []);
    pair = new Pair(root, port);
    await pair.start();
    const line = (
      label: string,
      seconds: number,
      before: DataPathStatus,
      after: DataPathStatus,
      extra = '',
    ) => {
      const was = counters(before);
      const now = counters(after);
      const sentMib = (now.sent - was.sent) / 1024 / 1024;
      const receivedMib = (now.received - was.received) / 1024 / 1024;
      console.log(
        `${label.padEnd(30)} ${seconds.toFixed(2).padStart(7)} s  ${Math.round(files / seconds)
          .toString()
          .padStart(
            8,
          )} files/s  primary sent ${sentMib.toFixed(2)} MiB, received ${receivedMib.toFixed(2)} MiB${extra}`,
      );
    };

    let before = await pair.primary.status();
    const verify1 = await timed(() => pair!.primary.verify());
    line('rfsverify (planted diffs)', verify1.seconds, before, await pair.primary.status());
    const found: readonly Difference[] = verify1.value;
    for (const difference of found) console.log(`  difference: ${difference.path}: ${difference.what}`);
    assert.equal(found.length, planted.length, `found ${JSON.stringify(found)}`);
    for (const expected of planted)
      assert.ok(
        found.some((difference) => difference.path === expected.path && expected.what.test(difference.what)),
        `planted difference ${expected.path} ${String(expected.what)} not reported`,
      );

    before = await pair.primary.status();
    const sync = await timed(() => pair!.primary.fullSync());
    line(
      'full sync',
      sync.seconds,
      before,
      await pair.primary.status(),
      `, data sent ${sync.value.bytesSent} bytes, ${sync.value.paths} paths`,
    );
    assert.ok(sync.value.bytesSent <= 3 * fileBytes, `full sync sent ${sync.value.bytesSent} data bytes`);

    before = await pair.primary.status();
    const verify2 = await timed(() => pair!.primary.verify());
    line('rfsverify (identical)', verify2.seconds, before, await pair.primary.status());
    assert.deepEqual(verify2.value, []);

    before = await pair.primary.status();
    const sync2 = await timed(() => pair!.primary.fullSync());
    line(
      'full sync (identical)',
      sync2.seconds,
      before,
      await pair.primary.status(),
      `, data sent ${sync2.value.bytesSent} bytes`,
    );
    assert.equal(sync2.value.bytesSent, 0);
    console.log(
      `target: full comparison of 1,000,000 files < 60 s; here ${files} files: ` +
        `${((verify2.seconds * 1_000_000) / files).toFixed(0)} s per million (rfsverify), ` +
        `${((sync2.seconds * 1_000_000) / files).toFixed(0)} s per million (full sync)`,
    );
  } finally {
    await pair?.stop().catch(() => undefined);
    if (mounted) {
      try {
        run('umount', [join(root, 'mnt')]);
      } catch (error) {
        console.error(`umount ${join(root, 'mnt')}: ${(error as Error).message}`);
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
