// The deterministic tar.gz writer: ustar headers field by field, order and metadata that do not
// depend on the build machine, byte-identical output, and archives the system's tar reads back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  splitUstarPath,
  TarError,
  tarBlockBytes,
  tarBytes,
  tarHeader,
  tarMtimeSecondsFixed,
  writeTarGz,
} from '../../../agent/package/tar.ts';
import type { TarEntry } from '../../../agent/package/tar.ts';

function field(header: Buffer, offset: number, bytes: number): string {
  return header.subarray(offset, offset + bytes).toString('ascii');
}

function headerChecksumValid(header: Buffer): boolean {
  const copy = Buffer.from(header);
  copy.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of copy) sum += byte;
  return parseInt(field(header, 148, 6), 8) === sum;
}

describe('deterministic tar', () => {
  let dir: string;
  let bigFile: string;
  const bigBytes = Buffer.alloc(3 * 1024 * 1024 + 77, 0);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hakit-tar-'));
    for (let index = 0; index < bigBytes.length; index += 1) bigBytes[index] = (index * 31 + 7) % 251;
    bigFile = join(dir, 'big.bin');
    writeFileSync(bigFile, bigBytes);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  function entries(): TarEntry[] {
    return [
      {
        path: 'pkg/files/bin/big.bin',
        type: 'file',
        executable: true,
        source: { file: bigFile, sizeBytes: bigBytes.length },
      },
      {
        path: 'pkg/install.sh',
        type: 'file',
        executable: true,
        source: { bytes: Buffer.from('#!/bin/sh\necho hi\n') },
      },
      { path: 'pkg', type: 'directory', executable: true },
      { path: 'pkg/files', type: 'directory', executable: true },
      { path: 'pkg/files/bin', type: 'directory', executable: true },
      { path: 'pkg/VERSION', type: 'file', executable: false, source: { bytes: Buffer.from('1.2.3\n') } },
      { path: 'pkg/empty', type: 'file', executable: false, source: { bytes: Buffer.alloc(0) } },
    ];
  }

  test('a file header carries the ustar fields, root owner, fixed mtime and a valid checksum', () => {
    const header = tarHeader({
      path: 'pkg/VERSION',
      type: 'file',
      executable: false,
      source: { bytes: Buffer.from('1.2.3\n') },
    });
    assert.equal(header.length, tarBlockBytes);
    assert.equal(field(header, 0, 12), 'pkg/VERSION\0');
    assert.equal(field(header, 100, 8), '0000644\0');
    assert.equal(field(header, 108, 8), '0000000\0');
    assert.equal(field(header, 116, 8), '0000000\0');
    assert.equal(field(header, 124, 12), '00000000006\0');
    assert.equal(parseInt(field(header, 136, 11), 8), tarMtimeSecondsFixed);
    assert.equal(field(header, 156, 1), '0');
    assert.equal(field(header, 257, 8), 'ustar\u000000');
    assert.equal(field(header, 265, 5), 'root\0');
    assert.ok(headerChecksumValid(header));
    const directory = tarHeader({ path: 'pkg/files', type: 'directory', executable: false });
    assert.equal(field(directory, 0, 11), 'pkg/files/\0');
    assert.equal(field(directory, 100, 8), '0000755\0', 'directories are always 0755');
    assert.equal(field(directory, 156, 1), '5');
    assert.ok(headerChecksumValid(directory));
  });

  test('long paths go to the ustar prefix; paths too long or unsafe are refused', () => {
    const long = `${'a'.repeat(120)}/${'b'.repeat(90)}`;
    assert.deepEqual(splitUstarPath(long), { prefix: 'a'.repeat(120), name: 'b'.repeat(90) });
    const header = tarHeader({
      path: long,
      type: 'file',
      executable: false,
      source: { bytes: Buffer.alloc(1) },
    });
    assert.equal(field(header, 345, 120), 'a'.repeat(120));
    assert.throws(() => splitUstarPath(`${'a'.repeat(160)}/${'b'.repeat(20)}`), TarError);
    assert.throws(() => splitUstarPath(`x/${'b'.repeat(101)}`), TarError);
    assert.throws(() => tarHeader({ path: '../escape', type: 'directory', executable: true }), /relative/);
    assert.throws(() => tarHeader({ path: '/abs', type: 'directory', executable: true }), /relative/);
  });

  test('entry order and input order do not matter: the bytes are the same', async () => {
    const forward = await tarBytes(entries());
    const backward = await tarBytes(entries().reverse());
    assert.ok(forward.equals(backward));
    assert.equal(forward.length % tarBlockBytes, 0);
    assert.ok(
      forward.subarray(-2 * tarBlockBytes).every((byte) => byte === 0),
      'two zero end blocks',
    );
  });

  test('two tar.gz builds are byte-identical and the system tar reads them back exactly', async () => {
    const first = join(dir, 'first.tar.gz');
    const second = join(dir, 'second.tar.gz');
    await writeTarGz(entries(), first);
    await writeTarGz(entries().reverse(), second);
    assert.ok(readFileSync(first).equals(readFileSync(second)));
    assert.ok(gunzipSync(readFileSync(first)).equals(await tarBytes(entries())));
    const listing = spawnSync('tar', ['-tvzf', first], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC' },
    });
    assert.equal(listing.status, 0, listing.stderr);
    const lines = listing.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((line) => line.split(/\s+/).at(-1)),
      [
        'pkg/',
        'pkg/VERSION',
        'pkg/empty',
        'pkg/files/',
        'pkg/files/bin/',
        'pkg/files/bin/big.bin',
        'pkg/install.sh',
      ],
    );
    for (const line of lines) {
      assert.match(line, /^[-d]rw[-x]r-[-x]r-[-x] root\/root\s+\d+ 2020-01-01 00:00 /, line);
    }
    const outDir = join(dir, 'out');
    mkdirSync(outDir);
    const extract = spawnSync('tar', ['-xzf', first, '-C', outDir], { encoding: 'utf8' });
    assert.equal(extract.status, 0, extract.stderr);
    assert.ok(readFileSync(join(outDir, 'pkg/files/bin/big.bin')).equals(bigBytes));
    assert.equal(readFileSync(join(outDir, 'pkg/install.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
    assert.equal(statSync(join(outDir, 'pkg/install.sh')).mode & 0o777, 0o755);
    assert.equal(statSync(join(outDir, 'pkg/VERSION')).mode & 0o777, 0o644);
    assert.equal(statSync(join(outDir, 'pkg/empty')).size, 0);
  });

  test('refuses duplicates, and a file whose size changed since it was listed', async () => {
    await assert.rejects(tarBytes([...entries(), ...entries().slice(0, 1)]), /appears twice/);
    const wrongSize: TarEntry = {
      path: 'pkg/big.bin',
      type: 'file',
      executable: false,
      source: { file: bigFile, sizeBytes: bigBytes.length - 1 },
    };
    await assert.rejects(tarBytes([wrongSize]), /grew while being archived/);
    const shorter: TarEntry = { ...wrongSize, source: { file: bigFile, sizeBytes: bigBytes.length + 1 } };
    await assert.rejects(tarBytes([shorter]), /expected/);
    const target = join(dir, 'never.tar.gz');
    await assert.rejects(writeTarGz([wrongSize], target), TarError);
    assert.throws(() => statSync(target), /ENOENT/, 'no archive is left behind');
    assert.throws(() => statSync(`${target}.part`), /ENOENT/, 'no partial archive is left behind');
  });
});
