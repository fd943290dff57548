// The daemon's handle on one module's replication child process: fork, typed requests with a
// bounded wait, events. The data path runs apart so a saturated or crashed data path never delays
// a heartbeat and never takes other modules down.
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type {
  DataPathConfig,
  DataPathEvent,
  DataPathStatus,
  PeerControl,
  PrimaryStart,
  ResyncEstimate,
  SecondaryStart,
} from './data-path.ts';
import type { Difference } from './compare.ts';
import type { SyncReport } from './resync.ts';

export const requestTimeoutMsDefault = 120_000;
const pendingRequestsMax = 64;

/**
 * The child's entry: the bundled one beside hakitd (dist/), or in the agent package's
 * node_modules/@hakit/replication (agent/package/native-addons.ts), else the TypeScript source
 * through tsx.
 */
export function childEntry(): { file: string; execArgv: string[] } {
  const here = import.meta.dirname ?? __dirname;
  for (const bundled of [
    join(here, 'replication-child.cjs'),
    join(here, 'node_modules', '@hakit', 'replication', 'replication-child.cjs'),
  ]) {
    if (existsSync(bundled)) return { file: bundled, execArgv: [] };
  }
  return { file: join(here, 'child.ts'), execArgv: ['--import', 'tsx'] };
}

/** Events: 'event' (DataPathEvent), 'exit' ({code, signal}). */
export class ReplicationProcess extends EventEmitter {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }
  >();

  constructor(
    private readonly config: DataPathConfig,
    private readonly requestTimeoutMs = requestTimeoutMsDefault,
  ) {
    super();
  }

  async start(): Promise<DataPathStatus> {
    if (this.child !== undefined) throw new Error('replication process already started');
    const entry = childEntry();
    const child = fork(entry.file, [], {
      execArgv: entry.execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.child = child;
    child.on(
      'message',
      (message: { id?: number; ok?: boolean; result?: unknown; error?: string; event?: DataPathEvent }) => {
        if (message.event !== undefined) {
          this.emit('event', message.event);
          return;
        }
        const request = message.id === undefined ? undefined : this.pending.get(message.id);
        if (request === undefined || message.id === undefined) return;
        this.pending.delete(message.id);
        clearTimeout(request.timer);
        if (message.ok === true) request.resolve(message.result);
        else
          request.reject(
            new Error(`replication ${this.config.moduleName}: ${message.error ?? 'unknown error'}`),
          );
      },
    );
    child.on('exit', (code, signal) => {
      this.child = undefined;
      for (const [, request] of this.pending) {
        clearTimeout(request.timer);
        request.reject(
          new Error(`replication process of ${this.config.moduleName} exited (${code ?? signal})`),
        );
      }
      this.pending.clear();
      this.emit('exit', { code, signal });
    });
    return (await this.call('init', this.config)) as DataPathStatus;
  }

  private call(method: string, args: unknown): Promise<unknown> {
    const child = this.child;
    if (child === undefined || !child.connected)
      return Promise.reject(new Error('replication process not running'));
    if (this.pending.size >= pendingRequestsMax)
      return Promise.reject(new Error(`over ${pendingRequestsMax} pending requests`));
    const id = this.nextId;
    this.nextId += 1;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new Error(`replication ${this.config.moduleName}: ${method} took over ${this.requestTimeoutMs} ms`),
        );
      }, this.requestTimeoutMs);
      this.pending.set(id, { resolve: resolvePromise, reject, timer });
      child.send({ id, method, args });
    });
  }

  async startPrimary(start: PrimaryStart): Promise<DataPathStatus> {
    return (await this.call('startPrimary', start)) as DataPathStatus;
  }

  async startSecondary(start: SecondaryStart): Promise<DataPathStatus> {
    return (await this.call('startSecondary', start)) as DataPathStatus;
  }

  async setPeer(control: PeerControl): Promise<DataPathStatus> {
    return (await this.call('setPeer', control)) as DataPathStatus;
  }

  async stop(force = false): Promise<DataPathStatus> {
    return (await this.call('stop', { force })) as DataPathStatus;
  }

  async status(): Promise<DataPathStatus> {
    return (await this.call('status', {})) as DataPathStatus;
  }

  async verify(): Promise<Difference[]> {
    return (await this.call('verify', {})) as Difference[];
  }

  async estimate(): Promise<ResyncEstimate> {
    return (await this.call('estimate', {})) as ResyncEstimate;
  }

  async fullSync(): Promise<SyncReport> {
    return (await this.call('fullSync', {})) as SyncReport;
  }

  /** Ends the child (after stop); SIGKILL if it does not exit in time. */
  async close(timeoutMs = 10_000): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    // A child that died (say, SIGKILLed) may have its channel closed before its 'exit' is seen.
    const exited = new Promise<void>((resolvePromise) => {
      if (child.exitCode !== null || child.signalCode !== null) resolvePromise();
      else child.once('exit', () => resolvePromise());
    });
    if (child.connected) child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
