// Incremental reintegration with `nbrei` and `reiallowedbw`: two data paths over loopback (no
// mounts). The primary stops serving its secondary, changes 24 files while ALONE (submitted to
// the replicator as the FUSE interceptor does, so the journal records the ranges), then serves it
// again: the reintegration sends only the changed ranges, up to `nbrei` files at once, and no
// faster than `reiallowedbw`.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  writeSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { DataPathConfig, DataPathEvent } from '../../../agent/replication/data-path.ts';
import { DataPath } from '../../../agent/replication/data-path.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-rei-'));
const files = 24;
const fileBytes = 256 * 1024;
const changedBytes = 64 * 1024;

function config(
  run: string,
  side: string,
  port: number,
  nbrei: number,
  bwBytesPerSec: number,
): DataPathConfig {
  return {
    moduleName: 'am',
    nodeName: side,
    stateDir: join(root, run, `state-${side}`),
    clusterKeyFile: join(root, 'cluster.key'),
    dirs: [{ dir: join(root, run, `data-${side}`), exclusions: [] }],
    port,
    asyncMode: 'second',
    acl: false,
    locktimeoutMs: 30_000,
    sendtimeoutMs: 5_000,
    reiallowedbwBytesPerSec: bwBytesPerSec,
    nbrei,
    noMounts: true,
  };
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
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 10));
  }
}

interface Outcome {
  readonly full: string;
  readonly parallelMax: number;
  readonly bytesSent: number;
  readonly ms: number;
}

async function reintegrate(run: string, nbrei: number, bwBytesPerSec: number): Promise<Outcome> {
  for (const side of ['p', 's']) mkdirSync(join(root, run, `data-${side}`), { recursive: true });
  for (let index = 0; index < files; index += 1)
    writeFileSync(join(root, run, 'data-p', `f${index}`), randomBytes(fileBytes));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const events: DataPathEvent[] = [];
  const secondary = new DataPath(config(run, 's', port, nbrei, 0));
  const primary = new DataPath(config(run, 'p', port, nbrei, bwBytesPerSec));
  primary.on('event', (event: DataPathEvent) => events.push(event));
  try {
    await secondary.startSecondary({ listenHost: '127.0.0.1' });
    let mark = events.length;
    await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
    await waitFor(events, mark, 'secondary-up-to-date', 60_000);
    await primary.setPeer({ wanted: false, fullSync: false });
    const engine = primary.primaryEngine;
    assert.ok(engine !== undefined);
    // ALONE: one 64 KiB range changed in each file, journaled.
    for (let index = 0; index < files; index += 1) {
      const path = join(root, run, 'data-p', `f${index}`);
      const data = randomBytes(changedBytes);
      const offset = (index % 4) * changedBytes;
      await engine.submit(
        async () => {
          const fd = openSync(path, 'r+');
          try {
            writeSync(fd, data, 0, data.length, offset);
          } finally {
            closeSync(fd);
          }
        },
        () => ({ op: { kind: 'write', path: `/0/f${index}`, offset, data } }),
      );
    }
    mark = events.length;
    const startedMs = performance.now();
    await primary.setPeer({ wanted: true, fullSync: false });
    await waitFor(events, mark, 'secondary-up-to-date', 60_000);
    const ms = performance.now() - startedMs;
    assert.deepEqual(await primary.verify(), []);
    for (let index = 0; index < files; index += 1)
      assert.ok(
        readFileSync(join(root, run, 'data-s', `f${index}`)).equals(
          readFileSync(join(root, run, 'data-p', `f${index}`)),
        ),
      );
    const counters = primary.status().counters;
    return {
      full: String(counters['lastResyncFull']),
      parallelMax: Number(counters['lastResyncParallelMax']),
      bytesSent: Number(counters['lastResyncBytesSent']),
      ms,
    };
  } finally {
    await primary.stop(true);
    await secondary.stop(true);
  }
}

describe('incremental reintegration: nbrei and reiallowedbw', { timeout: 180_000 }, () => {
  after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'cluster.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  test('nbrei=6: up to 6 files at once, only the changed ranges sent', async () => {
    const outcome = await reintegrate('six', 6, 0);
    assert.equal(outcome.full, 'false');
    assert.equal(outcome.bytesSent, files * changedBytes);
    assert.equal(outcome.parallelMax, 6);
  });

  test('nbrei=1: one file at a time', async () => {
    const outcome = await reintegrate('one', 1, 0);
    assert.equal(outcome.bytesSent, files * changedBytes);
    assert.equal(outcome.parallelMax, 1);
  });

  test('reiallowedbw caps the reintegration across the parallel files', async () => {
    const bwBytesPerSec = 1024 * 1024;
    const outcome = await reintegrate('capped', 6, bwBytesPerSec);
    assert.equal(outcome.bytesSent, files * changedBytes);
    const floorMs = ((files * changedBytes - changedBytes) / bwBytesPerSec) * 1000;
    assert.ok(
      outcome.ms >= floorMs,
      `1.5 MiB at 1 MiB/s took ${outcome.ms.toFixed(0)} ms (>= ${floorMs} expected)`,
    );
  });
});
