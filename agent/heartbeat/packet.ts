// The mirror heartbeat packet (reference 4.4): a fixed binary layout, every field bounded, the
// whole packet authenticated with HMAC-SHA256 under the cluster key. Pure: no sockets, no clock,
// no file system. Decoding never throws; it returns the packet or the reason it was dropped.
//
// Layout (big-endian), total at most packetBytesMax so no packet is ever fragmented, even at the
// IPv6 minimum MTU:
//   magic "HKHB" (4) | version u8 | clusterId str8 | module str8 | node str8
//   | incarnation u64 | seq u64 | senderTimeMs u64 | state u8 | readiness u8 | flags u8
//   | generation counter u64 + node str8 (counter 0 and "" = none)
//   | ack incarnation u64 + seq u64 (0 = none) | payload u16 length + bytes | HMAC-SHA256 (32)
// str8 = u8 byte length + UTF-8 bytes. Unknown flag bits must be zero in this version.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Generation } from '../core/mirror-data.ts';
import { type ModuleStateName, moduleStateNames, type Readiness, readinessNames } from '../core/states.ts';

export const heartbeatMagic = Buffer.from('HKHB', 'latin1');
export const heartbeatVersion = 1;
/** IPv6 minimum MTU 1280 minus the IPv6 and UDP headers: never fragmented. */
export const packetBytesMax = 1232;
export const nameBytesMax = 64;
/** Room for fields a later version or the daemon's advert adds, within packetBytesMax. */
export const payloadBytesMax = 768;
export const macBytes = 32;
export const clusterKeyBytes = 32;

const flagUptodate = 0x01;
const flagsKnown = flagUptodate;

export type { Generation } from '../core/mirror-data.ts';

export interface PacketRef {
  readonly incarnation: number;
  readonly seq: number;
}

/** Everything a heartbeat carries, as the daemon fills it in. */
export interface HeartbeatFields {
  readonly clusterId: string;
  readonly module: string;
  readonly node: string;
  /** Per daemon start (newIncarnation); grows across restarts while the wall clock does. */
  readonly incarnation: number;
  /** Per incarnation, from 1, strictly increasing. */
  readonly seq: number;
  /** Sender's wall clock, for diagnostics and delay measurement only. */
  readonly senderTimeMs: number;
  readonly state: ModuleStateName;
  readonly readiness: Readiness;
  readonly uptodate: boolean;
  readonly generation: Generation | null;
  /** The newest packet of ours the sender had accepted (the core's acknowledgement). */
  readonly ack: PacketRef | null;
  readonly payload: Uint8Array;
}

/** Why a received datagram was dropped, in the order decoding checks them. */
export const dropReasons = [
  'tooBig',
  'malformed',
  'futureVersion',
  'foreignCluster',
  'badMac',
  'foreignModule',
  'unknownNode',
  'oldIncarnation',
  'replay',
  'unexpectedSource',
  'queueFull',
] as const;
export type DropReason = (typeof dropReasons)[number];

export type DecodeResult =
  | { readonly ok: true; readonly fields: HeartbeatFields }
  | { readonly ok: false; readonly reason: DropReason; readonly detail: string };

export interface DecodeExpectations {
  readonly clusterId: string;
  readonly module: string;
  /** Nodes whose packets are wanted (the peer); anything else is unknownNode. */
  readonly nodes: readonly string[];
}

/** Parses the content of `cluster.key`: 64 hex digits, surrounding white space ignored. */
export function parseClusterKey(text: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error(
      `cluster key: expected ${clusterKeyBytes * 2} hex digits, found ${hex.length} characters ` +
        '(make one with: hakit cluster genkey)',
    );
  }
  return Buffer.from(hex, 'hex');
}

/**
 * A new incarnation for a daemon start: wall-clock milliseconds in the high bits and 10 random
 * bits below, so two starts never share one and a later start has a larger one (the core drops
 * older incarnations). Stays below 2^53.
 */
export function newIncarnation(wallClockMs: number, random10Bits: number): number {
  if (!Number.isInteger(wallClockMs) || wallClockMs <= 0 || wallClockMs >= 2 ** 43)
    throw new Error(`incarnation: wall clock ${wallClockMs} ms out of range`);
  if (!Number.isInteger(random10Bits) || random10Bits < 0 || random10Bits >= 1024)
    throw new Error(`incarnation: random bits ${random10Bits} out of range`);
  return wallClockMs * 1024 + random10Bits;
}

function assertName(what: string, value: string, allowEmpty: boolean): void {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > nameBytesMax) throw new Error(`heartbeat: ${what} is ${bytes} bytes, over ${nameBytesMax}`);
  if (!allowEmpty && bytes === 0) throw new Error(`heartbeat: ${what} is empty`);
}

function assertCounter(what: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min)
    throw new Error(`heartbeat: ${what} must be an integer >= ${min}, got ${value}`);
}

/** Bytes of a packet with these fields, for callers sizing their payload. */
export function encodedBytes(fields: HeartbeatFields): number {
  const str = (value: string) => 1 + Buffer.byteLength(value, 'utf8');
  return (
    heartbeatMagic.length +
    1 +
    str(fields.clusterId) +
    str(fields.module) +
    str(fields.node) +
    8 * 3 +
    3 +
    8 +
    str(fields.generation?.node ?? '') +
    16 +
    2 +
    fields.payload.length +
    macBytes
  );
}

function macOf(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function assertKey(key: Buffer): void {
  if (key.length !== clusterKeyBytes)
    throw new Error(`heartbeat: cluster key must be ${clusterKeyBytes} bytes`);
}

/** Encodes and authenticates a heartbeat. Throws on fields out of bounds (a bug of the caller). */
export function encodeHeartbeat(fields: HeartbeatFields, key: Buffer): Buffer {
  assertKey(key);
  assertName('cluster id', fields.clusterId, false);
  assertName('module', fields.module, false);
  assertName('node', fields.node, false);
  assertCounter('incarnation', fields.incarnation, 1);
  assertCounter('seq', fields.seq, 1);
  assertCounter('sender time', fields.senderTimeMs, 0);
  if (fields.generation !== null) {
    assertCounter('generation counter', fields.generation.counter, 1);
    assertName('generation node', fields.generation.node, false);
  }
  if (fields.ack !== null) {
    assertCounter('ack incarnation', fields.ack.incarnation, 1);
    assertCounter('ack seq', fields.ack.seq, 1);
  }
  if (fields.payload.length > payloadBytesMax)
    throw new Error(`heartbeat: payload is ${fields.payload.length} bytes, over ${payloadBytesMax}`);
  const stateIndex = moduleStateNames.indexOf(fields.state);
  const readinessIndex = readinessNames.indexOf(fields.readiness);
  if (stateIndex < 0) throw new Error(`heartbeat: unknown state ${String(fields.state)}`);
  if (readinessIndex < 0) throw new Error(`heartbeat: unknown readiness ${String(fields.readiness)}`);

  const total = encodedBytes(fields);
  if (total > packetBytesMax)
    throw new Error(`heartbeat: packet would be ${total} bytes, over ${packetBytesMax}`);
  const buffer = Buffer.alloc(total);
  let offset = heartbeatMagic.copy(buffer, 0);
  offset = buffer.writeUInt8(heartbeatVersion, offset);
  const writeString = (value: string) => {
    const length = buffer.write(value, offset + 1, 'utf8');
    buffer.writeUInt8(length, offset);
    offset += 1 + length;
  };
  const writeU64 = (value: number) => {
    offset = buffer.writeBigUInt64BE(BigInt(value), offset);
  };
  writeString(fields.clusterId);
  writeString(fields.module);
  writeString(fields.node);
  writeU64(fields.incarnation);
  writeU64(fields.seq);
  writeU64(fields.senderTimeMs);
  offset = buffer.writeUInt8(stateIndex, offset);
  offset = buffer.writeUInt8(readinessIndex, offset);
  offset = buffer.writeUInt8(fields.uptodate ? flagUptodate : 0, offset);
  writeU64(fields.generation?.counter ?? 0);
  writeString(fields.generation?.node ?? '');
  writeU64(fields.ack?.incarnation ?? 0);
  writeU64(fields.ack?.seq ?? 0);
  offset = buffer.writeUInt16BE(fields.payload.length, offset);
  offset += Buffer.from(fields.payload.buffer, fields.payload.byteOffset, fields.payload.length).copy(
    buffer,
    offset,
  );
  const mac = macOf(key, buffer.subarray(0, offset));
  offset += mac.copy(buffer, offset);
  if (offset !== total) throw new Error(`heartbeat: encoded ${offset} bytes, expected ${total}`);
  return buffer;
}

class Malformed extends Error {}

/** A bounds-checked reader: every read past the end throws Malformed, caught by decode. */
class Reader {
  offset = 0;
  constructor(private readonly buffer: Buffer) {}

  private need(bytes: number, what: string): void {
    if (this.offset + bytes > this.buffer.length) throw new Malformed(`truncated in ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    const value = this.buffer.readUInt8(this.offset);
    this.offset += 1;
    return value;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u64(what: string): number {
    this.need(8, what);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Malformed(`${what} out of range`);
    return Number(value);
  }

  bytes(length: number, what: string): Buffer {
    this.need(length, what);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  string(what: string, allowEmpty: boolean): string {
    const length = this.u8(`${what} length`);
    if (length > nameBytesMax) throw new Malformed(`${what} of ${length} bytes, over ${nameBytesMax}`);
    if (length === 0 && !allowEmpty) throw new Malformed(`${what} is empty`);
    const raw = this.bytes(length, what);
    const value = raw.toString('utf8');
    // Reject invalid UTF-8: it would not round-trip and could alias another name.
    if (!Buffer.from(value, 'utf8').equals(raw)) throw new Malformed(`${what} is not valid UTF-8`);
    return value;
  }
}

/**
 * Decodes a received datagram. Checks run from cheapest to dearest, and the cluster id is
 * looked at before the MAC only to tell a neighbour cluster on the same port from an attack.
 */
export function decodeHeartbeat(data: Buffer, key: Buffer, expect: DecodeExpectations): DecodeResult {
  assertKey(key);
  const drop = (reason: DropReason, detail: string): DecodeResult => ({ ok: false, reason, detail });
  if (data.length > packetBytesMax) return drop('tooBig', `${data.length} bytes, over ${packetBytesMax}`);
  if (data.length < heartbeatMagic.length + 1 + macBytes)
    return drop('malformed', `only ${data.length} bytes`);
  if (!data.subarray(0, heartbeatMagic.length).equals(heartbeatMagic)) return drop('malformed', 'bad magic');
  const version = data.readUInt8(heartbeatMagic.length);
  if (version > heartbeatVersion) return drop('futureVersion', `version ${version} > ${heartbeatVersion}`);
  if (version < 1) return drop('malformed', `version ${version}`);
  const body = data.subarray(0, data.length - macBytes);
  const reader = new Reader(body);
  reader.offset = heartbeatMagic.length + 1;
  try {
    const clusterId = reader.string('cluster id', false);
    if (clusterId !== expect.clusterId)
      return drop('foreignCluster', `cluster id ${JSON.stringify(clusterId)}`);
    const mac = data.subarray(data.length - macBytes);
    if (!timingSafeEqual(mac, macOf(key, body))) return drop('badMac', 'HMAC does not match the cluster key');
    // From here the sender holds the key: a malformed packet is a bug or a version skew.
    const module = reader.string('module', false);
    const node = reader.string('node', false);
    const incarnation = reader.u64('incarnation');
    const seq = reader.u64('seq');
    const senderTimeMs = reader.u64('sender time');
    const state = moduleStateNames[reader.u8('state')];
    const readiness = readinessNames[reader.u8('readiness')];
    const flags = reader.u8('flags');
    const generationCounter = reader.u64('generation counter');
    const generationNode = reader.string('generation node', true);
    const ackIncarnation = reader.u64('ack incarnation');
    const ackSeq = reader.u64('ack seq');
    const payloadLength = reader.u16('payload length');
    if (payloadLength > payloadBytesMax) throw new Malformed(`payload of ${payloadLength} bytes`);
    const payload = Uint8Array.from(reader.bytes(payloadLength, 'payload'));
    if (reader.offset !== body.length) throw new Malformed(`${body.length - reader.offset} trailing bytes`);
    if (state === undefined) throw new Malformed('unknown state');
    if (readiness === undefined) throw new Malformed('unknown readiness');
    if ((flags & ~flagsKnown) !== 0) throw new Malformed(`unknown flags 0x${flags.toString(16)}`);
    if (incarnation < 1 || seq < 1) throw new Malformed('incarnation and seq start at 1');
    if ((generationCounter === 0) !== (generationNode === ''))
      throw new Malformed('generation counter and node must both be set or both be empty');
    if ((ackIncarnation === 0) !== (ackSeq === 0))
      throw new Malformed('ack incarnation and seq must both be set or both be zero');
    if (module !== expect.module) return drop('foreignModule', `module ${JSON.stringify(module)}`);
    if (!expect.nodes.includes(node)) return drop('unknownNode', `node ${JSON.stringify(node)}`);
    return {
      ok: true,
      fields: {
        clusterId,
        module,
        node,
        incarnation,
        seq,
        senderTimeMs,
        state,
        readiness,
        uptodate: (flags & flagUptodate) !== 0,
        generation: generationCounter === 0 ? null : { counter: generationCounter, node: generationNode },
        ack: ackIncarnation === 0 ? null : { incarnation: ackIncarnation, seq: ackSeq },
        payload,
      },
    };
  } catch (error) {
    if (error instanceof Malformed) return drop('malformed', error.message);
    throw error;
  }
}
