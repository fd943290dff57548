// A write's frame goes out before the local write (Replicator.submitAhead): when the local write
// then fails or is short, the secondary must not keep bytes the primary does not have. Two data
// paths over loopback (no FUSE: the interceptor's write is called as the FUSE thread would), the
// primary's directory on a 200 KiB tmpfs so that real writes come back short, then ENOSPC, while
// the secondary (plain disk) takes the whole range. async="none": what the secondary holds when
// the call returns is observable. Then the fallback: a correction that cannot be computed drops
// the secondary, and the reintegration brings the range back to the primary's bytes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { joinRoot } from '../../../agent/replication/tree.ts';
import {
  directInterceptor,
  loopbackConfig,
  loopbackPort,
  waitEvent,
  writeClusterKey,
  startPair,
} from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-ahead-'));
const load = loadFuseAddon();
const kib = 1024;
const skip = process.getuid?.() !== 0 ? 'needs root (tmpfs mount)' : load.ok ? false : `${load.reason}`;

describe('write sent ahead of the local write', { skip, timeout: 120_000 }, () => {
  const primaryDir = join(root, 'data-p');
  const secondaryDir = join(root, 'data-s');
  after(() => {
    // Lazy: a failed assertion may leave the test's file open on the tmpfs.
    spawnSync('umount', ['-l', primaryDir]);
    rmSync(root, { recursive: true, force: true });
  });

  test('a short then failed local write leaves the secondary with exactly the primary bytes', async () => {
    if (!load.ok) throw new Error(load.reason);
    writeClusterKey(root);
    mkdirSync(primaryDir);
    mkdirSync(secondaryDir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=200k', 'hakit-ahead', primaryDir], {
      encoding: 'utf8',
    });
    assert.equal(mounted.status, 0, `mount tmpfs: ${mounted.stderr}`);
    // The file of the fallback case, made before the tmpfs is full.
    writeFileSync(join(primaryDir, 'g'), 'old');
    const port = loopbackPort();
    const secondary = new DataPath(loopbackConfig(root, 's', port));
    const primary = new DataPath(loopbackConfig(root, 'p', port));
    try {
      await startPair(primary, secondary);
      const engine = primary.primaryEngine;
      assert.ok(engine);
      const interceptor = directInterceptor(primaryDir, engine, load.addon, (message) =>
        assert.fail(message),
      );
      const caller = { uid: 0, gid: 0, pid: process.pid };
      const fh = await interceptor.create('/f', 0o644, constants.O_WRONLY, caller);
      assert.ok(typeof fh === 'number' && fh >= 0, `create: ${fh}`);
      const block = randomBytes(128 * kib);
      // 200 KiB of tmpfs: the first 128 KiB fit, the second write is short, the third fails.
      const results: number[] = [];
      for (let index = 0; index < 3; index += 1)
        results.push(await interceptor.write('/f', fh, block, block.length, index * block.length));
      assert.equal(results[0], block.length);
      assert.ok(
        (results[1] as number) > 0 && (results[1] as number) < block.length,
        `short write: ${results[1]}`,
      );
      assert.equal(results[2], -28, 'ENOSPC');
      const primaryBytes = readFileSync(join(primaryDir, 'f'));
      assert.equal(primaryBytes.length, block.length + (results[1] as number));
      // On the secondary when the calls returned (async="none"): the primary's bytes, no more.
      assert.equal(statSync(join(secondaryDir, 'f')).size, primaryBytes.length);
      assert.ok(readFileSync(join(secondaryDir, 'f')).equals(primaryBytes), 'same bytes on the secondary');
      assert.equal(await interceptor.release('/f', fh), 0);
      assert.deepEqual(await primary.verify(), []);
      assert.equal(engine.counters.drops, 0, 'corrected on the stream, the secondary kept');

      // A failure that cannot be corrected: the secondary is dropped, the range journaled, and
      // the reintegration puts the primary's bytes back.
      const lost = waitEvent(primary, 'peer-lost', 10_000);
      const back = waitEvent(primary, 'secondary-up-to-date', 30_000);
      const result = await engine.submitAhead(
        { op: { kind: 'write', path: joinRoot(0, '/g'), offset: 0, data: Buffer.from('new data') } },
        async () => -5,
        async () => {
          throw new Error('read back failed');
        },
        () => undefined,
        [joinRoot(0, '/g')],
      );
      assert.equal(result, -5);
      await lost;
      assert.ok(engine.state !== 'connected', 'the secondary is dropped before the call returns');
      await back;
      assert.equal(readFileSync(join(secondaryDir, 'g'), 'utf8'), 'old');
      assert.deepEqual(await primary.verify(), []);
    } finally {
      await primary.stop(true);
      await secondary.stop(true);
    }
  });
});
