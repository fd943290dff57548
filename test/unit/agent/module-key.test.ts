// Module encryption keys on a real hakitd with the real hakit CLI (reference 7.5 `module genkey|
// delkey -m AM`): genkey writes conf/modulekey.dat (mode 600) in the editable module, `config`
// applies it (mode 600 kept) and usersetting.encryption says on; a running module refuses a new
// key by name; delkey + config turn encryption off; a bad key is refused before anything changes;
// the API upload (the console's path) and `module package` keep the key at mode 600; support
// snapshots leave it out.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ZipFile } from 'yazl';
import { AgentSandbox } from './daemon-harness.ts';

const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="light">
  <user logging="userlog" nicestoptimeout="5" forcestoptimeout="5"/>
</service>
</safe>
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** A .safe as a console or a foreign zip tool may make it: every file mode 644, the key too. */
function looseZip(files: Record<string, string>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new ZipFile();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    for (const [path, text] of Object.entries(files))
      zip.addBuffer(Buffer.from(text), path, { mode: path.startsWith('bin/') ? 0o100755 : 0o100644 });
    zip.end();
  });
}

const modeOf = (file: string) => statSync(file).mode & 0o777;

describe('module genkey / delkey on a real hakitd', { timeout: 120_000 }, () => {
  const sandbox = new AgentSandbox('modkey');
  const editableKey = (module: string) =>
    join(sandbox.root, 'opt', 'modules', module, 'conf', 'modulekey.dat');
  const appliedKey = (module: string) =>
    join(sandbox.root, 'opt', 'private', 'modules', module, 'conf', 'modulekey.dat');
  const encryption = (module: string) => {
    const result = sandbox.cli(['get', '-m', module, '-r', 'usersetting.encryption']);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  const confinfoKeys = (module: string) => {
    const text = sandbox.cli(['confinfo', '-m', module]).stdout;
    return {
      applied: /encryption key applied: (.*)/.exec(text)?.[1],
      edited: /encryption key edited: +(.*)/.exec(text)?.[1],
    };
  };
  let httpPort = 0;

  before(async () => {
    httpPort = await freePort();
    sandbox.env.HAKIT_HTTP_PORT = String(httpPort);
    sandbox.env.HAKIT_HTTPS_PORT = String(await freePort());
    sandbox.env.HAKIT_HTTP_API = '1';
    sandbox.env.HAKIT_BIND = '127.0.0.1';
    await sandbox.startDaemon();
    const dir = sandbox.writeModule('demo', userconfig, { start_both: 'exit 0', stop_both: 'exit 0' });
    for (const args of [
      ['module', 'install', dir],
      ['config', '-m', 'demo'],
    ]) {
      const result = sandbox.cli(args);
      assert.equal(result.code, 0, result.stderr);
    }
  });

  after(async () => {
    sandbox.cli(['stop', '-m', 'demo']);
    sandbox.cli(['waitstop', '-m', 'demo', '-t', '20']);
    await sandbox.cleanup();
  });

  test('genkey writes a 32-byte key, mode 600, in the editable module; config applies it; encryption on', () => {
    assert.equal(encryption('demo'), 'off');
    const made = sandbox.cli(['module', 'genkey', '-m', 'demo']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /encryption key generated in .*opt\/modules\/demo\/conf\/modulekey\.dat/);
    assert.match(made.stdout, /takes effect at the next hakit config -m demo/);
    assert.match(made.stdout, /hakit -H "\*" -E demo/);
    const key = readFileSync(editableKey('demo'), 'utf8');
    assert.match(key, /^[0-9a-f]{64}\n$/);
    assert.equal(modeOf(editableKey('demo')), 0o600);
    // Not applied yet.
    assert.equal(existsSync(appliedKey('demo')), false);
    assert.equal(encryption('demo'), 'off');
    assert.equal(confinfoKeys('demo').applied, 'none');
    const configured = sandbox.cli(['config', '-m', 'demo']);
    assert.equal(configured.code, 0, configured.stderr);
    assert.equal(readFileSync(appliedKey('demo'), 'utf8'), key);
    assert.equal(modeOf(appliedKey('demo')), 0o600);
    assert.equal(encryption('demo'), 'on');
    const keys = confinfoKeys('demo');
    assert.match(keys.applied ?? '', /^signature [0-9a-f]{16}$/);
    assert.equal(keys.edited, keys.applied);
    assert.ok(!sandbox.cli(['confinfo', '-m', 'demo']).stdout.includes(key.trim()), 'confinfo hides the key');
  });

  test('genkey again replaces the key; a running module refuses it by name and keeps the old one', () => {
    const old = readFileSync(appliedKey('demo'), 'utf8');
    const made = sandbox.cli(['module', 'genkey', '-m', 'demo']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /encryption key replaced/);
    assert.notEqual(readFileSync(editableKey('demo'), 'utf8'), old);
    assert.notEqual(confinfoKeys('demo').edited, confinfoKeys('demo').applied);
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '20']).code, 0);
    const refused = sandbox.cli(['config', '-m', 'demo']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /module encryption key \(conf\/modulekey\.dat\)/);
    assert.equal(readFileSync(appliedKey('demo'), 'utf8'), old);
    assert.equal(sandbox.cli(['stop', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstop', '-m', 'demo', '-t', '20']).code, 0);
    assert.equal(sandbox.cli(['config', '-m', 'demo']).code, 0);
    assert.equal(readFileSync(appliedKey('demo'), 'utf8'), readFileSync(editableKey('demo'), 'utf8'));
    assert.equal(encryption('demo'), 'on');
  });

  test('a hand-copied key readable by others is applied at mode 600; a bad key is refused first', () => {
    chmodSync(editableKey('demo'), 0o644);
    assert.equal(sandbox.cli(['config', '-m', 'demo']).code, 0);
    assert.equal(modeOf(appliedKey('demo')), 0o600);
    const good = readFileSync(appliedKey('demo'), 'utf8');
    writeFileSync(editableKey('demo'), 'not a key\n');
    const checked = sandbox.cli(['confcheck', '-m', 'demo']);
    assert.equal(checked.code, 1);
    assert.match(
      checked.stderr,
      /conf\/modulekey\.dat: error: module encryption key: expected 64 hex digits, found 9 characters \(make one with: hakit module genkey -m demo\)/,
    );
    const refused = sandbox.cli(['config', '-m', 'demo']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /module encryption key: expected 64 hex digits/);
    assert.equal(readFileSync(appliedKey('demo'), 'utf8'), good, 'the applied key is unchanged');
    assert.equal(sandbox.cli(['module', 'genkey', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['config', '-m', 'demo']).code, 0);
  });

  test('module package writes the key into a .safe readable by root only; snapshots leave it out', () => {
    const safe = join(sandbox.root, 'demo.safe');
    const packaged = sandbox.cli(['module', 'package', '-m', 'demo', safe]);
    assert.equal(packaged.code, 0, packaged.stderr);
    assert.equal(modeOf(safe), 0o600);
    const listing = execFileSync('unzip', ['-Z', safe], { encoding: 'utf8' });
    assert.match(listing, /^-rw------- .* conf\/modulekey\.dat$/m);
    const snapshot = join(sandbox.root, 'snap.zip');
    const made = sandbox.cli(['snapshot', '-m', 'demo', snapshot]);
    assert.equal(made.code, 0, made.stderr);
    const entries = execFileSync('unzip', ['-Z1', snapshot], { encoding: 'utf8' });
    assert.match(entries, /config_[\d_]+\/module\/conf\/userconfig\.xml$/m);
    assert.doesNotMatch(entries, /modulekey/);
    assert.ok(
      !execFileSync('unzip', ['-p', snapshot], { encoding: 'buffer', maxBuffer: 64 << 20 }).includes(
        readFileSync(appliedKey('demo')).subarray(0, 64),
      ),
      'the key bytes are nowhere in the snapshot',
    );
  });

  test('delkey removes the key; config turns encryption off; delkey again says there is none', () => {
    const deleted = sandbox.cli(['module', 'delkey', '-m', 'demo']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /encryption key .* deleted/);
    assert.match(deleted.stdout, /Encryption goes off at the next hakit config -m demo/);
    assert.equal(existsSync(editableKey('demo')), false);
    assert.equal(encryption('demo'), 'on', 'still on until config');
    assert.equal(sandbox.cli(['config', '-m', 'demo']).code, 0);
    assert.equal(existsSync(appliedKey('demo')), false);
    assert.equal(encryption('demo'), 'off');
    assert.equal(confinfoKeys('demo').applied, 'none');
    const again = sandbox.cli(['module', 'delkey', '-m', 'demo']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /no encryption key .*nothing to delete/);
  });

  test('the API upload (the console path) installs and applies a key shipped at 644 as mode 600', async () => {
    const token = sandbox.cli(['apikey', 'create', 'Admin', 'modkey-test']).stdout.trim();
    const key = `${'ab'.repeat(32)}\n`;
    const body = await looseZip({
      'conf/userconfig.xml': userconfig,
      'conf/modulekey.dat': key,
      'bin/start_both': '#!/bin/sh\nexit 0\n',
    });
    const answer = await fetch(`http://127.0.0.1:${httpPort}/api/v1/modules/pushed/package`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
      body,
    });
    assert.equal(answer.status, 200, await answer.text());
    assert.equal(readFileSync(editableKey('pushed'), 'utf8'), key);
    assert.equal(modeOf(editableKey('pushed')), 0o600);
    assert.equal(modeOf(appliedKey('pushed')), 0o600);
    assert.equal(encryption('pushed'), 'on');
    const bad = await looseZip({ 'conf/userconfig.xml': userconfig, 'conf/modulekey.dat': 'short\n' });
    const refused = await fetch(`http://127.0.0.1:${httpPort}/api/v1/modules/pushed/package`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/zip' },
      body: bad,
    });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /module encryption key: expected 64 hex digits/);
    assert.equal(readFileSync(appliedKey('pushed'), 'utf8'), key, 'nothing replaced');
  });

  test('errors: unknown module, no -m, extra arguments, bad name', () => {
    const unknown = sandbox.cli(['module', 'genkey', '-m', 'nosuch']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /module nosuch is not installed/);
    assert.equal(existsSync(editableKey('nosuch')), false);
    const unknownDel = sandbox.cli(['module', 'delkey', '-m', 'nosuch']);
    assert.equal(unknownDel.code, 1);
    assert.match(unknownDel.stderr, /module nosuch is not installed/);
    const noModule = sandbox.cli(['module', 'genkey']);
    assert.equal(noModule.code, 2);
    assert.match(noModule.stderr, /give the module with -m AM/);
    const extra = sandbox.cli(['module', 'genkey', '-m', 'demo', 'now']);
    assert.equal(extra.code, 2);
    assert.match(extra.stderr, /unexpected now \(module genkey -m AM\)/);
    assert.equal(existsSync(editableKey('demo')), false, 'nothing written on a usage error');
    const badName = sandbox.cli(['module', 'genkey', '-m', '../demo']);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /bad module name/);
    // Run on several nodes at once, genkey would give each node its own key.
    const everywhere = sandbox.cli([
      '-H',
      'https://127.0.0.1:1,https://127.0.0.2:1',
      'module',
      'genkey',
      '-m',
      'demo',
    ]);
    assert.equal(everywhere.code, 2);
    assert.match(everywhere.stderr, /module genkey on 2 nodes would give each its own key.*-E AM/);
    const usage = sandbox.cli(['module', 'frobnicate']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /genkey\|delkey/);
  });
});
