// The mirror automaton (reference 2.2, M1-M17), pure: (core, event, settings) -> (core, actions).
// Each node runs one; the two coordinate only through the adverts their heartbeats carry (and,
// when configured, the arbitrator's lease). Script order and arguments follow reference 6.4.
//
// Structure: commands and automatic decisions start jobs (mirror-steps.ts) that a walker carries
// out step by step, reusing job.ts for scripts, states, classes, logs and wait rules. Between
// jobs the node rests in STOP, WAIT, ALONE, PRIM or SECOND, and after every event `decide`
// looks at the peer's advert, the wait rules, the lease and the persisted data to pick the next
// transition. All of it is level-triggered: re-running `decide` on the same inputs changes nothing.
import {
  handleLeaseReply,
  holderLeaseMs,
  initialLeaseClient,
  type LeaseAsk,
  type LeaseIdentity,
  leaseConfirms,
  leaseRequestTimedOut,
  leaseValid,
  markUnreachable,
  promiseMs,
  disownClaim,
  releaseLease,
  releaseToResend,
  requestLease,
} from './arbitrator-lease.ts';
import { advanceJob, type Job, type Step, stepsMax } from './job.ts';
import { countAction, initialMaxloop, resetMaxloop } from './maxloop.ts';
import {
  compareData,
  extendHistory,
  formatGeneration,
  type Generation,
  headOf,
  historyMax,
  nextGeneration,
  sameGeneration,
  wouldLoseWrites,
} from './mirror-data.ts';
import {
  type Candidate,
  type ElectionResult,
  electPrimary,
  eligible,
  splitBrainSurvivor,
} from './mirror-election.ts';
import {
  aloneToPrimSteps,
  demoteSteps,
  enterPrimaryFromWaitSteps,
  enterSecondSteps,
  exitingAloneSteps,
  failoverOffSteps,
  failoverSteps,
  log,
  primToAloneSteps,
  restartSteps,
  startSteps,
  stopSteps,
  stopWaitSteps,
  swapInSteps,
  swapOutSteps,
  reachStopSteps,
} from './mirror-steps.ts';
import type {
  AttachmentRef,
  CommandOptions,
  Effect,
  MirrorAction,
  MirrorAdvert,
  MirrorCore,
  MirrorEvent,
  MirrorJob,
  MirrorPersisted,
  MirrorSettings,
  MirrorStep,
  MirrorVerb,
  Origin,
  ReplicationCommand,
  StartIntent,
} from './mirror-types.ts';
import type { Readiness } from './states.ts';

export type * from './mirror-types.ts';

interface Outcome {
  accepted: boolean;
  message: string;
}

export interface MirrorStepResult {
  core: MirrorCore;
  actions: MirrorAction[];
  /** For a command: whether it was accepted, and why not. */
  accepted: boolean;
  message: string;
}

const component = 'heart';
/** Decisions that start a job, and jobs that end, settle within this many rounds per event. */
const settleRoundsMax = 8;

export function initialPersisted(): MirrorPersisted {
  return { uptodate: false, lastPrim: false, reintegrating: false, history: [], peerNeedsFullsync: false };
}

function assertPersisted(persisted: MirrorPersisted): void {
  if (persisted.history.length > historyMax) throw new Error('persisted history too long');
  if (persisted.reintegrating && persisted.uptodate) {
    throw new Error('a node cannot be up to date while its reintegration is unfinished');
  }
}

/** The core of a daemon that just started: STOP, with what was persisted. */
export function initialMirrorCore(
  nowMs: number,
  incarnation: number,
  persisted: MirrorPersisted = initialPersisted(),
  failover: 'on' | 'off' = 'on',
): MirrorCore {
  if (!Number.isInteger(incarnation) || incarnation < 1)
    throw new Error('incarnation must be a positive integer');
  assertPersisted(persisted);
  return {
    state: 'STOP',
    readiness: 'NotReady',
    activeClasses: [],
    waitStatus: { status: 'clear' },
    blockingRule: null,
    incarnation,
    job: null,
    queued: null,
    maxloop: initialMaxloop(nowMs),
    lastFailure: null,
    persisted,
    failover,
    intent: null,
    fullsync: false,
    peer: { status: 'init' },
    promiseFromMs: null,
    primary: false,
    vip: false,
    replication: { role: 'none' },
    secondaryOf: null,
    secondaryTenure: null,
    tenure: 0,
    confirmedSecondary: null,
    confirmedBy: null,
    attach: 0,
    dropped: null,
    served: null,
    handover: false,
    swapNosync: false,
    reintegratedEarly: false,
    pendingResync: null,
    secondaryLost: false,
    swapRequest: null,
    autoSwapFor: null,
    failoverOffHold: false,
    hold: null,
    lease: initialLeaseClient(),
    claim: null,
    demotePending: false,
    lastAuthorityMs: null,
    splitBrain: null,
    remoteLogged: 'UNKNOWN',
  };
}

// ---------------------------------------------------------------------------------------------
// Reading the core

/** What this node advertises in its heartbeats now. */
/**
 * What this node advertises in its heartbeats at `nowMs` (its clock, the send time). Past its
 * authority a primary is fenced by its deadline even if the daemon has not run since (frozen):
 * it no longer claims the primary role, so a stale claim never confuses its peer.
 */
export function advertOf(core: MirrorCore, settings: MirrorSettings, nowMs: number): MirrorAdvert {
  const until = core.primary ? authorityUntilMs(core, settings) : null;
  const primary = core.primary && (until === null || nowMs < until);
  return {
    node: settings.node,
    incarnation: core.incarnation,
    state: core.state,
    readiness: core.readiness,
    primary,
    uptodate: core.persisted.uptodate,
    lastPrim: core.persisted.lastPrim,
    reintegrating: core.persisted.reintegrating,
    history: core.persisted.history,
    intent: core.state === 'WAIT' ? core.intent : null,
    electing: core.state === 'WAIT' && core.job === null && core.waitStatus.status === 'clear',
    secondaryOf: core.state === 'SECOND' ? core.secondaryOf : null,
    secondaryTenure: core.state === 'SECOND' ? core.secondaryTenure : null,
    tenure: core.primary ? core.tenure : 0,
    confirmedSecondary: core.primary ? core.confirmedSecondary : null,
    attach: core.state === 'SECOND' ? core.attach : 0,
    dropped: core.primary ? core.dropped : null,
    handover: core.handover,
    swapRequest: core.swapRequest !== null && core.state === 'SECOND',
    fullsyncPeer: core.primary && core.persisted.peerNeedsFullsync,
  };
}

/** rfs.uptodate as this node knows it now. */
export function isUptodate(core: MirrorCore): boolean {
  if (core.primary) return true;
  if (core.state === 'SECOND' && core.readiness === 'Ready') return true;
  return core.persisted.uptodate;
}

/** When this node may act as primary until, on its clock; null: no limit (no arbitrator). */
export function authorityUntilMs(core: MirrorCore, settings: MirrorSettings): number | null {
  const timing = settings.arbitrator;
  if (timing === null) return null;
  const leaseUntil = core.lease.grant?.validUntilMs ?? Number.NEGATIVE_INFINITY;
  const promiseUntil =
    core.promiseFromMs === null
      ? Number.NEGATIVE_INFINITY
      : core.promiseFromMs + promiseMs(settings.heartbeatTimeoutMs, timing);
  return Math.max(leaseUntil, promiseUntil);
}

/**
 * The next time, after `nowMs`, the core must be ticked: the end of authority, a lease renewal,
 * a request or release to send again. Null: nothing is due (no arbitrator, or nothing pending).
 */
export function nextDeadlineMs(core: MirrorCore, settings: MirrorSettings, nowMs: number): number | null {
  const timing = settings.arbitrator;
  if (timing === null) return null;
  const deadlines: number[] = [];
  const lease = core.lease;
  if (core.primary) {
    const until = authorityUntilMs(core, settings);
    if (until !== null && Number.isFinite(until)) deadlines.push(until);
    if (lease.grant !== null && lease.pending === null && core.claim === null) {
      deadlines.push(lease.grant.validUntilMs - holderLeaseMs(timing) + timing.renewMs);
    }
  }
  if (lease.pending !== null) deadlines.push(lease.pending.sentAtMs + timing.retryMs);
  else if (lease.refusal !== null && (core.claim !== null || dataHold(core))) {
    deadlines.push(lease.refusal.atMs + timing.retryMs);
  } else if (dataHold(core)) {
    deadlines.push(nowMs + timing.retryMs);
  }
  if (lease.releasing !== null) deadlines.push(lease.releasing.sentAtMs + timing.retryMs);
  let next: number | null = null;
  for (const deadline of deadlines) {
    if (deadline > nowMs && (next === null || deadline < next)) next = deadline;
  }
  return next;
}

function identity(core: MirrorCore, settings: MirrorSettings): LeaseIdentity {
  return { module: settings.module, node: settings.node, incarnation: core.incarnation };
}

function candidateOf(
  node: string,
  data: { history: Generation[]; reintegrating: boolean; lastPrim: boolean; uptodate: boolean },
): Candidate {
  return {
    node,
    history: data.history,
    reintegrating: data.reintegrating,
    lastPrim: data.lastPrim,
    uptodate: data.uptodate,
  };
}

function peerAdvert(core: MirrorCore): MirrorAdvert | null {
  return core.peer.status === 'up' ? core.peer.advert : null;
}

function describeOrigin(origin: Origin): string {
  return origin.kind === 'rule' ? `from failover rule ${origin.rule}` : `called by ${origin.who}`;
}

// ---------------------------------------------------------------------------------------------
// Mutable working context of one event. The core stays immutable from the caller's view: the
// context starts from a shallow copy and every change replaces fields.

interface Context {
  core: MirrorCore;
  actions: MirrorAction[];
  settings: MirrorSettings;
  nowMs: number;
}

function emit(ctx: Context, action: MirrorAction): void {
  ctx.actions.push(action);
}

function logE(ctx: Context, level: 'U' | 'E' | 'C' | 'I' | 'S' | 'D', message: string): void {
  emit(ctx, { type: 'log', level, component, message });
}

function setPersisted(ctx: Context, change: Partial<MirrorPersisted>): void {
  const persisted = { ...ctx.core.persisted, ...change };
  assertPersisted(persisted);
  const before = ctx.core.persisted;
  const same =
    before.uptodate === persisted.uptodate &&
    before.lastPrim === persisted.lastPrim &&
    before.reintegrating === persisted.reintegrating &&
    before.peerNeedsFullsync === persisted.peerNeedsFullsync &&
    before.history === persisted.history;
  if (same) return;
  ctx.core = { ...ctx.core, persisted };
  emit(ctx, { type: 'persist' });
}

function setReplication(ctx: Context, command: ReplicationCommand): void {
  const current = ctx.core.replication;
  if (JSON.stringify(current) === JSON.stringify(command)) return;
  ctx.core = { ...ctx.core, replication: command };
  emit(ctx, { type: 'replication', command });
}

/** Runs a one-step job through job.ts so states and wait rules look exactly as elsewhere. */
function runPlainStep(
  ctx: Context,
  step: Step,
  scriptRunning: boolean,
): { held: boolean; scriptRunning: boolean } {
  const job: Job = { verb: 'step', steps: [step], index: 0, scriptRunning };
  const advanced = advanceJob(ctx.core, job, component);
  ctx.core = advanced.host;
  ctx.actions.push(...advanced.actions);
  if (advanced.job === null) return { held: false, scriptRunning: false };
  return { held: true, scriptRunning: advanced.job.scriptRunning };
}

function setReadiness(ctx: Context, readiness: Readiness): void {
  runPlainStep(ctx, { kind: 'state', state: ctx.core.state, readiness }, false);
}

// ---------------------------------------------------------------------------------------------
// Effects of job steps

function leaseClaimFor(ctx: Context): Generation {
  const advert = peerAdvert(ctx.core);
  return nextGeneration(ctx.settings.node, ctx.core.persisted.history, advert?.history ?? null);
}

function emitAuthority(ctx: Context): void {
  if (!ctx.core.primary) return;
  const until = authorityUntilMs(ctx.core, ctx.settings);
  if (until === null || !Number.isFinite(until)) return;
  if (ctx.core.lastAuthorityMs === until) return;
  ctx.core = { ...ctx.core, lastAuthorityMs: until };
  emit(ctx, { type: 'authority', untilMs: until });
}

function hasAuthority(ctx: Context): boolean {
  const until = authorityUntilMs(ctx.core, ctx.settings);
  return until === null || ctx.nowMs < until;
}

/** Returns false when the job must not go on (the effect found it unsafe). */
function applyEffect(ctx: Context, effect: Effect): boolean {
  const core = ctx.core;
  switch (effect.type) {
    case 'intent':
      ctx.core = {
        ...core,
        intent: effect.intent,
        fullsync: effect.fullsync,
        failoverOffHold: effect.failoverOffHold,
        hold: null,
      };
      return true;
    case 'primaryOn': {
      if (core.primary) throw new Error('primaryOn while already primary');
      let claim = core.claim;
      if (ctx.settings.arbitrator !== null) {
        // Becoming primary needs a grant that recorded the generation we are about to write.
        if (claim === null || !leaseConfirms(core.lease, claim, ctx.nowMs)) {
          logE(ctx, 'E', 'Primary role not taken: the arbitrator lease is no longer valid');
          return false;
        }
      } else {
        claim = leaseClaimFor(ctx);
      }
      const forced = core.intent === 'primforce';
      // From SECOND (failover, swap): stop applying the old primary's stream first.
      if (core.replication.role === 'secondary') setReplication(ctx, { role: 'none' });
      setPersisted(ctx, {
        history: extendHistory(core.persisted.history, claim),
        uptodate: effect.target === 'ALONE',
        lastPrim: true,
        reintegrating: false,
        peerNeedsFullsync:
          core.persisted.peerNeedsFullsync || forced || (core.intent === 'prim' && core.fullsync),
      });
      ctx.core = {
        ...ctx.core,
        primary: true,
        tenure: ctx.core.tenure + 1,
        claim: null,
        secondaryOf: null,
        secondaryTenure: null,
        confirmedBy: null,
        confirmedSecondary: null,
        dropped: null,
        served: null,
        handover: false,
        hold: null,
        failoverOffHold: false,
        swapRequest: null,
        splitBrain: null,
        lastAuthorityMs: null,
      };
      logE(ctx, 'I', `Primary of data generation ${formatGeneration(claim)}`);
      emitAuthority(ctx);
      return true;
    }
    case 'vipSet':
      if (!core.primary) throw new Error('VIP set on a node that is not primary');
      if (!hasAuthority(ctx)) return false;
      if (!core.vip) {
        ctx.core = { ...core, vip: true };
        emit(ctx, { type: 'vip', op: 'set' });
      }
      return true;
    case 'replicationPrimary': {
      const generation = headOf(core.persisted.history);
      if (generation === null || !core.primary)
        throw new Error('replication as primary without a generation');
      setReplication(ctx, {
        role: 'primary',
        generation,
        secondary: null,
        fullsync: core.persisted.peerNeedsFullsync,
      });
      return true;
    }
    case 'fence':
      if (core.vip) {
        ctx.core = { ...ctx.core, vip: false };
        emit(ctx, { type: 'vip', op: 'unset' });
      }
      if (ctx.core.replication.role === 'primary') setReplication(ctx, { role: 'none' });
      return true;
    case 'primaryOff': {
      if (!core.primary) return true;
      if (core.vip) throw new Error('primary role released before the VIP');
      const claimPending = core.claim !== null;
      setPersisted(ctx, {
        // Alone with a committed generation: nobody else has newer data. With a confirmed
        // secondary, or a generation not yet confirmed by the arbitrator, the peer may take over.
        uptodate: core.confirmedSecondary === null && !claimPending,
        lastPrim: true,
      });
      let lease = core.lease;
      if (ctx.settings.arbitrator !== null && (lease.grant !== null || lease.pending !== null)) {
        const released = releaseLease(lease, identity(core, ctx.settings), core.claim, ctx.nowMs);
        lease = released.client;
        emit(ctx, { type: 'leaseRelease', release: released.release });
      }
      ctx.core = {
        ...ctx.core,
        primary: false,
        lease,
        claim: null,
        confirmedSecondary: null,
        served: null,
        handover: effect.handover,
        demotePending: false,
        lastAuthorityMs: null,
        splitBrain: null,
      };
      return true;
    }
    case 'aloneGeneration': {
      // The secondary is gone: what we write from now on is not on the peer. A new generation
      // marks it; with an arbitrator, writes wait until the arbitrator has recorded it.
      const claim = leaseClaimFor(ctx);
      const advert = peerAdvert(core);
      // The secondary we served, or one still advertising itself ours, is stale from now on: it
      // must reintegrate again before it counts, whatever its advert says meanwhile.
      const dropped =
        core.served ??
        (advert !== null && advert.state === 'SECOND' && advert.secondaryOf === core.incarnation
          ? { incarnation: advert.incarnation, attach: advert.attach }
          : core.dropped);
      ctx.core = { ...core, confirmedSecondary: null, claim, dropped, served: null, secondaryLost: false };
      setPersisted(ctx, { uptodate: false });
      if (ctx.settings.arbitrator === null) commitAloneGeneration(ctx);
      // Asked at once: writes are blocked until the grant, the scripts can run meanwhile.
      else ensureLease(ctx, claim, false, false);
      return true;
    }
    case 'confirmSecondary':
      // Persisted before the peer learns it is confirmed: from then on it may take over, so this
      // node must no longer believe, after a crash, that it alone has the newest data.
      setPersisted(ctx, { uptodate: false, peerNeedsFullsync: false });
      ctx.core = { ...ctx.core, confirmedSecondary: effect.secondary };
      logE(ctx, 'E', `Remote node ${ctx.settings.peerNode} is SECOND up to date: replication in sync`);
      return true;
    case 'secondaryOn': {
      setPersisted(ctx, { uptodate: false, lastPrim: false });
      ctx.core = {
        ...ctx.core,
        secondaryOf: null,
        secondaryTenure: null,
        confirmedBy: null,
        handover: false,
      };
      if (effect.primary !== null && effect.primaryTenure !== null && effect.primaryHistory !== null) {
        attachToPrimary(
          ctx,
          { incarnation: effect.primary, tenure: effect.primaryTenure },
          effect.primaryHistory,
          effect.fullsync,
          effect.reintegrate,
        );
      } else {
        // Swapped out: the peer takes the primary role, then we attach to it.
        ctx.core = { ...ctx.core, handover: true, swapNosync: !effect.reintegrate };
      }
      return true;
    }
    case 'secondaryOff':
      if (core.replication.role === 'secondary') setReplication(ctx, { role: 'none' });
      if (core.state === 'SECOND' || core.secondaryOf !== null || core.confirmedBy !== null) {
        setPersisted(ctx, { uptodate: false, lastPrim: false });
      }
      ctx.core = {
        ...ctx.core,
        secondaryOf: null,
        secondaryTenure: null,
        confirmedBy: null,
        swapRequest: null,
        handover: false,
        reintegratedEarly: false,
      };
      return true;
    case 'stopped':
      ctx.core = {
        ...core,
        intent: null,
        hold: null,
        failoverOffHold: false,
        fullsync: false,
        swapRequest: null,
        handover: false,
        claim: null,
        demotePending: false,
        splitBrain: null,
      };
      return true;
  }
}

function commitAloneGeneration(ctx: Context): void {
  const claim = ctx.core.claim;
  if (claim === null) throw new Error('no generation to commit');
  setPersisted(ctx, { history: extendHistory(ctx.core.persisted.history, claim), uptodate: true });
  ctx.core = { ...ctx.core, claim: null };
  logE(ctx, 'I', `Primary alone: data generation ${formatGeneration(claim)}`);
  setReplication(ctx, {
    role: 'primary',
    generation: claim,
    secondary: null,
    fullsync: ctx.core.persisted.peerNeedsFullsync,
  });
}

/** Starts replicating from `primary`; keeps aside local data the reintegration would overwrite. */
function attachToPrimary(
  ctx: Context,
  primary: { incarnation: number; tenure: number },
  primaryHistory: Generation[],
  fullsync: boolean,
  reintegrate: boolean,
): void {
  const mine = ctx.core.persisted.history;
  if (wouldLoseWrites(mine, primaryHistory)) {
    const head = headOf(mine);
    const reason =
      `data of generation ${formatGeneration(head)} on ${ctx.settings.node} is not on ` +
      `${ctx.settings.peerNode} (${compareData(mine, primaryHistory)}): kept aside before reintegration`;
    emit(ctx, { type: 'keepAside', generation: head, reason });
    logE(ctx, 'C', `Data kept aside: ${reason}`);
    // The data kept aside no longer counts as this node's: it must reintegrate fully.
    fullsync = true;
    reintegrate = true;
  }
  // From here the local data is being rewritten: inconsistent until the reintegration ends.
  if (reintegrate) setPersisted(ctx, { reintegrating: true });
  ctx.core = {
    ...ctx.core,
    secondaryOf: primary.incarnation,
    secondaryTenure: primary.tenure,
    attach: ctx.core.attach + 1,
    handover: false,
    swapNosync: false,
    reintegratedEarly: false,
  };
  setReplication(ctx, {
    role: 'secondary',
    primary: primary.incarnation,
    attach: ctx.core.attach,
    fullsync: fullsync || ctx.core.fullsync,
    reintegrate,
  });
  // Without <rfs> there is nothing to copy: in sync as soon as the transition is over.
  if (!ctx.settings.replication) ctx.core = { ...ctx.core, reintegratedEarly: true };
}

function finishReintegration(ctx: Context): void {
  ctx.core = { ...ctx.core, reintegratedEarly: false };
  if (ctx.core.state !== 'SECOND' || ctx.core.secondaryOf === null) return;
  setPersisted(ctx, { reintegrating: false });
  ctx.core = { ...ctx.core, fullsync: false };
  if (ctx.core.readiness !== 'Ready') {
    logE(ctx, 'E', 'Reintegration done');
    setReadiness(ctx, 'Ready');
  }
}

// ---------------------------------------------------------------------------------------------
// The job walker

function startJob(ctx: Context, verb: string, steps: MirrorStep[]): void {
  if (ctx.core.job !== null) throw new Error(`job ${verb} started while ${ctx.core.job.verb} runs`);
  if (steps.length > stepsMax) throw new Error(`job ${verb}: ${steps.length} steps exceed ${stepsMax}`);
  const filtered = ctx.settings.scriptsEnabled ? steps : steps.filter((step) => step.kind !== 'script');
  ctx.core = { ...ctx.core, job: { verb, steps: filtered, index: 0, scriptRunning: false } };
}

/** Carries the job out until it needs the outside world or ends. */
function advance(ctx: Context): void {
  for (let guard = 0; guard <= stepsMax; guard += 1) {
    const job = ctx.core.job;
    if (job === null) return;
    const step = job.steps[job.index];
    if (step === undefined) {
      ctx.core = { ...ctx.core, job: null };
      return;
    }
    if (step.kind === 'effect') {
      const ok = applyEffect(ctx, step.effect);
      if (!ok) {
        abortToWait(ctx, job);
        return;
      }
      ctx.core = { ...ctx.core, job: { ...job, index: job.index + 1 } };
      continue;
    }
    const result = runPlainStep(ctx, step, job.scriptRunning);
    if (result.held) {
      ctx.core = { ...ctx.core, job: { ...job, scriptRunning: result.scriptRunning } };
      return;
    }
    ctx.core = { ...ctx.core, job: { ...job, index: job.index + 1, scriptRunning: false } };
  }
  throw new Error(`job ${ctx.core.job?.verb} did not settle within ${stepsMax} steps`);
}

/** A job that found itself unsafe to go on (no authority): back to WAIT through the stop scripts. */
function abortToWait(ctx: Context, job: MirrorJob): void {
  ctx.core = { ...ctx.core, job: null, demotePending: false };
  logE(ctx, 'E', `Transition ${job.verb} aborted: back to WAIT`);
  startJob(ctx, 'demote', ctx.core.primary ? demoteSteps(ctx.core.state) : stopWaitSteps(ctx.core.state));
  advance(ctx);
}

function scriptFinishedInJob(job: MirrorJob, script: string): MirrorJob {
  const step = job.steps[job.index];
  if (step?.kind !== 'script' || step.script !== script || !job.scriptRunning) {
    throw new Error(`script ${script} finished but job ${job.verb} was not running it`);
  }
  return { ...job, index: job.index + 1, scriptRunning: false };
}

// ---------------------------------------------------------------------------------------------
// Commands

function planCommand(core: MirrorCore, verb: MirrorVerb, options: CommandOptions): MirrorStep[] | string {
  switch (verb) {
    case 'start':
    case 'prim':
    case 'second':
    case 'primforce': {
      // A node held in WAIT (NotReady), e.g. after failover="off" (M10), is promoted by `prim`.
      const held = core.state === 'WAIT' && core.readiness === 'NotReady' && core.job === null;
      const fromHold = held && (verb === 'prim' || verb === 'primforce');
      if (core.state !== 'STOP' && !fromHold) {
        return `${verb} is not possible in state ${core.state} (${core.readiness})`;
      }
      const advert = peerAdvert(core);
      if (verb === 'prim' && core.persisted.reintegrating) {
        return (
          'Data may be inconsistent for replicated directories (stopped during reintegration); ' +
          'if you are sure, run hakit primforce. Requested prim start aborted'
        );
      }
      if ((verb === 'prim' || verb === 'primforce') && advert?.primary) {
        return `${verb} refused: the remote node ${advert.node} is already primary`;
      }
      if (verb === 'second' && !(advert?.primary ?? false)) {
        return 'second refused: the remote node is not primary';
      }
      const intent: Extract<Effect, { type: 'intent' }> = {
        type: 'intent',
        intent: verb,
        fullsync: options.fullsync === true,
        failoverOffHold: false,
      };
      if (fromHold) return [{ kind: 'effect', effect: intent }, { kind: 'awaitWaitClear' }];
      return startSteps(intent);
    }
    case 'stop':
      return core.state === 'STOP' ? 'module is already stopped' : stopSteps(core.state, 'stop');
    case 'forcestop':
      return core.state === 'STOP' ? 'module is already stopped' : reachStopSteps('stop');
    case 'restart':
      if (
        (core.state === 'PRIM' || core.state === 'ALONE' || core.state === 'SECOND') &&
        core.readiness === 'Ready'
      ) {
        return restartSteps(core.state);
      }
      return `restart is not possible in state ${core.state} (${core.readiness})`;
    case 'stopstart':
      if (core.state === 'STOP') return 'stopstart is not possible in state STOP';
      return [
        ...stopSteps(core.state, 'stopstart'),
        log('U', 'Action start called automatically'),
        ...startSteps({ type: 'intent', intent: 'start', fullsync: false, failoverOffHold: false }),
      ];
    case 'wait':
      if (core.state === 'PRIM' || core.state === 'ALONE' || core.state === 'SECOND')
        return stopWaitSteps(core.state);
      return `wait is not possible in state ${core.state}`;
    case 'swap':
      return 'swap';
  }
}

/** `swap`: the primary starts it; a secondary asks its primary through its advert. */
function swapCommand(
  ctx: Context,
  options: CommandOptions,
  origin: Origin,
): 'started' | 'requested' | 'refused' {
  const core = ctx.core;
  const advert = peerAdvert(core);
  if (advert === null) return 'refused';
  if (
    core.state === 'PRIM' &&
    core.readiness === 'Ready' &&
    advert.state === 'SECOND' &&
    advert.readiness === 'Ready' &&
    core.confirmedSecondary === advert.incarnation
  ) {
    logE(ctx, 'U', `Action swap ${describeOrigin(origin)}`);
    ctx.core = { ...ctx.core, autoSwapFor: advert.incarnation };
    startJob(
      ctx,
      'swap',
      swapOutSteps(origin.kind === 'rule' ? origin.rule : 'admin', options.nosync === true),
    );
    return 'started';
  }
  if (
    core.state === 'SECOND' &&
    core.readiness === 'Ready' &&
    advert.state === 'PRIM' &&
    advert.readiness === 'Ready' &&
    core.confirmedBy === advert.incarnation
  ) {
    logE(ctx, 'U', `Action swap ${describeOrigin(origin)} (asked to the primary)`);
    ctx.core = { ...ctx.core, swapRequest: { nosync: options.nosync === true, origin } };
    return 'requested';
  }
  return 'refused';
}

function handleCommand(ctx: Context, event: Extract<MirrorEvent, { type: 'command' }>): Outcome {
  let verb = event.verb;
  let origin = event.origin;
  const options = event.options ?? {};
  let maxloop = ctx.core.maxloop;
  if (event.identity === undefined) {
    maxloop = resetMaxloop(event.nowMs);
  } else {
    const counted = countAction(maxloop, ctx.settings, event.nowMs);
    maxloop = counted.state;
    if (counted.exceeded && verb !== 'stop' && verb !== 'forcestop') {
      logE(
        ctx,
        'E',
        `Action ${verb} ${describeOrigin(origin)} refused: maxloop reached (${counted.count} actions within loop_interval)`,
      );
      verb = 'stop';
      origin = { kind: 'caller', who: 'maxloop' };
    }
  }
  ctx.core = { ...ctx.core, maxloop };
  const refuse = (message: string): Outcome => ({ accepted: false, message });
  const isStop = verb === 'stop' || verb === 'forcestop';
  const isStart = verb === 'start' || verb === 'prim' || verb === 'second' || verb === 'primforce';
  const job = ctx.core.job;
  if (job !== null) {
    if (!isStop && !isStart) return refuse(`module is busy (${job.verb} in progress)`);
    const stopping = job.verb === 'stop' || job.verb === 'forcestop';
    if (isStart && !stopping) return refuse(`module is already starting (${job.verb} in progress)`);
    const queued = ctx.core.queued;
    if (queued !== null && !isStop && (queued.verb === 'stop' || queued.verb === 'forcestop')) {
      return refuse('a stop is already queued');
    }
    ctx.core = { ...ctx.core, queued: { verb, origin, options } };
    logE(ctx, 'U', `Action ${verb} ${describeOrigin(origin)} (queued)`);
    if (verb === 'forcestop') emit(ctx, { type: 'killScript' });
    emit(ctx, { type: 'persist' });
    return { accepted: true, message: `${verb} queued after ${job.verb}` };
  }
  if (verb === 'swap') {
    const outcome = swapCommand(ctx, options, origin);
    if (outcome === 'refused')
      return refuse('swap needs this node and its peer in PRIM (Ready) and SECOND (Ready)');
    settle(ctx);
    emit(ctx, { type: 'persist' });
    return {
      accepted: true,
      message: outcome === 'started' ? 'swap accepted' : 'swap requested from the primary',
    };
  }
  const plan = planCommand(ctx.core, verb, options);
  if (typeof plan === 'string') {
    if (isStop && ctx.core.state === 'STOP') return { accepted: true, message: plan };
    return refuse(plan);
  }
  logE(ctx, 'U', `Action ${verb} ${describeOrigin(origin)}`);
  if (isStart) ctx.core = { ...ctx.core, lastFailure: null };
  if (verb === 'forcestop') emit(ctx, { type: 'killScript' });
  startJob(ctx, verb, plan);
  settle(ctx);
  emit(ctx, { type: 'persist' });
  return { accepted: true, message: `${verb} accepted` };
}

// ---------------------------------------------------------------------------------------------
// Decisions while resting

function holdWait(
  ctx: Context,
  readiness: Readiness,
  reason: string,
  messages: readonly string[] = [],
): void {
  if (ctx.core.hold !== reason) {
    ctx.core = { ...ctx.core, hold: reason };
    for (const message of messages) logE(ctx, 'E', message);
  }
  if (ctx.core.readiness !== readiness) setReadiness(ctx, readiness);
}

const notUptodateMessages = [
  'Data may be not uptodate for replicated directories (wait for the start of the remote server)',
  'Action wait from failover rule notuptodate_server',
  'If you are sure that this server has valid data, run hakit stop, then hakit prim',
];

const inconsistentMessages = [
  'Data may be inconsistent for replicated directories (stopped during reintegration)',
  'Action wait from failover rule notuptodate_server',
  'If you are sure that this server has valid data, run hakit stop, then hakit primforce',
];

type LeaseStatus = 'granted' | 'waiting' | 'refused';

/** Makes sure a grant recording `claim` is held or asked for; never more than one request in flight. */
function ensureLease(ctx: Context, claim: Generation, force: boolean, witness: boolean): LeaseStatus {
  const timing = ctx.settings.arbitrator;
  if (timing === null) return 'granted';
  let lease = ctx.core.lease;
  if (leaseConfirms(lease, claim, ctx.nowMs)) return 'granted';
  if (lease.pending !== null) {
    if (!leaseRequestTimedOut(lease, timing, ctx.nowMs)) return 'waiting';
    lease = markUnreachable(lease, ctx.nowMs);
    ctx.core = { ...ctx.core, lease };
  }
  if (lease.refusal !== null && ctx.nowMs < lease.refusal.atMs + timing.retryMs) return 'refused';
  const ask: LeaseAsk = { dataGeneration: headOf(ctx.core.persisted.history), claim, force, witness };
  const requested = requestLease(lease, identity(ctx.core, ctx.settings), ask, ctx.nowMs);
  ctx.core = { ...ctx.core, lease: requested.client };
  emit(ctx, { type: 'leaseRequest', request: requested.request });
  return lease.refusal !== null ? 'refused' : 'waiting';
}

/** Forgets a claim that will not be used, giving back the lease that may have recorded it. */
function dropClaim(ctx: Context): void {
  const core = ctx.core;
  if (core.claim === null || core.primary) return;
  let lease = core.lease;
  if (ctx.settings.arbitrator !== null && (lease.grant !== null || lease.pending !== null)) {
    const released = releaseLease(lease, identity(core, ctx.settings), core.claim, ctx.nowMs);
    lease = released.client;
    emit(ctx, { type: 'leaseRelease', release: released.release });
  }
  ctx.core = { ...ctx.core, claim: null, lease };
}

/**
 * Lease messages every node sends whatever its role: an unused claim is given back until
 * answered, and a claim of ours the arbitrator still registers though our persisted history
 * proves we never wrote under it (we crashed before using it, or now claim another counter) is
 * disowned, so the arbitrator falls back to the generation before it.
 */
function leaseUpkeep(ctx: Context): void {
  const timing = ctx.settings.arbitrator;
  if (timing === null) return;
  const refusal = ctx.core.lease.refusal;
  const registered = refusal?.registered ?? null;
  if (
    refusal?.reason === 'stale' &&
    registered !== null &&
    registered.node === ctx.settings.node &&
    !ctx.core.primary &&
    ctx.core.lease.releasing === null &&
    !ctx.core.persisted.history.some((generation) => sameGeneration(generation, registered))
  ) {
    const disowned = disownClaim(ctx.core.lease, identity(ctx.core, ctx.settings), registered, ctx.nowMs);
    ctx.core = { ...ctx.core, lease: { ...disowned.client, refusal: null } };
    logE(ctx, 'I', `Arbitrator: claim ${formatGeneration(registered)} was never written under: disowned`);
    emit(ctx, { type: 'leaseRelease', release: disowned.release });
    return;
  }
  const resend = releaseToResend(ctx.core.lease, identity(ctx.core, ctx.settings), timing, ctx.nowMs);
  if (resend !== null) {
    ctx.core = { ...ctx.core, lease: resend.client };
    emit(ctx, { type: 'leaseRelease', release: resend.release });
  }
}

/** Held in WAIT because of its data (not up to date, inconsistent). */
function dataHold(core: MirrorCore): boolean {
  return core.state === 'WAIT' && (core.hold === 'not up to date' || core.hold === 'data inconsistent');
}

/**
 * A node held for its data asks the arbitrator, now and then, what it registers: a request the
 * arbitrator can never grant (a witness without data or claim). The refusal names the registered
 * generation; if it is a claim of ours we never wrote under, leaseUpkeep disowns it, which may
 * be all the pair needs to go on (the other node is refused while it stands).
 */
function probeArbitrator(ctx: Context): void {
  const timing = ctx.settings.arbitrator;
  if (timing === null) return;
  let lease = ctx.core.lease;
  if (lease.pending !== null) {
    if (!leaseRequestTimedOut(lease, timing, ctx.nowMs)) return;
    lease = markUnreachable(lease, ctx.nowMs);
  }
  if (lease.refusal !== null && ctx.nowMs < lease.refusal.atMs + timing.retryMs) {
    ctx.core = { ...ctx.core, lease };
    return;
  }
  const ask: LeaseAsk = { dataGeneration: null, claim: null, force: false, witness: true };
  const requested = requestLease(lease, identity(ctx.core, ctx.settings), ask, ctx.nowMs);
  ctx.core = { ...ctx.core, lease: requested.client };
  emit(ctx, { type: 'leaseRequest', request: requested.request });
}

type RoleChoice =
  | { kind: 'hold'; readiness: Readiness; reason: string; messages?: readonly string[] }
  | { kind: 'primary'; target: 'ALONE' | 'PRIM'; force: boolean; witness: boolean; why: string }
  | { kind: 'secondary'; advert: MirrorAdvert }
  | { kind: 'abort'; message: string };

function primaryReady(advert: MirrorAdvert): boolean {
  return (
    advert.primary && (advert.state === 'ALONE' || advert.state === 'PRIM') && advert.readiness === 'Ready'
  );
}

function chooseRole(core: MirrorCore, settings: MirrorSettings): RoleChoice {
  const intent: StartIntent = core.intent ?? 'start';
  const peer = core.peer;
  const advert = peerAdvert(core);
  const me = candidateOf(settings.node, core.persisted);

  if (intent === 'second') {
    if (advert !== null && primaryReady(advert)) return { kind: 'secondary', advert };
    return { kind: 'hold', readiness: 'Transient', reason: 'waiting for the remote primary (second)' };
  }
  if (intent === 'prim' || intent === 'primforce') {
    if (advert?.primary) {
      return {
        kind: 'abort',
        message: `Requested ${intent} start aborted: the remote node is already primary`,
      };
    }
    if (
      advert !== null &&
      advert.state === 'WAIT' &&
      (advert.intent === 'prim' || advert.intent === 'primforce')
    ) {
      if (settings.peerNode < settings.node) {
        return { kind: 'hold', readiness: 'NotReady', reason: 'prim requested on both nodes' };
      }
    }
    return { kind: 'primary', target: 'ALONE', force: true, witness: false, why: intent };
  }

  // intent start
  if (peer.status === 'init') {
    return { kind: 'hold', readiness: 'Transient', reason: 'waiting for the heartbeats of the remote node' };
  }
  if (advert === null) {
    if (core.failoverOffHold) {
      return { kind: 'hold', readiness: 'NotReady', reason: 'Failover-off configured' };
    }
    if (core.persisted.reintegrating) {
      return {
        kind: 'hold',
        readiness: 'NotReady',
        reason: 'data inconsistent',
        messages: inconsistentMessages,
      };
    }
    if (core.persisted.uptodate && eligible(me)) {
      return {
        kind: 'primary',
        target: 'ALONE',
        force: false,
        witness: false,
        why: 'up to date, remote UNKNOWN',
      };
    }
    if (settings.arbitrator !== null && eligible(me)) {
      // The arbitrator knows the newest generation: it can vouch for our data.
      return { kind: 'primary', target: 'ALONE', force: false, witness: true, why: 'arbitrator witness' };
    }
    return { kind: 'hold', readiness: 'NotReady', reason: 'not up to date', messages: notUptodateMessages };
  }
  if (advert.primary) {
    if (primaryReady(advert)) return { kind: 'secondary', advert };
    return { kind: 'hold', readiness: 'Transient', reason: 'waiting for the remote primary to be ready' };
  }
  if (advert.state === 'SECOND' || advert.state === 'ALONE' || advert.state === 'PRIM') {
    return { kind: 'hold', readiness: 'Transient', reason: `waiting for the remote node (${advert.state})` };
  }
  if (advert.state === 'WAIT' && (advert.intent === 'prim' || advert.intent === 'primforce')) {
    return { kind: 'hold', readiness: 'Transient', reason: 'the remote node starts as primary' };
  }
  // The peer is STOP or WAIT: the election (M6), or a lone start (M4) when it cannot lead.
  const them = candidateOf(advert.node, advert);
  const result = electPrimary(me, them, settings.defaultPrimary);
  // An elected peer held NotReady (e.g. refused by the arbitrator) may never lead: with an
  // arbitrator, trying ourselves is safe (the lease is exclusive); without one we wait for it.
  const peerCanLead =
    advert.state === 'WAIT' &&
    advert.electing &&
    advert.intent !== 'second' &&
    (settings.arbitrator === null || advert.readiness === 'Transient');
  const peerJoins = advert.state === 'WAIT' && advert.electing;
  const order = compareData(me.history, them.history);
  if (result.winner === settings.node) {
    if (core.failoverOffHold && !peerJoins) {
      return { kind: 'hold', readiness: 'NotReady', reason: 'Failover-off configured' };
    }
    return {
      kind: 'primary',
      target: peerJoins ? 'PRIM' : 'ALONE',
      force: false,
      witness: false,
      why: `elected (${result.reason})`,
    };
  }
  if (result.winner === advert.node) {
    if (peerCanLead) {
      return {
        kind: 'hold',
        readiness: 'Transient',
        reason: `the remote node is elected primary (${result.reason})`,
      };
    }
    if (eligible(me) && !core.failoverOffHold) {
      if (order === 'equal' || order === 'newer') {
        return {
          kind: 'primary',
          target: 'ALONE',
          force: false,
          witness: false,
          why: 'remote node cannot start',
        };
      }
      if (settings.arbitrator !== null) {
        // Forked or older data and the elected peer cannot lead (refused by the arbitrator):
        // the arbitrator knows which generation was written last and grants only its owner.
        return { kind: 'primary', target: 'ALONE', force: false, witness: true, why: 'arbitrator witness' };
      }
    }
  }
  if (core.persisted.reintegrating) {
    return {
      kind: 'hold',
      readiness: 'NotReady',
      reason: 'data inconsistent',
      messages: inconsistentMessages,
    };
  }
  return { kind: 'hold', readiness: 'NotReady', reason: 'not up to date', messages: notUptodateMessages };
}

function decideWait(ctx: Context): void {
  // The wait rules first (M2, M3), through job.ts so the messages are the usual ones.
  const waited = runPlainStep(ctx, { kind: 'awaitWaitClear' }, false);
  if (waited.held) {
    dropClaim(ctx);
    return;
  }
  const choice = chooseRole(ctx.core, ctx.settings);
  switch (choice.kind) {
    case 'hold':
      dropClaim(ctx);
      holdWait(ctx, choice.readiness, choice.reason, choice.messages);
      if (dataHold(ctx.core)) probeArbitrator(ctx);
      return;
    case 'abort':
      dropClaim(ctx);
      logE(ctx, 'E', choice.message);
      startJob(ctx, 'stop', reachStopSteps('stop'));
      return;
    case 'secondary': {
      dropClaim(ctx);
      ctx.core = { ...ctx.core, hold: null };
      const fullsync = ctx.core.fullsync || choice.advert.fullsyncPeer;
      const primary = choice.advert;
      startJob(
        ctx,
        'second',
        enterSecondSteps(primary.incarnation, primary.tenure, primary.history, fullsync),
      );
      return;
    }
    case 'primary': {
      if (ctx.settings.arbitrator !== null) {
        const claim = ctx.core.claim ?? leaseClaimFor(ctx);
        ctx.core = { ...ctx.core, claim };
        const status = ensureLease(ctx, claim, choice.force, choice.witness);
        if (status === 'waiting') {
          holdWait(ctx, 'Transient', 'waiting for the arbitrator lease');
          return;
        }
        if (status === 'refused') {
          const refusal = ctx.core.lease.refusal;
          const message =
            refusal === null ? 'lease refused' : `Arbitrator refused the lease: ${refusal.message}`;
          holdWait(ctx, 'NotReady', message, [message]);
          return;
        }
      }
      ctx.core = { ...ctx.core, hold: null };
      logE(ctx, 'E', `Start as primary: ${choice.why}`);
      startJob(ctx, choice.target === 'PRIM' ? 'prim' : 'alone', enterPrimaryFromWaitSteps(choice.target));
      return;
    }
  }
}

/** Why the primary this SECOND replicates from is gone, or null while it is there. */
function primaryGone(core: MirrorCore): string | null {
  const peer = core.peer;
  if (peer.status === 'unknown') return 'no heartbeat';
  if (peer.status !== 'up') return null;
  if (peer.incarnation !== core.secondaryOf) return 'remote stop';
  // The primary left its role and took it again: another tenure, which we never attached to.
  if (peer.advert.primary && peer.advert.tenure !== core.secondaryTenure) return 'remote stop';
  if (!peer.advert.primary) return 'remote stop';
  return null;
}

/** Takes the primary role from SECOND, with a lease first when an arbitrator is configured. */
function promoteFromSecond(ctx: Context, verb: 'alone' | 'swap', steps: MirrorStep[], what: string): void {
  if (ctx.settings.arbitrator !== null) {
    const claim = ctx.core.claim ?? leaseClaimFor(ctx);
    ctx.core = { ...ctx.core, claim };
    const status = ensureLease(ctx, claim, false, false);
    if (status === 'waiting') return;
    if (status === 'refused') {
      const refusal = ctx.core.lease.refusal;
      logE(ctx, 'E', `${what} refused by the arbitrator: ${refusal?.message ?? 'lease refused'}`);
      dropClaim(ctx);
      startJob(ctx, 'wait', stopWaitSteps('SECOND'));
      return;
    }
  }
  startJob(ctx, verb, steps);
}

function decideSecond(ctx: Context): void {
  const core = ctx.core;
  const advert = peerAdvert(core);
  if (core.pendingResync !== null) {
    automaticWait(ctx, core.pendingResync);
    return;
  }
  if (core.reintegratedEarly && core.job === null) finishReintegration(ctx);
  if (core.secondaryOf === null) {
    // Swapped out: waiting for the peer to take the primary role.
    if (advert !== null && primaryReady(advert)) {
      attachToPrimary(
        ctx,
        { incarnation: advert.incarnation, tenure: advert.tenure },
        advert.history,
        advert.fullsyncPeer,
        !core.swapNosync,
      );
      if (ctx.core.reintegratedEarly) finishReintegration(ctx);
      return;
    }
    const swappingIn = advert !== null && (advert.state === 'SECOND' || advert.primary);
    if (!swappingIn) {
      logE(ctx, 'E', 'The remote node did not take the primary role: back to WAIT');
      startJob(ctx, 'wait', stopWaitSteps('SECOND'));
    }
    return;
  }
  const gone = primaryGone(core);
  if (gone !== null) {
    dropSwapRequest(ctx);
    const confirmed = core.confirmedBy === core.secondaryOf;
    if (
      advert !== null &&
      advert.handover &&
      advert.state === 'SECOND' &&
      core.readiness === 'Ready' &&
      confirmed
    ) {
      // M12: the primary released its role to us.
      promoteFromSecond(ctx, 'swap', swapInSteps(core.swapRequest !== null ? 'admin' : 'remote'), 'Swap');
      return;
    }
    if (core.readiness !== 'Ready') {
      // M11: data half reintegrated: never primary without primforce.
      logE(ctx, 'E', `Remote primary lost during reintegration (${gone}): data may be inconsistent`);
      startJob(ctx, 'wait', stopWaitSteps('SECOND'));
      return;
    }
    if (!confirmed) {
      logE(ctx, 'E', `Remote primary lost (${gone}) before it confirmed this node in sync`);
      startJob(ctx, 'wait', stopWaitSteps('SECOND'));
      return;
    }
    if (core.failover === 'off') {
      startJob(ctx, 'stopstart', failoverOffSteps());
      return;
    }
    promoteFromSecond(ctx, 'alone', failoverSteps(gone), 'Failover');
    return;
  }
  dropClaim(ctx);
  if (advert === null) return;
  // The primary is there.
  const dropped = advert.dropped;
  if (dropped !== null && dropped.incarnation === core.incarnation && dropped.attach === core.attach) {
    logE(ctx, 'E', `Remote node ${advert.node} continues without this node: resynchronising`);
    startJob(ctx, 'wait', stopWaitSteps('SECOND'));
    return;
  }
  if (advert.confirmedSecondary === core.incarnation && core.confirmedBy !== advert.incarnation) {
    if (core.readiness === 'Ready') {
      // Adopted only now: before the primary recorded us as in sync, our data could be older
      // than what it wrote meanwhile under the same generation.
      setPersisted(ctx, { history: advert.history.slice(-historyMax) });
      ctx.core = { ...ctx.core, confirmedBy: advert.incarnation };
      logE(
        ctx,
        'I',
        `In sync with ${advert.node}: data generation ${formatGeneration(headOf(advert.history))}`,
      );
    }
    return;
  }
  if (core.confirmedBy === advert.incarnation && advert.confirmedSecondary !== core.incarnation) {
    // The primary dropped us (it went ALONE): our data is behind from now on.
    logE(ctx, 'E', `Remote node ${advert.node} continues without this node: resynchronising`);
    startJob(ctx, 'wait', stopWaitSteps('SECOND'));
  }
}

function sameAttachment(a: AttachmentRef | null, b: AttachmentRef | null): boolean {
  if (a === null || b === null) return a === b;
  return a.incarnation === b.incarnation && a.attach === b.attach;
}

function dropSwapRequest(ctx: Context): void {
  if (ctx.core.swapRequest !== null && ctx.core.state !== 'SECOND')
    ctx.core = { ...ctx.core, swapRequest: null };
}

/** The peer that a PRIM without confirmed secondary is waiting for: it is about to join. */
function joining(advert: MirrorAdvert, incarnation: number, tenure: number): boolean {
  if (advert.state === 'WAIT') return advert.electing && !advert.primary;
  if (advert.state === 'SECOND') {
    return (
      advert.secondaryOf === null || (advert.secondaryOf === incarnation && advert.secondaryTenure === tenure)
    );
  }
  return false;
}

function decidePrimary(ctx: Context): void {
  const advert = peerAdvert(ctx.core);
  const settings = ctx.settings;
  if (ctx.core.claim !== null) {
    // PRIM -> ALONE with an arbitrator: writes resume once the new generation is recorded.
    const status = ensureLease(ctx, ctx.core.claim, false, false);
    if (status === 'granted') commitAloneGeneration(ctx);
  }
  if (advert !== null && advert.primary && (advert.state === 'ALONE' || advert.state === 'PRIM')) {
    // Both primary: a split brain is healing (2.6).
    const me = candidateOf(settings.node, ctx.core.persisted);
    const them = candidateOf(advert.node, advert);
    // With an arbitrator a valid lease is exclusive: its holder is the primary, whatever the
    // other advert says (a frozen node's stale claim, an administrator's prim).
    const survivor: ElectionResult = leaseValid(ctx.core.lease, ctx.nowMs)
      ? { winner: settings.node, reason: 'holds the arbitrator lease' }
      : splitBrainSurvivor(me, them);
    if (survivor.winner === settings.node) {
      if (ctx.core.splitBrain !== 'staying') {
        logE(ctx, 'E', `Split brain recovery: staying alone (${survivor.reason})`);
        ctx.core = { ...ctx.core, splitBrain: 'staying' };
        // The other side may have announced the VIP during the split: clients and switches that
        // followed it are sent back here (the adapter re-announces an address it already holds).
        if (ctx.core.vip) emit(ctx, { type: 'vip', op: 'set' });
      }
      if (ctx.core.state === 'PRIM') startJob(ctx, 'alone', primToAloneSteps('split brain'));
      return;
    }
    const from = ctx.core.state === 'PRIM' ? 'PRIM' : 'ALONE';
    startJob(ctx, 'second', exitingAloneSteps(from, advert.incarnation, advert.tenure, advert.history));
    return;
  }
  const core = ctx.core;
  const dropped = core.dropped;
  const syncing =
    advert !== null &&
    advert.state === 'SECOND' &&
    advert.secondaryOf === core.incarnation &&
    advert.secondaryTenure === core.tenure &&
    !(dropped !== null && dropped.incarnation === advert.incarnation && dropped.attach === advert.attach)
      ? advert
      : null;
  const wanted: AttachmentRef | null =
    syncing === null ? null : { incarnation: syncing.incarnation, attach: syncing.attach };
  const confirmed = core.confirmedSecondary;
  if (core.state === 'PRIM') {
    // PRIM keeps its secondary, or goes ALONE (M8) under a new generation. Never does it stop
    // replicating to a secondary in sync under the same generation: the secondary and the
    // arbitrator would believe it holds every write of that generation.
    let gone: string | null = null;
    if (core.secondaryLost) gone = 'secondary lost';
    else if (core.peer.status === 'unknown') gone = 'no heartbeat';
    else if (advert !== null) {
      const kept =
        confirmed !== null
          ? syncing !== null && advert.incarnation === confirmed && sameAttachment(core.served, wanted)
          : joining(advert, core.incarnation, core.tenure);
      if (!kept) gone = 'remote stop';
    }
    if (gone !== null) {
      startJob(ctx, 'alone', primToAloneSteps(gone));
      return;
    }
  }
  if (core.replication.role === 'primary' && core.claim === null && confirmed === null) {
    const served = core.served;
    if (!sameAttachment(served, wanted)) {
      // An attachment no longer served must reintegrate again before it counts.
      ctx.core = { ...ctx.core, served: wanted, dropped: served ?? ctx.core.dropped };
      setReplication(ctx, {
        ...core.replication,
        secondary: wanted,
        fullsync: core.persisted.peerNeedsFullsync,
      });
    }
  }
  if (core.state === 'ALONE') {
    if (syncing !== null && syncing.readiness === 'Ready' && core.claim === null) {
      startJob(ctx, 'prim', aloneToPrimSteps(syncing.incarnation));
    }
    return;
  }
  if (syncing === null) return;
  if (confirmed === null) {
    if (syncing.readiness === 'Ready') {
      startJob(ctx, 'confirm', [
        { kind: 'effect', effect: { type: 'confirmSecondary', secondary: syncing.incarnation } },
      ]);
    }
    return;
  }
  if (core.readiness !== 'Ready' || syncing.readiness !== 'Ready') return;
  const byDefault =
    settings.defaultPrimary.kind === 'node' &&
    settings.defaultPrimary.node === settings.peerNode &&
    core.autoSwapFor !== syncing.incarnation;
  if (syncing.swapRequest || byDefault) {
    // At most one automatic swap per secondary incarnation: a swap-in that keeps failing on the
    // peer cannot make the pair swap back and forth.
    ctx.core = { ...ctx.core, autoSwapFor: syncing.incarnation };
    startJob(ctx, 'swap', swapOutSteps(syncing.swapRequest ? 'remote' : 'defaultprim', false));
  }
}

/** The rest of this job gives the primary role up anyway: no need to replace it by a demotion. */
function releasesPrimary(job: MirrorJob): boolean {
  return job.steps
    .slice(job.index)
    .some((step) => step.kind === 'effect' && step.effect.type === 'primaryOff');
}

/** Lease upkeep of a primary: renewals, and the end of authority. */
function keepAuthority(ctx: Context): void {
  const timing = ctx.settings.arbitrator;
  if (timing === null || !ctx.core.primary) return;
  const until = authorityUntilMs(ctx.core, ctx.settings);
  if (until !== null && ctx.nowMs >= until) {
    // Fence now, whatever runs: the peer may be granted the lease from this moment on.
    applyEffect(ctx, { type: 'fence' });
    const job = ctx.core.job;
    if (job === null) {
      startJob(ctx, 'demote', demoteSteps(ctx.core.state));
    } else if (!ctx.core.demotePending && !releasesPrimary(job)) {
      logE(
        ctx,
        'C',
        'Primary authority expired (peer and arbitrator lost): demoting after the running script',
      );
      ctx.core = { ...ctx.core, demotePending: true };
    }
    return;
  }
  if (ctx.core.claim !== null) return;
  const head = headOf(ctx.core.persisted.history);
  if (head === null) throw new Error('primary without a data generation');
  let lease = ctx.core.lease;
  if (leaseRequestTimedOut(lease, timing, ctx.nowMs)) lease = markUnreachable(lease, ctx.nowMs);
  const renewAtMs =
    lease.grant === null ? ctx.nowMs : lease.grant.validUntilMs - holderLeaseMs(timing) + timing.renewMs;
  if (lease.pending === null && ctx.nowMs >= renewAtMs) {
    const ask: LeaseAsk = { dataGeneration: head, claim: head, force: false, witness: false };
    const requested = requestLease(lease, identity(ctx.core, ctx.settings), ask, ctx.nowMs);
    lease = requested.client;
    emit(ctx, { type: 'leaseRequest', request: requested.request });
  }
  ctx.core = { ...ctx.core, lease };
}

function decide(ctx: Context): void {
  if (ctx.core.job !== null) return;
  // Requests that only make sense in one state are forgotten once the node left it.
  if (ctx.core.pendingResync !== null && ctx.core.state !== 'SECOND')
    ctx.core = { ...ctx.core, pendingResync: null };
  if (ctx.core.secondaryLost && ctx.core.state !== 'PRIM') ctx.core = { ...ctx.core, secondaryLost: false };
  switch (ctx.core.state) {
    case 'STOP':
      dropClaim(ctx);
      return;
    case 'WAIT':
      decideWait(ctx);
      return;
    case 'ALONE':
    case 'PRIM':
      if (!ctx.core.primary) throw new Error(`${ctx.core.state} at rest without the primary role`);
      decidePrimary(ctx);
      return;
    case 'SECOND':
      decideSecond(ctx);
      return;
    case 'UP':
      throw new Error('a mirror module is never UP');
  }
}

/** Runs jobs, queued commands and decisions until nothing more happens for this event. */
function settle(ctx: Context): void {
  leaseUpkeep(ctx);
  keepAuthority(ctx);
  for (let round = 0; round < settleRoundsMax; round += 1) {
    advance(ctx);
    if (ctx.core.job !== null) return;
    const queued = ctx.core.queued;
    if (queued !== null) {
      ctx.core = { ...ctx.core, queued: null };
      const plan = planCommand(ctx.core, queued.verb, queued.options);
      if (typeof plan !== 'string') {
        logE(ctx, 'U', `Action ${queued.verb} ${describeOrigin(queued.origin)}`);
        startJob(ctx, queued.verb, plan);
        continue;
      }
    }
    decide(ctx);
    if (ctx.core.job === null) {
      keepAuthority(ctx);
      return;
    }
  }
  throw new Error(`mirror automaton did not settle within ${settleRoundsMax} rounds`);
}

// ---------------------------------------------------------------------------------------------
// Events

function describeRemote(core: MirrorCore): string {
  const peer = core.peer;
  if (peer.status === 'up') return `${peer.advert.state} ${peer.advert.readiness}`;
  return 'UNKNOWN';
}

function handlePeer(ctx: Context, event: Extract<MirrorEvent, { type: 'peer' }>): void {
  const view = event.view;
  if (view.status === 'up') {
    if (view.advert.node !== ctx.settings.peerNode)
      throw new Error(`advert of ${view.advert.node}, not of the peer`);
    if (view.advert.incarnation !== view.incarnation)
      throw new Error('advert and packet incarnations differ');
  }
  const promiseFromMs = view.status === 'up' ? view.promiseFromMs : ctx.core.promiseFromMs;
  ctx.core = { ...ctx.core, peer: view, promiseFromMs };
  const remote = describeRemote(ctx.core);
  if (remote !== ctx.core.remoteLogged) {
    ctx.core = { ...ctx.core, remoteLogged: remote };
    logE(ctx, 'E', `Remote state ${remote}`);
    emit(ctx, { type: 'resource', name: 'state.remote', value: remote.split(' ')[0] ?? 'UNKNOWN' });
  }
}

function handleScriptDone(ctx: Context, event: Extract<MirrorEvent, { type: 'scriptDone' }>): void {
  const job = ctx.core.job;
  if (job === null) throw new Error(`script ${event.script} finished with no job running`);
  const step = job.steps[job.index];
  const stage = step?.kind === 'script' ? step.stage : 'other';
  const failed = event.timedOut || event.exitCode !== 0;
  if (failed) {
    const why = event.timedOut ? 'timed out and was killed' : `exited with ${event.exitCode ?? 'a signal'}`;
    logE(ctx, stage === 'start' ? 'C' : event.timedOut ? 'E' : 'I', `Script ${event.script} ${why}`);
  }
  ctx.core = { ...ctx.core, job: scriptFinishedInJob(job, event.script) };
  if (ctx.core.demotePending) {
    // Authority ended during the job: already fenced; now the stop scripts.
    ctx.core = { ...ctx.core, job: null, demotePending: false, queued: null };
    startJob(ctx, 'demote', ctx.core.primary ? demoteSteps(ctx.core.state) : stopWaitSteps(ctx.core.state));
    settle(ctx);
    return;
  }
  const queued = ctx.core.queued;
  if (queued !== null && (queued.verb === 'stop' || queued.verb === 'forcestop')) {
    // A queued stop interrupts the running job at the next script boundary.
    ctx.core = { ...ctx.core, job: null, queued: null };
    const plan = planCommand(ctx.core, queued.verb, queued.options);
    if (typeof plan !== 'string') startJob(ctx, queued.verb, plan);
    settle(ctx);
    return;
  }
  if (failed && stage === 'start') {
    // A start script that fails leaves the application in an unknown state: stop everything and
    // try again; the identity makes repeated failures end in STOP through maxloop.
    ctx.core = { ...ctx.core, job: null, lastFailure: `${event.script} failed`, queued: null };
    handleCommand(ctx, {
      type: 'command',
      verb: 'stopstart',
      identity: event.script,
      origin: { kind: 'caller', who: event.script },
      nowMs: event.nowMs,
    });
    return;
  }
  settle(ctx);
}

function handleReintegration(ctx: Context, event: Extract<MirrorEvent, { type: 'reintegration' }>): void {
  const core = ctx.core;
  if (core.state !== 'SECOND' || core.replication.role !== 'secondary') {
    logE(ctx, 'I', `Reintegration ${event.outcome} ignored in state ${core.state}`);
    settle(ctx);
    return;
  }
  if (event.outcome === 'done') {
    if (core.job === null) finishReintegration(ctx);
    else ctx.core = { ...ctx.core, reintegratedEarly: true };
    settle(ctx);
    return;
  }
  emit(ctx, { type: 'resource', name: 'rfs.reintegre_failed', value: 'up' });
  logE(ctx, 'E', 'Reintegration failed');
  resynchronise(ctx, 'reintegre', { kind: 'caller', who: 'reintegre' });
}

/**
 * The replication layer needs this SECOND to start over (failed reintegration, lost track of its
 * data): a `wait` counted by maxloop, at once or, if a transition runs, as soon as it ends (it
 * must never be lost: the node would stay SECOND Transient for ever).
 */
function resynchronise(ctx: Context, identity: string, origin: Origin): void {
  ctx.core = { ...ctx.core, pendingResync: { identity, origin } };
  settle(ctx);
}

/** Carries out a pending resynchronisation: the `wait` of a rule, counted by maxloop. */
function automaticWait(ctx: Context, pending: { identity: string; origin: Origin }): void {
  ctx.core = { ...ctx.core, pendingResync: null };
  const counted = countAction(ctx.core.maxloop, ctx.settings, ctx.nowMs);
  ctx.core = { ...ctx.core, maxloop: counted.state };
  emit(ctx, { type: 'persist' });
  if (counted.exceeded) {
    logE(
      ctx,
      'E',
      `Action wait ${describeOrigin(pending.origin)} refused: maxloop reached (${counted.count} actions within loop_interval)`,
    );
    logE(ctx, 'U', 'Action stop called by maxloop');
    startJob(ctx, 'stop', stopSteps(ctx.core.state, 'stop'));
    return;
  }
  logE(ctx, 'U', `Action wait ${describeOrigin(pending.origin)}`);
  startJob(ctx, 'wait', stopWaitSteps(ctx.core.state));
}

/** One step of the automaton. `settings` come from the effective configuration. */
export function stepMirror(core: MirrorCore, event: MirrorEvent, settings: MirrorSettings): MirrorStepResult {
  const ctx: Context = { core, actions: [], settings, nowMs: event.nowMs };
  const advertBefore = advertOf(core, settings, event.nowMs);
  const uptodateBefore = isUptodate(core);
  let outcome: Outcome = { accepted: true, message: '' };
  switch (event.type) {
    case 'command':
      outcome = handleCommand(ctx, event);
      break;
    case 'scriptDone':
      handleScriptDone(ctx, event);
      break;
    case 'waitStatus':
      ctx.core = { ...ctx.core, waitStatus: event.wait };
      settle(ctx);
      break;
    case 'peer':
      handlePeer(ctx, event);
      settle(ctx);
      break;
    case 'reintegration':
      handleReintegration(ctx, event);
      break;
    case 'rfsUptodate':
      emit(ctx, { type: 'resource', name: 'rfs.uptodate', value: event.value });
      if (event.value === 'down' && ctx.core.state === 'SECOND') {
        // The replication layer lost track of our data: it must be resynchronised.
        setPersisted(ctx, { reintegrating: true, uptodate: false });
        resynchronise(ctx, 'rfs', { kind: 'rule', rule: 'notuptodate_server' });
      } else {
        settle(ctx);
      }
      break;
    case 'secondaryLost':
      // Acted on by decidePrimary, now or once the running transition ends.
      if (ctx.core.primary) ctx.core = { ...ctx.core, secondaryLost: true };
      settle(ctx);
      break;
    case 'lease': {
      const timing = settings.arbitrator;
      if (timing === null) throw new Error('lease reply without an arbitrator configured');
      const handled = handleLeaseReply(
        ctx.core.lease,
        event.reply,
        identity(ctx.core, settings),
        timing,
        event.nowMs,
      );
      ctx.core = { ...ctx.core, lease: handled.client };
      if (handled.outcome === 'refused' && ctx.core.lease.refusal !== null) {
        logE(ctx, 'I', `Arbitrator: ${ctx.core.lease.refusal.message}`);
      }
      if (handled.outcome === 'granted' && !ctx.core.primary && ctx.core.claim === null) {
        // Nobody wants this grant any more (the decision changed while it was in flight).
        const released = releaseLease(
          ctx.core.lease,
          identity(ctx.core, settings),
          ctx.core.lease.sentClaim,
          event.nowMs,
        );
        ctx.core = { ...ctx.core, lease: released.client };
        emit(ctx, { type: 'leaseRelease', release: released.release });
      }
      settle(ctx);
      break;
    }
    case 'failoverSetting':
      ctx.core = { ...ctx.core, failover: event.value };
      emit(ctx, { type: 'resource', name: 'usersetting.failover', value: event.value });
      settle(ctx);
      break;
    case 'tick':
      settle(ctx);
      break;
  }
  emitAuthority(ctx);
  const finalCore = ctx.core;
  assertInvariants(finalCore, settings);
  if (isUptodate(finalCore) !== uptodateBefore) {
    emit(ctx, { type: 'resource', name: 'rfs.uptodate', value: isUptodate(finalCore) ? 'up' : 'down' });
  }
  if (!sameAdvert(advertBefore, advertOf(finalCore, settings, event.nowMs))) emit(ctx, { type: 'sendState' });
  return { core: finalCore, actions: ctx.actions, accepted: outcome.accepted, message: outcome.message };
}

function sameAdvert(a: MirrorAdvert, b: MirrorAdvert): boolean {
  return (
    a.state === b.state &&
    a.readiness === b.readiness &&
    a.primary === b.primary &&
    a.uptodate === b.uptodate &&
    a.lastPrim === b.lastPrim &&
    a.reintegrating === b.reintegrating &&
    a.history === b.history &&
    a.intent === b.intent &&
    a.electing === b.electing &&
    a.secondaryOf === b.secondaryOf &&
    a.secondaryTenure === b.secondaryTenure &&
    a.tenure === b.tenure &&
    a.confirmedSecondary === b.confirmedSecondary &&
    a.attach === b.attach &&
    a.dropped === b.dropped &&
    a.handover === b.handover &&
    a.swapRequest === b.swapRequest &&
    a.fullsyncPeer === b.fullsyncPeer
  );
}

/** Impossible combinations: a bug, crash loudly. */
export function assertInvariants(core: MirrorCore, settings: MirrorSettings): void {
  if (core.vip && !core.primary) throw new Error('VIP set on a node that is not primary');
  if (core.replication.role === 'primary' && !core.primary) throw new Error('writes open on a non-primary');
  if (core.replication.role === 'secondary' && core.primary)
    throw new Error('primary replicating as secondary');
  if ((core.state === 'ALONE' || core.state === 'PRIM') && core.job === null && !core.primary) {
    throw new Error(`${core.state} at rest without the primary role`);
  }
  if (core.state === 'STOP' && (core.primary || core.vip || core.replication.role !== 'none')) {
    throw new Error('STOP with primary role, VIP or replication');
  }
  if (core.state === 'UP') throw new Error('a mirror module is never UP');
  if (core.primary && settings.arbitrator === null && core.lease.grant !== null) {
    throw new Error('lease without an arbitrator');
  }
  if (core.confirmedSecondary !== null && !core.primary)
    throw new Error('confirmed secondary on a non-primary');
  assertPersisted(core.persisted);
  if (core.queued !== null && core.job === null) throw new Error('a command queued with no job running');
}
