// errd: watches the module's processes while their class is active. A full scan of /proc runs
// every polltimer; between scans the pids found are checked every `pidPollMs`, so the death of a
// watched process is seen within tens of milliseconds instead of a whole polltimer.
import type { ActivityClass } from '../core/job.ts';
import { countSatisfies, describeCount, matchingProcesses, type ProcWatch } from './errd-rules.ts';
import { type ProcessInfo, processExists, readProcessTable } from './process-table.ts';

export interface ErrdWatchConfig extends ProcWatch {
  /** prim, both, second, sec, pre, or a custom class enabled with `errd enable CLASS`. */
  watchClass: string;
  /** restart, stopstart, stop, noaction, or a handler executable in bin/. */
  action: string;
  /** Monitoring starts (startAfter-1) x polltimer after activation (reference 4.10). */
  startAfter: number;
  /** service="yes": a systemd unit instead of a process. */
  isService: boolean;
}

export interface ErrdReport {
  name: string;
  up: boolean;
  count: number;
  message: string;
  action: string;
}

export interface ErrdMonitorOptions {
  pollTimerMs: number;
  pidPollMs: number;
  readTable?: () => ProcessInfo[];
  pidExists?: (pid: number) => boolean;
  serviceActive?: (unit: string) => Promise<boolean>;
  /** Called on every change of a watch between up and down, and on the first verdict. */
  onReport: (report: ErrdReport) => void;
  onError: (error: Error) => void;
}

interface WatchState {
  config: ErrdWatchConfig;
  enabled: boolean;
  activeSinceMs: number;
  pids: number[];
  up: boolean | null;
}

export const pidPollMsDefault = 50;

/**
 * A watch's first verdict after activation, when it is "down", is confirmed this long after
 * monitoring began: a start script that launches its daemon in the background returns before the
 * daemon has exec'd its final command line, and a scan in between found nothing and restarted a
 * module that was starting fine (seen on a loaded host: start_both, then a restart at once).
 * Later deaths are reported at once.
 */
export const firstDownConfirmMs = 500;

export class ErrdMonitor {
  private readonly watches: WatchState[];
  private activeClasses = new Set<string>();
  private customEnabled = new Set<string>();
  private suspended = false;
  private scanTimer: NodeJS.Timeout | null = null;
  private pidTimer: NodeJS.Timeout | null = null;
  private confirmTimer: NodeJS.Timeout | null = null;
  private readonly readTable: () => ProcessInfo[];
  private readonly pidExists: (pid: number) => boolean;

  constructor(
    configs: readonly ErrdWatchConfig[],
    private readonly options: ErrdMonitorOptions,
  ) {
    if (options.pollTimerMs <= 0 || options.pidPollMs <= 0)
      throw new Error('errd: poll periods must be positive');
    this.watches = configs.map((config) => ({
      config,
      enabled: false,
      activeSinceMs: 0,
      pids: [],
      up: null,
    }));
    this.readTable = options.readTable ?? (() => readProcessTable());
    this.pidExists = options.pidExists ?? ((pid) => processExists(pid));
  }

  /** The module's automaton switched classes (after start_*, before stop_*). */
  setActiveClasses(classes: readonly ActivityClass[]): void {
    this.activeClasses = new Set(classes);
    this.refresh();
  }

  /** `errd enable|disable CLASS` for custom classes. */
  setCustomClass(watchClass: string, enabled: boolean): void {
    if (enabled) this.customEnabled.add(watchClass);
    else this.customEnabled.delete(watchClass);
    this.refresh();
  }

  /** `errd off|on` (usersetting.errd). */
  setSuspended(suspended: boolean): void {
    this.suspended = suspended;
    this.refresh();
  }

  listWatches(): {
    name: string;
    watchClass: string;
    enabled: boolean;
    up: boolean | null;
    pids: number[];
  }[] {
    return this.watches.map((watch) => ({
      name: watch.config.name,
      watchClass: watch.config.watchClass,
      enabled: watch.enabled,
      up: watch.up,
      pids: [...watch.pids],
    }));
  }

  stop(): void {
    this.suspended = true;
    this.refresh();
  }

  private classActive(watchClass: string): boolean {
    // `second` follows start_second/stop_second, `sec` follows start_sec/stop_sec.
    return this.activeClasses.has(watchClass as ActivityClass) || this.customEnabled.has(watchClass);
  }

  private refresh(): void {
    const nowMs = Date.now();
    for (const watch of this.watches) {
      const shouldRun = !this.suspended && this.classActive(watch.config.watchClass);
      if (shouldRun && !watch.enabled) {
        watch.enabled = true;
        watch.activeSinceMs = nowMs;
        watch.up = null;
        watch.pids = [];
      } else if (!shouldRun && watch.enabled) {
        watch.enabled = false;
        watch.up = null;
        watch.pids = [];
      }
    }
    const anyEnabled = this.watches.some((watch) => watch.enabled);
    if (anyEnabled && this.scanTimer === null) {
      this.scanTimer = setInterval(() => this.scan(), this.options.pollTimerMs);
      this.pidTimer = setInterval(() => this.checkPids(), this.options.pidPollMs);
      this.scanTimer.unref();
      this.pidTimer.unref();
    } else if (!anyEnabled && this.scanTimer !== null) {
      clearInterval(this.scanTimer);
      clearInterval(this.pidTimer ?? undefined);
      clearTimeout(this.confirmTimer ?? undefined);
      this.scanTimer = null;
      this.pidTimer = null;
      this.confirmTimer = null;
    }
    if (anyEnabled) this.scan();
  }

  private monitoringDelayMs(watch: WatchState): number {
    return Math.max(0, watch.config.startAfter - 1) * this.options.pollTimerMs;
  }

  private monitoring(watch: WatchState, nowMs: number): boolean {
    return watch.enabled && nowMs - watch.activeSinceMs >= this.monitoringDelayMs(watch);
  }

  /** Scans again once the first-verdict confirmation time of `watch` has passed. */
  private confirmLater(watch: WatchState, nowMs: number): void {
    if (this.confirmTimer !== null) return;
    const dueMs = watch.activeSinceMs + this.monitoringDelayMs(watch) + firstDownConfirmMs;
    this.confirmTimer = setTimeout(
      () => {
        this.confirmTimer = null;
        this.scan();
      },
      Math.max(1, dueMs - nowMs),
    );
    this.confirmTimer.unref();
  }

  private checkPids(): void {
    for (const watch of this.watches) {
      if (!watch.enabled || watch.config.isService || watch.pids.length === 0) continue;
      if (watch.pids.some((pid) => !this.pidExists(pid))) {
        this.scan();
        return;
      }
    }
  }

  private scan(): void {
    let table: ProcessInfo[];
    try {
      table = this.readTable();
    } catch (error) {
      this.options.onError(error as Error);
      return;
    }
    const nowMs = Date.now();
    for (const watch of this.watches) {
      if (!this.monitoring(watch, nowMs)) continue;
      if (watch.config.isService) {
        this.checkService(watch);
        continue;
      }
      const matched = matchingProcesses(watch.config, table);
      watch.pids = matched.map((process) => process.pid);
      const up = countSatisfies(watch.config, matched.length);
      const sinceMonitoringMs = nowMs - watch.activeSinceMs - this.monitoringDelayMs(watch);
      if (!up && watch.up === null && sinceMonitoringMs < firstDownConfirmMs) {
        this.confirmLater(watch, nowMs);
        continue;
      }
      this.verdict(watch, up, matched.length);
    }
  }

  private checkService(watch: WatchState): void {
    const serviceActive = this.options.serviceActive;
    if (!serviceActive) {
      this.options.onError(
        new Error(`errd: ${watch.config.name} is a service but this node has no service manager`),
      );
      return;
    }
    serviceActive(watch.config.name).then(
      (active) => {
        if (watch.enabled) this.verdict(watch, countSatisfies(watch.config, active ? 1 : 0), active ? 1 : 0);
      },
      (error: unknown) => this.options.onError(error as Error),
    );
  }

  private verdict(watch: WatchState, up: boolean, count: number): void {
    if (watch.up === up) return;
    watch.up = up;
    const message = up
      ? `Process ${watch.config.name} running (${count})`
      : describeCount(watch.config, count);
    this.options.onReport({ name: watch.config.name, up, count, message, action: watch.config.action });
  }
}
