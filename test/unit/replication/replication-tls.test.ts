// Module encryption: with a module key (conf/modulekey.dat) the replication stream runs in TLS
// (ECDHE-PSK, the key derived from the cluster key and the module key). Two data paths over
// loopback (no mounts) with a recording TCP proxy between them: replication works, a marker the
// full sync carries never appears on the wire (and does appear without encryption: the control
// that shows the capture sees plaintext), and a peer with another module key, or without
// encryption, is refused with a log line that says why.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { DataPathConfig, DataPathEvent } from '../../../agent/replication/data-path.ts';
import { DataPath } from '../../../agent/replication/data-path.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-rep-tls-'));
const marker = `hakit-plaintext-marker-${randomBytes(8).toString('hex')}`;

function keyFile(name: string): string {
  const file = join(root, name);
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return file;
}

function config(run: string, side: string, port: number, moduleKeyFile: string | undefined): DataPathConfig {
  return {
    moduleName: 'am',
    nodeName: side,
    stateDir: join(root, run, `state-${side}`),
    clusterKeyFile: join(root, 'cluster.key'),
    ...(moduleKeyFile === undefined ? {} : { moduleKeyFile }),
    dirs: [{ dir: join(root, run, `data-${side}`), exclusions: [] }],
    port,
    asyncMode: 'second',
    acl: false,
    locktimeoutMs: 10_000,
    sendtimeoutMs: 2_000,
    reiallowedbwBytesPerSec: 0,
    noMounts: true,
  };
}

/** Forwards listenPort -> targetPort on loopback and keeps every byte the primary sends. */
async function recordingProxy(
  targetPort: number,
): Promise<{ server: Server; port: number; captured: Buffer[] }> {
  const captured: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('data', (chunk: Buffer) => {
      captured.push(Buffer.from(chunk));
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  await new Promise<void>((resolvePromise) => server.listen(0, '127.0.0.1', resolvePromise));
  return { server, port: (server.address() as { port: number }).port, captured };
}

function waitFor(
  events: DataPathEvent[],
  match: (event: DataPathEvent) => boolean,
  timeoutMs: number,
): Promise<DataPathEvent> {
  const deadlineMs = Date.now() + timeoutMs;
  return new Promise((resolvePromise, reject) => {
    const poll = () => {
      const found = events.find(match);
      if (found !== undefined) resolvePromise(found);
      else if (Date.now() > deadlineMs)
        reject(new Error(`no matching event in ${timeoutMs} ms: ${JSON.stringify(events)}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
}

/** Secondary on `port`, primary through the proxy; resolves with both sides' events. */
async function pair(
  run: string,
  primaryKey: string | undefined,
  secondaryKey: string | undefined,
  upToDateExpected: boolean,
): Promise<{
  primaryEvents: DataPathEvent[];
  secondaryEvents: DataPathEvent[];
  wire: Buffer;
  primary: DataPath;
  copied: string | undefined;
  dropReason: string;
}> {
  for (const side of ['p', 's']) mkdirSync(join(root, run, `data-${side}`), { recursive: true });
  writeFileSync(join(root, run, 'data-p', 'secret.txt'), `${marker}\n`);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const proxy = await recordingProxy(port);
  const secondary = new DataPath(config(run, 's', port, secondaryKey));
  const primary = new DataPath(config(run, 'p', proxy.port, primaryKey));
  const primaryEvents: DataPathEvent[] = [];
  const secondaryEvents: DataPathEvent[] = [];
  primary.on('event', (event: DataPathEvent) => primaryEvents.push(event));
  secondary.on('event', (event: DataPathEvent) => secondaryEvents.push(event));
  try {
    await secondary.startSecondary({ listenHost: '127.0.0.1' });
    await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
    if (upToDateExpected) {
      await waitFor(primaryEvents, (event) => event.event === 'secondary-up-to-date', 20_000);
      assert.deepEqual(await primary.verify(), []);
    } else {
      await waitFor(secondaryEvents, (event) => event.event === 'warning', 10_000);
      // Give the primary time to retry: it must never get through.
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 1500));
      assert.equal(
        primaryEvents.some((event) => event.event === 'secondary-up-to-date'),
        false,
        'a peer without the right key was never served',
      );
    }
    const dropReason = primary.status().lastDropReason;
    let copied: string | undefined;
    try {
      copied = readFileSync(join(root, run, 'data-s', 'secret.txt'), 'utf8');
    } catch {
      copied = undefined;
    }
    return {
      primaryEvents,
      secondaryEvents,
      wire: Buffer.concat(proxy.captured),
      primary,
      copied,
      dropReason,
    };
  } finally {
    await primary.stop(true);
    await secondary.stop(true);
    await new Promise<void>((resolvePromise) => proxy.server.close(() => resolvePromise()));
  }
}

describe('replication stream encryption (module key, TLS-PSK)', { timeout: 120_000 }, () => {
  after(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'cluster.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  const moduleKey = keyFile('modulekey.dat');

  test('without a module key the stream is plaintext (the capture sees the marker)', async () => {
    const result = await pair('plain', undefined, undefined, true);
    assert.equal(result.copied, `${marker}\n`);
    assert.ok(result.wire.includes(marker), 'the marker crossed the wire in clear');
  });

  test('with the module key on both nodes: replicated, and nothing readable on the wire', async () => {
    const result = await pair('tls', moduleKey, moduleKey, true);
    assert.equal(result.copied, `${marker}\n`);
    assert.ok(result.wire.length > 1000, `bytes went through the proxy (${result.wire.length})`);
    assert.equal(result.wire.includes(marker), false, 'the marker is not on the wire');
    assert.equal(result.wire.includes('secret.txt'), false, 'nor the file name');
    assert.equal(result.primary.status().counters['streamEncryption'], 'TLS 1.2 ECDHE-PSK');
  });

  test('a primary with another module key is refused, with the reason logged', async () => {
    const result = await pair('wrongkey', keyFile('other.dat'), moduleKey, false);
    assert.equal(result.copied, undefined, 'nothing reached the secondary');
    const refused = result.secondaryEvents.find((event) => event.event === 'warning');
    assert.match(
      (refused as { message: string }).message,
      /replication connection refused from 127\.0\.0\.1: TLS handshake failed: the peer's key differs/,
    );
    assert.equal(result.wire.includes(marker), false);
  });

  test('an encrypting primary is refused by a plain secondary, which stays as it was', async () => {
    const result = await pair('plainsecondary', moduleKey, undefined, false);
    assert.equal(result.copied, undefined);
    const refused = result.secondaryEvents.find((event) => event.event === 'warning');
    assert.match(
      (refused as { message: string }).message,
      /replication connection refused from 127\.0\.0\.1: /,
    );
    assert.equal(
      result.secondaryEvents.some((event) => event.event === 'apply-failed'),
      false,
      'a stranger is not an apply failure',
    );
    assert.match(result.dropReason, /TLS handshake failed: the peer does not speak TLS/);
  });

  test('a primary without encryption is refused by an encrypting secondary', async () => {
    const result = await pair('nokey', undefined, moduleKey, false);
    assert.equal(result.copied, undefined);
    const refused = result.secondaryEvents.find((event) => event.event === 'warning');
    assert.match((refused as { message: string }).message, /does not speak TLS|TLS handshake failed/);
  });
});
