// SHA256SUMS generation: the exact `sha256sum` format, sorted, strict about paths, and accepted
// by the real `sha256sum --check --strict` (which is what install.sh runs).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ChecksumFormatError,
  parseSha256Sums,
  sha256HexOfBytes,
  sha256HexOfFile,
  sha256SumLine,
  sha256SumsText,
} from '../../../agent/package/checksums.ts';

const abcSha256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('package checksums', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hakit-checksums-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('hashes bytes and files to the standard SHA-256 digests', async () => {
    assert.equal(sha256HexOfBytes(Buffer.from('abc')), abcSha256);
    writeFileSync(join(dir, 'abc'), 'abc');
    writeFileSync(join(dir, 'empty'), '');
    assert.equal(await sha256HexOfFile(join(dir, 'abc')), abcSha256);
    assert.equal(await sha256HexOfFile(join(dir, 'empty')), emptySha256);
    await assert.rejects(sha256HexOfFile(join(dir, 'missing')), /cannot read .*missing/);
  });

  test('writes one line per file, two spaces, sorted in byte order (upper case first)', () => {
    const text = sha256SumsText([
      { path: 'install.sh', sha256Hex: abcSha256 },
      { path: 'files/bin/node', sha256Hex: emptySha256 },
      { path: 'VERSION', sha256Hex: abcSha256 },
      { path: 'files/hakit', sha256Hex: emptySha256 },
    ]);
    assert.equal(
      text,
      `${abcSha256}  VERSION\n${emptySha256}  files/bin/node\n${emptySha256}  files/hakit\n` +
        `${abcSha256}  install.sh\n`,
    );
    assert.equal(sha256SumsText([]), '');
  });

  test('refuses duplicates, bad digests and paths sha256sum or install.sh would misread', () => {
    assert.throws(
      () =>
        sha256SumsText([
          { path: 'a', sha256Hex: abcSha256 },
          { path: 'a', sha256Hex: emptySha256 },
        ]),
      /listed twice/,
    );
    assert.throws(
      () => sha256SumLine({ path: 'a', sha256Hex: abcSha256.toUpperCase() }),
      ChecksumFormatError,
    );
    assert.throws(() => sha256SumLine({ path: 'a', sha256Hex: abcSha256.slice(1) }), ChecksumFormatError);
    for (const path of ['/etc/passwd', '../x', 'a/../b', 'a//b', './a', 'a b', 'a\\b', 'a\nb', '', 'é']) {
      assert.throws(() => sha256SumLine({ path, sha256Hex: abcSha256 }), ChecksumFormatError, path);
    }
  });

  test('parses what it writes, and rejects malformed files', () => {
    const checksums = [
      { path: 'VERSION', sha256Hex: abcSha256 },
      { path: 'files/bin/node', sha256Hex: emptySha256 },
    ];
    assert.deepEqual(parseSha256Sums(sha256SumsText(checksums)), checksums);
    assert.deepEqual(parseSha256Sums(''), []);
    assert.throws(() => parseSha256Sums(`${abcSha256}  VERSION`), /newline/);
    assert.throws(() => parseSha256Sums(`${abcSha256} VERSION\n`), /line 1 is malformed/);
    assert.throws(() => parseSha256Sums(`${abcSha256}  ../VERSION\n`), ChecksumFormatError);
  });

  test('sha256sum --check --strict accepts the file, and catches a changed byte', async () => {
    mkdirSync(join(dir, 'pkg', 'files', 'bin'), { recursive: true });
    const files = { VERSION: '1.2.3\n', 'files/bin/node': 'binary\0data', 'install.sh': '#!/bin/sh\n' };
    const checksums = [];
    for (const [path, content] of Object.entries(files)) {
      writeFileSync(join(dir, 'pkg', path), content);
      checksums.push({ path, sha256Hex: await sha256HexOfFile(join(dir, 'pkg', path)) });
    }
    writeFileSync(join(dir, 'pkg', 'SHA256SUMS'), sha256SumsText(checksums));
    const check = () =>
      spawnSync('sha256sum', ['--check', '--strict', 'SHA256SUMS'], {
        cwd: join(dir, 'pkg'),
        encoding: 'utf8',
      });
    const good = check();
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /files\/bin\/node: OK/);
    writeFileSync(join(dir, 'pkg', 'files/bin/node'), 'binary\0dat4');
    const bad = check();
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /files\/bin\/node: FAILED/);
  });
});
