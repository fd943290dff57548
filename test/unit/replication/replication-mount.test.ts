// The FUSE binding the agent builds (libfuse 3 where its headers are, docs/replication.md) under a
// real mount: the primary's data path in its own process mounts FUSE over its directory, as hakitd
// runs it; this process is the application. What the interceptor relies on from the binding:
// every write reaches it with its path (libfuse 3's nullpath_ok would send none, and nothing
// would be replicated), O_TRUNC arrives as a truncate (libfuse 3's atomic O_TRUNC would not),
// writes to an unlinked open file work, and the result is the same tree on the secondary.
import assert from 'node:assert/strict';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { ReplicationProcess } from '../../../agent/replication/process.ts';
import { loopbackConfig, loopbackPort, startPair, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-mount-'));
const load = loadFuseAddon();
const skip = process.getuid?.() !== 0 ? 'needs root (FUSE and bind mounts)' : load.ok ? false : load.reason;

describe('replication through a real FUSE mount', { skip, timeout: 120_000 }, () => {
  const mounted = join(root, 'data-p');
  const secondaryDir = join(root, 'data-s');
  after(() => rmSync(root, { recursive: true, force: true }));

  test('writes, O_TRUNC, an unlinked open file: replicated by path, same tree on the secondary', async () => {
    if (!load.ok) throw new Error(load.reason);
    writeClusterKey(root);
    mkdirSync(mounted);
    mkdirSync(secondaryDir);
    writeFileSync(join(mounted, 'before'), 'made before the mount');
    const port = loopbackPort();
    const options = { asyncMode: 'none', locktimeoutMs: 10_000, sendtimeoutMs: 5_000 } as const;
    const secondary = new ReplicationProcess(loopbackConfig(root, 's', port, options));
    const primary = new ReplicationProcess(loopbackConfig(root, 'p', port, { ...options, noMounts: false }));
    await secondary.start();
    await primary.start();
    try {
      const started = await startPair(primary, secondary);
      assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(`${mounted} fuse`), 'FUSE is mounted');
      const sentBefore = Number((await primary.status()).counters['dataBytesSent'] ?? 0);

      writeFileSync(join(mounted, 'f'), 'a longer first content');
      assert.equal(readFileSync(join(secondaryDir, 'f'), 'utf8'), 'a longer first content');
      // O_TRUNC (writeFileSync opens with 'w'): the secondary is truncated too.
      writeFileSync(join(mounted, 'f'), 'short');
      assert.equal(readFileSync(join(secondaryDir, 'f'), 'utf8'), 'short');
      const sentAfter = Number((await primary.status()).counters['dataBytesSent'] ?? 0);
      assert.ok(
        sentAfter - sentBefore >= 'a longer first content'.length + 'short'.length,
        `the writes went through the stream (${sentAfter - sentBefore} bytes sent)`,
      );

      // An unlinked file still open takes writes (hard_remove, no path), replicated as gone.
      const fd = openSync(join(mounted, 'gone'), 'w');
      writeSync(fd, 'before unlink');
      unlinkSync(join(mounted, 'gone'));
      writeSync(fd, ', after unlink');
      closeSync(fd);
      assert.equal(existsSync(join(secondaryDir, 'gone')), false);

      // A 1 MiB write (one request with libfuse 3, eight with libfuse 2).
      const big = Buffer.alloc(1024 * 1024);
      for (let offset = 0; offset < big.length; offset += 4096) big.writeUInt32LE(offset, offset);
      writeFileSync(join(mounted, 'big'), big);
      assert.ok(readFileSync(join(secondaryDir, 'big')).equals(big));

      assert.deepEqual(await primary.verify(), []);
      assert.match(
        started.binding,
        /^vendored fuse-native on libfuse (3|2\.9)/,
        'the status names the binding',
      );
    } finally {
      await primary.stop(true);
      await secondary.stop(true);
      await primary.close();
      await secondary.close();
    }
  });
});
