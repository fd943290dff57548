// Custom checkers (reference 4.11): long-running executables of the module, started while their
// class is active as `exec <module> <resource> [args...]`; they report by calling
// `hakit set -r <resource> -v up|down -i <name>`. One that dies is restarted with a bounded
// back-off; one that keeps dying is given up on and its resource set down. Each runs in its own
// process group, recorded in `pidFile`: a hakitd that was killed left its checkers running, and
// the next one stops them before starting its own (else two loops would set the same resource,
// and the old one would never end).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActivityClass } from '../core/job.ts';
import { processStartTicks } from './process-table.ts';

export interface CustomCheckerSpec {
  ident: string;
  when: ActivityClass;
  /** Relative to the module's bin/, or absolute. */
  exec: string;
  args: string[];
}

export interface CustomCheckerOptions {
  module: string;
  binDir: string;
  env: Record<string, string>;
  setResource(resource: string, value: 'init' | 'down', detail: string): void;
  log(level: 'E' | 'I', message: string): void;
  /** Where the running checkers' process groups are recorded (`ident pid startTicks` lines). */
  pidFile?: string;
  /** Restarts allowed within `restartWindowMs` before giving up. */
  restartsMax?: number;
  restartWindowMs?: number;
}

interface Running {
  child: ChildProcess;
  restartsAtMs: number[];
  stopping: boolean;
  restartTimer: NodeJS.Timeout | null;
}

const restartDelayMs = 1000;
/** Lines read from a pid file: a module has a few checkers; more means the file is not ours. */
const checkersRecordedMax = 256;

export function customResource(spec: CustomCheckerSpec): string {
  return `custom.${spec.ident}`;
}

export class CustomCheckers {
  private readonly running = new Map<string, Running>();
  private activeClasses = new Set<ActivityClass>();
  private suspended = false;
  private readonly restartsMax: number;
  private readonly restartWindowMs: number;

  constructor(
    private readonly specs: readonly CustomCheckerSpec[],
    private readonly options: CustomCheckerOptions,
  ) {
    this.restartsMax = options.restartsMax ?? 5;
    this.restartWindowMs = options.restartWindowMs ?? 60_000;
    this.reapLeftOvers();
  }

  /** Stops the checkers a previous hakitd recorded and left running (it was killed). */
  private reapLeftOvers(): void {
    const file = this.options.pidFile;
    if (file === undefined || !existsSync(file)) return;
    const lines = readFileSync(file, 'utf8').split('\n').slice(0, checkersRecordedMax);
    for (const line of lines) {
      const [ident, pidText, ticksText] = line.split(' ');
      const pid = Number(pidText);
      if (ident === undefined || !Number.isInteger(pid) || pid <= 1) continue;
      // The same pid and start time: that process, not another that reused the pid.
      if (processStartTicks(pid) !== Number(ticksText)) continue;
      try {
        process.kill(-pid, 'SIGTERM');
        this.options.log(
          'E',
          `Custom checker ${ident} left running by a previous hakitd (pid ${pid}): stopped`,
        );
      } catch (error) {
        this.options.log(
          'E',
          `Custom checker ${ident} left running (pid ${pid}): ${(error as Error).message}`,
        );
      }
    }
    rmSync(file, { force: true });
  }

  private recordRunning(): void {
    const file = this.options.pidFile;
    if (file === undefined) return;
    const lines: string[] = [];
    for (const [ident, entry] of this.running) {
      const pid = entry.child.pid;
      const ticks = pid === undefined ? undefined : processStartTicks(pid);
      if (pid !== undefined && ticks !== undefined) lines.push(`${ident} ${pid} ${ticks}`);
    }
    try {
      if (lines.length === 0) rmSync(file, { force: true });
      else writeFileSync(file, `${lines.join('\n')}\n`);
    } catch (error) {
      // The checkers run on; only a later hakitd's clean-up of them is at stake.
      this.options.log(
        'E',
        `Custom checkers: cannot record their processes in ${file}: ${(error as Error).message}`,
      );
    }
  }

  setActiveClasses(classes: readonly ActivityClass[]): void {
    this.activeClasses = new Set(classes);
    this.refresh();
  }

  setSuspended(suspended: boolean): void {
    this.suspended = suspended;
    this.refresh();
  }

  stop(): void {
    this.suspended = true;
    this.refresh();
  }

  private refresh(): void {
    for (const spec of this.specs) {
      const shouldRun = !this.suspended && this.activeClasses.has(spec.when);
      const current = this.running.get(spec.ident);
      if (shouldRun && !current) this.start(spec, []);
      else if (!shouldRun && current) this.halt(spec, current);
    }
  }

  private executable(spec: CustomCheckerSpec): string {
    return spec.exec.startsWith('/') ? spec.exec : join(this.options.binDir, spec.exec);
  }

  private start(spec: CustomCheckerSpec, restartsAtMs: number[]): void {
    const path = this.executable(spec);
    const resource = customResource(spec);
    this.options.setResource(resource, 'init', 'checker started');
    if (!existsSync(path)) {
      this.options.setResource(resource, 'down', `custom checker ${spec.ident}: ${path} does not exist`);
      this.options.log('E', `Custom checker ${spec.ident}: ${path} does not exist`);
      return;
    }
    const child = spawn(path, [this.options.module, resource, ...spec.args], {
      cwd: this.options.binDir,
      env: this.options.env,
      detached: true,
      stdio: 'ignore',
    });
    const entry: Running = { child, restartsAtMs, stopping: false, restartTimer: null };
    this.running.set(spec.ident, entry);
    child.on('error', (error) =>
      this.options.log('E', `Custom checker ${spec.ident} cannot start: ${error.message}`),
    );
    child.on('exit', (code, signal) => this.exited(spec, entry, code, signal));
    this.recordRunning();
  }

  private exited(spec: CustomCheckerSpec, entry: Running, code: number | null, signal: string | null): void {
    if (entry.stopping || this.running.get(spec.ident) !== entry) return;
    this.recordRunning();
    const nowMs = Date.now();
    const recent = entry.restartsAtMs.filter((atMs) => nowMs - atMs < this.restartWindowMs);
    const how = signal ? `killed by ${signal}` : `exited with ${code}`;
    if (recent.length >= this.restartsMax) {
      this.running.delete(spec.ident);
      this.options.setResource(customResource(spec), 'down', `custom checker ${spec.ident} keeps dying`);
      this.options.log(
        'E',
        `Custom checker ${spec.ident} ${how}; ${recent.length} restarts within ${this.restartWindowMs} ms: given up`,
      );
      return;
    }
    this.options.log('I', `Custom checker ${spec.ident} ${how}; restarting`);
    entry.restartTimer = setTimeout(() => {
      if (this.running.get(spec.ident) !== entry || entry.stopping) return;
      this.running.delete(spec.ident);
      this.start(spec, [...recent, nowMs]);
    }, restartDelayMs);
  }

  private halt(spec: CustomCheckerSpec, entry: Running): void {
    entry.stopping = true;
    if (entry.restartTimer) clearTimeout(entry.restartTimer);
    this.running.delete(spec.ident);
    try {
      if (entry.child.pid !== undefined) process.kill(-entry.child.pid, 'SIGTERM');
    } catch {
      // Already exited.
    }
    this.recordRunning();
    this.options.setResource(customResource(spec), 'init', 'checker stopped');
  }
}
