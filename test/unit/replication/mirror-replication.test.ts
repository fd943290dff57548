// The daemon's replication adapter (agent/daemon/mirror-replication.ts) with two real replication
// child processes over loopback, without FUSE or mounts (noMounts): the automaton's commands
// start a primary and a secondary; the secondary's reintegration ends with a `reintegration done`
// event and the data copied; a primary waiting on no secondary does not connect; a secondary that
// goes away is reported as `secondaryLost` once, and the primary does not reconnect to it; a
// killed child is reported (degraded) and restarted; a command that cannot be carried out makes
// `ready` fail.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { LogLevel } from '../../../agent/core/job.ts';
import {
  type DataPathHandle,
  MirrorReplication,
  type ReplicationFeedback,
  type ReplicationRuntime,
} from '../../../agent/daemon/mirror-replication.ts';
import type { DataPathConfig } from '../../../agent/replication/data-path.ts';
import { ReplicationProcess } from '../../../agent/replication/process.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-mirror-rep-'));
const port = 20_000 + Math.floor(Math.random() * 20_000);
const generation = { node: 'p', seq: 1 } as never;

function runtime(name: string, toCheck: string[] = []): ReplicationRuntime {
  return {
    dataPath: {
      moduleName: 'am',
      nodeName: name,
      stateDir: join(root, `state-${name}`),
      clusterKeyFile: join(root, 'key'),
      dirs: [{ dir: join(root, `data-${name}`), exclusions: [] }],
      port,
      asyncMode: 'none',
      acl: false,
      locktimeoutMs: 5_000,
      sendtimeoutMs: 2_000,
      reiallowedbwBytesPerSec: 0,
      noMounts: true,
    },
    peerHost: '127.0.0.1',
    listenHost: '127.0.0.1',
    toCheck,
  };
}

class Recorder {
  readonly events: ReplicationFeedback[] = [];
  readonly resources = new Map<string, string>();
  readonly logs: string[] = [];
  readonly handles: ReplicationProcess[] = [];

  hooks() {
    return {
      feed: (event: ReplicationFeedback) => this.events.push(event),
      setResource: (name: string, value: string) => this.resources.set(name, value),
      log: (level: LogLevel, message: string) => this.logs.push(`${level} ${message}`),
    };
  }

  make = (config: DataPathConfig): DataPathHandle => {
    const handle = new ReplicationProcess(config, 30_000);
    this.handles.push(handle);
    return handle;
  };

  count(type: ReplicationFeedback['type']): number {
    return this.events.filter((event) => event.type === type).length;
  }
}

async function until(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadlineMs) throw new Error(`timed out: ${what()}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

describe('mirror replication adapter over loopback', { timeout: 120_000 }, () => {
  const primaryEvents = new Recorder();
  const secondaryEvents = new Recorder();
  const primary = new MirrorReplication(runtime('p'), primaryEvents.hooks(), primaryEvents.make);
  const secondary = new MirrorReplication(runtime('s'), secondaryEvents.hooks(), secondaryEvents.make);

  after(async () => {
    await primary.close();
    await secondary.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('primary and secondary commands: reintegration done, the data copied', async () => {
    writeFileSync(join(root, 'key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    mkdirSync(join(root, 'data-p'));
    mkdirSync(join(root, 'data-s'));
    const payload = randomBytes(3 * 1024 * 1024);
    writeFileSync(join(root, 'data-p', 'file'), payload);
    writeFileSync(join(root, 'data-s', 'stale'), 'only on the secondary');
    primary.command({ role: 'primary', generation, secondary: null, fullsync: false });
    assert.deepEqual(await primary.ready(), { ok: true });
    secondary.command({ role: 'secondary', primary: 1, attach: 1, fullsync: false, reintegrate: true });
    assert.deepEqual(await secondary.ready(), { ok: true });
    // No secondary named: the primary must not connect.
    await new Promise((done) => setTimeout(done, 1500));
    assert.equal(secondaryEvents.count('reintegration'), 0);
    primary.command({
      role: 'primary',
      generation,
      secondary: { incarnation: 2, attach: 1 },
      fullsync: false,
    });
    await until(
      () => secondaryEvents.count('reintegration') > 0,
      30_000,
      () => JSON.stringify(secondaryEvents.events),
    );
    assert.deepEqual(secondaryEvents.events, [{ type: 'reintegration', outcome: 'done' }]);
    assert.ok(readFileSync(join(root, 'data-s', 'file')).equals(payload));
    assert.throws(() => readFileSync(join(root, 'data-s', 'stale')), /ENOENT/);
    await until(
      () => primaryEvents.resources.get('rfs.synced') === 'up',
      5_000,
      () => primaryEvents.logs.join('\n'),
    );
    assert.ok(primaryEvents.logs.some((line) => /Reintegration ended/.test(line)));
    assert.equal(primaryEvents.count('secondaryLost'), 0);
  });

  test('the secondary goes away: secondaryLost once, no reconnection to that attachment', async () => {
    secondary.command({ role: 'none' });
    assert.deepEqual(await secondary.ready(), { ok: true });
    await until(
      () => primaryEvents.count('secondaryLost') > 0,
      10_000,
      () => primaryEvents.logs.join('\n'),
    );
    // The same attachment listening again is not served (the automaton asks for a new one).
    secondary.command({ role: 'secondary', primary: 1, attach: 1, fullsync: false, reintegrate: true });
    assert.deepEqual(await secondary.ready(), { ok: true });
    await new Promise((done) => setTimeout(done, 2000));
    assert.equal(secondaryEvents.count('reintegration'), 1, 'not reconnected to a dropped attachment');
    // A new attachment is served: incremental reintegration of what changed meanwhile.
    secondary.command({ role: 'secondary', primary: 1, attach: 2, fullsync: false, reintegrate: true });
    assert.deepEqual(await secondary.ready(), { ok: true });
    primary.command({
      role: 'primary',
      generation,
      secondary: { incarnation: 2, attach: 2 },
      fullsync: false,
    });
    await until(
      () => secondaryEvents.count('reintegration') > 1,
      30_000,
      () => JSON.stringify(secondaryEvents.events),
    );
    assert.equal(primaryEvents.count('secondaryLost'), 1);
  });

  test('a killed primary child: degraded, secondaryLost, restarted as primary', async () => {
    const before = primaryEvents.count('secondaryLost');
    const child = primaryEvents.handles.at(-1);
    assert.ok(child);
    const pid = (child as unknown as { child?: { pid?: number } }).child?.pid;
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await until(
      () => primaryEvents.resources.get('rfs.degraded') === 'up',
      10_000,
      () => primaryEvents.logs.join('\n'),
    );
    assert.equal(primaryEvents.count('secondaryLost'), before + 1);
    await until(
      () => primaryEvents.handles.length === 2 && primaryEvents.resources.get('rfs.degraded') === 'down',
      20_000,
      () => primaryEvents.logs.join('\n'),
    );
    assert.deepEqual(await primary.ready(), { ok: true });
  });

  test('a command that cannot be carried out: ready reports why', async () => {
    const events = new Recorder();
    const missing = new MirrorReplication(runtime('x', [join(root, 'absent')]), events.hooks(), events.make);
    missing.command({ role: 'primary', generation, secondary: null, fullsync: false });
    const ready = await missing.ready();
    assert.equal(ready.ok, false);
    assert.match(ready.ok ? '' : ready.reason, /tocheck path missing/);
    await missing.close();
  });
});
