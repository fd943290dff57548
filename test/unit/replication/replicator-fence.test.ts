// The primary's fence (Replicator.fence): once the data path is stopping, a mutation neither
// touches the data nor is acknowledged (it fails with EIO), whereas before it the same
// mutation, with no secondary attached, is applied and journaled. The lab's Jepsen check lost
// an acknowledged write without it (a stopstart while a client held its file open).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ActivityLog, JournalFile, StateFile } from '../../../agent/replication/journal-file.ts';
import { FencedError, Replicator } from '../../../agent/replication/replicator.ts';

const dir = mkdtempSync(join(tmpdir(), 'hakit-fence-'));

describe('replicator fence', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('mutations are applied and journaled before the fence, refused untouched after it', async () => {
    const journal = await JournalFile.open(dir);
    const replicator = new Replicator({
      moduleName: 'am',
      nodeName: 'p',
      peerHost: '127.0.0.1',
      peerPort: 1,
      replicationKey: Buffer.alloc(32),
      window: { framesMax: 16, bytesMax: 1024 * 1024 },
      locktimeoutMs: 1000,
      sendtimeoutMs: 1000,
      connectTimeoutMs: 1000,
      reconnectIntervalMs: 1000,
      journal,
      activity: await ActivityLog.open(dir),
      state: await StateFile.open(dir),
      reintegrate: async () => undefined,
    });
    // No secondary named: nothing connects, operations are journaled (ALONE).
    replicator.start(false);
    let applied = 0;
    const write = () =>
      replicator.submit(
        async () => {
          applied += 1;
          return 4;
        },
        () => ({ op: { kind: 'write', path: '0:/f', offset: 0, data: Buffer.from('data') } }),
      );
    assert.equal(await write(), 4);
    assert.equal(applied, 1);
    assert.equal(journal.journal.pathCount, 1);
    replicator.fence('stopping');
    await assert.rejects(write(), (error: Error) => {
      assert.ok(error instanceof FencedError);
      assert.equal((error as FencedError).errno, -5);
      return true;
    });
    assert.equal(applied, 1, 'a fenced mutation does not touch the data');
    await replicator.stop();
    await journal.close();
  });
});
