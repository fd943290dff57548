// async="second": the secondary acknowledges an operation on receipt, before applying it. If it
// dies then, the operation is on the primary only, so the primary must keep it (window.ts) until
// the secondary reports it applied, and journal it when the secondary drops; otherwise the next
// reintegration does not resend it and the secondary, up to date by every flag, lacks
// acknowledged data (and a swap to it loses them: the Jepsen check's lost SQLite commit).
// Real parts: the secondary in its own process (as in hakitd) on its own ext4 file system, frozen
// with fsfreeze so that it receives and acknowledges writes it cannot apply; then SIGKILLed and
// thawed; a new secondary process on the same directory; the primary's interceptor called as the
// FUSE thread would (no mount), each write's buffer detached after it returns, as the binding does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { ReplicationProcess } from '../../../agent/replication/process.ts';
import { directInterceptor, loopbackConfig, loopbackPort, waitEvent, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-unapplied-'));
const load = loadFuseAddon();
const missingTool = ['mkfs.ext4', 'fsfreeze', 'mount'].find(
  (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
);
const skip =
  process.getuid?.() !== 0
    ? 'needs root (loop mount, fsfreeze)'
    : missingTool !== undefined
      ? `${missingTool} missing`
      : load.ok
        ? false
        : load.reason;
const kib = 1024;

const options = { asyncMode: 'second', sendtimeoutMs: 5_000 } as const;

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}: ${result.stderr}`);
}

async function startSecondary(port: number): Promise<ReplicationProcess> {
  const secondary = new ReplicationProcess(loopbackConfig(root, 's', port, options), 30_000);
  await secondary.start();
  await secondary.startSecondary({ listenHost: '127.0.0.1' });
  return secondary;
}

describe('operations acknowledged on receipt and not applied', { skip, timeout: 120_000 }, () => {
  const primaryDir = join(root, 'data-p');
  const secondaryDir = join(root, 'data-s');
  after(() => {
    spawnSync('fsfreeze', ['-u', secondaryDir]);
    spawnSync('umount', ['-l', secondaryDir]);
    rmSync(root, { recursive: true, force: true });
  });

  test('a secondary killed before applying what it acknowledged gets it again at reintegration', async () => {
    if (!load.ok) throw new Error(load.reason);
    writeClusterKey(root);
    mkdirSync(primaryDir);
    mkdirSync(secondaryDir);
    run('truncate', ['-s', '64M', join(root, 'secondary.img')]);
    run('mkfs.ext4', ['-q', '-F', join(root, 'secondary.img')]);
    run('mount', ['-o', 'loop', join(root, 'secondary.img'), secondaryDir]);
    rmSync(join(secondaryDir, 'lost+found'), { recursive: true, force: true });
    const port = loopbackPort();
    let secondary = await startSecondary(port);
    const primary = new DataPath(loopbackConfig(root, 'p', port, options));
    let frozen = false;
    try {
      const synced = waitEvent(primary, 'secondary-up-to-date', 30_000);
      await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
      await synced;
      const engine = primary.primaryEngine;
      assert.ok(engine);
      const interceptor = directInterceptor(primaryDir, engine, load.addon, (message) =>
        assert.fail(message),
      );
      const fh = await interceptor.create('/f', 0o644, constants.O_WRONLY, { uid: 0, gid: 0, pid: 1 });
      assert.ok(typeof fh === 'number' && fh >= 0, `create: ${fh}`);
      const first = randomBytes(4 * kib);
      assert.equal(await interceptor.write('/f', fh, first, first.length, 0), first.length);
      // Acknowledged on receipt: wait until it is applied too, before the freeze.
      for (const deadlineMs = Date.now() + 5000; !readFileSync(join(secondaryDir, 'f')).equals(first);) {
        assert.ok(Date.now() < deadlineMs, 'the first write applied before the freeze');
        await new Promise((done) => setTimeout(done, 10));
      }

      // Frozen: the secondary receives and acknowledges (async="second") but cannot apply.
      run('fsfreeze', ['-f', secondaryDir]);
      frozen = true;
      const blocks = Array.from({ length: 8 }, () => randomBytes(4 * kib));
      for (const [index, block] of blocks.entries()) {
        // As the FUSE binding passes it: a view of libfuse's buffer, detached once the reply is
        // sent (the memory is libfuse's again). What the primary keeps must not depend on it.
        const request = Buffer.from(new ArrayBuffer(block.length));
        block.copy(request);
        assert.equal(
          await interceptor.write('/f', fh, request, request.length, (index + 1) * request.length),
          block.length,
          'acknowledged on receipt while the secondary cannot apply',
        );
        structuredClone(request.buffer, { transfer: [request.buffer] });
        assert.equal(request.length, 0, 'detached, as after the FUSE reply');
      }
      assert.equal(engine.state, 'connected');

      // The secondary dies with those writes unapplied.
      const lost = waitEvent(primary, 'peer-lost', 30_000);
      const pid = (secondary as unknown as { child?: { pid?: number } }).child?.pid;
      assert.ok(pid, 'the secondary child runs');
      process.kill(pid, 'SIGKILL');
      run('fsfreeze', ['-u', secondaryDir]);
      frozen = false;
      await lost;
      await secondary.close();
      // Its close aligns the file's times (a barrier): journaled now, sent at reintegration.
      assert.equal(await interceptor.release('/f', fh), 0);
      assert.ok(
        readFileSync(join(secondaryDir, 'f')).length < 9 * 4 * kib,
        'the killed secondary did not apply every acknowledged write (else this test shows nothing)',
      );

      // A new secondary on the same data: the reintegration must resend them.
      const back = waitEvent(primary, 'secondary-up-to-date', 30_000);
      secondary = await startSecondary(port);
      await back;
      assert.ok(
        readFileSync(join(secondaryDir, 'f')).equals(Buffer.concat([first, ...blocks])),
        'every acknowledged write on the secondary after reintegration',
      );
      assert.deepEqual(await primary.verify(), []);
    } finally {
      if (frozen) spawnSync('fsfreeze', ['-u', secondaryDir]);
      await primary.stop(true);
      await secondary.stop(true).then(
        () => secondary.close(),
        () => secondary.close(),
      );
    }
  });
});
