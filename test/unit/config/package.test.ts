// Module packages: .safe and folder round trips with run bits and links, and the rejections that
// keep a package inside its module and within its size limits (malicious zips built with yazl).
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as yazl from 'yazl';
import {
  buildPackage,
  defaultPackageLimits,
  type ModulePackage,
  PackageError,
  packageUserconfig,
  type RawEntry,
  withUserconfig,
} from '../../../agent/config/module-package.ts';
import {
  loadModuleSource,
  readModuleFolder,
  readSafeBuffer,
  readSafeFile,
  writeModuleFolder,
  writeSafeBuffer,
  writeSafeFile,
} from '../../../agent/config/package-io.ts';
import { fixture } from './helpers.ts';

const userconfig = fixture('seed-000-mirror-linux.userconfig.xml');
const encoder = new TextEncoder();

function sampleEntries(): RawEntry[] {
  return [
    { path: 'conf/userconfig.xml', kind: 'file', data: encoder.encode(userconfig), mode: 0o644 },
    { path: 'bin/start_prim', kind: 'file', data: encoder.encode('#!/bin/sh\necho start\n'), mode: 0o755 },
    {
      path: 'bin/stop_prim',
      kind: 'file',
      data: encoder.encode('#!/bin/sh\n[ "$1" = "force" ] && exit 0\n'),
      mode: 0o750,
    },
    { path: 'bin/start_both', kind: 'symlink', target: 'start_prim' },
    { path: 'conf/empty', kind: 'directory', mode: 0o700 },
  ];
}

function summary(modulePackage: ModulePackage): string[] {
  return modulePackage.entries.map((entry) => {
    if (entry.kind === 'file')
      return `file ${entry.path} ${entry.mode.toString(8)} ${Buffer.from(entry.data).toString('base64')}`;
    if (entry.kind === 'directory') return `dir ${entry.path} ${entry.mode.toString(8)}`;
    return `link ${entry.path} -> ${entry.target}`;
  });
}

interface ZipEntry {
  name: string;
  data?: string;
  mode?: number;
  directory?: boolean;
}

/**
 * A zip with arbitrary entry names: yazl refuses unsafe names, so each is written under a
 * same-length placeholder that is then patched in the bytes (local header and central directory).
 */
function makeZip(entries: readonly ZipEntry[]): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const zip = new yazl.ZipFile();
    const patches: [string, string][] = [];
    entries.forEach((entry, index) => {
      const placeholder = `${index}`.padStart(entry.name.length, 'q');
      assert.equal(placeholder.length, entry.name.length, 'placeholder as long as the name');
      patches.push([placeholder, entry.name]);
      if (entry.directory === true) zip.addEmptyDirectory(placeholder, { mode: entry.mode ?? 0o40755 });
      else
        zip.addBuffer(Buffer.from(entry.data ?? ''), placeholder, {
          mode: entry.mode ?? 0o100644,
          compress: false,
        });
    });
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => {
      let buffer = Buffer.concat(chunks);
      for (const [placeholder, name] of patches) {
        if (placeholder === name) continue;
        const from = Buffer.from(placeholder);
        const to = Buffer.from(name);
        let index = buffer.indexOf(from);
        assert.ok(index >= 0);
        while (index >= 0) {
          to.copy(buffer, index);
          index = buffer.indexOf(from, index + 1);
        }
        buffer = Buffer.from(buffer);
      }
      resolvePromise(buffer);
    });
    zip.end();
  });
}

const config = { name: 'conf/userconfig.xml', data: userconfig };

async function rejects(buffer: Buffer, message: RegExp, limits = defaultPackageLimits): Promise<void> {
  await assert.rejects(readSafeBuffer(buffer, limits), (error: unknown) => {
    assert.ok(error instanceof PackageError, `a PackageError, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

describe('module packages', () => {
  let scratch = '';
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'hakit-config-package-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  test('.safe round trip keeps content, run bits, directories and links; bytes are reproducible', async () => {
    const modulePackage = buildPackage(sampleEntries());
    const buffer = await writeSafeBuffer(modulePackage);
    assert.deepEqual(await writeSafeBuffer(modulePackage), buffer, 'the same package makes the same bytes');
    const read = await readSafeBuffer(buffer);
    assert.deepEqual(summary(read), summary(modulePackage));
    assert.ok(summary(read).includes('link bin/start_both -> start_prim'));
    assert.equal(packageUserconfig(read), userconfig);
    const path = join(scratch, 'mirror.safe');
    await writeSafeFile(read, path);
    assert.deepEqual(summary(await readSafeFile(path)), summary(modulePackage));
  });

  test('folder round trip writes modes and links, and reads them back', async () => {
    const modulePackage = buildPackage(sampleEntries());
    const folder = join(scratch, 'mymodule');
    await writeModuleFolder(modulePackage, folder);
    assert.equal((await lstat(join(folder, 'bin', 'start_prim'))).mode & 0o777, 0o755);
    assert.equal((await lstat(join(folder, 'bin', 'stop_prim'))).mode & 0o777, 0o750);
    assert.equal((await lstat(join(folder, 'conf', 'userconfig.xml'))).mode & 0o777, 0o644);
    assert.equal(await readlink(join(folder, 'bin', 'start_both')), 'start_prim');
    assert.deepEqual(summary(await readModuleFolder(folder)), summary(modulePackage));
    await assert.rejects(writeModuleFolder(modulePackage, folder), /already exists/);
    const source = await loadModuleSource(folder);
    assert.equal(source.kind, 'folder');
    assert.equal(source.moduleName, 'mymodule');
    assert.deepEqual(source.packageFiles, [
      'bin/start_both',
      'bin/start_prim',
      'bin/stop_prim',
      'conf/userconfig.xml',
    ]);
  });

  test('a zip without Unix modes (made on Windows) gets run bits on bin/ only', async () => {
    const buffer = await makeZip([
      { ...config, mode: 0 },
      { name: 'bin/start_prim', data: '#!/bin/sh\n', mode: 0 },
    ]);
    const read = await readSafeBuffer(buffer);
    assert.deepEqual(
      read.entries.map((entry) => [entry.path, entry.kind === 'symlink' ? 0 : entry.mode]),
      [
        ['bin', 0o755],
        ['bin/start_prim', 0o755],
        ['conf', 0o755],
        ['conf/userconfig.xml', 0o644],
      ],
    );
  });

  test('a module zipped inside one folder is unwrapped', async () => {
    const read = await readSafeBuffer(
      await makeZip([
        { name: 'kvm/conf/userconfig.xml', data: userconfig },
        { name: 'kvm/bin/start_prim', data: 'x' },
      ]),
    );
    assert.deepEqual(
      read.entries.map((entry) => entry.path),
      ['bin', 'bin/start_prim', 'conf', 'conf/userconfig.xml'],
    );
  });

  test('withUserconfig replaces the configuration and keeps the rest', () => {
    const modulePackage = buildPackage(sampleEntries());
    const changed = withUserconfig(modulePackage, '<safe/>');
    assert.equal(packageUserconfig(changed), '<safe/>');
    assert.deepEqual(
      summary(changed).filter((line) => !line.includes('userconfig')),
      summary(modulePackage).filter((line) => !line.includes('userconfig')),
    );
  });

  test('paths escaping the module are rejected', async () => {
    await rejects(await makeZip([config, { name: '../evil', data: 'x' }]), /\.\.\/evil: path with '\.\.'/);
    await rejects(await makeZip([config, { name: 'bin/../../evil', data: 'x' }]), /path with '\.\.'/);
    await rejects(await makeZip([config, { name: '/etc/cron.d/x', data: 'x' }]), /absolute path/);
    await rejects(await makeZip([config, { name: 'C:/Windows/x', data: 'x' }]), /absolute path/);
    await rejects(await makeZip([config, { name: '..\\evil', data: 'x' }]), /path with '\.\.'/);
  });

  test('links pointing out of the module are rejected, including through other links', async () => {
    const link = 0o120777;
    await rejects(
      await makeZip([config, { name: 'bin/passwd', data: '/etc/passwd', mode: link }]),
      /bin\/passwd: symbolic link to \/etc\/passwd points outside/,
    );
    await rejects(
      await makeZip([config, { name: 'bin/up', data: '../../x', mode: link }]),
      /points outside the module/,
    );
    await rejects(
      await makeZip([
        config,
        { name: 'here', data: '.', mode: link },
        { name: 'bin/out', data: '../here/../x', mode: link },
      ]),
      /points outside the module/,
    );
    await rejects(
      await makeZip([
        config,
        { name: 'bin/d', data: '../conf', mode: link },
        { name: 'bin/d/evil', data: 'x' },
      ]),
      /bin\/d\/evil: entry lies below the symbolic link bin\/d/,
    );
    await rejects(
      await makeZip([config, { name: 'a', data: 'b', mode: link }, { name: 'b', data: 'a/x', mode: link }]),
      /loop/,
    );
  });

  test('size and count limits', async () => {
    const small = {
      ...defaultPackageLimits,
      entriesMax: 3,
      entryBytesMax: 64 * 1024,
      totalBytesMax: 100 * 1024,
      archiveBytesMax: 200 * 1024,
    };
    const many = [config, ...[1, 2, 3].map((n) => ({ name: `bin/s${n}`, data: 'x' }))];
    await rejects(await makeZip(many), /too many entries: 4 \(at most 3\)/, small);
    // Two zip entries, but four package entries with their implied directories (bin, conf).
    await rejects(
      await makeZip([config, { name: 'bin/s', data: 'x' }]),
      /too many entries: 4 \(at most 3\)/,
      small,
    );
    await rejects(
      await makeZip([config, { name: 'bin/big', data: 'x'.repeat(70 * 1024) }]),
      /bin\/big: entry of 71680 bytes is over the 65536-byte limit/,
      small,
    );
    await rejects(
      await makeZip([
        config,
        { name: 'bin/a', data: 'x'.repeat(60 * 1024) },
        { name: 'bin/b', data: 'y'.repeat(60 * 1024) },
      ]),
      /package content is over the 102400-byte limit/,
      small,
    );
    await rejects(Buffer.alloc(300 * 1024), /archive of 307200 bytes is over/, small);
  });

  test('not a zip, or a zip that is not a module', async () => {
    await rejects(Buffer.from('not a zip at all'), /not a zip file/);
    await rejects(
      await makeZip([{ name: 'bin/start_prim', data: 'x' }]),
      /not a module: conf\/userconfig.xml is missing/,
    );
    await rejects(
      await makeZip([config, { name: 'conf/userconfig.xml/x', data: 'x' }]),
      /both a file and a directory/,
    );
  });

  test('module folders: links out and special files are rejected', async () => {
    const folder = join(scratch, 'linked');
    await mkdir(join(folder, 'conf'), { recursive: true });
    await mkdir(join(folder, 'bin'));
    await writeFile(join(folder, 'conf', 'userconfig.xml'), userconfig);
    await symlink('/etc/passwd', join(folder, 'bin', 'passwd'));
    await assert.rejects(
      readModuleFolder(folder),
      /bin\/passwd: symbolic link to \/etc\/passwd points outside the module/,
    );
    await assert.rejects(readModuleFolder(join(scratch, 'missing')), /ENOENT/);
  });

  test('building a package checks paths even without a zip', () => {
    assert.throws(() => buildPackage([{ path: 'a/../../b', kind: 'file' }]), PackageError);
    assert.throws(
      () =>
        buildPackage([
          { path: 'bin/x', kind: 'file' },
          { path: 'bin//x', kind: 'file' },
        ]),
      /entry appears twice/,
    );
    assert.deepEqual(
      buildPackage([{ path: './bin/./x', kind: 'file' }]).entries.map((entry) => entry.path),
      ['bin', 'bin/x'],
    );
  });
});
