// Drives one node's pure mirror automaton through a scenario: commands, finished scripts, wait
// rules, the peer's adverts (a peer model the scenario edits field by field), replication and
// arbitrator answers, ticks. Records each step compactly for golden files and asserts.
import type { LeaseReply, LeaseTiming } from '../../../agent/core/arbitrator-lease.ts';
import type { WaitStatus } from '../../../agent/core/job.ts';
import {
  advertOf,
  initialMirrorCore,
  initialPersisted,
  stepMirror,
} from '../../../agent/core/mirror-automaton.ts';
import type { Generation } from '../../../agent/core/mirror-data.ts';
import type {
  CommandOptions,
  MirrorAction,
  MirrorAdvert,
  MirrorCore,
  MirrorEvent,
  MirrorPeerView,
  MirrorPersisted,
  MirrorSettings,
  MirrorVerb,
  StartIntent,
} from '../../../agent/core/mirror-types.ts';
import type { ModuleStateName, Readiness } from '../../../agent/core/states.ts';
import { describeAction } from '../../sim/simulator.ts';

/** Generations are written `counter@node` in scenarios. */
export type GenerationText = string;

export function parseGeneration(text: GenerationText): Generation {
  const match = /^(\d+)@([A-Za-z0-9_.-]+)$/.exec(text);
  if (match === null) throw new Error(`bad generation '${text}' (expected counter@node)`);
  return { counter: Number(match[1]), node: match[2] as string };
}

export interface PeerFields {
  incarnation?: number;
  state?: ModuleStateName;
  readiness?: Readiness;
  primary?: boolean;
  uptodate?: boolean;
  lastPrim?: boolean;
  reintegrating?: boolean;
  history?: GenerationText[];
  intent?: StartIntent | null;
  electing?: boolean;
  secondaryOf?: number | null;
  secondaryTenure?: number | null;
  tenure?: number;
  confirmedSecondary?: number | null;
  attach?: number;
  dropped?: { incarnation: number; attach: number } | null;
  handover?: boolean;
  swapRequest?: boolean;
  fullsyncPeer?: boolean;
}

export interface ScenarioSettings {
  node?: string;
  peerNode?: string;
  defaultPrimary?: MirrorSettings['defaultPrimary'];
  scriptsEnabled?: boolean;
  replication?: boolean;
  heartbeatTimeoutMs?: number;
  arbitrator?: LeaseTiming | null;
  maxloop?: number;
  loopIntervalMs?: number;
}

export interface ScenarioInitial {
  incarnation?: number;
  failover?: 'on' | 'off';
  persisted?: {
    uptodate?: boolean;
    lastPrim?: boolean;
    reintegrating?: boolean;
    history?: GenerationText[];
    peerNeedsFullsync?: boolean;
  };
}

export type LeaseAnswer = 'granted' | 'held' | 'stale' | 'quiet' | 'released';

export type MirrorScenarioEvent =
  | {
      type: 'command';
      verb: MirrorVerb;
      options?: CommandOptions;
      identity?: string;
      who?: string;
      rule?: string;
      atMs?: number;
    }
  /** Answers every script asked for until none is pending: exit 0 except as listed. */
  | {
      type: 'runScripts';
      exitCodes?: Record<string, number>;
      exitCodesAlways?: Record<string, number>;
      timedOut?: string[];
      atMs?: number;
    }
  | { type: 'scriptDone'; script: string; exitCode?: number; atMs?: number }
  | { type: 'waitStatus'; wait: WaitStatus; atMs?: number }
  /** Edits the peer model and shows it to the automaton; `status` unknown/init hides it. */
  | {
      type: 'peer';
      set?: PeerFields;
      status?: 'up' | 'unknown' | 'init';
      promiseFromMs?: number | null;
      atMs?: number;
    }
  | { type: 'reintegration'; outcome: 'done' | 'failed'; atMs?: number }
  | { type: 'rfsUptodate'; value: 'up' | 'down'; atMs?: number }
  | { type: 'secondaryLost'; atMs?: number }
  /** Answers the request in flight (or the release being resent). */
  | { type: 'lease'; answer: LeaseAnswer; holder?: string; registered?: GenerationText | null; atMs?: number }
  | { type: 'failoverSetting'; value: 'on' | 'off'; atMs?: number }
  | { type: 'tick'; atMs?: number };

export interface MirrorRecord {
  event: string;
  before: string;
  after: string;
  accepted: boolean;
  message: string;
  actions: string[];
}

export const defaultLeaseTiming: LeaseTiming = {
  leaseMs: 3000,
  driftPpm: 1000,
  marginMs: 100,
  renewMs: 1000,
  retryMs: 1000,
};

export function mirrorSettings(overrides: ScenarioSettings = {}): MirrorSettings {
  return {
    module: 'mirror',
    node: overrides.node ?? 'n1',
    peerNode: overrides.peerNode ?? 'n2',
    maxloop: overrides.maxloop ?? 3,
    loopIntervalMs: overrides.loopIntervalMs ?? 86_400_000,
    scriptsEnabled: overrides.scriptsEnabled ?? true,
    replication: overrides.replication ?? true,
    defaultPrimary: overrides.defaultPrimary ?? { kind: 'alone' },
    heartbeatTimeoutMs: overrides.heartbeatTimeoutMs ?? 3000,
    arbitrator: overrides.arbitrator === undefined ? null : overrides.arbitrator,
  };
}

function persistedFrom(initial: ScenarioInitial['persisted']): MirrorPersisted {
  const base = initialPersisted();
  if (initial === undefined) return base;
  return {
    uptodate: initial.uptodate ?? base.uptodate,
    lastPrim: initial.lastPrim ?? base.lastPrim,
    reintegrating: initial.reintegrating ?? base.reintegrating,
    history: (initial.history ?? []).map(parseGeneration),
    peerNeedsFullsync: initial.peerNeedsFullsync ?? base.peerNeedsFullsync,
  };
}

export class MirrorScenario {
  core: MirrorCore;
  nowMs = 0;
  readonly settings: MirrorSettings;
  readonly records: MirrorRecord[] = [];
  /** Every script run, with its arguments, in order. */
  readonly scriptsRun: string[] = [];
  /** Every action, described, in order. */
  readonly allActions: string[] = [];
  peerAdvert: MirrorAdvert;
  peerStatus: 'up' | 'unknown' | 'init' = 'init';
  promiseFromMs: number | null = null;

  constructor(settings: ScenarioSettings = {}, initial: ScenarioInitial = {}) {
    this.settings = mirrorSettings(settings);
    this.core = initialMirrorCore(
      0,
      initial.incarnation ?? 1,
      persistedFrom(initial.persisted),
      initial.failover,
    );
    this.peerAdvert = {
      node: this.settings.peerNode,
      incarnation: 7,
      state: 'STOP',
      readiness: 'NotReady',
      primary: false,
      uptodate: false,
      lastPrim: false,
      reintegrating: false,
      history: [],
      intent: null,
      electing: false,
      secondaryOf: null,
      secondaryTenure: null,
      tenure: 0,
      confirmedSecondary: null,
      attach: 0,
      dropped: null,
      handover: false,
      swapRequest: false,
      fullsyncPeer: false,
    };
  }

  get state(): string {
    return `${this.core.state} ${this.core.readiness}`;
  }

  /** What this node advertises now (what its peer would see). */
  advert(): MirrorAdvert {
    return advertOf(this.core, this.settings, this.nowMs);
  }

  private view(): MirrorPeerView {
    if (this.peerStatus !== 'up') return { status: this.peerStatus };
    return {
      status: 'up',
      advert: this.peerAdvert,
      incarnation: this.peerAdvert.incarnation,
      promiseFromMs: this.promiseFromMs,
    };
  }

  private step(event: MirrorEvent): { accepted: boolean; message: string; actions: string[] } {
    const result = stepMirror(this.core, event, this.settings);
    this.core = result.core;
    const actions = result.actions.map((action: MirrorAction) => describeAction(action));
    for (const action of result.actions) {
      if (action.type === 'runScript') this.scriptsRun.push(`${action.script} ${action.args.join(' ')}`);
    }
    this.allActions.push(...actions);
    return { accepted: result.accepted, message: result.message, actions };
  }

  pendingScript(): string | null {
    const job = this.core.job;
    if (!job?.scriptRunning) return null;
    const step = job.steps[job.index];
    return step?.kind === 'script' ? step.script : null;
  }

  private leaseReply(
    answer: LeaseAnswer,
    holder: string | undefined,
    registered: GenerationText | null | undefined,
  ): LeaseReply {
    const lease = this.core.lease;
    const base = {
      module: this.settings.module,
      node: this.settings.node,
      incarnation: this.core.incarnation,
    };
    if (answer === 'released') {
      if (lease.releasing === null) throw new Error('scenario: no release to answer');
      return { type: 'leaseReleased', ...base, seq: lease.releasing.seq };
    }
    if (lease.pending === null) throw new Error('scenario: no lease request in flight');
    const seq = lease.pending.seq;
    if (answer === 'granted') return { type: 'leaseGranted', ...base, seq };
    return {
      type: 'leaseRefused',
      ...base,
      seq,
      reason: answer,
      holder: holder ?? null,
      registered: registered === undefined || registered === null ? null : parseGeneration(registered),
    };
  }

  play(event: MirrorScenarioEvent): MirrorRecord {
    this.nowMs = event.atMs ?? this.nowMs + 100;
    const before = this.state;
    let outcome: { accepted: boolean; message: string; actions: string[] };
    let label: string;
    const nowMs = this.nowMs;
    switch (event.type) {
      case 'command': {
        const origin = event.rule
          ? { kind: 'rule' as const, rule: event.rule }
          : { kind: 'caller' as const, who: event.who ?? 'root' };
        const command: MirrorEvent = { type: 'command', verb: event.verb, origin, nowMs };
        if (event.options !== undefined) command.options = event.options;
        if (event.identity !== undefined) command.identity = event.identity;
        outcome = this.step(command);
        const options = Object.entries(event.options ?? {})
          .filter(([, value]) => value === true)
          .map(([key]) => ` ${key}`)
          .join('');
        label = `command ${event.verb}${options}${event.identity ? ` -i ${event.identity}` : ''}`;
        break;
      }
      case 'scriptDone': {
        const running = this.pendingScript();
        if (running !== event.script)
          throw new Error(`scenario: ${event.script} is not running (running: ${running})`);
        outcome = this.step({
          type: 'scriptDone',
          script: event.script,
          exitCode: event.exitCode ?? 0,
          timedOut: false,
          nowMs,
        });
        label = `scriptDone ${event.script} ${event.exitCode ?? 0}`;
        break;
      }
      case 'runScripts': {
        const actions: string[] = [];
        const failuresLeft = new Set([...Object.keys(event.exitCodes ?? {}), ...(event.timedOut ?? [])]);
        for (let count = 0; ; count += 1) {
          if (count > 300) throw new Error('scenario: scripts never stop being asked for');
          const script = this.pendingScript();
          if (script === null) break;
          const failsNow = failuresLeft.delete(script);
          const timedOut = failsNow && (event.timedOut?.includes(script) ?? false);
          const always = event.exitCodesAlways?.[script];
          const exitCode = timedOut ? null : failsNow ? (event.exitCodes?.[script] ?? 0) : (always ?? 0);
          actions.push(...this.step({ type: 'scriptDone', script, exitCode, timedOut, nowMs }).actions);
        }
        outcome = { accepted: true, message: '', actions };
        label = 'runScripts';
        break;
      }
      case 'waitStatus':
        outcome = this.step({ type: 'waitStatus', wait: event.wait, nowMs });
        label = `waitStatus ${event.wait.status}${event.wait.status === 'blocked' ? ` ${event.wait.rule}` : ''}`;
        break;
      case 'peer': {
        if (event.set !== undefined) {
          const { history, ...rest } = event.set;
          this.peerAdvert = {
            ...this.peerAdvert,
            ...rest,
            ...(history === undefined ? {} : { history: history.map(parseGeneration) }),
          };
        }
        this.peerStatus = event.status ?? (event.set !== undefined ? 'up' : this.peerStatus);
        if (event.promiseFromMs !== undefined) this.promiseFromMs = event.promiseFromMs;
        outcome = this.step({ type: 'peer', view: this.view(), nowMs });
        const a = this.peerAdvert;
        label =
          this.peerStatus === 'up'
            ? `peer ${a.state} ${a.readiness}${a.primary ? ' primary' : ''}` +
              `${event.set === undefined ? '' : ` ${JSON.stringify(event.set)}`}`
            : `peer ${this.peerStatus}`;
        break;
      }
      case 'reintegration':
        outcome = this.step({ type: 'reintegration', outcome: event.outcome, nowMs });
        label = `reintegration ${event.outcome}`;
        break;
      case 'rfsUptodate':
        outcome = this.step({ type: 'rfsUptodate', value: event.value, nowMs });
        label = `rfs.uptodate ${event.value}`;
        break;
      case 'secondaryLost':
        outcome = this.step({ type: 'secondaryLost', nowMs });
        label = 'secondaryLost';
        break;
      case 'lease':
        outcome = this.step({
          type: 'lease',
          reply: this.leaseReply(event.answer, event.holder, event.registered),
          nowMs,
        });
        label = `lease ${event.answer}`;
        break;
      case 'failoverSetting':
        outcome = this.step({ type: 'failoverSetting', value: event.value, nowMs });
        label = `failover ${event.value}`;
        break;
      case 'tick':
        outcome = this.step({ type: 'tick', nowMs });
        label = 'tick';
        break;
    }
    const record: MirrorRecord = { event: label, before, after: this.state, ...outcome };
    this.records.push(record);
    return record;
  }

  playAll(events: readonly MirrorScenarioEvent[]): MirrorRecord[] {
    return events.map((event) => this.play(event));
  }
}

export type PeerEvent = Extract<MirrorScenarioEvent, { type: 'peer' }>;

/**
 * Peer adverts that scenarios use again and again. A primary peer is in its first tenure; a
 * secondary peer is attached (attach 1) to our first tenure.
 */
export const peer = {
  unknown: { type: 'peer', status: 'unknown' } as PeerEvent,
  stopped: (history: GenerationText[] = []): PeerEvent => ({
    type: 'peer',
    set: {
      state: 'STOP',
      readiness: 'NotReady',
      primary: false,
      history,
      electing: false,
      intent: null,
      tenure: 0,
      secondaryOf: null,
      secondaryTenure: null,
      confirmedSecondary: null,
    },
  }),
  waiting: (history: GenerationText[] = [], extra: PeerFields = {}): PeerEvent => ({
    type: 'peer',
    set: {
      state: 'WAIT',
      readiness: 'Transient',
      primary: false,
      history,
      electing: true,
      intent: 'start',
      tenure: 0,
      secondaryOf: null,
      secondaryTenure: null,
      confirmedSecondary: null,
      ...extra,
    },
  }),
  alone: (history: GenerationText[], extra: PeerFields = {}): PeerEvent => ({
    type: 'peer',
    set: {
      state: 'ALONE',
      readiness: 'Ready',
      primary: true,
      tenure: 1,
      history,
      electing: false,
      intent: null,
      secondaryOf: null,
      secondaryTenure: null,
      confirmedSecondary: null,
      ...extra,
    },
  }),
  prim: (
    history: GenerationText[],
    confirmedSecondary: number | null,
    extra: PeerFields = {},
  ): PeerEvent => ({
    type: 'peer',
    set: {
      state: 'PRIM',
      readiness: 'Ready',
      primary: true,
      tenure: 1,
      history,
      electing: false,
      intent: null,
      secondaryOf: null,
      secondaryTenure: null,
      confirmedSecondary,
      ...extra,
    },
  }),
  second: (of: number, readiness: Readiness, extra: PeerFields = {}): PeerEvent => ({
    type: 'peer',
    set: {
      state: 'SECOND',
      readiness,
      primary: false,
      tenure: 0,
      secondaryOf: of,
      secondaryTenure: 1,
      confirmedSecondary: null,
      electing: false,
      intent: null,
      attach: 1,
      ...extra,
    },
  }),
};
