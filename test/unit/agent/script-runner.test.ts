// The script runner with real processes: exact argv and environment, no shell, timeouts that
// kill the whole process group, one userlog per run, missing scripts skipped.
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processExists } from '../../../agent/checkers/process-table.ts';
import { pruneUserlogs, runScript, startScript } from '../../../agent/scripts/runner.ts';

let dir: string;

function script(name: string, body: string): void {
  writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

function request(name: string, extra: Partial<Parameters<typeof runScript>[0]> = {}) {
  return {
    script: name,
    args: ['UP', 'WAIT', 'stop'],
    binDir: dir,
    env: { PATH: '/usr/bin:/bin', SAFEMODULE: 'demo', MYVAR: 'a b; $(touch /tmp/never)' },
    timeoutMs: 0,
    userlogDir: join(dir, 'logs'),
    userlogBytesMax: 1024 * 1024,
    ...extra,
  };
}

describe('script runner', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'hakit-runner-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('passes argv and environment exactly, without a shell', async () => {
    script('record', 'printf "%s\\n" "$@" > "$0.args"; env > "$0.env"; exit 3');
    const result = await runScript(request('record', { args: ['force', 'UP', 'WAIT', 'a b;$(id)'] }));
    assert.equal(result.exitCode, 3);
    assert.equal(readFileSync(join(dir, 'record.args'), 'utf8'), 'force\nUP\nWAIT\na b;$(id)\n');
    const env = readFileSync(join(dir, 'record.env'), 'utf8');
    assert.match(env, /^SAFEMODULE=demo$/m);
    assert.match(env, /^MYVAR=a b; \$\(touch \/tmp\/never\)$/m);
    assert.equal(existsSync('/tmp/never'), false);
  });

  test('a missing script is reported as missing and nothing runs', async () => {
    const result = await runScript(request('absent'));
    assert.equal(result.missing, true);
  });

  test('a timeout kills the script and everything it started in its group', async () => {
    script('hang', 'sleep 300 & echo $! > "$0.child"; sleep 300');
    const startedMs = Date.now();
    const result = await runScript(request('hang', { timeoutMs: 300 }));
    assert.equal(result.timedOut, true);
    assert.ok(Date.now() - startedMs < 5000, 'returned soon after the timeout');
    const child = Number(readFileSync(join(dir, 'hang.child'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The host's init may be slow to reap, so a zombie counts as gone.
    assert.equal(processExists(child), false, 'the background child is gone too');
  });

  test('kill() ends a running script (forcestop)', async () => {
    script('long', 'sleep 300');
    const running = startScript(request('long'));
    setTimeout(() => running.kill(), 100);
    const result = await running.result;
    assert.equal(result.signal, 'SIGKILL');
  });

  test('stdout and stderr go to one userlog file per run', async () => {
    script('talk', 'echo out; echo err >&2');
    const first = await runScript(request('talk'));
    assert.ok(first.userlogFile);
    assert.match(first.userlogFile, /userlog_\d{4}-\d\d-\d\dT\d{6}_talk\.ulog$/);
    const content = readFileSync(first.userlogFile, 'utf8');
    assert.match(content, /out/);
    assert.match(content, /err/);
  });

  test('userlogs are pruned oldest first to their size bound, the newest always kept', () => {
    const logs = join(dir, 'prune');
    rmSync(logs, { recursive: true, force: true });
    mkdirSync(logs, { recursive: true });
    for (let index = 0; index < 5; index += 1) {
      writeFileSync(join(logs, `userlog_2026-01-0${index + 1}T000000_x.ulog`), 'x'.repeat(1000));
    }
    assert.equal(pruneUserlogs(logs, 2500), 3);
    assert.deepEqual(readdirSync(logs).sort(), [
      'userlog_2026-01-04T000000_x.ulog',
      'userlog_2026-01-05T000000_x.ulog',
    ]);
    assert.equal(pruneUserlogs(logs, 10), 1);
    assert.equal(readdirSync(logs).length, 1);
  });

  test('a bad script name is refused before anything runs', () => {
    assert.throws(() => startScript(request('../etc/passwd')), /bad script name/);
  });
});
