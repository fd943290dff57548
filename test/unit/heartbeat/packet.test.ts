// The heartbeat packet codec: round trips, every drop reason, the limits, and fuzzing (fixed
// seed): decoding never throws and no altered packet is ever accepted.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  decodeHeartbeat,
  type DecodeExpectations,
  type DecodeResult,
  encodedBytes,
  encodeHeartbeat,
  type HeartbeatFields,
  heartbeatVersion,
  macBytes,
  nameBytesMax,
  newIncarnation,
  packetBytesMax,
  parseClusterKey,
  payloadBytesMax,
} from '../../../agent/heartbeat/packet.ts';
import { moduleStateNames, readinessNames } from '../../../agent/core/states.ts';

const seed = 20_260_706;
const key = Buffer.alloc(32, 7);
const otherKey = Buffer.alloc(32, 8);

const base: HeartbeatFields = {
  clusterId: 'cluster-a',
  module: 'mirror',
  node: 'n2',
  incarnation: newIncarnation(1_780_000_000_000, 5),
  seq: 42,
  senderTimeMs: 1_780_000_000_123,
  state: 'SECOND',
  readiness: 'Ready',
  uptodate: true,
  generation: { counter: 3, node: 'n1' },
  ack: { incarnation: 99, seq: 7 },
  payload: Uint8Array.from([1, 2, 3]),
};

const expect: DecodeExpectations = { clusterId: 'cluster-a', module: 'mirror', nodes: ['n2'] };

function reasonOf(result: DecodeResult): string {
  return result.ok ? 'ok' : result.reason;
}

/** Re-authenticates a hand-altered packet, so checks after the MAC can be reached. */
function remac(packet: Buffer, withKey = key): Buffer {
  const body = packet.subarray(0, packet.length - macBytes);
  return Buffer.concat([body, createHmac('sha256', withKey).update(body).digest()]);
}

/** Offset of the byte after the three names (incarnation starts there). */
function afterNames(packet: Buffer): number {
  let offset = 5;
  for (let index = 0; index < 3; index += 1) offset += 1 + (packet[offset] ?? 0);
  return offset;
}

describe('heartbeat packet codec', () => {
  test('round trip keeps every field', () => {
    const decoded = decodeHeartbeat(encodeHeartbeat(base, key), key, expect);
    assert.ok(decoded.ok, reasonOf(decoded));
    assert.deepEqual(decoded.fields, base);
  });

  test('round trip without generation, ack and payload', () => {
    const fields = { ...base, generation: null, ack: null, payload: new Uint8Array(0), uptodate: false };
    const decoded = decodeHeartbeat(encodeHeartbeat(fields, key), key, expect);
    assert.ok(decoded.ok, reasonOf(decoded));
    assert.deepEqual(decoded.fields, fields);
  });

  test('round trip of random fields (property)', () => {
    const name = fc.string({ minLength: 1, maxLength: 20 });
    const counter = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
    fc.assert(
      fc.property(
        fc.record({
          clusterId: name,
          module: name,
          node: name,
          incarnation: counter,
          seq: counter,
          senderTimeMs: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          state: fc.constantFrom(...moduleStateNames),
          readiness: fc.constantFrom(...readinessNames),
          uptodate: fc.boolean(),
          generation: fc.option(fc.record({ counter, node: name }), { nil: null }),
          ack: fc.option(fc.record({ incarnation: counter, seq: counter }), { nil: null }),
          payload: fc.uint8Array({ maxLength: payloadBytesMax }),
        }),
        (fields) => {
          const packet = encodeHeartbeat(fields, key);
          assert.equal(packet.length, encodedBytes(fields));
          const decoded = decodeHeartbeat(packet, key, {
            clusterId: fields.clusterId,
            module: fields.module,
            nodes: [fields.node],
          });
          assert.ok(decoded.ok, reasonOf(decoded));
          // fast-check's records have no prototype; compare plain copies.
          assert.deepEqual(decoded.fields, structuredClone(fields));
        },
      ),
      { seed, numRuns: 300 },
    );
  });

  test('a packet with every field at its limit fits packetBytesMax', () => {
    const long = 'x'.repeat(nameBytesMax);
    const fields: HeartbeatFields = {
      ...base,
      clusterId: long,
      module: long,
      node: long,
      incarnation: Number.MAX_SAFE_INTEGER,
      seq: Number.MAX_SAFE_INTEGER,
      generation: { counter: Number.MAX_SAFE_INTEGER, node: long },
      payload: new Uint8Array(payloadBytesMax),
    };
    const packet = encodeHeartbeat(fields, key);
    assert.ok(packet.length <= packetBytesMax, `${packet.length} bytes`);
    const decoded = decodeHeartbeat(packet, key, { clusterId: long, module: long, nodes: [long] });
    assert.ok(decoded.ok, reasonOf(decoded));
  });

  test('encoding refuses fields out of bounds', () => {
    const long = 'é'.repeat(nameBytesMax / 2 + 1); // 66 bytes in UTF-8
    assert.throws(() => encodeHeartbeat({ ...base, node: long }, key), /node is 66 bytes/);
    assert.throws(() => encodeHeartbeat({ ...base, module: '' }, key), /module is empty/);
    assert.throws(
      () => encodeHeartbeat({ ...base, payload: new Uint8Array(payloadBytesMax + 1) }, key),
      /payload is 769 bytes/,
    );
    assert.throws(() => encodeHeartbeat({ ...base, seq: 0 }, key), /seq must be an integer >= 1/);
    assert.throws(() => encodeHeartbeat({ ...base, incarnation: 2 ** 53 }, key), /incarnation/);
    assert.throws(() => encodeHeartbeat({ ...base, seq: 1.5 }, key), /seq/);
    assert.throws(() => encodeHeartbeat(base, Buffer.alloc(16)), /32 bytes/);
  });

  test('tooBig: a datagram over packetBytesMax', () => {
    assert.equal(reasonOf(decodeHeartbeat(Buffer.alloc(packetBytesMax + 1), key, expect)), 'tooBig');
  });

  test('malformed: short, bad magic, version 0, truncated and trailing bytes', () => {
    const good = encodeHeartbeat(base, key);
    assert.equal(reasonOf(decodeHeartbeat(Buffer.alloc(10), key, expect)), 'malformed');
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x58;
    assert.equal(reasonOf(decodeHeartbeat(badMagic, key, expect)), 'malformed');
    const versionZero = Buffer.from(good);
    versionZero[4] = 0;
    assert.equal(reasonOf(decodeHeartbeat(remac(versionZero), key, expect)), 'malformed');
    // Cut in the middle but authenticated: the sender had the key, the layout is wrong.
    const body = good.subarray(0, 60);
    assert.equal(
      reasonOf(decodeHeartbeat(remac(Buffer.concat([body, Buffer.alloc(32)])), key, expect)),
      'malformed',
    );
    const trailing = Buffer.concat([
      good.subarray(0, good.length - macBytes),
      Buffer.from([0]),
      Buffer.alloc(32),
    ]);
    const result = decodeHeartbeat(remac(trailing), key, expect);
    assert.equal(reasonOf(result), 'malformed');
    assert.ok(!result.ok && /trailing/.test(result.detail));
  });

  test('malformed: unknown state, readiness, flags and half-set optional fields', () => {
    const good = encodeHeartbeat(base, key);
    const at = afterNames(good) + 24; // state, readiness, flags
    const cases: [number, number, RegExp][] = [
      [at, 200, /state/],
      [at + 1, 9, /readiness/],
      [at + 2, 0x80, /flags/],
    ];
    for (const [offset, value, detail] of cases) {
      const altered = Buffer.from(good);
      altered[offset] = value;
      const result = decodeHeartbeat(remac(altered), key, expect);
      assert.ok(!result.ok && result.reason === 'malformed' && detail.test(result.detail), reasonOf(result));
    }
    const noGenerationNode = Buffer.from(encodeHeartbeat({ ...base, generation: null }, key));
    noGenerationNode.writeBigUInt64BE(5n, at + 3);
    assert.equal(reasonOf(decodeHeartbeat(remac(noGenerationNode), key, expect)), 'malformed');
    const tooLarge = Buffer.from(good);
    tooLarge.writeBigUInt64BE(2n ** 60n, afterNames(good));
    assert.equal(reasonOf(decodeHeartbeat(remac(tooLarge), key, expect)), 'malformed');
  });

  test('malformed: a name that is not valid UTF-8', () => {
    const good = Buffer.from(encodeHeartbeat({ ...base, module: 'ab' }, key));
    const moduleAt = 5 + 1 + (good[5] ?? 0) + 1;
    good[moduleAt] = 0xff;
    const result = decodeHeartbeat(remac(good), key, expect);
    assert.ok(!result.ok && result.reason === 'malformed' && /UTF-8/.test(result.detail), reasonOf(result));
  });

  test('futureVersion: a newer version is dropped before anything else is read', () => {
    const future = Buffer.from(encodeHeartbeat(base, key));
    future[4] = heartbeatVersion + 1;
    assert.equal(reasonOf(decodeHeartbeat(future, otherKey, expect)), 'futureVersion');
  });

  test('foreignCluster: another cluster id, whatever its key', () => {
    const packet = encodeHeartbeat({ ...base, clusterId: 'cluster-b' }, otherKey);
    const result = decodeHeartbeat(packet, key, expect);
    assert.ok(!result.ok && result.reason === 'foreignCluster' && /cluster-b/.test(result.detail));
  });

  test('badMac: the right cluster id under another key', () => {
    assert.equal(reasonOf(decodeHeartbeat(encodeHeartbeat(base, otherKey), key, expect)), 'badMac');
  });

  test('foreignModule and unknownNode are checked after the MAC', () => {
    assert.equal(
      reasonOf(decodeHeartbeat(encodeHeartbeat({ ...base, module: 'other' }, key), key, expect)),
      'foreignModule',
    );
    assert.equal(
      reasonOf(decodeHeartbeat(encodeHeartbeat({ ...base, node: 'n9' }, key), key, expect)),
      'unknownNode',
    );
    // The same packet under a wrong key tells nothing about its module: badMac first.
    assert.equal(
      reasonOf(decodeHeartbeat(encodeHeartbeat({ ...base, module: 'other' }, otherKey), key, expect)),
      'badMac',
    );
  });

  test('fuzz: random datagrams never throw and are never accepted', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: packetBytesMax + 20 }), (bytes) => {
        const result = decodeHeartbeat(Buffer.from(bytes), key, expect);
        assert.equal(result.ok, false);
      }),
      { seed, numRuns: 2000 },
    );
  });

  test('fuzz: random datagrams with a valid prefix and MAC never throw', () => {
    const good = encodeHeartbeat(base, key);
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: good.length }),
        fc.uint8Array({ maxLength: 200 }),
        (cut, tail) => {
          const forged = remac(
            Buffer.concat([good.subarray(0, cut), Buffer.from(tail), Buffer.alloc(macBytes)]),
          );
          const result = decodeHeartbeat(forged, key, expect);
          if (result.ok) assert.ok(forged.length <= packetBytesMax);
        },
      ),
      { seed, numRuns: 2000 },
    );
  });

  test('fuzz: flipping any bit of a valid packet makes it dropped', () => {
    const good = encodeHeartbeat(base, key);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length * 8 - 1 }), (bit) => {
        const altered = Buffer.from(good);
        altered[bit >> 3] = (altered[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        assert.equal(decodeHeartbeat(altered, key, expect).ok, false, `bit ${bit}`);
      }),
      { seed, numRuns: 1000 },
    );
  });

  test('parseClusterKey accepts genkey output and refuses anything else', () => {
    const hex = 'ab'.repeat(32);
    assert.deepEqual(parseClusterKey(`${hex}\n`), Buffer.from(hex, 'hex'));
    assert.throws(() => parseClusterKey('ab'.repeat(31)), /64 hex digits, found 62/);
    assert.throws(() => parseClusterKey(`${'ab'.repeat(31)}zz`), /64 hex digits/);
    assert.throws(() => parseClusterKey(''), /genkey/);
  });

  test('newIncarnation: unique per start, larger for a later start, a safe integer', () => {
    const early = newIncarnation(1_780_000_000_000, 1023);
    const later = newIncarnation(1_780_000_000_001, 0);
    assert.ok(later > early);
    assert.notEqual(newIncarnation(1_780_000_000_000, 1), newIncarnation(1_780_000_000_000, 2));
    assert.ok(Number.isSafeInteger(newIncarnation(2 ** 43 - 1, 1023)));
    assert.throws(() => newIncarnation(2 ** 43, 0), /out of range/);
    assert.throws(() => newIncarnation(1, 1024), /out of range/);
  });
});
