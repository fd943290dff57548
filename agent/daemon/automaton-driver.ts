// The supervisor runs any module automaton through this narrow interface: the farm/light one
// today, the mirror one next. The driver owns the pure core and its settings; the supervisor
// feeds it events and carries out the actions it returns.
import {
  type FarmCore,
  type FarmEvent,
  type FarmSettings,
  type FarmVerb,
  initialFarmCore,
  type Origin,
  stepFarm,
} from '../core/farm-automaton.ts';
import type { CoreAction, WaitStatus } from '../core/job.ts';
import type { MaxloopState } from '../core/maxloop.ts';
import type { ModuleStateName, Readiness } from '../core/states.ts';

export interface DriverView {
  state: ModuleStateName;
  readiness: Readiness;
  /** The transition being carried out, if any. */
  jobVerb: string | null;
  blockingRule: string | null;
  lastFailure: string | null;
  maxloop: MaxloopState;
  /** Extra detailed states (uptodate, roles, holds), shown next to the state. */
  detail: string[];
}

export type DriverEvent =
  | {
      type: 'command';
      verb: string;
      options?: Record<string, boolean>;
      identity?: string;
      origin: Origin;
      nowMs: number;
    }
  | { type: 'scriptDone'; script: string; exitCode: number | null; timedOut: boolean; nowMs: number }
  | { type: 'waitStatus'; wait: WaitStatus; nowMs: number };

/** Actions beyond the common ones are typed by each driver and handled by its own hooks. */
export interface DriverResult<Extra> {
  actions: (CoreAction | Extra)[];
  accepted: boolean;
  message: string;
}

export interface AutomatonDriver<Extra = never, ExtraEvent = never> {
  readonly verbs: ReadonlySet<string>;
  view(): DriverView;
  step(event: DriverEvent | ExtraEvent): DriverResult<Extra>;
  setMaxloop(maxloop: MaxloopState): void;
  restore(saved: { maxloop: MaxloopState; lastFailure: string | null }): void;
  /** After a daemon crash: the module was running; make the core believe it is in WAIT. */
  assumeRunning(): void;
}

export const farmVerbs: ReadonlySet<string> = new Set<FarmVerb>([
  'start',
  'stop',
  'forcestop',
  'restart',
  'stopstart',
  'wait',
]);

export class FarmDriver implements AutomatonDriver {
  readonly verbs = farmVerbs;
  private core: FarmCore;

  constructor(
    private readonly settings: FarmSettings,
    nowMs: number,
  ) {
    this.core = initialFarmCore(nowMs);
  }

  view(): DriverView {
    return {
      state: this.core.state,
      readiness: this.core.readiness,
      jobVerb: this.core.job?.verb ?? null,
      blockingRule: this.core.blockingRule,
      lastFailure: this.core.lastFailure,
      maxloop: this.core.maxloop,
      detail: [],
    };
  }

  step(event: DriverEvent): DriverResult<never> {
    if (event.type === 'command' && !farmVerbs.has(event.verb)) {
      return { actions: [], accepted: false, message: `${event.verb} is for mirror modules` };
    }
    const result = stepFarm(this.core, event as FarmEvent, this.settings);
    this.core = result.core;
    return { actions: result.actions, accepted: result.accepted, message: result.message };
  }

  setMaxloop(maxloop: MaxloopState): void {
    this.core = { ...this.core, maxloop };
  }

  restore(saved: { maxloop: MaxloopState; lastFailure: string | null }): void {
    this.core = { ...this.core, maxloop: saved.maxloop, lastFailure: saved.lastFailure };
  }

  assumeRunning(): void {
    this.core = { ...this.core, state: 'WAIT', readiness: 'Transient' };
  }
}
