// A handover must leave the new primary with the old primary's file times. The secondary applies
// each operation with its own clock; the primary aligns a file's mtime at its release, and a new
// name's with its creation. Found by the Jepsen check's kill during a swap: a file created and
// never written, and a file still open for writing when the primary role was given up (its
// release fenced), kept the secondary's times, and the trees differed after the swap.
// The secondary runs in its own process (as in hakitd), stopped for 30 ms around each operation so
// that it applies it a few clock ticks after the primary (ext4 times move in ticks of a few ms:
// without the pause both often agree by chance). The primary's interceptor is called as the FUSE
// thread would (no mount).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { ReplicationProcess } from '../../../agent/replication/process.ts';
import { directInterceptor, loopbackConfig, loopbackPort, startPair, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-times-'));
const load = loadFuseAddon();
const skip = load.ok ? false : load.reason;
const pauseMs = 30;

const mtimeNs = (path: string) => statSync(path, { bigint: true }).mtimeNs;

describe('file times across a handover', { skip, timeout: 120_000 }, () => {
  const primaryDir = join(root, 'data-p');
  const secondaryDir = join(root, 'data-s');
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a new file never written, and a file open for writing at the fence, keep the primary times', async () => {
    if (!load.ok) throw new Error(load.reason);
    writeClusterKey(root);
    mkdirSync(primaryDir);
    mkdirSync(secondaryDir);
    const port = loopbackPort();
    const secondary = new ReplicationProcess(
      loopbackConfig(root, 's', port, { sendtimeoutMs: 5_000 }),
      30_000,
    );
    const primary = new DataPath(loopbackConfig(root, 'p', port, { sendtimeoutMs: 5_000 }));
    await secondary.start();
    try {
      await startPair(primary, secondary);
      const engine = primary.primaryEngine;
      assert.ok(engine);
      const pid = (secondary as unknown as { child?: { pid?: number } }).child?.pid;
      assert.ok(pid, 'the secondary child runs');
      /** Runs `operation` while the secondary is stopped for pauseMs: it applies ticks later. */
      const late = async <T>(operation: () => Promise<T>): Promise<T> => {
        process.kill(pid, 'SIGSTOP');
        setTimeout(() => process.kill(pid, 'SIGCONT'), pauseMs);
        return operation();
      };
      const interceptor = directInterceptor(primaryDir, engine, load.addon, (message) =>
        assert.fail(message),
      );
      const caller = { uid: 0, gid: 0, pid: process.pid };

      // Created, never written, closed: its creation carries its times.
      const empty = await late(() => interceptor.create('/empty', 0o644, constants.O_WRONLY, caller));
      assert.ok(typeof empty === 'number' && empty >= 0, `create: ${empty}`);
      assert.equal(await interceptor.release('/empty', empty), 0);
      assert.equal(mtimeNs(join(secondaryDir, 'empty')), mtimeNs(join(primaryDir, 'empty')), 'created file');
      assert.equal(mtimeNs(secondaryDir), mtimeNs(primaryDir), 'its directory');

      // Written and still open when the role is given up: the fence sends what release would.
      const open = await interceptor.create('/open', 0o644, constants.O_WRONLY, caller);
      assert.ok(typeof open === 'number' && open >= 0, `create: ${open}`);
      await new Promise((done) => setTimeout(done, pauseMs));
      const data = randomBytes(4096);
      assert.equal(await late(() => interceptor.write('/open', open, data, data.length, 0)), data.length);
      assert.notEqual(
        mtimeNs(join(secondaryDir, 'open')),
        mtimeNs(join(primaryDir, 'open')),
        'before the fence the secondary has its own clock (else this test shows nothing)',
      );
      await engine.fenceWithFinal('test handover', () => interceptor.pendingTimeFixes());
      assert.equal(mtimeNs(join(secondaryDir, 'open')), mtimeNs(join(primaryDir, 'open')), 'open file');
      // Its release comes after the fence: nothing more to send, and nothing fails.
      assert.equal(await interceptor.release('/open', open), 0);
      assert.deepEqual(await primary.verify(), []);
    } finally {
      await primary.stop(true);
      await secondary.stop(true);
      await secondary.close();
    }
  });
});
