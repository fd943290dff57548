// The mirror automaton behind the supervisor's driver interface. The pure core decides; this
// keeps it, feeds it, and hands the mirror-only actions (virtual IP, heartbeats now, replication,
// keep-aside) to the hooks the supervisor gives it.
import type { CoreAction } from '../core/job.ts';
import type { MaxloopState } from '../core/maxloop.ts';
import {
  initialMirrorCore,
  type MirrorAction,
  type MirrorCore,
  type MirrorEvent,
  type MirrorPersisted,
  type MirrorSettings,
  type MirrorVerb,
  isUptodate,
  stepMirror,
} from '../core/mirror-automaton.ts';
import type { AutomatonDriver, DriverEvent, DriverResult, DriverView } from './automaton-driver.ts';

export type MirrorExtraAction = Exclude<MirrorAction, CoreAction>;

export const mirrorVerbs: ReadonlySet<string> = new Set<MirrorVerb>([
  'start',
  'stop',
  'forcestop',
  'restart',
  'stopstart',
  'wait',
  'prim',
  'second',
  'primforce',
  'swap',
]);

export class MirrorDriver implements AutomatonDriver<MirrorExtraAction, MirrorEvent> {
  readonly verbs = mirrorVerbs;
  private core: MirrorCore;

  constructor(
    readonly settings: MirrorSettings,
    nowMs: number,
    incarnation: number,
    persisted: MirrorPersisted | undefined,
    failover: 'on' | 'off',
  ) {
    this.core = initialMirrorCore(nowMs, incarnation, persisted, failover);
  }

  get mirrorCore(): MirrorCore {
    return this.core;
  }

  view(): DriverView {
    const detail: string[] = [isUptodate(this.core) ? 'uptodate' : 'not uptodate'];
    if (this.core.hold) detail.push(this.core.hold);
    return {
      state: this.core.state,
      readiness: this.core.readiness,
      jobVerb: this.core.job?.verb ?? null,
      blockingRule: this.core.blockingRule,
      lastFailure: this.core.lastFailure,
      maxloop: this.core.maxloop,
      detail,
    };
  }

  step(event: DriverEvent | MirrorEvent): DriverResult<MirrorExtraAction> {
    if (event.type === 'command' && !mirrorVerbs.has(event.verb)) {
      return { actions: [], accepted: false, message: `${event.verb} does not apply to a mirror module` };
    }
    const result = stepMirror(this.core, event as MirrorEvent, this.settings);
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
    // The mirror core knows how to come back from a crash: it starts from STOP with what was
    // persisted (uptodate, last primary), and the supervisor restarts it.
  }

  persisted(): MirrorPersisted {
    return this.core.persisted;
  }
}
