// repctl: drives one node's replication data path for the lab tests and benchmarks, inside a lab
// node (`hakit-lab exec NODE -- node --import tsx test/lab/replication-ctl.ts`). One JSON command
// per stdin line, one JSON answer per stdout line ({id, ok, ...} or {id, ok: false, error}), data
// path events as {event: 'rep', data}. Exits when stdin closes (stopping the data path, bounded).
// Ops:
//   init {config}                 forks the replication child (ReplicationProcess.start)
//   startPrimary {peerHost, fullSync} | startSecondary {listenHost} | stop {force} | close
//   status | verify | fullSync
//   sh {cmd, timeoutMs?}          sh -c in the node; {code, stdout, stderr}
//   pwrite {path, offset, text, fsync?, create?}   one pwrite (and fsync); {ms} or {errno}
//   hold {path} / release         keeps a file open (a busy mount's holder)
//   latency {path, count, size, fsync?}  pwrite(+fsync) loop of `size` bytes at offset 0: {p50Ms, p99Ms, meanMs}
//   throughput {path, mib}        sequential 1 MiB writes then fsync: {mibPerSec, seconds}
import { execFile } from 'node:child_process';
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { DataPathConfig } from '../../agent/replication/data-path.ts';
import { ReplicationProcess } from '../../agent/replication/process.ts';

interface Command {
  id?: unknown;
  op?: unknown;
  [field: string]: unknown;
}

let rep: ReplicationProcess | undefined;
const held: number[] = [];
const outputBytesMax = 256 * 1024;

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function need(): ReplicationProcess {
  if (rep === undefined) throw new Error('no data path: init first');
  return rep;
}

function stringOf(command: Command, field: string): string {
  const value = command[field];
  if (typeof value !== 'string') throw new Error(`${String(command.op)}: ${field} must be a string`);
  return value;
}

function numberOf(command: Command, field: string): number {
  const value = command[field];
  if (typeof value !== 'number') throw new Error(`${String(command.op)}: ${field} must be a number`);
  return value;
}

function sh(cmd: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', cmd],
      { timeout: timeoutMs, maxBuffer: outputBytesMax },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr, killed: error?.killed ?? false });
      },
    );
  });
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

async function handle(command: Command): Promise<Record<string, unknown>> {
  switch (command.op) {
    case 'init': {
      if (rep !== undefined) throw new Error('already initialised');
      const created = new ReplicationProcess(command.config as DataPathConfig, 180_000);
      created.on('event', (data: unknown) => emit({ event: 'rep', data }));
      created.on('exit', (data: unknown) => {
        if (rep === created) rep = undefined;
        emit({ event: 'rep-exit', data });
      });
      rep = created;
      return { status: await created.start() };
    }
    case 'startPrimary':
      return {
        status: await need().startPrimary({
          peerHost: stringOf(command, 'peerHost'),
          fullSync: command.fullSync === true,
        }),
      };
    case 'startSecondary':
      return { status: await need().startSecondary({ listenHost: stringOf(command, 'listenHost') }) };
    case 'stop':
      return { status: await need().stop(command.force === true) };
    case 'close': {
      const current = rep;
      rep = undefined;
      await current?.close();
      return {};
    }
    case 'status':
      return { status: await need().status() };
    case 'verify':
      return { differences: await need().verify() };
    case 'fullSync':
      return { report: await need().fullSync() };
    case 'sh':
      return sh(stringOf(command, 'cmd'), typeof command.timeoutMs === 'number' ? command.timeoutMs : 60_000);
    case 'pwrite': {
      const started = performance.now();
      try {
        const fd = openSync(stringOf(command, 'path'), command.create === true ? 'w' : 'r+');
        try {
          writeSync(fd, Buffer.from(stringOf(command, 'text')), 0, undefined, numberOf(command, 'offset'));
          if (command.fsync === true) fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        return { errno: (error as NodeJS.ErrnoException).code ?? String(error) };
      }
      return { ms: performance.now() - started };
    }
    case 'hold':
      held.push(openSync(stringOf(command, 'path'), 'r'));
      return {};
    case 'release':
      for (const fd of held.splice(0)) closeSync(fd);
      return {};
    case 'latency': {
      const path = stringOf(command, 'path');
      const count = numberOf(command, 'count');
      const block = Buffer.alloc(numberOf(command, 'size'), 0x5a);
      // paceMs: a pause between operations, so that each fsync finds a new mtime to commit (ext4
      // moves times once per jiffy: back to back, most fsyncs of an unreplicated loop commit
      // nothing and the baseline looks faster than any paced application would see).
      const paceMs = typeof command.paceMs === 'number' ? command.paceMs : 0;
      const pause = new Int32Array(new SharedArrayBuffer(4));
      const fd = openSync(path, 'w');
      const samples: number[] = [];
      try {
        for (let index = 0; index < count + 20; index += 1) {
          if (paceMs > 0) Atomics.wait(pause, 0, 0, paceMs);
          block.writeUInt32LE(index, 0);
          const started = performance.now();
          writeSync(fd, block, 0, block.length, 0);
          if (command.fsync !== false) fsyncSync(fd);
          if (index >= 20) samples.push(performance.now() - started); // 20 warm-up operations
        }
      } finally {
        closeSync(fd);
        unlinkSync(path);
      }
      samples.sort((a, b) => a - b);
      return {
        p50Ms: percentile(samples, 0.5),
        p99Ms: percentile(samples, 0.99),
        meanMs: samples.reduce((sum, value) => sum + value, 0) / samples.length,
      };
    }
    case 'throughput': {
      const path = stringOf(command, 'path');
      const mib = numberOf(command, 'mib');
      const block = Buffer.alloc(1024 * 1024);
      for (let index = 0; index < block.length; index += 4096)
        block.writeUInt32LE((index * 2654435761) >>> 0, index);
      const fd = openSync(path, 'w');
      const started = performance.now();
      try {
        for (let index = 0; index < mib; index += 1) {
          block.writeUInt32LE(index, 8);
          writeSync(fd, block, 0, block.length, index * block.length);
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const seconds = (performance.now() - started) / 1000;
      if (command.keep !== true) unlinkSync(path);
      return { mibPerSec: mib / seconds, seconds };
    }
    default:
      throw new Error(`unknown op ${String(command.op)}`);
  }
}

// Commands run one at a time, in order (a test's sequence is its meaning).
let chain: Promise<void> = Promise.resolve();
createInterface({ input: process.stdin })
  .on('line', (line) => {
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch {
      emit({ ok: false, error: `not JSON: ${line.slice(0, 200)}` });
      return;
    }
    chain = chain.then(() =>
      handle(command).then(
        (answer) => emit({ id: command.id, ok: true, ...answer }),
        (error: unknown) => emit({ id: command.id, ok: false, error: (error as Error).message }),
      ),
    );
  })
  .on('close', () => {
    const current = rep;
    const timer = setTimeout(() => process.exit(1), 20_000);
    void chain
      .then(() => current?.stop(true).catch(() => undefined))
      .then(() => current?.close())
      .finally(() => {
        clearTimeout(timer);
        process.exit(0);
      });
  });

emit({ event: 'ready' });
