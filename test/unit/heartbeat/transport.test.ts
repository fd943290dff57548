// The UDP transport on loopback (127.0.0.1 <-> 127.0.0.2): pulses, delivery, counters by drop
// reason, a lan that cannot bind. The lab test does the same across real namespaces.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { encodeHeartbeat, type HeartbeatFields } from '../../../agent/heartbeat/packet.ts';
import {
  formatLanCounters,
  HeartbeatTransport,
  type ReceivedHeartbeat,
} from '../../../agent/heartbeat/transport.ts';

const key = Buffer.alloc(32, 1);
const port = 40_000 + (process.pid % 20_000);

function fieldsOf(node: string, incarnation: number): () => HeartbeatFields {
  let seq = 0;
  return () => {
    seq += 1;
    return {
      clusterId: 'c1',
      module: 'm',
      node,
      incarnation,
      seq,
      senderTimeMs: Date.now(),
      state: 'PRIM',
      readiness: 'Ready',
      uptodate: true,
      generation: null,
      ack: null,
      payload: new Uint8Array(0),
    };
  };
}

function transport(
  localNode: string,
  peerNode: string,
  localAddress: string,
  peerAddress: string,
  received: ReceivedHeartbeat[],
  errors: string[],
): HeartbeatTransport {
  return new HeartbeatTransport(
    {
      clusterId: 'c1',
      module: 'm',
      localNode,
      peerNode,
      key,
      lans: [
        { ident: 'default', lan: 'default', localAddress, peerAddress, port, pulseMs: 20, timeoutMs: 1000 },
      ],
    },
    {
      nextFields: fieldsOf(localNode, 1000),
      onHeartbeat: (heartbeat) => received.push(heartbeat),
      onError: (error) => errors.push(error.message),
    },
  );
}

function sendFrom(socket: Socket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(data, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Waits for a condition (at most 5 s: a loaded CI host may delay timers and datagrams); the
// assertions after it say what was missing.
async function until(check: () => boolean): Promise<void> {
  const deadlineMs = Date.now() + 5000;
  while (!check() && Date.now() < deadlineMs) await sleep(20);
}

describe('heartbeat transport (loopback)', () => {
  const atA: ReceivedHeartbeat[] = [];
  const atB: ReceivedHeartbeat[] = [];
  const errors: string[] = [];
  const a = transport('n1', 'n2', '127.0.0.1', '127.0.0.2', atA, errors);
  const b = transport('n2', 'n1', '127.0.0.2', '127.0.0.1', atB, errors);
  let forger: Socket;
  let stranger: Socket;

  before(async () => {
    await a.start();
    await b.start();
    forger = createSocket('udp4');
    stranger = createSocket('udp4');
    await new Promise<void>((resolve) => forger.bind(0, '127.0.0.2', resolve));
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.3', resolve));
  });

  after(async () => {
    await a.stop();
    await b.stop();
    forger.close();
    stranger.close();
  });

  test('both sides pulse and deliver authenticated packets', async () => {
    // Eight pulses each way (what is checked is delivery and order, not the rate).
    await until(() => atA.length >= 8 && atB.length >= 8);
    const [countersA] = a.counters();
    assert.ok(countersA);
    assert.equal(countersA.bound, true);
    assert.ok(countersA.sent >= 8, `sent ${countersA.sent}`);
    assert.ok(atA.length >= 8 && atB.length >= 8, `${atA.length} / ${atB.length}`);
    assert.equal(atA[0]?.fields.node, 'n2');
    assert.equal(atA[0]?.lanIdent, 'default');
    assert.deepEqual(errors, []);
    const seqs = atA.map((heartbeat) => heartbeat.fields.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
    );
  });

  test('forged, foreign, replayed, malformed and stray datagrams are dropped by reason', async () => {
    const packet = (overrides: Partial<HeartbeatFields>, withKey = key) =>
      encodeHeartbeat({ ...fieldsOf('n2', 5000)(), seq: 1, ...overrides }, withKey);
    const before = a.counters()[0]?.dropped;
    assert.ok(before);
    const fresh = packet({ incarnation: 9_000_000, seq: 1 });
    await sendFrom(forger, packet({}, Buffer.alloc(32, 2)));
    await sendFrom(forger, packet({ clusterId: 'c2' }));
    await sendFrom(forger, Buffer.from('HKHB\x01garbage'));
    await sendFrom(forger, fresh);
    await sendFrom(forger, fresh);
    await sendFrom(stranger, packet({ incarnation: 9_000_000, seq: 2 }));
    await sendFrom(forger, packet({ module: 'other' }));
    const reasons = [
      'badMac',
      'foreignCluster',
      'malformed',
      'replay',
      'unexpectedSource',
      'foreignModule',
    ] as const;
    await until(() => {
      const now = a.counters()[0]?.dropped;
      return (
        now !== undefined &&
        reasons.every((reason) => now[reason] > before[reason]) &&
        atA.some((heartbeat) => heartbeat.fields.incarnation === 9_000_000)
      );
    });
    const after = a.counters()[0]?.dropped;
    assert.ok(after);
    const delta = (reason: keyof typeof after) => after[reason] - before[reason];
    assert.equal(delta('badMac'), 1);
    assert.equal(delta('foreignCluster'), 1);
    assert.equal(delta('malformed'), 1);
    assert.equal(delta('replay'), 1);
    assert.equal(delta('unexpectedSource'), 1);
    assert.equal(delta('foreignModule'), 1);
    assert.ok(atA.some((heartbeat) => heartbeat.fields.incarnation === 9_000_000));
    // The genuine peer now has an older incarnation than the forged one: refused from here on.
    await until(() => (a.counters()[0]?.dropped.oldIncarnation ?? 0) > 0);
    assert.ok((a.counters()[0]?.dropped.oldIncarnation ?? 0) > 0);
    const text = formatLanCounters(a.counters());
    assert.match(text, /heartbeat\.default 127\.0\.0\.1 -> 127\.0\.0\.2 udp\/\d+ bound/);
    assert.match(text, /badMac=1/);
  });

  test('a lan whose address is missing reports the error and stays unbound', async () => {
    const errorsHere: string[] = [];
    const lonely = transport('n1', 'n2', '192.0.2.77', '192.0.2.78', [], errorsHere);
    await lonely.start();
    assert.equal(lonely.counters()[0]?.bound, false);
    assert.match(
      errorsHere[0] ?? '',
      /heartbeat default \(192\.0\.2\.77 -> 192\.0\.2\.78 port \d+\) of module m: socket error: bind EADDRNOTAVAIL/,
    );
    await lonely.stop();
  });

  test('settings are checked', () => {
    assert.throws(() => transport('n1', 'n1', '127.0.0.1', '127.0.0.2', [], []), /another node/);
    assert.throws(() => transport('n1', 'n2', '127.0.0.1', '::1', [], []), /one family/);
  });
});
