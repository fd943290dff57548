// A damaged large write reaching a secondary with async="second": it is acknowledged as received
// (its CRC is checked off the writer's round trip) but never applied; the secondary fails the
// stream, reports itself not up to date, and acknowledges nothing as applied past what it applied.
// The primary here is a raw client speaking the protocol, so the damage is exactly where we say.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadClusterKey } from '../../../agent/heartbeat/cluster-key.ts';
import { clientMac, newNonce, replicationKeyOf } from '../../../agent/replication/auth.ts';
import { DataPath } from '../../../agent/replication/data-path.ts';
import {
  decodeText,
  encodeFrame,
  encodeHello,
  encodeOpParts,
  type Frame,
  FrameDecoder,
  FrameType,
  frameFlagCrc32c,
  frameHeaderOf,
  protocolVersion,
} from '../../../agent/replication/protocol.ts';
import { clusterKeyName, loopbackConfig, loopbackPort, waitEvent, writeClusterKey } from './loopback.ts';

const root = mkdtempSync(join(tmpdir(), 'hakit-damaged-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function eventually(check: () => boolean): Promise<void> {
  const deadlineMs = Date.now() + 5000;
  while (!check() && Date.now() < deadlineMs)
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 10));
  assert.ok(check(), 'condition not reached within 5 s');
}

/** The primary's hello to a challenge, authenticated with the cluster key, at `version`. */
function helloFrame(challenge: Frame, version: number): Buffer {
  const key = replicationKeyOf(loadClusterKey(join(root, clusterKeyName)));
  const clientNonce = newNonce();
  const hello = encodeHello({
    version,
    moduleName: 'am',
    nodeName: 'n1',
    clientNonce,
    mac: clientMac(key, Buffer.from(challenge.body), clientNonce, 'am'),
  });
  return Buffer.concat(encodeFrame(FrameType.hello, 0n, hello));
}

/** Frames from the secondary, in order, with a wait for the next one. */
function framesOf(socket: Socket): () => Promise<Frame> {
  const decoder = new FrameDecoder();
  const queued: Frame[] = [];
  const waiters: ((frame: Frame) => void)[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      const waiter = waiters.shift();
      if (waiter === undefined) queued.push(frame);
      else waiter(frame);
    }
  });
  return () => {
    const frame = queued.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame from the secondary within 5 s')), 5000);
      waiters.push((next) => {
        clearTimeout(timer);
        resolvePromise(next);
      });
    });
  };
}

test('async="second": a damaged 256 KiB write is acknowledged received, never applied, and fails the stream', async () => {
  writeClusterKey(root);
  const port = loopbackPort();
  const config = { ...loopbackConfig(root, 'n2', port, { asyncMode: 'second' }) };
  mkdirSync(join(root, 'data-n2'));
  const secondary = new DataPath(config);
  await secondary.startSecondary({ listenHost: '127.0.0.1' });
  const failed = waitEvent(secondary, 'apply-failed', 5000);
  const socket = connect({ host: '127.0.0.1', port });
  try {
    const next = framesOf(socket);
    const challenge = await next();
    assert.equal(challenge.type, FrameType.challenge);
    socket.write(helloFrame(challenge, protocolVersion));
    assert.equal((await next()).type, FrameType.welcome);

    // seq 1-2: a reintegration with nothing to send (the secondary is now up to date); seq 3-4: a
    // file created and written; seq 5: a 256 KiB write damaged after its CRC was computed.
    // After the handshake frames carry a CRC-32C, as the primary sends them.
    const opFrame = (seq: bigint, parts: Buffer[]) =>
      Buffer.concat([frameHeaderOf(FrameType.op, seq, parts, frameFlagCrc32c), ...parts]);
    const upToDate = waitEvent(secondary, 'up-to-date', 5000);
    socket.write(opFrame(1n, encodeOpParts({ kind: 'syncBegin', full: false })));
    socket.write(opFrame(2n, encodeOpParts({ kind: 'syncEnd', full: false })));
    await upToDate;
    assert.equal(secondary.status().uptodate, true);
    socket.write(opFrame(3n, encodeOpParts({ kind: 'create', path: '/0/f', mode: 0o644, uid: 0, gid: 0 })));
    socket.write(
      opFrame(4n, encodeOpParts({ kind: 'write', path: '/0/f', offset: 0, data: Buffer.from('good') })),
    );
    const data = Buffer.alloc(256 * 1024, 0x61);
    const parts = encodeOpParts({ kind: 'write', path: '/0/f', offset: 4, data });
    const header = frameHeaderOf(FrameType.op, 5n, parts, frameFlagCrc32c);
    const damaged = Buffer.concat(parts);
    // A byte of the data (the body ends with the time fixes' count, whose damage would not decode).
    damaged[damaged.length - 1000] = 0x62;
    socket.write(Buffer.concat([header, damaged]));

    let received = 0n;
    let applied = 0n;
    let failure: Frame | undefined;
    while (failure === undefined) {
      const frame = await next();
      if (frame.type === FrameType.fail) failure = frame;
      else if (frame.type === FrameType.ack) {
        received = frame.seq;
        applied = frame.body.readBigUInt64BE(0);
      }
    }
    assert.equal(
      received,
      5n,
      `the damaged write acknowledged as received (fail: ${decodeText(failure.body)})`,
    );
    assert.ok(applied < 5n, `applied reported ${applied}`);
    assert.equal(failure.seq, 5n, `the failure names the damaged write: ${decodeText(failure.body)}`);
    assert.match(decodeText(failure.body), /CRC mismatch on frame seq 5/);
    await failed;
    assert.equal(
      readFileSync(join(root, 'data-n2', 'f'), 'utf8'),
      'good',
      'the damaged write was not applied',
    );
    // Its state file says so too: a restart of this node does not take it for up to date.
    assert.equal(secondary.status().uptodate, false);
    const savedUpToDate = () =>
      (JSON.parse(readFileSync(join(root, 'state-n2', 'state.json'), 'utf8')) as { upToDate: boolean })
        .upToDate;
    await eventually(() => savedUpToDate() === false);
  } finally {
    socket.destroy();
    await secondary.stop(true);
  }
});

test('a primary of another protocol version is refused, and the refusal names both versions', async () => {
  const port = loopbackPort();
  mkdirSync(join(root, 'data-n3'));
  const secondary = new DataPath(loopbackConfig(root, 'n3', port, { asyncMode: 'second' }));
  await secondary.startSecondary({ listenHost: '127.0.0.1' });
  const warnings: string[] = [];
  secondary.on('event', (event: { event: string; message?: string }) => {
    if (event.event === 'warning' && event.message !== undefined) warnings.push(event.message);
  });
  const socket = connect({ host: '127.0.0.1', port });
  try {
    const next = framesOf(socket);
    const challenge = await next();
    assert.equal(challenge.type, FrameType.challenge);
    assert.equal(challenge.flags, 0, 'the challenge is readable by any version (CRC-32)');
    const closed = new Promise((resolveClose) => socket.on('close', resolveClose));
    socket.write(helloFrame(challenge, protocolVersion - 1));
    await closed;
    await eventually(() => warnings.length > 0);
    assert.match(
      warnings[0] ?? '',
      new RegExp(`protocol version ${protocolVersion - 1}, expected ${protocolVersion}`),
    );
  } finally {
    socket.destroy();
    await secondary.stop(true);
  }
});
