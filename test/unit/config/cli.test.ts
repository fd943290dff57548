// `hakit config check|show` as users run it: the built bundle, real files, exit codes and output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildPackage } from '../../../agent/config/module-package.ts';
import { writeSafeFile } from '../../../agent/config/package-io.ts';
import { fixture, fixturesDir, lineOf, rootDir } from './helpers.ts';

const hakit = join(rootDir, 'dist', 'agent', 'hakit.cjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(...args: string[]): Run {
  const result = spawnSync(process.execPath, [hakit, ...args], {
    cwd: fixturesDir,
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hakit config (built CLI)', () => {
  let scratch = '';
  before(async () => {
    const build = spawnSync(process.execPath, [join(rootDir, 'build.mjs'), '--if-stale'], {
      cwd: rootDir,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(build.status, 0, `build: ${build.stderr}`);
    scratch = mkdtempSync(join(tmpdir(), 'hakit-config-cli-'));
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a valid module: exit 0, warnings as file:line:col lines', () => {
    const result = run(
      'config',
      'check',
      'seed-000-mirror-linux.userconfig.xml',
      '--cluster',
      'seed-000.cluster.xml',
    );
    assert.equal(result.code, 0, result.stderr);
    const text = fixture('seed-000-mirror-linux.userconfig.xml');
    const lines = result.stdout.trim().split('\n');
    assert.ok(lines.length > 0);
    for (const line of lines)
      assert.match(line, /^seed-000-mirror-linux\.userconfig\.xml:\d+:\d+: warning: /);
    assert.ok(
      lines.includes(
        `seed-000-mirror-linux.userconfig.xml:${lineOf(text, 'name="PROCESS_NAME"')}:13: warning: PROCESS_NAME is the template placeholder (replace it with the name of the process to monitor)`,
      ),
    );
    assert.match(result.stderr, /0 errors, 4 warnings in 1 module/);
  });

  test('a template with an empty placeholder: exit 1 and the placeholder line', () => {
    const result = run(
      'config',
      'check',
      'compat-postgresql.userconfig.xml',
      '--cluster',
      'compat-postgresql.cluster.xml',
    );
    assert.equal(result.code, 1);
    const line = lineOf(fixture('compat-postgresql.userconfig.xml'), 'addr=""');
    assert.equal(
      result.stdout,
      `compat-postgresql.userconfig.xml:${line}:30: error: <virtual_addr> addr is empty: set the virtual IP address\n`,
    );
  });

  test('--json prints the problems with their locations', () => {
    const result = run('config', 'check', 'seed-004-kvm.userconfig.xml', '--json');
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      errors: number;
      problems: { line: number; code: string; path: string }[];
    };
    assert.equal(report.ok, false);
    assert.equal(report.errors, 1);
    const error = report.problems.find((problem) => problem.code === 'empty-placeholder');
    assert.equal(error?.line, lineOf(fixture('seed-004-kvm.userconfig.xml'), '<heartbeat name=""'));
    assert.equal(error?.path, 'safe/service/heart/heartbeat');
  });

  test('a lan missing from the cluster is an error', () => {
    const result = run(
      'config',
      'check',
      'seed-003-farm-linux.userconfig.xml',
      '--cluster',
      'hakit-full-mirror.cluster.xml',
    );
    assert.equal(result.code, 0, 'default exists in that cluster');
    const wrong = join(scratch, 'cluster.xml');
    writeFileSync(
      wrong,
      '<cluster><lans><lan name="lan1"><node name="a" addr="10.0.0.1"/><node name="b" addr="10.0.0.2"/></lan></lans></cluster>',
    );
    const failed = run('config', 'check', 'seed-003-farm-linux.userconfig.xml', '--cluster', wrong);
    assert.equal(failed.code, 1);
    const line = lineOf(fixture('seed-003-farm-linux.userconfig.xml'), '<lan name="default"');
    assert.match(
      failed.stdout,
      new RegExp(
        `^seed-003-farm-linux\\.userconfig\\.xml:${line}:12: error: farm lan name default is not a lan of cluster\\.xml \\(lans: lan1\\)$`,
        'm',
      ),
    );
  });

  test('module folders and .safe packages; several modules are checked together', async () => {
    const folder = join(scratch, 'pg');
    mkdirSync(join(folder, 'conf'), { recursive: true });
    mkdirSync(join(folder, 'bin'));
    cpSync(join(fixturesDir, 'hakit-full-mirror.userconfig.xml'), join(folder, 'conf', 'userconfig.xml'));
    writeFileSync(join(folder, 'bin', 'appcheck'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(folder, 'bin', 'appfailure'), '#!/bin/sh\n', { mode: 0o755 });
    const folderRun = run('config', 'check', folder, '--cluster', 'hakit-full-mirror.cluster.xml');
    assert.equal(folderRun.code, 0, folderRun.stdout);
    const safe = join(scratch, 'copy.safe');
    await writeSafeFile(
      buildPackage([
        {
          path: 'conf/userconfig.xml',
          kind: 'file',
          data: new TextEncoder().encode(fixture('hakit-full-mirror.userconfig.xml')),
        },
      ]),
      safe,
    );
    const safeRun = run('config', 'check', safe, '--cluster', 'hakit-full-mirror.cluster.xml');
    assert.equal(safeRun.code, 1, 'the handler and checker of bin/ are missing from this package');
    assert.match(
      safeRun.stdout,
      new RegExp(
        `^${safe.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}!/conf/userconfig\\.xml:\\d+:\\d+: error: action handler bin/appfailure is not in the module`,
        'm',
      ),
    );
    const both = run('config', 'check', folder, safe, '--cluster', 'hakit-full-mirror.cluster.xml');
    assert.match(both.stdout, /error: replicated directory \/srv\/app\/data is also replicated by module pg/);
    assert.match(both.stdout, /error: virtual IP 10\.0\.0\.100 is also used by module pg/);
  });

  test('an escaping .safe is refused with a clear error', () => {
    const bad = join(scratch, 'bad.safe');
    writeFileSync(bad, 'PK not really');
    const result = run('config', 'check', bad);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /bad\.safe:1:1: error: cannot load the module: not a zip file/);
  });

  test('show prints the effective XML, or JSON, with ports from --id', () => {
    const xml = run('config', 'show', 'compat-apache_farm.userconfig.xml');
    assert.equal(xml.code, 1, 'the template still has empty placeholders');
    assert.match(xml.stderr, /macro VIRTUAL_IP is empty/);
    const shown = run(
      'config',
      'show',
      'seed-000-mirror-windows.userconfig.xml',
      '--cluster',
      'seed-000.cluster.xml',
      '--id',
      '4',
    );
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /^<!DOCTYPE safe>\n<safe>\n/);
    assert.match(shown.stdout, /<heart port="8891" pulse="700ms" timeout="30000ms" permanent_arp="on">/);
    assert.match(shown.stdout, /<replicated dir="c:\\test1replicated" mode="read_only"\/>/);
    const json = JSON.parse(run('config', 'show', 'hakit-light.userconfig.xml', '--json').stdout) as {
      effective: { mode: string; errd: { polltimerSec: number } };
    };
    assert.deepEqual([json.effective.mode, json.effective.errd.polltimerSec], ['light', 30]);
  });

  test('usage errors exit 2; version and help still work', () => {
    assert.equal(run('config', 'check').code, 2);
    assert.equal(run('config', 'check', 'x.xml', '--bogus').code, 2);
    assert.equal(run('config', 'show', 'a.xml', 'b.xml').code, 2);
    assert.equal(run('config', 'check', 'a.xml', '--id', '0').code, 2);
    assert.match(
      run('config', 'check', 'missing.xml').stdout,
      /^missing\.xml:1:1: error: cannot load the module: no such file or directory$/m,
    );
    assert.match(run('version').stdout, /^hakit \d+\.\d+\.\d+/);
    const help = run('help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /config check PATH/);
  });
});
