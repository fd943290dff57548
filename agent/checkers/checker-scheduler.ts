// Runs the <check> checkers of a module while their class (`when`) is active and writes their
// resources. A checker that is switched off leaves its resource at init, so no rule fires on a
// stale verdict. Probes never overlap: the next one starts an interval after the last ended.
import type { ActivityClass } from '../core/job.ts';
import { interfaceProbe, pingProbe, type ProbeResult, tcpProbe } from './probes.ts';

export type CheckerSpec =
  | {
      kind: 'tcp';
      ident: string;
      when: ActivityClass;
      host: string;
      port: number;
      intervalMs: number;
      timeoutMs: number;
    }
  | { kind: 'ping'; ident: string; when: ActivityClass; host: string; intervalMs: number; timeoutMs: number }
  | { kind: 'intf'; ident: string; when: ActivityClass; localAddress: string; intervalMs: number }
  /** Another module of this node: up while it is in a Ready state. */
  | {
      kind: 'module';
      ident: string;
      when: ActivityClass;
      module: string;
      intervalMs: number;
      /** Absent: this node. */
      remote?: { host: string; port: number; timeoutMs: number };
    };

export interface CheckerSchedulerOptions {
  setResource(resource: string, value: 'init' | 'up' | 'down', detail: string): void;
  probe?: (spec: CheckerSpec) => Promise<ProbeResult>;
  /** The state of another module (local or remote), for `module` checkers. */
  moduleReady?: (spec: ModuleCheckerSpec) => Promise<ProbeResult>;
  /** A module checker saw the watched module become Ready again (it restarted or failed over). */
  onModuleRestarted?: (spec: ModuleCheckerSpec, detail: string) => void;
}

export type ModuleCheckerSpec = Extract<CheckerSpec, { kind: 'module' }>;

export function resourceOf(spec: CheckerSpec): string {
  return `${spec.kind}.${spec.ident}`;
}

export function runProbe(
  spec: CheckerSpec,
  moduleReady?: (spec: ModuleCheckerSpec) => Promise<ProbeResult>,
): Promise<ProbeResult> {
  switch (spec.kind) {
    case 'tcp':
      return tcpProbe(spec.host, spec.port, spec.timeoutMs);
    case 'ping':
      return pingProbe(spec.host, spec.timeoutMs);
    case 'intf':
      return Promise.resolve(interfaceProbe(spec.localAddress));
    case 'module':
      return moduleReady
        ? moduleReady(spec)
        : Promise.resolve({ up: false, detail: 'no module state available' });
  }
}

interface Running {
  timer: NodeJS.Timeout | null;
  /** Module checkers: the watched module's ready generation at the last probe. */
  lastGeneration?: number;
}

export class CheckerScheduler {
  private readonly running = new Map<string, Running>();
  private activeClasses = new Set<ActivityClass>();
  private suspended = false;
  private readonly probe: (spec: CheckerSpec) => Promise<ProbeResult>;

  constructor(
    private readonly specs: readonly CheckerSpec[],
    private readonly options: CheckerSchedulerOptions,
  ) {
    this.probe = options.probe ?? ((spec) => runProbe(spec, options.moduleReady));
  }

  setActiveClasses(classes: readonly ActivityClass[]): void {
    this.activeClasses = new Set(classes);
    this.refresh();
  }

  /** `checker off|on` (usersetting.checker). */
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
      const key = resourceOf(spec);
      const shouldRun = !this.suspended && this.activeClasses.has(spec.when);
      const current = this.running.get(key);
      if (shouldRun && !current) {
        const entry: Running = { timer: null };
        this.running.set(key, entry);
        this.options.setResource(key, 'init', 'checker started');
        this.schedule(spec, entry, 0);
      } else if (!shouldRun && current) {
        if (current.timer) clearTimeout(current.timer);
        this.running.delete(key);
        this.options.setResource(key, 'init', 'checker stopped');
      }
    }
  }

  private schedule(spec: CheckerSpec, entry: Running, delayMs: number): void {
    entry.timer = setTimeout(() => {
      entry.timer = null;
      this.probe(spec).then(
        (result) => this.record(spec, entry, result),
        (error: unknown) =>
          this.record(spec, entry, { up: false, detail: `probe failed: ${(error as Error).message}` }),
      );
    }, delayMs);
    entry.timer.unref();
  }

  private record(spec: CheckerSpec, entry: Running, result: ProbeResult): void {
    // A verdict from a checker that was stopped (or stopped and restarted) meanwhile is dropped.
    if (this.running.get(resourceOf(spec)) !== entry) return;
    this.options.setResource(resourceOf(spec), result.up ? 'up' : 'down', result.detail);
    if (spec.kind === 'module' && result.readyGeneration !== undefined) {
      const previous = entry.lastGeneration;
      entry.lastGeneration = result.readyGeneration;
      if (previous !== undefined && result.readyGeneration > previous)
        this.options.onModuleRestarted?.(spec, result.detail);
    }
    this.schedule(spec, entry, spec.intervalMs);
  }
}
