// Carries out the mirror automaton's `replication` actions with the module's replication child
// process (agent/replication/process.ts) and feeds back what the data path learns: the secondary
// lost, the reintegration done or failed, the local data no longer up to date. The automaton
// says what the data path must be (none, primary serving one secondary attachment, secondary of
// one primary); this converges the child to it, one step at a time, and always to the newest
// command (commands in between are skipped: the queue is one slot deep).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RfsSettings } from '../config/model.ts';
import type { LogLevel } from '../core/job.ts';
import type { AttachmentRef, ReplicationCommand } from '../core/mirror-types.ts';
import type { Resource, ResourceTable } from '../core/resources.ts';
import type { HeartbeatLanEndpoint } from '../heartbeat/endpoints.ts';
import { replicationPortOf } from '../config/ports.ts';
import type {
  DataPathConfig,
  DataPathEvent,
  DataPathStatus,
  ResyncEstimate,
} from '../replication/data-path.ts';
import type { Difference } from '../replication/compare.ts';
import { stateDirOf } from '../replication/data-path.ts';
import { rulesFromConfig } from '../replication/filter.ts';
import { ReplicationProcess } from '../replication/process.ts';

/** What the supervisor needs to run a module's replication (derived from `<rfs>`). */
export interface ReplicationRuntime {
  readonly dataPath: DataPathConfig;
  /** The peer's address on the replication lan (`<flow>`, else the first heartbeat lan). */
  readonly peerHost: string;
  /** This node's address on that lan: the secondary listens there. */
  readonly listenHost: string;
  /** `<tocheck path>` per dir (absolute): must exist before replication starts. */
  readonly toCheck: readonly string[];
}

export function replicationRuntimeOf(
  rfs: RfsSettings,
  module: string,
  nodeName: string,
  moduleId: number,
  lans: readonly HeartbeatLanEndpoint[],
  safeVar: string,
  clusterKeyFile: string,
  /** The applied module's encryption key (`conf/modulekey.dat`), when there is one: TLS on. */
  moduleKeyFile?: string,
): ReplicationRuntime {
  const lan = lans.find((candidate) => candidate.lan === rfs.flowLan) ?? lans[0];
  if (lan === undefined) throw new Error(`mirror module ${module}: no lan to replicate on`);
  return {
    dataPath: {
      moduleName: module,
      nodeName,
      stateDir: stateDirOf(safeVar, module),
      clusterKeyFile,
      ...(moduleKeyFile === undefined ? {} : { moduleKeyFile }),
      dirs: rfs.replicated.map((replicated) => ({
        dir: replicated.dir,
        exclusions: rulesFromConfig(replicated.notReplicated),
      })),
      port: replicationPortOf(moduleId),
      asyncMode: rfs.async,
      acl: rfs.acl === 'on',
      locktimeoutMs: rfs.locktimeoutSec * 1000,
      sendtimeoutMs: rfs.sendtimeoutSec * 1000,
      reiallowedbwBytesPerSec: (rfs.reiallowedbwKBps ?? 0) * 1024,
      nbrei: rfs.nbrei,
    },
    peerHost: lan.peerAddress,
    listenHost: lan.localAddress,
    toCheck: rfs.replicated.flatMap((replicated) =>
      replicated.toCheck.map((check) => join(replicated.dir, check.path)),
    ),
  };
}

export type ReplicationFeedback =
  | { readonly type: 'rfsUptodate'; readonly value: 'up' | 'down' }
  | { readonly type: 'reintegration'; readonly outcome: 'done' | 'failed' }
  | { readonly type: 'secondaryLost' };

export interface MirrorReplicationHooks {
  /** An event for the automaton (the supervisor queues it). */
  feed(event: ReplicationFeedback): void;
  /** A resource the rules see (logged when it changes). */
  setResource(name: string, value: string): void;
  log(level: LogLevel, message: string): void;
}

/** The data path's process, as the adapter uses it (ReplicationProcess; a test may pass another). */
export interface DataPathHandle {
  start(): Promise<DataPathStatus>;
  startPrimary(start: { peerHost: string; fullSync: boolean; peerWanted: boolean }): Promise<DataPathStatus>;
  setPeer(control: { wanted: boolean; fullSync: boolean }): Promise<DataPathStatus>;
  startSecondary(start: { listenHost: string; fullSync: boolean }): Promise<DataPathStatus>;
  stop(force: boolean): Promise<DataPathStatus>;
  status(): Promise<DataPathStatus>;
  verify(): Promise<Difference[]>;
  estimate(): Promise<ResyncEstimate>;
  close(timeoutMs?: number): Promise<void>;
  on(event: 'event', listener: (event: DataPathEvent) => void): unknown;
  on(event: 'exit', listener: (exit: { code: number | null; signal: string | null }) => void): unknown;
}

type Actual =
  | { readonly role: 'none' }
  | {
      readonly role: 'primary';
      /** The attachment served (null: none). */
      readonly served: AttachmentRef | null;
      readonly fullsync: boolean;
    }
  | { readonly role: 'secondary'; readonly primary: number; readonly attach: number };

export type ReadyOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const statusIntervalMs = 1000;
const bandwidthWindowMs = 3000;
const secondaryStartAttemptsMax = 3;
const secondaryRetryDelayMs = 1000;
/** Child crashes tolerated within `restartWindowMs` before the adapter gives up (degraded). */
const restartsMax = 3;
const restartWindowMs = 60_000;
const keepAsideTimeoutMs = 30 * 60_000;

function sameAttachment(a: AttachmentRef | null, b: AttachmentRef | null): boolean {
  return a === b || (a !== null && b !== null && a.incarnation === b.incarnation && a.attach === b.attach);
}

function describeCommand(command: ReplicationCommand): string {
  switch (command.role) {
    case 'none':
      return 'none';
    case 'primary':
      return `primary${command.secondary === null ? ' alone' : ` serving ${command.secondary.incarnation}/${command.secondary.attach}`}${command.fullsync ? ' (full sync)' : ''}`;
    case 'secondary':
      return `secondary of ${command.primary} (attach ${command.attach}${command.fullsync ? ', full sync' : ''})`;
  }
}

export class MirrorReplication {
  private desired: ReplicationCommand = { role: 'none' };
  private actual: Actual = { role: 'none' };
  private handle: DataPathHandle | undefined;
  private converging: Promise<void> | undefined;
  private rerun = false;
  private lastFailure: { command: ReplicationCommand; reason: string } | undefined;
  /** Attachment whose stream broke: not reconnected (the automaton drops it, it re-attaches). */
  private lostAttachment: AttachmentRef | null = null;
  /** As secondary: the current attachment finished its reintegration. */
  private secondaryUptodate = false;
  private keepAsideReason: string | undefined;
  private restarts: number[] = [];
  private statusTimer: NodeJS.Timeout | undefined;
  private samples: { atMs: number; counters: Record<string, number | string> }[] = [];
  private quiet: Record<string, string> = {};
  private closed = false;

  constructor(
    private readonly runtime: ReplicationRuntime,
    private readonly hooks: MirrorReplicationHooks,
    private readonly makeHandle: (config: DataPathConfig) => DataPathHandle = (config) =>
      new ReplicationProcess(config),
  ) {
    hooks.setResource('rfs.degraded', 'down');
  }

  /** The automaton's newest command; carried out in the background (see `ready`). */
  command(command: ReplicationCommand): void {
    if (this.closed) return;
    this.hooks.log('I', `Replication: ${describeCommand(command)}`);
    this.desired = command;
    this.kick();
  }

  /** The automaton decided to keep this node's data aside before a reintegration overwrites it. */
  keepAside(reason: string): void {
    this.keepAsideReason = reason;
  }

  /**
   * Resolves once the data path matches the newest command (scripts wait for it: start_prim
   * runs on the FUSE mount, never on the bare directory); not ok when it could not.
   */
  async ready(): Promise<ReadyOutcome> {
    while (this.converging !== undefined) await this.converging;
    const failure = this.lastFailure;
    if (failure !== undefined && failure.command === this.desired)
      return { ok: false, reason: failure.reason };
    return { ok: true };
  }

  /** Resources shown by `hakit state -v` but not logged at each change (bandwidths, progress). */
  resources(nowMs: number): ResourceTable {
    const table: Record<string, Resource> = {};
    for (const [name, value] of Object.entries(this.quiet)) {
      table[name] = { value, setBy: 'rfs', atMs: nowMs, history: [] };
    }
    return table;
  }

  private kick(): void {
    if (this.converging !== undefined) {
      this.rerun = true;
      return;
    }
    this.converging = this.converge().finally(() => {
      this.converging = undefined;
      if (this.rerun && !this.closed) {
        this.rerun = false;
        this.kick();
      }
    });
  }

  private async converge(): Promise<void> {
    do {
      this.rerun = false;
      const command = this.desired;
      try {
        await this.reach(command);
        if (this.lastFailure?.command === command) this.lastFailure = undefined;
      } catch (error) {
        const reason = (error as Error).message;
        this.lastFailure = { command, reason };
        this.hooks.log('C', `Replication ${describeCommand(command)} failed: ${reason}`);
        if (command.role === 'secondary' && command === this.desired) {
          this.hooks.feed({ type: 'reintegration', outcome: 'failed' });
        }
      }
    } while (this.rerun && !this.closed);
  }

  private async reach(command: ReplicationCommand): Promise<void> {
    const actual = this.actual;
    if (command.role === 'none') {
      if (actual.role !== 'none') await this.stopDataPath();
      return;
    }
    if (command.role === 'primary') {
      if (actual.role === 'primary') {
        const wanted = command.secondary !== null && !sameAttachment(command.secondary, this.lostAttachment);
        const served = wanted ? command.secondary : null;
        if (sameAttachment(served, actual.served) && (actual.fullsync || !command.fullsync)) return;
        await (await this.ensureHandle()).setPeer({ wanted, fullSync: command.fullsync });
        this.actual = { role: 'primary', served, fullsync: command.fullsync };
        return;
      }
      if (actual.role !== 'none') await this.stopDataPath();
      this.checkToCheck();
      const handle = await this.ensureHandle();
      this.lostAttachment = null;
      const wanted = command.secondary !== null;
      await handle.startPrimary({
        peerHost: this.runtime.peerHost,
        fullSync: command.fullsync,
        peerWanted: wanted,
      });
      this.hooks.setResource('rfs.degraded', 'down');
      this.actual = { role: 'primary', served: command.secondary, fullsync: command.fullsync };
      this.hooks.log('I', `Replicated directories mounted (${this.dirList()})`);
      return;
    }
    if (actual.role === 'secondary' && actual.primary === command.primary && actual.attach === command.attach)
      return;
    if (actual.role !== 'none') await this.stopDataPath();
    this.checkToCheck();
    let fullSync = command.fullsync;
    if (this.keepAsideReason !== undefined) {
      await this.keepAsideNow(this.keepAsideReason);
      this.keepAsideReason = undefined;
      fullSync = true;
    }
    const handle = await this.ensureHandle();
    this.secondaryUptodate = false;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await handle.startSecondary({ listenHost: this.runtime.listenHost, fullSync });
        break;
      } catch (error) {
        // The port may still be held a moment by a previous run: bounded retries.
        if (attempt >= secondaryStartAttemptsMax || command !== this.desired) throw error;
        this.hooks.log('I', `Replication secondary start: ${(error as Error).message}; retrying`);
        await new Promise((resolveDelay) => setTimeout(resolveDelay, secondaryRetryDelayMs));
      }
    }
    this.actual = { role: 'secondary', primary: command.primary, attach: command.attach };
    this.hooks.log(
      'I',
      `Replicated directories read-only, waiting for the primary's reintegration${fullSync ? ' (full)' : ''}`,
    );
  }

  private dirList(): string {
    return this.runtime.dataPath.dirs.map((dir) => dir.dir).join(', ');
  }

  /** `<tocheck>`: guards against replicating an unmounted, empty directory. */
  private checkToCheck(): void {
    const missing = this.runtime.toCheck.filter((path) => !existsSync(path));
    if (missing.length > 0) throw new Error(`tocheck path missing: ${missing.join(', ')}`);
  }

  private async keepAsideNow(reason: string): Promise<void> {
    const target = join(
      this.runtime.dataPath.stateDir,
      'kept',
      new Date().toISOString().replace(/[:.]/g, '-'),
    );
    await mkdir(target, { recursive: true, mode: 0o700 });
    for (const [index, dir] of this.runtime.dataPath.dirs.entries()) {
      const into = join(target, String(index));
      await new Promise<void>((resolveCopy, reject) => {
        // cp -a keeps modes, owners, times, xattrs, links and holes; reflinks where the fs can.
        execFile(
          'cp',
          ['-a', '--reflink=auto', '--', `${dir.dir}/.`, into],
          { timeout: keepAsideTimeoutMs },
          (error, _stdout, stderr) =>
            error
              ? reject(new Error(`keeping ${dir.dir} aside: ${stderr.trim() || error.message}`))
              : resolveCopy(),
        );
      });
    }
    this.hooks.log('C', `Data of ${this.dirList()} kept aside in ${target} (${reason})`);
  }

  private async ensureHandle(): Promise<DataPathHandle> {
    if (this.handle !== undefined) return this.handle;
    const handle = this.makeHandle(this.runtime.dataPath);
    handle.on('event', (event) => this.onDataPathEvent(event));
    handle.on('exit', (exit) => this.onExit(handle, exit));
    this.handle = handle;
    const status = await handle.start();
    this.hooks.log('I', `Replication process started (${status.binding})`);
    this.statusTimer ??= setInterval(() => void this.pollStatus(), statusIntervalMs);
    this.statusTimer.unref();
    return handle;
  }

  private async stopDataPath(): Promise<void> {
    const handle = this.handle;
    const was = this.actual;
    this.actual = { role: 'none' };
    this.secondaryUptodate = false;
    if (handle === undefined) return;
    try {
      await handle.stop(false);
    } catch (error) {
      // Busy: report who holds the files, then unmount anyway (lazily): the module is stopping.
      // Writes were fenced first (Replicator.fence): a file held open cannot get one acknowledged.
      this.hooks.log('C', `Replication stop: ${(error as Error).message}; unmounting with force`);
      try {
        await handle.stop(true);
      } catch (forced) {
        // Last resort: end the child. Its mounts die with it (every access fails) and the next
        // start clears them; a data path in an unknown state is never left serving.
        this.hooks.log('C', `Replication forced stop: ${(forced as Error).message}; ending the process`);
        this.handle = undefined;
        await handle.close();
      }
    }
    if (was.role === 'primary') this.hooks.log('I', `Replicated directories unmounted (${this.dirList()})`);
  }

  private onDataPathEvent(event: DataPathEvent): void {
    switch (event.event) {
      case 'peer-lost': {
        this.hooks.log('E', `Replication link lost: ${event.reason}`);
        const actual = this.actual;
        if (actual.role === 'primary' && actual.served !== null) {
          if (event.reason === 'secondary no longer served') return;
          this.lostAttachment = actual.served;
          this.actual = { ...actual, served: null };
          this.hooks.setResource('rfs.synced', 'down');
          this.hooks.feed({ type: 'secondaryLost' });
          // The data path keeps reconnecting unless told; this attachment must re-attach anew.
          void this.handle?.setPeer({ wanted: false, fullSync: false }).catch((error: unknown) => {
            this.hooks.log('E', `Replication: ${(error as Error).message}`);
          });
        } else if (actual.role === 'secondary' && !this.secondaryUptodate) {
          this.hooks.feed({ type: 'reintegration', outcome: 'failed' });
        }
        return;
      }
      case 'secondary-up-to-date': {
        const report = event.report;
        this.hooks.log(
          'I',
          report === undefined
            ? 'Reintegration ended (synchronize): secondary up to date'
            : `Reintegration ended (synchronize): ${report.full ? 'full comparison' : 'changes only'}, ` +
                `${report.bytesSent} bytes sent in ${report.durationMs} ms`,
        );
        this.hooks.setResource('rfs.synced', 'up');
        return;
      }
      case 'sync-begin':
        this.hooks.log(
          'I',
          `Reintegration started by the primary (${event.full ? 'full comparison' : 'changes only'})`,
        );
        return;
      case 'up-to-date':
        if (this.actual.role !== 'secondary') return;
        this.secondaryUptodate = true;
        this.hooks.setResource('rfs.synced', 'up');
        this.hooks.feed({ type: 'reintegration', outcome: 'done' });
        return;
      case 'apply-failed':
        this.hooks.log('C', `Replication apply failed: ${event.message}`);
        if (this.actual.role !== 'secondary') return;
        this.hooks.setResource('rfs.synced', 'down');
        this.hooks.feed(
          this.secondaryUptodate
            ? { type: 'rfsUptodate', value: 'down' }
            : { type: 'reintegration', outcome: 'failed' },
        );
        this.secondaryUptodate = false;
        return;
      case 'resync-progress':
        this.quiet['rfs.reintegre_progress'] = `${event.doneBytes}/${event.totalBytes}`;
        return;
      case 'state':
        this.quiet['rfs.link'] = event.state;
        return;
      case 'warning':
        this.hooks.log('E', `Replication: ${event.message}`);
        return;
    }
  }

  private onExit(handle: DataPathHandle, exit: { code: number | null; signal: string | null }): void {
    if (this.handle !== handle) return;
    this.handle = undefined;
    const was = this.actual;
    this.actual = { role: 'none' };
    if (this.closed) return;
    this.hooks.log('C', `Replication process exited (${exit.code ?? exit.signal})`);
    if (was.role === 'primary') {
      // Degraded (reference 2.5): the secondary is no longer fed; it must not take over.
      this.hooks.setResource('rfs.degraded', 'up');
      this.hooks.feed({ type: 'secondaryLost' });
    } else if (was.role === 'secondary') {
      this.hooks.feed(
        this.secondaryUptodate
          ? { type: 'rfsUptodate', value: 'down' }
          : { type: 'reintegration', outcome: 'failed' },
      );
    }
    const nowMs = Date.now();
    this.restarts = [...this.restarts.filter((atMs) => nowMs - atMs < restartWindowMs), nowMs];
    if (this.restarts.length > restartsMax) {
      this.hooks.log(
        'C',
        `Replication process exited ${this.restarts.length} times within ${restartWindowMs} ms: not restarted`,
      );
      return;
    }
    // Back to what the automaton wants (a new child clears the dead mounts first).
    if (this.desired.role !== 'none') this.kick();
  }

  private async pollStatus(): Promise<void> {
    const handle = this.handle;
    if (handle === undefined || this.closed) return;
    let status: DataPathStatus;
    try {
      status = await handle.status();
    } catch {
      return; // The process is going away: its exit is reported by onExit.
    }
    const nowMs = Date.now();
    this.samples = [
      ...this.samples.filter((sample) => nowMs - sample.atMs <= bandwidthWindowMs),
      {
        atMs: nowMs,
        counters: status.counters,
      },
    ];
    const first = this.samples[0];
    const spanMs = first === undefined ? 0 : nowMs - first.atMs;
    const rate = (name: string) => {
      if (first === undefined || spanMs <= 0) return 0;
      const now = Number(status.counters[name] ?? 0);
      const before = Number(first.counters[name] ?? 0);
      return Math.max(0, Math.round((now - before) / 1024 / (spanMs / 1000)));
    };
    this.quiet['rfs.rep_bandwidth'] = String(
      rate(status.role === 'secondary' ? 'bytesApplied' : 'dataBytesSent'),
    );
    this.quiet['rfs.rei_bandwidth'] = String(rate('resyncBytesSent'));
    this.quiet['rfs.netout_bandwidth'] = String(rate('bytesSent'));
    this.quiet['rfs.netin_bandwidth'] = String(rate('bytesReceived'));
    this.quiet['rfs.link'] = status.link;
    this.quiet['rfs.journal_paths'] = String(status.journalPaths);
    if (status.lastDropReason !== '') this.quiet['rfs.last_drop'] = status.lastDropReason.slice(0, 200);
    // resyncBytesSent: every reintegration's bytes since this node became primary (a reintegration
    // interrupted and redone leaves its first pass out of lastResyncBytesSent).
    for (const name of [
      'resyncBytesSent',
      'lastResyncBytesSent',
      'lastResyncMs',
      'lastResyncEndMs',
      'lastResyncFull',
      'lastResyncParallelMax',
      'streamEncryption',
      'streamChecksum',
    ]) {
      const value = status.counters[name];
      if (value !== undefined) this.quiet[`rfs.${name}`] = String(value);
    }
  }

  /** `hakit rfsverify`: compares both trees from the primary; one line per difference. */
  async verify(): Promise<string> {
    if (this.handle === undefined) throw new Error('replication is not running on this node');
    const differences = await this.handle.verify();
    if (differences.length === 0) return 'rfsverify: the replicated directories are identical on both nodes';
    return [
      `rfsverify: ${differences.length} difference(s)`,
      ...differences.map((difference) => `${difference.path}: ${difference.what}`),
    ].join('\n');
  }

  /** `hakit rfsdiff`: what the next reintegration would send, from the primary's journal. */
  async estimate(): Promise<string> {
    if (this.handle === undefined) throw new Error('replication is not running on this node');
    const estimate = await this.handle.estimate();
    return estimate.full
      ? `rfsdiff: full comparison of ${estimate.paths} file(s), ${estimate.bytes} bytes compared by block digests (only differing blocks are sent)`
      : `rfsdiff: ${estimate.paths} file(s) changed, ${estimate.bytes} bytes of changed ranges, ${estimate.namespaceChanges} namespace change(s) to send`;
  }

  /**
   * Daemon shutdown (modules keep running). A secondary stops cleanly (what it received is
   * applied). A primary's child is ended without unmounting: its dead FUSE mount fails the
   * application's accesses (fenced) rather than letting it write, unreplicated and unjournaled,
   * on the bare directory until the daemon is back; the next start clears the mount.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.statusTimer !== undefined) clearInterval(this.statusTimer);
    while (this.converging !== undefined) await this.converging;
    const handle = this.handle;
    if (handle === undefined) return;
    if (this.actual.role !== 'primary') {
      try {
        await handle.stop(true);
      } catch (error) {
        this.hooks.log('E', `Replication stop at shutdown: ${(error as Error).message}`);
      }
    } else {
      this.hooks.log('E', `Daemon shutdown while primary: ${this.dirList()} fenced until the next start`);
    }
    this.handle = undefined;
    await handle.close();
  }
}
