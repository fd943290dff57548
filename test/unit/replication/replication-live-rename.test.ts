// A name renamed live while a reintegration runs, before the reintegration sent its ranges: the
// journal planned them under the old name, the reintegration finds nothing left there, and the
// live rename moves the secondary's copy that still lacks them. The reintegration must compare
// the rename's destination again before it ends. (Found by the Jepsen check, kill during
// reintegration: two acknowledged small files, created while ALONE and renamed during the
// reintegration, ended empty on the secondary, which later became primary.)
// Deterministic: the reintegration is capped at 2 MiB/s and first sends a 4 MiB file, so the
// small file's ranges are still pending when the rename is made. Two data paths over loopback,
// the primary's interceptor called as the FUSE thread would.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import {
  directInterceptor,
  loopbackConfig,
  loopbackPort,
  waitEvent,
  writeClusterKey,
  startPair,
} from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-live-rename-'));
const load = loadFuseAddon();
const skip = load.ok ? false : load.reason;
const mib = 1024 * 1024;

describe('a live rename during a reintegration', { skip, timeout: 120_000 }, () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a file created while ALONE and renamed before its ranges were sent arrives whole', async () => {
    if (!load.ok) throw new Error(load.reason);
    writeClusterKey(root);
    for (const side of ['p', 's']) mkdirSync(join(root, `data-${side}`));
    const port = loopbackPort();
    const options = { asyncMode: 'none', reintegrationBytesPerSec: 2 * mib } as const;
    let secondary = new DataPath(loopbackConfig(root, 's', port, options));
    const primary = new DataPath(loopbackConfig(root, 'p', port, options));
    try {
      await startPair(primary, secondary);
      const engine = primary.primaryEngine;
      assert.ok(engine);
      const interceptor = directInterceptor(join(root, 'data-p'), engine, load.addon, (message) =>
        assert.fail(message),
      );
      const caller = { uid: 0, gid: 0, pid: process.pid };
      for (const dir of ['/s', '/m']) assert.equal(await interceptor.mkdir(dir, 0o755, caller), 0);

      // The secondary leaves; ALONE, the primary writes a 4 MiB file, then a small one.
      const lost = waitEvent(primary, 'peer-lost', 10_000);
      await secondary.stop(true);
      await lost;
      const write = async (path: string, data: Buffer) => {
        const fh = await interceptor.create(path, 0o644, constants.O_WRONLY, caller);
        assert.ok(typeof fh === 'number' && fh >= 0, `create ${path}: ${fh}`);
        // In requests of at most 1 MiB, as FUSE sends them.
        for (let offset = 0; offset < data.length; offset += mib) {
          const part = data.subarray(offset, offset + mib);
          assert.equal(await interceptor.write(path, fh, part, part.length, offset), part.length);
        }
        assert.equal(await interceptor.release(path, fh), 0);
      };
      await write('/big', randomBytes(4 * mib));
      const small = Buffer.from('acknowledged while ALONE');
      await write('/s/x', small);

      // It comes back; while the capped reintegration sends /big, /s/x is renamed live.
      const progressed = waitEvent(primary, 'resync-progress', 10_000);
      const back = waitEvent(primary, 'secondary-up-to-date', 30_000);
      secondary = new DataPath(loopbackConfig(root, 's', port, options));
      await secondary.startSecondary({ listenHost: '127.0.0.1' });
      await progressed;
      assert.equal(await interceptor.rename('/s/x', '/m/x'), 0);
      assert.ok(
        !existsSync(join(root, 'data-s', 'm', 'x')) ||
          readFileSync(join(root, 'data-s', 'm', 'x')).length === 0,
        'the rename came before the reintegration sent the small file (else this test shows nothing)',
      );
      await back;
      assert.ok(
        readFileSync(join(root, 'data-s', 'm', 'x')).equals(small),
        `the renamed file on the secondary: '${readFileSync(join(root, 'data-s', 'm', 'x'), 'utf8')}'`,
      );
      assert.deepEqual(await primary.verify(), []);
    } finally {
      await primary.stop(true);
      await secondary.stop(true);
    }
  });
});
