// Extended attribute removal (acl="on"): two data paths over loopback (no mounts; the vendored
// addon's l*xattr helpers read and write the real files). rfsverify reports an attribute present
// on one side only or with another value; a full sync removes the secondary's extra attributes;
// and a reintegration after a removal made while ALONE (journaled as the FUSE interceptor does)
// removes it on the secondary too.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { DataPathEvent } from '../../../agent/replication/data-path.ts';
import { DataPath } from '../../../agent/replication/data-path.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { xattrReader } from '../../../agent/replication/tree.ts';
import { loopbackConfig, loopbackPort, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-xattr-'));
const load = loadFuseAddon();
const skip = load.ok ? false : `${load.reason}`;

function setXattr(path: string, name: string, value: string): void {
  if (!load.ok) throw new Error(load.reason);
  const result = load.addon.hakit_lsetxattr(path, name, Buffer.from(value), 0);
  assert.equal(result, 0, `setxattr ${path} ${name}: ${result}`);
}

function removeXattr(path: string, name: string): void {
  if (!load.ok) throw new Error(load.reason);
  assert.equal(load.addon.hakit_lremovexattr(path, name), 0, `removexattr ${path} ${name}`);
}

function xattrsOf(path: string): Record<string, string> {
  if (!load.ok) throw new Error(load.reason);
  return Object.fromEntries(
    xattrReader(load.addon)(path)
      .filter((entry) => entry.name.startsWith('user.'))
      .map((entry) => [entry.name, entry.value.toString()]),
  );
}

async function waitFor(
  events: DataPathEvent[],
  from: number,
  kind: string,
  timeoutMs: number,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!events.slice(from).some((event) => event.event === kind)) {
    if (Date.now() > deadlineMs)
      throw new Error(`no ${kind} in ${timeoutMs} ms: ${JSON.stringify(events.slice(from))}`);
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 20));
  }
}

describe(
  'xattr removal in full sync, rfsverify and reintegration (acl="on")',
  { timeout: 120_000, skip },
  () => {
    after(() => rmSync(root, { recursive: true, force: true }));

    test('an attribute removed on the primary is reported, then removed on the secondary', async () => {
      writeClusterKey(root);
      for (const side of ['p', 's']) mkdirSync(join(root, `data-${side}`, 'dir'), { recursive: true });
      const file = (side: string) => join(root, `data-${side}`, 'dir', 'f');
      const dir = (side: string) => join(root, `data-${side}`, 'dir');
      const port = loopbackPort();
      const events: DataPathEvent[] = [];
      const secondary = new DataPath(loopbackConfig(root, 's', port, { acl: true }));
      let primary = new DataPath(loopbackConfig(root, 'p', port, { acl: true }));
      primary.on('event', (event: DataPathEvent) => events.push(event));
      try {
        for (const side of ['p', 's']) {
          writeFileSync(file(side), 'same content');
          setXattr(file(side), 'user.kept', 'k');
          setXattr(file(side), 'user.gone', 'g');
          setXattr(dir(side), 'user.dirattr', 'd');
        }
        await secondary.startSecondary({ listenHost: '127.0.0.1' });
        let mark = events.length;
        await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
        await waitFor(events, mark, 'secondary-up-to-date', 20_000);
        assert.deepEqual(await primary.verify(), []);

        // Removed (and one changed) behind the stream's back: rfsverify names each one.
        removeXattr(file('p'), 'user.gone');
        removeXattr(dir('p'), 'user.dirattr');
        setXattr(file('s'), 'user.kept', 'other value');
        const differences = await primary.verify();
        assert.deepEqual(
          differences.map((difference) => `${difference.path}: ${difference.what}`).sort(),
          [
            '/0/dir/f: xattr user.gone only on the secondary',
            '/0/dir/f: xattr user.kept value differs',
            '/0/dir: xattr user.dirattr only on the secondary',
          ].sort(),
        );
        // A full sync removes them there and sets the value.
        await primary.fullSync();
        assert.deepEqual(xattrsOf(file('s')), { 'user.kept': 'k' });
        assert.deepEqual(xattrsOf(dir('s')), {});
        assert.deepEqual(await primary.verify(), []);

        // While ALONE: a removal goes to the journal (as the interceptor submits it); the
        // reintegration that follows removes it on the secondary.
        await primary.stop(true);
        primary = new DataPath(loopbackConfig(root, 'p', port, { acl: true }));
        primary.on('event', (event: DataPathEvent) => events.push(event));
        await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false, peerWanted: false });
        const engine = primary.primaryEngine;
        assert.ok(engine !== undefined);
        await engine.submit(
          async () => removeXattr(file('p'), 'user.kept'),
          () => ({ op: { kind: 'removexattr', path: '/0/dir/f', name: 'user.kept' } }),
        );
        assert.deepEqual(xattrsOf(file('s')), { 'user.kept': 'k' }, 'not sent while ALONE');
        mark = events.length;
        await primary.setPeer({ wanted: true, fullSync: false });
        await waitFor(events, mark, 'secondary-up-to-date', 20_000);
        const report = primary.status().counters;
        assert.equal(report['lastResyncFull'], 'false', 'an incremental reintegration');
        assert.deepEqual(xattrsOf(file('s')), {});
        assert.deepEqual(await primary.verify(), []);
      } finally {
        await primary.stop(true);
        await secondary.stop(true);
      }
    });
  },
);
