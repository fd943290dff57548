// The command runner: no shell, bounded time, errors that name the command and its stderr.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { commandLine, NetCommandError, runCommand } from '../../../agent/net/command.ts';

describe('runCommand', () => {
  test('returns stdout and code', async () => {
    const result = await runCommand('printf', ['%s', 'a b']);
    assert.deepEqual([result.code, result.stdout], [0, 'a b']);
  });

  test('never goes through a shell', async () => {
    const result = await runCommand('printf', ['%s', '$(echo injected); `id`']);
    assert.equal(result.stdout, '$(echo injected); `id`');
  });

  test('a failure names the command line, the exit code and stderr', async () => {
    await assert.rejects(runCommand('sh', ['-c', 'echo boom >&2; exit 3']), (error: unknown) => {
      assert.ok(error instanceof NetCommandError);
      assert.equal(error.code, 3);
      assert.equal(error.message, 'sh -c "echo boom >&2; exit 3": exited 3: boom');
      return true;
    });
  });

  test('accepted exit codes are results', async () => {
    const result = await runCommand('sh', ['-c', 'echo dup; exit 1'], { okCodes: [0, 1] });
    assert.deepEqual([result.code, result.stdout], [1, 'dup\n']);
  });

  test('a missing tool says so', async () => {
    await assert.rejects(runCommand('hakit-no-such-tool', []), /hakit-no-such-tool is not installed/);
  });

  test('a command over its time is killed and reported', async () => {
    const startedMs = performance.now();
    await assert.rejects(runCommand('sleep', ['5'], { timeoutMs: 100 }), /sleep 5: timed out after 100 ms/);
    assert.ok(performance.now() - startedMs < 2_000);
  });

  test('an aborted command resolves with what it printed', async () => {
    const abort = new AbortController();
    const seen: string[] = [];
    const running = runCommand('sh', ['-c', 'echo first; sleep 5'], {
      signal: abort.signal,
      onStdout: (chunk) => {
        seen.push(chunk);
        abort.abort();
      },
    });
    const result = await running;
    assert.equal(result.code, -1);
    assert.deepEqual(seen, ['first\n']);
  });

  test('command lines quote what needs quoting', () => {
    assert.equal(
      commandLine('ip', ['addr', 'add', '10.0.0.1/24', 'label', 'eth0:hakit']),
      'ip addr add 10.0.0.1/24 label eth0:hakit',
    );
    assert.equal(commandLine('x', ['a b']), 'x "a b"');
  });
});
