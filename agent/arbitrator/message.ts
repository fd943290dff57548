// Lease messages between mirror nodes and the arbitrator (agent/core/arbitrator-lease.ts) on the
// wire: one UDP datagram each, authenticated with HMAC-SHA256 under the cluster key. Pure: no
// sockets, no clock. Decoding never throws; it returns the message or why it was dropped.
//
// Layout: magic "HKAR" (4) | version u8 | body length u16 | body (UTF-8 JSON) | HMAC-SHA256 (32)
// over everything before it. The body names the cluster so one key can never be confused with
// another cluster's traffic, and every field is checked for type and bound before use. Replays
// need no window here: the arbitrator drops any (incarnation, seq) not newer than the last it saw
// from that node, and a node ignores a reply that does not answer its pending request.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { LeaseRelease, LeaseReply, LeaseRequest } from '../core/arbitrator-lease.ts';
import type { Generation } from '../core/mirror-data.ts';

export const arbitratorMagic = Buffer.from('HKAR', 'latin1');
export const arbitratorVersion = 1;
/** Never fragmented, even at the IPv6 minimum MTU. */
export const arbitratorDatagramBytesMax = 1232;
const headerBytes = 4 + 1 + 2;
const macBytes = 32;
const nameBytesMax = 64;

export type ArbitratorMessage = LeaseRequest | LeaseRelease | LeaseReply;

export type ArbitratorDropReason = 'tooBig' | 'malformed' | 'futureVersion' | 'badMac' | 'foreignCluster';

export type ArbitratorDecodeResult =
  | { readonly ok: true; readonly message: ArbitratorMessage }
  | { readonly ok: false; readonly reason: ArbitratorDropReason; readonly detail: string };

function mac(key: Buffer, signed: Buffer): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

export function encodeArbitratorMessage(key: Buffer, clusterId: string, message: ArbitratorMessage): Buffer {
  const body = Buffer.from(JSON.stringify({ cluster: clusterId, message }), 'utf8');
  const header = Buffer.alloc(headerBytes);
  arbitratorMagic.copy(header, 0);
  header.writeUInt8(arbitratorVersion, 4);
  header.writeUInt16BE(body.length, 5);
  const signed = Buffer.concat([header, body]);
  const datagram = Buffer.concat([signed, mac(key, signed)]);
  if (datagram.length > arbitratorDatagramBytesMax) {
    throw new Error(`arbitrator message of ${datagram.length} bytes, over ${arbitratorDatagramBytesMax}`);
  }
  return datagram;
}

class Malformed extends Error {}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Malformed(`${what}: not an object`);
  return value as Record<string, unknown>;
}

function name(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > nameBytesMax) {
    throw new Malformed(`${what}: expected a name of 1..${nameBytesMax} bytes`);
  }
  return value;
}

function counter(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Malformed(`${what}: expected an integer >= 0`);
  }
  return value;
}

function flag(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new Malformed(`${what}: expected true or false`);
  return value;
}

function generation(value: unknown, what: string): Generation | null {
  if (value === null) return null;
  const fields = record(value, what);
  return { counter: counter(fields.counter, `${what}.counter`), node: name(fields.node, `${what}.node`) };
}

function parseMessage(value: unknown): ArbitratorMessage {
  const fields = record(value, 'message');
  const common = {
    module: name(fields.module, 'module'),
    node: name(fields.node, 'node'),
    incarnation: counter(fields.incarnation, 'incarnation'),
    seq: counter(fields.seq, 'seq'),
  };
  switch (fields.type) {
    case 'leaseRequest':
      return {
        type: 'leaseRequest',
        ...common,
        dataGeneration: generation(fields.dataGeneration, 'dataGeneration'),
        claim: generation(fields.claim, 'claim'),
        force: flag(fields.force, 'force'),
        witness: flag(fields.witness, 'witness'),
      };
    case 'leaseRelease':
      return {
        type: 'leaseRelease',
        ...common,
        unusedClaim: flag(fields.unusedClaim, 'unusedClaim'),
        disown: generation(fields.disown, 'disown'),
      };
    case 'leaseGranted':
    case 'leaseReleased':
      return { type: fields.type, ...common };
    case 'leaseRefused': {
      const reason = fields.reason;
      if (reason !== 'held' && reason !== 'stale' && reason !== 'quiet' && reason !== 'full') {
        throw new Malformed('reason: not a refusal reason');
      }
      return {
        type: 'leaseRefused',
        ...common,
        reason,
        holder: fields.holder === null ? null : name(fields.holder, 'holder'),
        registered: generation(fields.registered, 'registered'),
      };
    }
    default:
      throw new Malformed('type: not a lease message');
  }
}

export function decodeArbitratorMessage(
  key: Buffer,
  clusterId: string,
  datagram: Buffer,
): ArbitratorDecodeResult {
  if (datagram.length > arbitratorDatagramBytesMax) {
    return { ok: false, reason: 'tooBig', detail: `${datagram.length} bytes` };
  }
  if (datagram.length < headerBytes + macBytes || !datagram.subarray(0, 4).equals(arbitratorMagic)) {
    return { ok: false, reason: 'malformed', detail: 'not an arbitrator message' };
  }
  const version = datagram.readUInt8(4);
  if (version !== arbitratorVersion) {
    return { ok: false, reason: 'futureVersion', detail: `version ${version}` };
  }
  const bodyBytes = datagram.readUInt16BE(5);
  if (headerBytes + bodyBytes + macBytes !== datagram.length) {
    return { ok: false, reason: 'malformed', detail: 'length does not match' };
  }
  const signed = datagram.subarray(0, headerBytes + bodyBytes);
  if (!timingSafeEqual(mac(key, signed), datagram.subarray(headerBytes + bodyBytes))) {
    return { ok: false, reason: 'badMac', detail: 'wrong cluster key or altered' };
  }
  try {
    const body = record(JSON.parse(signed.subarray(headerBytes).toString('utf8')), 'body');
    if (body.cluster !== clusterId) {
      return { ok: false, reason: 'foreignCluster', detail: String(body.cluster).slice(0, nameBytesMax) };
    }
    return { ok: true, message: parseMessage(body.message) };
  } catch (error) {
    if (error instanceof Malformed || error instanceof SyntaxError) {
      return { ok: false, reason: 'malformed', detail: error.message };
    }
    throw error;
  }
}
