// errd with real processes: a watched process's death is seen within the pid-poll period, far
// faster than the polltimer; classes gate monitoring; atmax bounds the count.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import {
  ErrdMonitor,
  type ErrdReport,
  type ErrdWatchConfig,
  firstDownConfirmMs,
} from '../../../agent/checkers/errd-monitor.ts';

const children: ChildProcess[] = [];

function startSleeper(tag: string): ChildProcess {
  // A distinct duration lets argregex single this process out among the machine's sleeps.
  const child = spawn('sleep', [`1000.${tag}`], { stdio: 'ignore' });
  children.push(child);
  return child;
}

function watch(tag: string, extra: Partial<ErrdWatchConfig> = {}): ErrdWatchConfig {
  return {
    name: 'sleep',
    nameRegex: null,
    argRegex: new RegExp(`^1000\\.${tag}$`),
    atLeast: 1,
    atMax: -1,
    watchClass: 'both',
    action: 'restart',
    startAfter: 0,
    isService: false,
    ...extra,
  };
}

function nextReport(reports: ErrdReport[], count: number, timeoutMs: number): Promise<ErrdReport> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      if (reports.length >= count) {
        clearInterval(poll);
        resolve(reports[count - 1]!);
      } else if (Date.now() > deadline) {
        clearInterval(poll);
        reject(new Error(`no report ${count} within ${timeoutMs} ms`));
      }
    }, 2);
  });
}

after(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe('errd monitor', () => {
  test('sees a watched process die within a few pid polls, not a whole polltimer', async () => {
    const tag = `${process.pid}1`;
    const child = startSleeper(tag);
    const reports: ErrdReport[] = [];
    const monitor = new ErrdMonitor([watch(tag)], {
      pollTimerMs: 30_000,
      pidPollMs: 50,
      onReport: (report) => reports.push(report),
      onError: (error) => assert.fail(error),
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      monitor.setActiveClasses(['pre', 'both']);
      assert.equal((await nextReport(reports, 1, 2000)).up, true);
      const killedMs = Date.now();
      child.kill('SIGKILL');
      const down = await nextReport(reports, 2, 2000);
      const latencyMs = Date.now() - killedMs;
      assert.equal(down.up, false);
      assert.match(down.message, /Process sleep not running/);
      assert.ok(latencyMs < 500, `detected in ${latencyMs} ms`);
    } finally {
      monitor.stop();
    }
  });

  test('a watch whose class is not active reports nothing', async () => {
    const tag = `${process.pid}2`;
    const reports: ErrdReport[] = [];
    const monitor = new ErrdMonitor([watch(tag, { watchClass: 'prim' })], {
      pollTimerMs: 50,
      pidPollMs: 10,
      onReport: (report) => reports.push(report),
      onError: (error) => assert.fail(error),
    });
    monitor.setActiveClasses(['pre', 'both']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(reports, []);
    monitor.setActiveClasses(['prim']);
    const report = await nextReport(reports, 1, 3000);
    assert.equal(report.up, false, 'nothing runs with that tag');
    monitor.stop();
  });

  test('a daemon that a start script launches in the background, still exec-ing at activation, is not reported down', async () => {
    // The table as a scan sees it: at activation the launched process is not yet `sleep 1000.T`
    // (still the shell's fork); 100 ms later it is.
    const activatedMs = Date.now() + 20;
    const table = () =>
      Date.now() < activatedMs + 100
        ? [{ pid: 4242, comm: 'bash', args: ['start_both'] }]
        : [{ pid: 4242, comm: 'sleep', args: ['1000.late'] }];
    const reports: ErrdReport[] = [];
    const monitor = new ErrdMonitor([watch('late')], {
      pollTimerMs: 30_000,
      pidPollMs: 50,
      readTable: table,
      pidExists: () => true,
      onReport: (report) => reports.push(report),
      onError: (error) => assert.fail(error),
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    monitor.setActiveClasses(['both']);
    const first = await nextReport(reports, 1, 3000);
    assert.equal(first.up, true, `first verdict: ${first.message}`);
    assert.equal(reports.length, 1, 'no down verdict before it');
    monitor.stop();

    // One that never appears is reported down, once the confirmation time has passed.
    const missing: ErrdReport[] = [];
    const startedMs = Date.now();
    const never = new ErrdMonitor([watch('never')], {
      pollTimerMs: 30_000,
      pidPollMs: 50,
      readTable: () => [],
      onReport: (report) => missing.push(report),
      onError: (error) => assert.fail(error),
    });
    never.setActiveClasses(['both']);
    const down = await nextReport(missing, 1, 3000);
    assert.equal(down.up, false);
    assert.ok(Date.now() - startedMs >= firstDownConfirmMs - 5, 'after the confirmation time');
    never.stop();
  });

  test('atmax 0 makes any running process an error; custom classes are switched by name', async () => {
    const tag = `${process.pid}3`;
    startSleeper(tag);
    const reports: ErrdReport[] = [];
    const monitor = new ErrdMonitor([watch(tag, { atLeast: 0, atMax: 0, watchClass: 'myclass' })], {
      pollTimerMs: 50,
      pidPollMs: 10,
      onReport: (report) => reports.push(report),
      onError: (error) => assert.fail(error),
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.setActiveClasses(['both']);
    monitor.setCustomClass('myclass', true);
    const report = await nextReport(reports, 1, 3000);
    assert.equal(report.up, false);
    assert.match(report.message, /at most 0 allowed/);
    monitor.stop();
  });
});
