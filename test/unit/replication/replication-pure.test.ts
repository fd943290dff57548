// Pure parts of the replication data path: wire codec, frame decoder, range sets, flow-control
// window, secondary ack tracker, change journal, notreplicated filter, stream paths.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { clientMac, macEquals, replicationKeyOf, serverMac } from '../../../agent/replication/auth.ts';
import { makePathFilter } from '../../../agent/replication/filter.ts';
import { ChangeJournal, formatJournalRecord, parseJournalLine } from '../../../agent/replication/journal.ts';
import { crc32 } from 'node:zlib';
import { crc32cPortable } from '../../../agent/replication/checksum.ts';
import type { DirEntrySums, Op } from '../../../agent/replication/protocol.ts';
import {
  DirReplyWriter,
  DeferredFrame,
  FrameDecoder,
  checkFrameBody,
  frameFlagCrc32c,
  FrameType,
  ProtocolError,
  decodeDirReply,
  decodeDirRequest,
  decodeOp,
  decodeWelcome,
  encodeDirRequest,
  encodeFrame,
  encodeOp,
  encodeOpParts,
  encodeWelcome,
  frameHeaderOf,
  isSafeRelativePath,
} from '../../../agent/replication/protocol.ts';
import { RangeSet } from '../../../agent/replication/range-set.ts';
import { recordsForOp } from '../../../agent/replication/replicator.ts';
import { joinRoot, splitRoot } from '../../../agent/replication/tree.ts';
import { AckTracker, InflightWindow } from '../../../agent/replication/window.ts';

describe('replication protocol', () => {
  const ops: Op[] = [
    { kind: 'write', path: '/0/a', offset: 12345678901, data: Buffer.from('hello') },
    { kind: 'truncate', path: '/0/a', size: 3 },
    { kind: 'fallocate', path: '/0/a', mode: 1, offset: 4096, length: 8192 },
    { kind: 'create', path: '/1/é', mode: 0o640, uid: 1000, gid: 100 },
    { kind: 'mkdir', path: '/0/d', mode: 0o2755, uid: 0, gid: 0 },
    { kind: 'symlink', path: '/0/s', target: '../x', uid: 1, gid: 2 },
    { kind: 'rename', path: '/0/a', to: '/0/b' },
    { kind: 'utimens', path: '/0/b', atimeNs: 1n, mtimeNs: 1_700_000_000_123_456_789n },
    { kind: 'setxattr', path: '/0/b', name: 'user.x', value: Buffer.from([0, 1, 2]), flags: 1 },
    { kind: 'fsync', path: '/0/b', dataOnly: true },
    { kind: 'syncEnd', full: true },
    { kind: 'keepXattrs', path: '/0/b', names: ['user.kept', 'system.posix_acl_access'] },
    // Larger than the writer's first buffer: the body grows while fields are written.
    { kind: 'write', path: `/0/${'n'.repeat(300)}`, offset: 2 ** 40, data: Buffer.alloc(200_000, 7) },
  ];

  test('every operation survives encode/decode with its time fixes', () => {
    for (const op of ops) {
      const fixes = [{ path: '/0', mtimeNs: 42n }];
      const decoded = decodeOp(encodeOp(op, fixes));
      assert.deepEqual(decoded.op, op);
      assert.deepEqual(decoded.fixes, fixes);
    }
  });

  test('a write sent as parts (data not copied) is the same frame as encodeOp makes', () => {
    for (const op of ops) {
      const fixes = [{ path: '/0', mtimeNs: 42n }];
      const parts = encodeOpParts(op, fixes);
      const body = encodeOp(op, fixes);
      assert.ok(Buffer.concat(parts).equals(body), op.kind);
      if (op.kind === 'write') assert.equal(parts[1], op.data, 'the data is sent as given');
      assert.ok(frameHeaderOf(FrameType.op, 7n, parts).equals(encodeFrame(FrameType.op, 7n, body)[0]));
    }
  });

  test('a directory page (thousands of entries, digests, xattrs) survives encode/decode', () => {
    const writer = new DirReplyWriter();
    const entries: DirEntrySums[] = [];
    for (let index = 0; index < 3000; index += 1) {
      const entry: DirEntrySums = {
        name: `file-${index}`,
        type: index % 7 === 0 ? 'dir' : index % 11 === 0 ? 'symlink' : 'file',
        size: index * 3,
        mode: 0o100644,
        uid: index,
        gid: 2 ** 31 + index,
        mtimeNs: 1_700_000_000_000_000_000n + BigInt(index),
        target: index % 11 === 0 ? `../t${index}` : '',
        sums: index % 5 === 0 ? undefined : index % 5 === 1 ? [] : [Buffer.alloc(16, index % 256)],
        xattrs: index % 3 === 0 ? undefined : [{ name: `user.a${index}`, digest: Buffer.alloc(16, 1) }],
      };
      entries.push(entry);
      writer.add(entry);
    }
    const reply = decodeDirReply(writer.finish('/0/d', 'dir', true));
    assert.equal(reply.path, '/0/d');
    assert.equal(reply.more, true);
    assert.deepEqual(reply.entries, entries);
    const request = { path: '/3/x', after: 'file-9', digestBytesMax: 262_144, xattrs: true };
    assert.deepEqual(decodeDirRequest(encodeDirRequest(request)), request);
    assert.throws(() => decodeDirReply(writer.finish('/0/d', 'dir', false).subarray(0, 5000)), ProtocolError);
  });

  test('a truncated or padded body is refused, not misread', () => {
    const body = encodeOp(ops[0] as Op);
    assert.throws(() => decodeOp(body.subarray(0, body.length - 2)), ProtocolError);
    assert.throws(() => decodeOp(Buffer.concat([body, Buffer.from([0])])), ProtocolError);
  });

  test('frames split at any byte boundary decode in order; a flipped bit fails the CRC', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 97 }),
        (bodies, step) => {
          const stream = Buffer.concat(
            bodies.flatMap((body, index) => encodeFrame(FrameType.op, BigInt(index + 1), Buffer.from(body))),
          );
          const decoder = new FrameDecoder();
          const frames = [];
          for (let at = 0; at < stream.length; at += step)
            frames.push(...decoder.push(stream.subarray(at, at + step)));
          assert.equal(frames.length, bodies.length);
          frames.forEach((frame, index) => {
            assert.equal(frame.seq, BigInt(index + 1));
            assert.deepEqual([...frame.body], [...(bodies[index] as Uint8Array)]);
          });
        },
      ),
    );
    const [header, body] = encodeFrame(FrameType.op, 1n, Buffer.from('payload'));
    const corrupt = Buffer.from(body);
    corrupt[0] = (corrupt[0] as number) ^ 1;
    assert.throws(() => new FrameDecoder().push(Buffer.concat([header, corrupt])), /CRC mismatch/);
  });

  test('a deferred check: large op bodies come back unchecked, checkFrameBody finds the damage', () => {
    const large = Buffer.alloc(1000, 7);
    const [header, body] = encodeFrame(FrameType.op, 5n, large);
    const damaged = Buffer.from(body);
    damaged[999] = (damaged[999] as number) ^ 0x10;
    const [frame] = new FrameDecoder(1000).push(Buffer.concat([header, damaged]));
    assert.ok(frame instanceof DeferredFrame);
    assert.equal(frame.uncheckedCrc, header.readUInt32LE(16));
    assert.throws(() => checkFrameBody(frame), /CRC mismatch on frame seq 5/);
    const [intact] = new FrameDecoder(1000).push(Buffer.concat([header, body]));
    assert.ok(intact);
    checkFrameBody(intact);
    // Arriving in pieces: the body stays in the pieces (checked across them) until first read.
    const pieces = new FrameDecoder(1000);
    const stream = Buffer.concat([header, body, header]);
    const got = [...pieces.push(stream.subarray(0, 7)), ...pieces.push(stream.subarray(7, 333))];
    assert.equal(got.length, 0);
    const [split] = pieces.push(stream.subarray(333, 1020 + 5));
    assert.ok(split instanceof DeferredFrame);
    assert.equal(split.bodyBytes, 1000);
    assert.equal(split.seq, 5n);
    checkFrameBody(split);
    assert.deepEqual([...split.body], [...body]);
    assert.equal(pieces.bufferedBytes, 5, "the next frame's first bytes stay pending");
    // Below the size, and any other frame type, are still checked by the decoder itself.
    const checkedAtOnce = (type: (typeof FrameType)[keyof typeof FrameType], bytes: number) => {
      const [checkedHeader, checkedBody] = encodeFrame(type, 6n, Buffer.alloc(bytes, 7));
      const checkedDamaged = Buffer.from(checkedBody);
      checkedDamaged[0] = (checkedDamaged[0] as number) ^ 1;
      assert.throws(
        () => new FrameDecoder(1000).push(Buffer.concat([checkedHeader, checkedDamaged])),
        /CRC mismatch/,
      );
    };
    checkedAtOnce(FrameType.op, 999);
    checkedAtOnce(FrameType.pong, 1000);
  });

  test('frames flagged CRC-32C are checked with CRC-32C; unflagged with CRC-32; other flags refused', () => {
    const body = Buffer.from('a body of some bytes');
    const [flaggedHeader] = encodeFrame(FrameType.op, 1n, body, frameFlagCrc32c);
    const [plainHeader] = encodeFrame(FrameType.op, 1n, body);
    assert.equal(flaggedHeader.readUInt32LE(16), crc32cPortable(body));
    assert.equal(plainHeader.readUInt32LE(16), crc32(body));
    assert.notEqual(flaggedHeader.readUInt32LE(16), plainHeader.readUInt32LE(16));
    for (const header of [flaggedHeader, plainHeader]) {
      const [frame] = new FrameDecoder().push(Buffer.concat([header, body]));
      assert.equal(frame?.body.toString(), body.toString());
    }
    // A CRC-32 under the CRC-32C flag does not pass (nor the reverse).
    const swapped = Buffer.from(flaggedHeader);
    swapped.writeUInt32LE(crc32(body), 16);
    assert.throws(() => new FrameDecoder().push(Buffer.concat([swapped, body])), /CRC mismatch/);
    const unknown = Buffer.from(plainHeader);
    unknown.writeUInt8(2, 5);
    assert.throws(() => new FrameDecoder().push(Buffer.concat([unknown, body])), /unknown frame flags 2/);
    assert.throws(() => encodeFrame(FrameType.op, 1n, body, 4), /unknown frame flags 4/);
  });

  test('an oversized or unknown frame is refused from its header', () => {
    const header = Buffer.alloc(20);
    header.writeUInt32LE(64 * 1024 * 1024, 0);
    header.writeUInt8(FrameType.op, 4);
    assert.throws(() => new FrameDecoder().push(header), /over/);
    header.writeUInt32LE(0, 0);
    header.writeUInt8(99, 4);
    assert.throws(() => new FrameDecoder().push(header), /unknown frame type/);
  });

  test('welcome carries the sync point and the suspect paths', () => {
    const welcome = {
      mac: Buffer.alloc(32, 7),
      lastSyncMs: 1234,
      syncInProgress: true,
      suspectPaths: ['/0/a', '/1/b'],
    };
    assert.deepEqual(decodeWelcome(encodeWelcome(welcome)), welcome);
  });

  test('paths that could leave the replicated directory are unsafe', () => {
    for (const path of ['/', '/a', '/a/b.c', '/..a']) assert.equal(isSafeRelativePath(path), true, path);
    for (const path of ['', 'a', '/../x', '/a/../b', '/a//b', '/a/', '/./a', '/a\0b'])
      assert.equal(isSafeRelativePath(path), false, path);
  });

  test('stream paths carry the replicated dir index', () => {
    assert.equal(joinRoot(3, '/a/b'), '/3/a/b');
    assert.equal(joinRoot(0, '/'), '/0');
    assert.deepEqual(splitRoot('/3/a/b'), { index: 3, path: '/a/b' });
    assert.deepEqual(splitRoot('/0'), { index: 0, path: '/' });
    assert.throws(() => splitRoot('/x/a'));
  });

  test('mutual authentication: MACs bind both nonces and the module', () => {
    const key = replicationKeyOf(Buffer.alloc(32, 1));
    const other = replicationKeyOf(Buffer.alloc(32, 2));
    const sn = Buffer.alloc(32, 3);
    const cn = Buffer.alloc(32, 4);
    assert.equal(macEquals(clientMac(key, sn, cn, 'am'), clientMac(key, sn, cn, 'am')), true);
    assert.equal(macEquals(clientMac(key, sn, cn, 'am'), clientMac(other, sn, cn, 'am')), false);
    assert.equal(macEquals(clientMac(key, sn, cn, 'am'), clientMac(key, sn, cn, 'bm')), false);
    assert.equal(macEquals(clientMac(key, sn, cn, 'am'), serverMac(key, sn, cn, 'am')), false);
  });
});

describe('range set', () => {
  test('matches a byte-level model under random adds and clips', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 50 })), {
          maxLength: 40,
        }),
        (adds) => {
          const set = new RangeSet();
          const model = new Set<number>();
          for (const [start, length] of adds) {
            set.add(start, start + length);
            for (let byte = start; byte < start + length; byte += 1) model.add(byte);
          }
          assert.equal(set.bytesWithin(Infinity), model.size);
          const ranges = set.toArray();
          for (let index = 1; index < ranges.length; index += 1)
            assert.ok((ranges[index - 1]?.end ?? 0) < (ranges[index]?.start ?? 0));
        },
      ),
    );
  });

  test('over the bound it merges neighbours and never loses a byte', () => {
    const set = new RangeSet(4);
    for (let index = 0; index < 10; index += 1) set.add(index * 100, index * 100 + 10);
    assert.equal(set.size, 4);
    for (let index = 0; index < 10; index += 1)
      assert.ok(set.toArray().some((range) => range.start <= index * 100 && range.end >= index * 100 + 10));
  });

  test('open-ended ranges are clipped at the file size', () => {
    const set = new RangeSet();
    set.add(10, Infinity);
    assert.equal(set.bytesWithin(100), 90);
    assert.throws(() => set.add(5, 1));
  });
});

describe('flow control', () => {
  test('the window bounds frames and bytes and releases on cumulative acks', () => {
    const window = new InflightWindow<string>({ framesMax: 3, bytesMax: 100 });
    window.push('a', 40, 0);
    window.push('b', 40, 0);
    assert.equal(window.hasRoomFor(30), false);
    assert.equal(window.hasRoomFor(20), true);
    window.push('c', 20, 0);
    assert.equal(window.hasRoomFor(1), false);
    assert.deepEqual(
      window.ack(2n).map((entry) => entry.item),
      ['a', 'b'],
    );
    assert.equal(window.bytes, 20);
    assert.deepEqual(window.ack(2n), []);
    assert.throws(() => window.ack(9n), /never sent/);
    assert.deepEqual(
      window.drain().map((entry) => entry.item),
      ['c'],
    );
    assert.equal(window.frames, 0);
  });

  test('received entries let their callers go on but stay until applied; a drop returns them', () => {
    const window = new InflightWindow<string>({ framesMax: 8, bytesMax: 100 });
    for (const item of ['a', 'b', 'c', 'd']) window.push(item, 10, item.charCodeAt(0));
    assert.equal(window.oldestUnreceived()?.item, 'a');
    assert.deepEqual(
      window.receive(3n).map((entry) => entry.item),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(window.receive(3n), [], 'a receipt is counted once');
    assert.equal(window.frames, 4, 'received, not applied: still in the window');
    assert.equal(window.oldestUnreceived()?.item, 'd', 'locktimeout watches what is not received');
    assert.deepEqual(
      window.ack(1n).map((entry) => entry.item),
      ['a'],
    );
    assert.equal(window.bytes, 30);
    assert.deepEqual(
      window.receive(4n).map((entry) => entry.item),
      ['d'],
    );
    assert.equal(window.oldestUnreceived(), undefined);
    // The secondary died having applied only `a`: b, c and d go to the journal.
    assert.deepEqual(
      window.drain().map((entry) => entry.item),
      ['b', 'c', 'd'],
    );
    assert.throws(() => window.receive(9n), /never sent/);
  });

  test('an applied ack implies receipt', () => {
    const window = new InflightWindow<string>({ framesMax: 8, bytesMax: 100 });
    for (const item of ['a', 'b', 'c']) window.push(item, 10, 0);
    window.ack(2n);
    assert.equal(window.receivedSeq, 2n);
    assert.deepEqual(
      window.receive(3n).map((entry) => entry.item),
      ['c'],
    );
  });

  test('an empty window always takes one entry, however large', () => {
    const window = new InflightWindow<number>({ framesMax: 1, bytesMax: 10 });
    assert.equal(window.hasRoomFor(1000), true);
  });

  test('the secondary never acknowledges past an unfinished fsync; async=none waits for apply', () => {
    const received = new AckTracker('received');
    received.received(1n, false);
    received.received(2n, true);
    received.received(3n, false);
    assert.equal(received.ackable(), 1n);
    received.applied(1n);
    received.applied(2n);
    assert.equal(received.ackable(), 3n);
    assert.throws(() => received.received(5n, false), /gap/);
    const applied = new AckTracker('applied');
    applied.received(1n, false);
    assert.equal(applied.ackable(), 0n);
    applied.applied(1n);
    assert.equal(applied.ackable(), 1n);
    assert.throws(() => applied.applied(3n), /order/);
  });
});

describe('change journal', () => {
  test('records ranges per path and follows renames, including directories', () => {
    const journal = new ChangeJournal();
    for (const op of [
      { kind: 'write', path: '/0/d/f', offset: 0, data: Buffer.alloc(10) },
      { kind: 'write', path: '/0/d/f', offset: 100, data: Buffer.alloc(10) },
      { kind: 'rename', path: '/0/d', to: '/0/e' },
      { kind: 'truncate', path: '/0/g', size: 5 },
      { kind: 'chmod', path: '/0/h', mode: 0o600 },
    ] satisfies Op[]) {
      for (const record of recordsForOp(op)) journal.apply(record);
    }
    const plan = journal.plan();
    const moved = plan.paths.find((path) => path.path === '/0/e/f');
    assert.deepEqual(moved?.ranges, [
      { start: 0, end: 10 },
      { start: 100, end: 110 },
    ]);
    assert.equal(
      plan.paths.some((path) => path.path.startsWith('/0/d')),
      false,
    );
    assert.deepEqual(plan.paths.find((path) => path.path === '/0/g')?.ranges, [{ start: 5, end: Infinity }]);
    assert.equal(plan.paths.find((path) => path.path === '/0/h')?.metadata, true);
    assert.equal(plan.paths.find((path) => path.path === '/0/e')?.compare, true);
    assert.deepEqual(plan.namespace, [{ kind: 'rename', path: '/0/d', to: '/0/e' }]);
    assert.ok(plan.directories.includes('/0'));
  });

  test('unlink forgets ranges; a recreated name starts clean', () => {
    const journal = new ChangeJournal();
    journal.apply({ t: 'w', p: '/0/f', s: 0, e: 10 });
    journal.apply({ t: 'n', n: { kind: 'unlink', path: '/0/f' } });
    assert.equal(journal.plan().paths.length, 0);
    journal.apply({ t: 'n', n: { kind: 'create', path: '/0/f' } });
    assert.deepEqual(journal.plan().paths[0]?.ranges, []);
  });

  test('overflow asks for a full sync', () => {
    const journal = new ChangeJournal({ namespaceEntriesMax: 2, pathsMax: 10, rangesPerFileMax: 4 });
    for (let index = 0; index < 3; index += 1)
      journal.apply({ t: 'n', n: { kind: 'mkdir', path: `/0/d${index}` } });
    assert.equal(journal.plan().overflowed, true);
  });

  test('a snapshot rebuilds the same plan; a torn line is skipped', () => {
    const journal = new ChangeJournal();
    journal.apply({ t: 'n', n: { kind: 'create', path: '/0/a' } });
    journal.apply({ t: 'w', p: '/0/a', s: 5, e: 9 });
    journal.apply({ t: 'tr', p: '/0/b', s: 7 });
    const lines = journal.snapshot().map(formatJournalRecord).join('') + '{"t":"w","p":"/0/c"';
    const rebuilt = new ChangeJournal();
    for (const line of lines.split('\n')) {
      const record = parseJournalLine(line);
      if (record !== undefined) rebuilt.apply(record);
    }
    assert.deepEqual(rebuilt.plan().paths, journal.plan().paths);
  });
});

describe('notreplicated filter', () => {
  test('path excludes the entry and its subtree; regexpath and its negation', () => {
    const filter = makePathFilter([
      { kind: 'path', path: 'tmp' },
      { kind: 'regexpath', regex: '\\.log$', negated: false },
    ]);
    assert.equal(filter.isReplicated('/tmp'), false);
    assert.equal(filter.isReplicated('/tmp/x'), false);
    assert.equal(filter.isReplicated('/tmpx'), true);
    assert.equal(filter.isReplicated('/a/b.log'), false);
    assert.equal(filter.isReplicated('/a/b.txt'), true);
    const only = makePathFilter([{ kind: 'regexpath', regex: '^db/', negated: true }]);
    assert.equal(only.isReplicated('/db/x'), true);
    assert.equal(only.isReplicated('/other'), false);
  });
});
