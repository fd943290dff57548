// The stream and resync over loopback, without FUSE or mounts (noMounts): a full sync of a file
// larger than the window (64 MiB) completes and leaves identical trees. (The window stall found in
// the lab, docs/replication.md, does not reproduce on loopback in one process: the lab benchmark
// replication-throughput.ts is what caught it.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loopbackConfig, loopbackPort, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-loop-'));
const mib = 1024 * 1024;
const options = { asyncMode: 'second', locktimeoutMs: 30_000 } as const;

describe('replication over loopback (no mounts)', { timeout: 120_000 }, () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a full sync of a file larger than the window completes; trees verify identical', async () => {
    writeClusterKey(root);
    const port = loopbackPort();
    for (const name of ['p', 's']) rmSync(join(root, `data-${name}`), { recursive: true, force: true });
    for (const name of ['p', 's']) mkdirSync(join(root, `data-${name}`));
    const large = Buffer.alloc(160 * mib);
    for (let offset = 0; offset < large.length; offset += mib) randomBytes(64).copy(large, offset);
    writeFileSync(join(root, 'data-p', 'large'), large);
    const secondary = new DataPath(loopbackConfig(root, 's', port, options));
    const primary = new DataPath(loopbackConfig(root, 'p', port, options));
    try {
      await secondary.startSecondary({ listenHost: '127.0.0.1' });
      const upToDate = new Promise<void>((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error('no secondary-up-to-date within 90 s')), 90_000);
        primary.on('event', (event: { event: string }) => {
          if (event.event === 'secondary-up-to-date') {
            clearTimeout(timer);
            resolvePromise();
          }
        });
      });
      await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
      await upToDate;
      assert.equal(primary.status().counters['lastResyncBytesSent'], 160 * mib);
      assert.deepEqual(await primary.verify(), []);
      assert.ok(readFileSync(join(root, 'data-s', 'large')).equals(large));
    } finally {
      await primary.stop(true);
      await secondary.stop(true);
    }
  });
});
