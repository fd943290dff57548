// Wire format of the replication stream (pure: no I/O). Every frame is a 20-byte header
// (body length, type, flags, sequence number, CRC of the body) and a body. Operations carry a
// sequence number and are applied in that order; the receiver checks the CRC of every body before
// using it and drops the connection on a mismatch (the primary then goes ALONE and journals).
// The handshake's frames carry a CRC-32 (zlib), so a peer of another protocol version reads the
// hello and says which version it expected; every later frame a CRC-32C (flag frameFlagCrc32c).
import { crc32 } from 'node:zlib';
import { crc32c } from './checksum.ts';

/**
 * 2: directory listings with small-file digests (dirRequest), xattr digests, keepXattrs.
 * 3: frames after the handshake checked with CRC-32C (hardware where the CPU has it).
 */
export const protocolVersion = 3;
/** Frame flag: the body's CRC is a CRC-32C (otherwise zlib's CRC-32). No other flag exists. */
export const frameFlagCrc32c = 1;
const frameFlagsKnown = frameFlagCrc32c;

function checksumOf(flags: number): (data: Uint8Array, previous: number) => number {
  return (flags & frameFlagCrc32c) !== 0 ? crc32c : crc32;
}
export const frameHeaderBytes = 20;
/** The largest data payload in one write frame (FUSE sends at most 128 KiB; resync uses 1 MiB). */
export const frameDataBytesMax = 1024 * 1024;
/** Paths, names, xattr values and the rest of a body stay well under this. */
export const frameBodyBytesMax = frameDataBytesMax + 256 * 1024;
export const pathBytesMax = 4096;
export const namesPerListMax = 100_000;
export const sumsPerReplyMax = 65_536;

export const FrameType = {
  challenge: 1,
  hello: 2,
  welcome: 3,
  op: 4,
  ack: 5,
  fail: 6,
  ping: 7,
  pong: 8,
  sumsRequest: 9,
  sumsReply: 10,
  listRequest: 11,
  listReply: 12,
  dirRequest: 13,
  dirReply: 14,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  readonly type: FrameTypeCode;
  readonly flags: number;
  readonly seq: bigint;
  readonly body: Buffer;
}

/**
 * A large op frame as the decoder returns it when its check is deferred: its body stays in the
 * socket's chunks until first read (one copy of up to 1 MiB, about 0.3 ms here, that would
 * otherwise come before the acknowledgement), and its CRC is chained over those chunks.
 */
export class DeferredFrame implements Frame {
  readonly type = FrameType.op;
  private joined: Buffer | undefined;

  constructor(
    readonly flags: number,
    readonly seq: bigint,
    readonly uncheckedCrc: number,
    readonly bodyBytes: number,
    private parts: readonly Buffer[],
  ) {}

  get body(): Buffer {
    if (this.joined === undefined) {
      this.joined =
        this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.bodyBytes);
      this.parts = [this.joined];
    }
    return this.joined;
  }

  /** The operation code (first body byte) without joining the body. */
  get opCode(): number {
    return (this.parts[0] as Buffer)[0] as number;
  }

  /** The CRC chained over the chunks (the body is not joined for it). */
  crcOfBody(): number {
    const checksum = checksumOf(this.flags);
    let crc = 0;
    for (const part of this.parts) crc = checksum(part, crc);
    return crc;
  }
}

/**
 * Verifies a body whose check the decoder deferred (a `DeferredFrame`; every other frame was
 * checked when decoded); throws ProtocolError on a mismatch.
 */
export function checkFrameBody(frame: Frame): void {
  if (!(frame instanceof DeferredFrame)) return;
  if (frame.crcOfBody() !== frame.uncheckedCrc)
    throw new ProtocolError(`CRC mismatch on frame seq ${frame.seq} (type ${frame.type})`);
}

/** Time fix carried by an operation: the primary's mtime of a path right after applying it. */
export interface TimeFix {
  readonly path: string;
  readonly mtimeNs: bigint;
}

/** Every mutating operation, with paths relative to the replicated directory ("/a/b"). */
export type Op =
  | { readonly kind: 'write'; readonly path: string; readonly offset: number; readonly data: Buffer }
  | { readonly kind: 'truncate'; readonly path: string; readonly size: number }
  | {
      readonly kind: 'fallocate';
      readonly path: string;
      readonly mode: number;
      readonly offset: number;
      readonly length: number;
    }
  | {
      readonly kind: 'create';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly kind: 'mkdir';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly kind: 'mknod';
      readonly path: string;
      readonly mode: number;
      readonly rdev: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly kind: 'symlink';
      readonly path: string;
      readonly target: string;
      readonly uid: number;
      readonly gid: number;
    }
  | { readonly kind: 'link'; readonly path: string; readonly existing: string }
  | { readonly kind: 'unlink'; readonly path: string }
  | { readonly kind: 'rmdir'; readonly path: string }
  /** Removes a whole subtree (resync: names the primary no longer has). */
  | { readonly kind: 'removeTree'; readonly path: string }
  | { readonly kind: 'rename'; readonly path: string; readonly to: string }
  | { readonly kind: 'chmod'; readonly path: string; readonly mode: number }
  | { readonly kind: 'chown'; readonly path: string; readonly uid: number; readonly gid: number }
  | { readonly kind: 'utimens'; readonly path: string; readonly atimeNs: bigint; readonly mtimeNs: bigint }
  | {
      readonly kind: 'setxattr';
      readonly path: string;
      readonly name: string;
      readonly value: Buffer;
      readonly flags: number;
    }
  | { readonly kind: 'removexattr'; readonly path: string; readonly name: string }
  /** Removes every extended attribute of the path not named here (resync: removals made while away). */
  | { readonly kind: 'keepXattrs'; readonly path: string; readonly names: readonly string[] }
  | { readonly kind: 'fsync'; readonly path: string; readonly dataOnly: boolean }
  | { readonly kind: 'fsyncdir'; readonly path: string }
  /** Resync bookkeeping: marks the start and the successful end of a reintegration. */
  | { readonly kind: 'syncBegin'; readonly full: boolean }
  | { readonly kind: 'syncEnd'; readonly full: boolean };

export type OpKind = Op['kind'];

const opCodes: Record<OpKind, number> = {
  write: 1,
  truncate: 2,
  fallocate: 3,
  create: 4,
  mkdir: 5,
  mknod: 6,
  symlink: 7,
  link: 8,
  unlink: 9,
  rmdir: 10,
  removeTree: 11,
  rename: 12,
  chmod: 13,
  chown: 14,
  utimens: 15,
  setxattr: 16,
  removexattr: 17,
  fsync: 18,
  fsyncdir: 19,
  syncBegin: 20,
  syncEnd: 21,
  keepXattrs: 22,
};
const opKindByCode = new Map<number, OpKind>(
  Object.entries(opCodes).map(([kind, code]) => [code, kind as OpKind]),
);

/** Operations the secondary must finish (durably) before it may acknowledge them. */
export function isBarrier(op: Op): boolean {
  return op.kind === 'fsync' || op.kind === 'fsyncdir' || op.kind === 'syncEnd';
}

/** `isBarrier` from an encoded operation's first byte (an unknown code counts as a barrier). */
export function isBarrierCode(code: number): boolean {
  const kind = opKindByCode.get(code);
  return kind === undefined || kind === 'fsync' || kind === 'fsyncdir' || kind === 'syncEnd';
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Append-only body builder with a hard size bound: one growing buffer (a directory reply has
 * thousands of small fields; a buffer per field was a visible share of a full comparison's time).
 */
export class BodyWriter {
  private buffer: Buffer;
  private bytes = 0;

  constructor(initialBytes = 256) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  /** Room for `more` bytes; returns the offset to write at. */
  private reserve(more: number): number {
    const at = this.bytes;
    const needed = at + more;
    if (needed > frameBodyBytesMax) throw new ProtocolError(`frame body over ${frameBodyBytesMax} bytes`);
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.min(frameBodyBytesMax, Math.max(needed, this.buffer.length * 2)));
      this.buffer.copy(grown, 0, 0, at);
      this.buffer = grown;
    }
    this.bytes = needed;
    return at;
  }

  u8(value: number): this {
    const at = this.reserve(1); // Before reading this.buffer: reserve may replace it.
    this.buffer.writeUInt8(value, at);
    return this;
  }

  u32(value: number): this {
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(value, at);
    return this;
  }

  /** Non-negative integer up to 2^53. */
  u64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new ProtocolError(`not a u64: ${value}`);
    const at = this.reserve(8);
    this.buffer.writeUInt32LE(value % 0x1_0000_0000, at);
    this.buffer.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
    return this;
  }

  i64(value: bigint): this {
    const at = this.reserve(8);
    this.buffer.writeBigInt64LE(value, at);
    return this;
  }

  string(value: string, bytesMax = pathBytesMax): this {
    const length = Buffer.byteLength(value, 'utf8');
    if (length > bytesMax) throw new ProtocolError(`string of ${length} bytes over ${bytesMax}`);
    this.u32(length);
    const at = this.reserve(length);
    this.buffer.write(value, at, length, 'utf8');
    return this;
  }

  bytesField(value: Buffer): this {
    if (value.length > frameDataBytesMax)
      throw new ProtocolError(`payload of ${value.length} bytes over ${frameDataBytesMax}`);
    this.u32(value.length);
    const at = this.reserve(value.length);
    value.copy(this.buffer, at);
    return this;
  }

  /** Appends another writer's bytes. */
  append(other: BodyWriter): this {
    const body = other.toBuffer();
    const at = this.reserve(body.length);
    body.copy(this.buffer, at);
    return this;
  }

  get length(): number {
    return this.bytes;
  }

  /** The body (a view of the writer's buffer: do not write more after taking it). */
  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.bytes);
  }
}

/** Bounds-checked body reader; any overrun is a ProtocolError, never a silent zero. */
export class BodyReader {
  private offset = 0;

  constructor(private readonly body: Buffer) {}

  private need(bytes: number): number {
    const at = this.offset;
    if (at + bytes > this.body.length)
      throw new ProtocolError(`body truncated at byte ${at} (need ${bytes})`);
    this.offset += bytes;
    return at;
  }

  u8(): number {
    return this.body.readUInt8(this.need(1));
  }

  u32(): number {
    return this.body.readUInt32LE(this.need(4));
  }

  u64(): number {
    const value = this.body.readBigUInt64LE(this.need(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError(`u64 ${value} over 2^53`);
    return Number(value);
  }

  i64(): bigint {
    return this.body.readBigInt64LE(this.need(8));
  }

  string(bytesMax = pathBytesMax): string {
    const length = this.u32();
    if (length > bytesMax) throw new ProtocolError(`string of ${length} bytes over ${bytesMax}`);
    const at = this.need(length);
    return this.body.toString('utf8', at, at + length);
  }

  bytesField(): Buffer {
    const length = this.u32();
    if (length > frameDataBytesMax)
      throw new ProtocolError(`payload of ${length} bytes over ${frameDataBytesMax}`);
    const at = this.need(length);
    return this.body.subarray(at, at + length);
  }

  get remaining(): number {
    return this.body.length - this.offset;
  }

  end(): void {
    if (this.remaining !== 0) throw new ProtocolError(`${this.remaining} unexpected trailing bytes`);
  }
}

const xattrValueBytesMax = 64 * 1024;
/** Linux lists at most 64 KiB of xattr names per path, each at least 2 bytes with its NUL. */
export const xattrsPerPathMax = 32 * 1024;

export function encodeOp(op: Op, fixes: readonly TimeFix[] = []): Buffer {
  const writer = new BodyWriter().u8(opCodes[op.kind]);
  switch (op.kind) {
    case 'write':
      writer.string(op.path).u64(op.offset).bytesField(op.data);
      break;
    case 'truncate':
      writer.string(op.path).u64(op.size);
      break;
    case 'fallocate':
      writer.string(op.path).u32(op.mode).u64(op.offset).u64(op.length);
      break;
    case 'create':
    case 'mkdir':
      writer.string(op.path).u32(op.mode).u32(op.uid).u32(op.gid);
      break;
    case 'mknod':
      writer.string(op.path).u32(op.mode).u64(op.rdev).u32(op.uid).u32(op.gid);
      break;
    case 'symlink':
      writer.string(op.path).string(op.target).u32(op.uid).u32(op.gid);
      break;
    case 'link':
      writer.string(op.path).string(op.existing);
      break;
    case 'unlink':
    case 'rmdir':
    case 'removeTree':
    case 'fsyncdir':
      writer.string(op.path);
      break;
    case 'rename':
      writer.string(op.path).string(op.to);
      break;
    case 'chmod':
      writer.string(op.path).u32(op.mode);
      break;
    case 'chown':
      writer.string(op.path).u32(op.uid).u32(op.gid);
      break;
    case 'utimens':
      writer.string(op.path).i64(op.atimeNs).i64(op.mtimeNs);
      break;
    case 'setxattr':
      if (op.value.length > xattrValueBytesMax)
        throw new ProtocolError(`xattr value over ${xattrValueBytesMax} bytes`);
      writer.string(op.path).string(op.name, 255).bytesField(op.value).u32(op.flags);
      break;
    case 'removexattr':
      writer.string(op.path).string(op.name, 255);
      break;
    case 'keepXattrs':
      if (op.names.length > xattrsPerPathMax)
        throw new ProtocolError(`${op.names.length} xattr names over ${xattrsPerPathMax}`);
      writer.string(op.path).u32(op.names.length);
      for (const name of op.names) writer.string(name, 255);
      break;
    case 'fsync':
      writer.string(op.path).u8(op.dataOnly ? 1 : 0);
      break;
    case 'syncBegin':
    case 'syncEnd':
      writer.u8(op.full ? 1 : 0);
      break;
  }
  return writeFixes(writer, fixes).toBuffer();
}

function writeFixes(writer: BodyWriter, fixes: readonly TimeFix[]): BodyWriter {
  if (fixes.length > 255) throw new ProtocolError(`${fixes.length} time fixes over 255`);
  writer.u8(fixes.length);
  for (const fix of fixes) writer.string(fix.path).i64(fix.mtimeNs);
  return writer;
}

/**
 * The bytes of `encodeOp` as buffers to send in order: a write's data is its own part, not
 * copied into the body (a copy of every 128 KiB FUSE request less on the primary's critical
 * path). Other operations are one part.
 */
export function encodeOpParts(op: Op, fixes: readonly TimeFix[] = []): Buffer[] {
  if (op.kind !== 'write') return [encodeOp(op, fixes)];
  if (op.data.length > frameDataBytesMax)
    throw new ProtocolError(`payload of ${op.data.length} bytes over ${frameDataBytesMax}`);
  const head = new BodyWriter().u8(opCodes.write).string(op.path).u64(op.offset).u32(op.data.length);
  return [head.toBuffer(), op.data, writeFixes(new BodyWriter(16), fixes).toBuffer()];
}

export interface DecodedOp {
  readonly op: Op;
  readonly fixes: readonly TimeFix[];
}

export function decodeOp(body: Buffer): DecodedOp {
  const reader = new BodyReader(body);
  const code = reader.u8();
  const kind = opKindByCode.get(code);
  if (kind === undefined) throw new ProtocolError(`unknown operation code ${code}`);
  let op: Op;
  switch (kind) {
    case 'write': {
      const path = reader.string();
      const offset = reader.u64();
      op = { kind, path, offset, data: reader.bytesField() };
      break;
    }
    case 'truncate':
      op = { kind, path: reader.string(), size: reader.u64() };
      break;
    case 'fallocate':
      op = { kind, path: reader.string(), mode: reader.u32(), offset: reader.u64(), length: reader.u64() };
      break;
    case 'create':
    case 'mkdir':
      op = { kind, path: reader.string(), mode: reader.u32(), uid: reader.u32(), gid: reader.u32() };
      break;
    case 'mknod':
      op = {
        kind,
        path: reader.string(),
        mode: reader.u32(),
        rdev: reader.u64(),
        uid: reader.u32(),
        gid: reader.u32(),
      };
      break;
    case 'symlink':
      op = { kind, path: reader.string(), target: reader.string(), uid: reader.u32(), gid: reader.u32() };
      break;
    case 'link':
      op = { kind, path: reader.string(), existing: reader.string() };
      break;
    case 'unlink':
    case 'rmdir':
    case 'removeTree':
    case 'fsyncdir':
      op = { kind, path: reader.string() };
      break;
    case 'rename':
      op = { kind, path: reader.string(), to: reader.string() };
      break;
    case 'chmod':
      op = { kind, path: reader.string(), mode: reader.u32() };
      break;
    case 'chown':
      op = { kind, path: reader.string(), uid: reader.u32(), gid: reader.u32() };
      break;
    case 'utimens':
      op = { kind, path: reader.string(), atimeNs: reader.i64(), mtimeNs: reader.i64() };
      break;
    case 'setxattr':
      op = {
        kind,
        path: reader.string(),
        name: reader.string(255),
        value: Buffer.from(reader.bytesField()),
        flags: reader.u32(),
      };
      break;
    case 'removexattr':
      op = { kind, path: reader.string(), name: reader.string(255) };
      break;
    case 'keepXattrs': {
      const path = reader.string();
      const count = reader.u32();
      if (count > xattrsPerPathMax) throw new ProtocolError(`${count} xattr names over ${xattrsPerPathMax}`);
      const names: string[] = [];
      for (let index = 0; index < count; index += 1) names.push(reader.string(255));
      op = { kind, path, names };
      break;
    }
    case 'fsync':
      op = { kind, path: reader.string(), dataOnly: reader.u8() === 1 };
      break;
    case 'syncBegin':
    case 'syncEnd':
      op = { kind, full: reader.u8() === 1 };
      break;
  }
  const fixCount = reader.u8();
  const fixes: TimeFix[] = [];
  for (let index = 0; index < fixCount; index += 1)
    fixes.push({ path: reader.string(), mtimeNs: reader.i64() });
  reader.end();
  return { op, fixes };
}

/** Header + body as two buffers (no copy of a large payload). */
export function encodeFrame(type: FrameTypeCode, seq: bigint, body: Buffer, flags = 0): [Buffer, Buffer] {
  return [frameHeaderOf(type, seq, [body], flags), body];
}

/** The header of a frame whose body is `parts` in order (CRC chained over the parts, no copy). */
export function frameHeaderOf(type: FrameTypeCode, seq: bigint, parts: readonly Buffer[], flags = 0): Buffer {
  if ((flags & ~frameFlagsKnown) !== 0) throw new ProtocolError(`unknown frame flags ${flags}`);
  const checksum = checksumOf(flags);
  let bodyBytes = 0;
  let crc = 0;
  for (const part of parts) {
    bodyBytes += part.length;
    crc = checksum(part, crc);
  }
  if (bodyBytes > frameBodyBytesMax)
    throw new ProtocolError(`frame body of ${bodyBytes} bytes over ${frameBodyBytesMax}`);
  const header = Buffer.allocUnsafe(frameHeaderBytes);
  header.writeUInt32LE(bodyBytes, 0);
  header.writeUInt8(type, 4);
  header.writeUInt8(flags, 5);
  header.writeUInt16LE(0, 6);
  header.writeBigUInt64LE(seq, 8);
  header.writeUInt32LE(crc, 16);
  return header;
}

const frameTypeCodes = new Set<number>(Object.values(FrameType));

/**
 * Splits a byte stream into verified frames. Bounded: a frame longer than frameBodyBytesMax, an
 * unknown type or a CRC mismatch throws, and the caller closes the connection.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /**
   * `deferCheckFrom`: op frames with a body of at least this many bytes are returned unchecked
   * and unjoined (`DeferredFrame`, `uncheckedCrc` set). A secondary with async="second"
   * acknowledges such a write on receipt and checks it off the writer's round trip, before
   * applying it (secondary.ts says why that is safe).
   */
  constructor(private readonly deferCheckFrom = Number.POSITIVE_INFINITY) {}

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.pendingBytes < frameHeaderBytes) break;
      const head = this.peek(frameHeaderBytes);
      const bodyBytes = head.readUInt32LE(0);
      if (bodyBytes > frameBodyBytesMax)
        throw new ProtocolError(`frame of ${bodyBytes} bytes over ${frameBodyBytesMax}`);
      const type = head.readUInt8(4);
      if (!frameTypeCodes.has(type)) throw new ProtocolError(`unknown frame type ${type}`);
      if (this.pendingBytes < frameHeaderBytes + bodyBytes) break;
      if (type === FrameType.op && bodyBytes >= this.deferCheckFrom) {
        const flags = head.readUInt8(5);
        if ((flags & ~frameFlagsKnown) !== 0) throw new ProtocolError(`unknown frame flags ${flags}`);
        const seq = head.readBigUInt64LE(8);
        const expectedCrc = head.readUInt32LE(16);
        this.skip(frameHeaderBytes);
        frames.push(new DeferredFrame(flags, seq, expectedCrc, bodyBytes, this.takeParts(bodyBytes)));
        continue;
      }
      const whole = this.take(frameHeaderBytes + bodyBytes);
      const body = whole.subarray(frameHeaderBytes);
      const expectedCrc = whole.readUInt32LE(16);
      const flags = whole.readUInt8(5);
      if ((flags & ~frameFlagsKnown) !== 0) throw new ProtocolError(`unknown frame flags ${flags}`);
      const frame = {
        type: type as FrameTypeCode,
        flags,
        seq: whole.readBigUInt64LE(8),
        body,
      };
      if (checksumOf(flags)(body, 0) !== expectedCrc) {
        throw new ProtocolError(`CRC mismatch on frame seq ${frame.seq} (type ${type})`);
      }
      frames.push(frame);
    }
    return frames;
  }

  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  private peek(bytes: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= bytes) return first.subarray(0, bytes);
    return this.copyOut(bytes, false);
  }

  /** Drops the first `bytes` pending bytes. */
  private skip(bytes: number): void {
    this.takeParts(bytes);
  }

  /** The first `bytes` pending bytes as views of the chunks holding them (no copy). */
  private takeParts(bytes: number): Buffer[] {
    const parts: Buffer[] = [];
    let left = bytes;
    while (left > 0) {
      const chunk = this.pending[0] as Buffer;
      if (chunk.length <= left) {
        parts.push(chunk);
        this.pending.shift();
        left -= chunk.length;
      } else {
        parts.push(chunk.subarray(0, left));
        this.pending[0] = chunk.subarray(left);
        left = 0;
      }
    }
    this.pendingBytes -= bytes;
    return parts;
  }

  private take(bytes: number): Buffer {
    const first = this.pending[0] as Buffer;
    if (first.length >= bytes) {
      const out = first.subarray(0, bytes);
      if (first.length === bytes) this.pending.shift();
      else this.pending[0] = first.subarray(bytes);
      this.pendingBytes -= bytes;
      return out;
    }
    return this.copyOut(bytes, true);
  }

  /**
   * The first `bytes` pending bytes in one buffer: copies exactly those (a frame spanning socket
   * reads), not every pending chunk; with `consume` they leave the queue, the rest stays as is.
   */
  private copyOut(bytes: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    let index = 0;
    while (at < bytes) {
      const chunk = this.pending[index] as Buffer;
      const used = Math.min(chunk.length, bytes - at);
      chunk.copy(out, at, 0, used);
      at += used;
      if (!consume) index += 1;
      else if (used === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(used);
    }
    if (consume) this.pendingBytes -= bytes;
    return out;
  }
}

// Control bodies.

export interface Hello {
  readonly version: number;
  readonly moduleName: string;
  readonly nodeName: string;
  readonly clientNonce: Buffer;
  readonly mac: Buffer;
}

export function encodeHello(hello: Hello): Buffer {
  return new BodyWriter()
    .u32(hello.version)
    .string(hello.moduleName, 255)
    .string(hello.nodeName, 255)
    .bytesField(hello.clientNonce)
    .bytesField(hello.mac)
    .toBuffer();
}

export function decodeHello(body: Buffer): Hello {
  const reader = new BodyReader(body);
  const hello = {
    version: reader.u32(),
    moduleName: reader.string(255),
    nodeName: reader.string(255),
    clientNonce: Buffer.from(reader.bytesField()),
    mac: Buffer.from(reader.bytesField()),
  };
  reader.end();
  return hello;
}

export interface Welcome {
  readonly mac: Buffer;
  /** The secondary's last completed sync (epoch ms, 0: never), so the primary picks full or incremental. */
  readonly lastSyncMs: number;
  readonly syncInProgress: boolean;
  /** The secondary's activity log: paths it may have changed alone as a crashed primary. */
  readonly suspectPaths: readonly string[];
}

export function encodeWelcome(welcome: Welcome): Buffer {
  const writer = new BodyWriter()
    .bytesField(welcome.mac)
    .u64(welcome.lastSyncMs)
    .u8(welcome.syncInProgress ? 1 : 0)
    .u32(welcome.suspectPaths.length);
  for (const path of welcome.suspectPaths) writer.string(path);
  return writer.toBuffer();
}

export function decodeWelcome(body: Buffer): Welcome {
  const reader = new BodyReader(body);
  const mac = Buffer.from(reader.bytesField());
  const lastSyncMs = reader.u64();
  const syncInProgress = reader.u8() === 1;
  const count = reader.u32();
  if (count > namesPerListMax) throw new ProtocolError(`${count} suspect paths over ${namesPerListMax}`);
  const suspectPaths: string[] = [];
  for (let index = 0; index < count; index += 1) suspectPaths.push(reader.string());
  reader.end();
  return { mac, lastSyncMs, syncInProgress, suspectPaths };
}

/** What the secondary has at a path, with per-block digests (full sync, verify). */
export interface PathSums {
  readonly path: string;
  readonly type: 'missing' | 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly target: string;
  readonly blockBytes: number;
  readonly sums: readonly Buffer[];
  /** Extended attributes (name, value digest) sorted by name; undefined when not asked (acl="off"). */
  readonly xattrs: readonly XattrSum[] | undefined;
}

export interface XattrSum {
  readonly name: string;
  readonly digest: Buffer;
}

const typeCodes = { missing: 0, file: 1, dir: 2, symlink: 3, other: 4 } as const;
const typeByCode = ['missing', 'file', 'dir', 'symlink', 'other'] as const;
export const blockDigestBytes = 16;

export interface SumsRequest {
  readonly path: string;
  readonly blockBytes: number;
  /** Also the path's extended attributes (acl="on"). */
  readonly xattrs: boolean;
}

export function encodeSumsRequest(request: SumsRequest): Buffer {
  return new BodyWriter()
    .string(request.path)
    .u64(request.blockBytes)
    .u8(request.xattrs ? 1 : 0)
    .toBuffer();
}

export function decodeSumsRequest(body: Buffer): SumsRequest {
  const reader = new BodyReader(body);
  const request = { path: reader.string(), blockBytes: reader.u64(), xattrs: reader.u8() === 1 };
  reader.end();
  return request;
}

function writeXattrSums(writer: BodyWriter, xattrs: readonly XattrSum[] | undefined): void {
  if (xattrs === undefined) {
    writer.u8(0);
    return;
  }
  if (xattrs.length > xattrsPerPathMax)
    throw new ProtocolError(`${xattrs.length} xattrs over ${xattrsPerPathMax}`);
  writer.u8(1).u32(xattrs.length);
  for (const xattr of xattrs) {
    if (xattr.digest.length !== blockDigestBytes)
      throw new ProtocolError(`xattr digest of ${xattr.digest.length} bytes`);
    writer.string(xattr.name, 255).bytesField(xattr.digest);
  }
}

function readXattrSums(reader: BodyReader): XattrSum[] | undefined {
  if (reader.u8() === 0) return undefined;
  const count = reader.u32();
  if (count > xattrsPerPathMax) throw new ProtocolError(`${count} xattrs over ${xattrsPerPathMax}`);
  const xattrs: XattrSum[] = [];
  for (let index = 0; index < count; index += 1)
    xattrs.push({ name: reader.string(255), digest: Buffer.from(reader.bytesField()) });
  return xattrs;
}

export function encodeSumsReply(sums: PathSums): Buffer {
  if (sums.sums.length > sumsPerReplyMax)
    throw new ProtocolError(`${sums.sums.length} block sums over ${sumsPerReplyMax}`);
  const writer = new BodyWriter()
    .string(sums.path)
    .u8(typeCodes[sums.type])
    .u64(sums.size)
    .u32(sums.mode)
    .u32(sums.uid)
    .u32(sums.gid)
    .i64(sums.mtimeNs)
    .string(sums.target)
    .u64(sums.blockBytes)
    .u32(sums.sums.length);
  for (const sum of sums.sums) {
    if (sum.length !== blockDigestBytes) throw new ProtocolError(`block digest of ${sum.length} bytes`);
    writer.bytesField(sum);
  }
  writeXattrSums(writer, sums.xattrs);
  return writer.toBuffer();
}

export function decodeSumsReply(body: Buffer): PathSums {
  const reader = new BodyReader(body);
  const path = reader.string();
  const type = typeByCode[reader.u8()];
  if (type === undefined) throw new ProtocolError('unknown entry type in sums reply');
  const size = reader.u64();
  const mode = reader.u32();
  const uid = reader.u32();
  const gid = reader.u32();
  const mtimeNs = reader.i64();
  const target = reader.string();
  const blockBytes = reader.u64();
  const count = reader.u32();
  if (count > sumsPerReplyMax) throw new ProtocolError(`${count} block sums over ${sumsPerReplyMax}`);
  const sums: Buffer[] = [];
  for (let index = 0; index < count; index += 1) sums.push(Buffer.from(reader.bytesField()));
  const xattrs = readXattrSums(reader);
  reader.end();
  return { path, type, size, mode, uid, gid, mtimeNs, target, blockBytes, sums, xattrs };
}

/**
 * One page of a directory's entries with their attributes and, for regular files up to
 * `digestBytesMax`, the digest of the whole file (their only block): a full comparison costs one
 * round trip per page of a directory instead of one per path.
 */
export interface DirRequest {
  readonly path: string;
  /** Entries after this name in sort order ('' from the start). */
  readonly after: string;
  readonly digestBytesMax: number;
  readonly xattrs: boolean;
}

export interface DirEntrySums {
  readonly name: string;
  readonly type: PathSums['type'];
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeNs: bigint;
  readonly target: string;
  /** The file's digest (none when empty): regular files up to the request's digestBytesMax only. */
  readonly sums: readonly Buffer[] | undefined;
  readonly xattrs: readonly XattrSum[] | undefined;
}

export interface DirReply {
  readonly path: string;
  /** What the path is on the secondary: a listing only comes with 'dir'. */
  readonly type: PathSums['type'];
  readonly entries: readonly DirEntrySums[];
  /** More entries follow: ask again after the last name. */
  readonly more: boolean;
}

export const dirEntriesPerPageMax = 4096;
/** A page stops growing past this; one entry (4 KiB target, xattrs) stays far under the frame bound. */
export const dirPageBytesSoftMax = 512 * 1024;

export function encodeDirRequest(request: DirRequest): Buffer {
  return new BodyWriter()
    .string(request.path)
    .string(request.after, 255)
    .u64(request.digestBytesMax)
    .u8(request.xattrs ? 1 : 0)
    .toBuffer();
}

export function decodeDirRequest(body: Buffer): DirRequest {
  const reader = new BodyReader(body);
  const request = {
    path: reader.string(),
    after: reader.string(255),
    digestBytesMax: reader.u64(),
    xattrs: reader.u8() === 1,
  };
  reader.end();
  return request;
}

/** Incremental encoder of a dir reply, so the producer can stop at the page's size bound. */
export class DirReplyWriter {
  private readonly entries = new BodyWriter(64 * 1024);
  private count = 0;

  get entryCount(): number {
    return this.count;
  }

  get bytes(): number {
    return this.entries.length;
  }

  add(entry: DirEntrySums): void {
    if (this.count >= dirEntriesPerPageMax) throw new ProtocolError(`over ${dirEntriesPerPageMax} entries`);
    this.entries
      .string(entry.name, 255)
      .u8(typeCodes[entry.type])
      .u64(entry.size)
      .u32(entry.mode)
      .u32(entry.uid)
      .u32(entry.gid)
      .i64(entry.mtimeNs)
      .string(entry.target);
    if (entry.sums === undefined) this.entries.u8(0);
    else {
      if (entry.sums.length > 1) throw new ProtocolError(`${entry.sums.length} digests in a dir entry`);
      this.entries.u8(1 + entry.sums.length);
      for (const sum of entry.sums) {
        if (sum.length !== blockDigestBytes) throw new ProtocolError(`digest of ${sum.length} bytes`);
        this.entries.bytesField(sum);
      }
    }
    writeXattrSums(this.entries, entry.xattrs);
    this.count += 1;
  }

  finish(path: string, type: PathSums['type'], more: boolean): Buffer {
    return new BodyWriter(this.entries.length + 4200)
      .string(path)
      .u8(typeCodes[type])
      .u8(more ? 1 : 0)
      .u32(this.count)
      .append(this.entries)
      .toBuffer();
  }
}

export function decodeDirReply(body: Buffer): DirReply {
  const reader = new BodyReader(body);
  const path = reader.string();
  const type = typeByCode[reader.u8()];
  if (type === undefined) throw new ProtocolError('unknown entry type in dir reply');
  const more = reader.u8() === 1;
  const count = reader.u32();
  if (count > dirEntriesPerPageMax) throw new ProtocolError(`${count} entries over ${dirEntriesPerPageMax}`);
  const entries: DirEntrySums[] = [];
  for (let index = 0; index < count; index += 1) {
    const name = reader.string(255);
    const entryType = typeByCode[reader.u8()];
    if (entryType === undefined) throw new ProtocolError(`unknown entry type for ${name} in dir reply`);
    const size = reader.u64();
    const mode = reader.u32();
    const uid = reader.u32();
    const gid = reader.u32();
    const mtimeNs = reader.i64();
    const target = reader.string();
    const sumsFlag = reader.u8();
    if (sumsFlag > 2) throw new ProtocolError(`bad digest count ${sumsFlag - 1} for ${name}`);
    // Views of the body, not copies: a listing lives only while its directory is compared.
    const sums = sumsFlag === 0 ? undefined : sumsFlag === 1 ? [] : [reader.bytesField()];
    const xattrs = readXattrSums(reader);
    entries.push({ name, type: entryType, size, mode, uid, gid, mtimeNs, target, sums, xattrs });
  }
  reader.end();
  return { path, type, entries, more };
}

export function encodeList(names: readonly string[]): Buffer {
  if (names.length > namesPerListMax)
    throw new ProtocolError(`${names.length} names over ${namesPerListMax}`);
  const writer = new BodyWriter().u32(names.length);
  for (const name of names) writer.string(name, 255);
  return writer.toBuffer();
}

export function decodeList(body: Buffer): string[] {
  const reader = new BodyReader(body);
  const count = reader.u32();
  if (count > namesPerListMax) throw new ProtocolError(`${count} names over ${namesPerListMax}`);
  const names: string[] = [];
  for (let index = 0; index < count; index += 1) names.push(reader.string(255));
  reader.end();
  return names;
}

export function encodeText(text: string): Buffer {
  return new BodyWriter().string(text.slice(0, 1000), 4096).toBuffer();
}

export function decodeText(body: Buffer): string {
  return new BodyReader(body).string(4096);
}

/** Checks a relative replication path: "/"-rooted, no "..", ".", empty or NUL components. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '/') return true;
  if (!path.startsWith('/') || path.length > pathBytesMax || path.includes('\0')) return false;
  return path
    .slice(1)
    .split('/')
    .every((part) => part !== '' && part !== '.' && part !== '..');
}
