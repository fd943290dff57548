// errd with real processes: a watched process's death is seen within the pid-poll period, far
// faster than the polltimer; classes gate monitoring; atmax bounds the count.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { ErrdMonitor, type ErrdReport, type ErrdWatchConfig } from '../../../agent/checkers/errd-monitor.ts';

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
    const report = await nextReport(reports, 1, 1000);
    assert.equal(report.up, false, 'nothing runs with that tag');
    monitor.stop();
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
    const report = await nextReport(reports, 1, 1000);
    assert.equal(report.up, false);
    assert.match(report.message, /at most 0 allowed/);
    monitor.stop();
  });
});
