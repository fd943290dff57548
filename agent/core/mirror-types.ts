// Types of the mirror automaton: its events, actions, settings, the advert each node sends in its
// heartbeats, and the state it keeps. Kept apart so the daemon, the heartbeat layer and the
// simulator can import them without the automaton's internals.
import type { DefaultPrimary } from '../config/model.ts';
import type { LeaseClient, LeaseReply, LeaseRelease, LeaseRequest, LeaseTiming } from './arbitrator-lease.ts';
import type { Origin } from './farm-automaton.ts';
import type { CoreAction, JobHost, Step, WaitStatus } from './job.ts';
import type { MaxloopSettings, MaxloopState } from './maxloop.ts';
import type { Generation } from './mirror-data.ts';
import type { PeerView } from './peer-liveness.ts';
import type { ModuleStateName, Readiness } from './states.ts';

export type { Origin } from './farm-automaton.ts';

export type MirrorVerb =
  | 'start'
  | 'stop'
  | 'forcestop'
  | 'restart'
  | 'stopstart'
  | 'wait'
  | 'prim'
  | 'second'
  | 'primforce'
  | 'swap';

/** How a start was asked for: it decides which roles the node may take (reference 2.3, 2.5). */
export type StartIntent = 'start' | 'prim' | 'second' | 'primforce';

export interface CommandOptions {
  /** `prim fullsync`, `second fullsync`: the secondary resynchronises everything. */
  fullsync?: boolean;
  /** `swap nosync`: the new secondary does not resynchronise. */
  nosync?: boolean;
}

/** What survives a restart of the daemon or of the node (reference 5.3). */
export interface MirrorPersisted {
  /**
   * This node may start as primary without seeing its peer: its data is the newest. Written
   * false while the peer can take over without it (this node SECOND, or PRIM with a confirmed
   * secondary), so a crash never leaves a stale node believing it is up to date.
   */
  uptodate: boolean;
  /** Primary when it last left the primary role (defaultprim="lastprim", election tie-break). */
  lastPrim: boolean;
  /** Stopped or lost its primary during reintegration: data inconsistent, only primforce. */
  reintegrating: boolean;
  /** Data generations, newest last (mirror-data.ts). */
  history: Generation[];
  /** After primforce or prim fullsync: the next secondary resynchronises fully. */
  peerNeedsFullsync: boolean;
}

/** What a node tells its peer in every heartbeat. */
export interface MirrorAdvert {
  node: string;
  incarnation: number;
  state: ModuleStateName;
  readiness: Readiness;
  /** May be running the primary side now (VIP, application, writes). False only once fenced. */
  primary: boolean;
  uptodate: boolean;
  lastPrim: boolean;
  reintegrating: boolean;
  history: Generation[];
  /** The start mode while the node is starting. */
  intent: StartIntent | null;
  /** Resting in WAIT with its wait rules clear: ready to take a role. */
  electing: boolean;
  /** As SECOND: the incarnation of the primary it replicates from. */
  secondaryOf: number | null;
  /** As SECOND: the primary tenure it attached to (see `tenure`). */
  secondaryTenure: number | null;
  /** As primary: counts the times this incarnation took the primary role. */
  tenure: number;
  /** As primary: the incarnation of the secondary it has recorded as in sync. */
  confirmedSecondary: number | null;
  /** As SECOND: counts the attachments to a primary in this incarnation. */
  attach: number;
  /** As primary: a secondary attachment it dropped; that one must reintegrate again. */
  dropped: AttachmentRef | null;
  /** Released the primary role by swap: the peer should take it. */
  handover: boolean;
  /** As SECOND: asks the primary to swap. */
  swapRequest: boolean;
  /** As primary: the joining secondary must resynchronise fully. */
  fullsyncPeer: boolean;
}

export interface AttachmentRef {
  incarnation: number;
  attach: number;
}

export type MirrorPeerView = PeerView<MirrorAdvert>;

/** What the replication layer (issue: rfs) must do. Abstract: no paths, no sockets. */
export type ReplicationCommand =
  | { role: 'none' }
  /**
   * Accept writes, recorded under `generation`; serve `secondary` (an incarnation of the peer)
   * with a reintegration then synchronous replication. Until a command names a new generation
   * after the secondary was lost, writes stay blocked.
   */
  | { role: 'primary'; generation: Generation; secondary: AttachmentRef | null; fullsync: boolean }
  /**
   * Read-only data; reintegrate from the primary `primary` (an incarnation), then apply its
   * stream. `attach` names this attachment: the primary serves exactly that one.
   */
  | { role: 'secondary'; primary: number; attach: number; fullsync: boolean; reintegrate: boolean };

export type MirrorAction =
  | CoreAction
  | { type: 'vip'; op: 'set' | 'unset' }
  | { type: 'replication'; command: ReplicationCommand }
  /** Before a reintegration overwrites data that exists only here: move it aside and report it. */
  | { type: 'keepAside'; generation: Generation | null; reason: string }
  /** The advert changed: send a heartbeat now rather than at the next pulse. */
  | { type: 'sendState' }
  | { type: 'leaseRequest'; request: LeaseRequest }
  | { type: 'leaseRelease'; release: LeaseRelease }
  /**
   * With an arbitrator: this node may act as primary (VIP, writes) until this time of its own
   * monotonic clock. The VIP and data layers enforce it without the daemon (e.g. address
   * lifetimes), so a frozen daemon cannot outlive its authority.
   */
  | { type: 'authority'; untilMs: number }
  | { type: 'resource'; name: string; value: string };

export type MirrorEvent =
  | {
      type: 'command';
      verb: MirrorVerb;
      options?: CommandOptions;
      identity?: string;
      origin: Origin;
      nowMs: number;
    }
  | { type: 'scriptDone'; script: string; exitCode: number | null; timedOut: boolean; nowMs: number }
  | { type: 'waitStatus'; wait: WaitStatus; nowMs: number }
  | { type: 'peer'; view: MirrorPeerView; nowMs: number }
  | { type: 'reintegration'; outcome: 'done' | 'failed'; nowMs: number }
  /** rfs.uptodate as the replication layer sees it on this node. */
  | { type: 'rfsUptodate'; value: 'up' | 'down'; nowMs: number }
  /** On the primary: the secondary stopped acknowledging (the reference's locktimeout). */
  | { type: 'secondaryLost'; nowMs: number }
  | { type: 'lease'; reply: LeaseReply; nowMs: number }
  | { type: 'failoverSetting'; value: 'on' | 'off'; nowMs: number }
  | { type: 'tick'; nowMs: number };

export interface MirrorSettings extends MaxloopSettings {
  module: string;
  node: string;
  peerNode: string;
  /** False without <user>: no scripts (reference 4.8). */
  scriptsEnabled: boolean;
  /** <rfs> configured: reintegration ends with a `reintegration` event, else at once. */
  replication: boolean;
  defaultPrimary: DefaultPrimary;
  /** The shortest heartbeat timeout: a secondary's promise lasts that long. */
  heartbeatTimeoutMs: number;
  /** Null: no arbitrator, the reference's behaviour (split brain possible). */
  arbitrator: LeaseTiming | null;
}

/** Side effects of a job other than scripts, states, classes and logs. */
export type Effect =
  | { type: 'intent'; intent: StartIntent; fullsync: boolean; failoverOffHold: boolean }
  | { type: 'primaryOn'; target: 'ALONE' | 'PRIM' }
  | { type: 'vipSet' }
  | { type: 'replicationPrimary' }
  /** Drops the VIP and blocks writes; idempotent. */
  | { type: 'fence' }
  | { type: 'primaryOff'; handover: boolean }
  | { type: 'aloneGeneration' }
  | { type: 'confirmSecondary'; secondary: number }
  | {
      type: 'secondaryOn';
      primary: number | null;
      primaryTenure: number | null;
      primaryHistory: Generation[] | null;
      fullsync: boolean;
      reintegrate: boolean;
    }
  | { type: 'secondaryOff' }
  | { type: 'stopped' };

export type MirrorStep = Step | { kind: 'effect'; effect: Effect };

export interface MirrorJob {
  verb: string;
  steps: readonly MirrorStep[];
  index: number;
  scriptRunning: boolean;
}

export interface QueuedCommand {
  verb: MirrorVerb;
  origin: Origin;
  options: CommandOptions;
}

export interface MirrorCore extends JobHost {
  /** This daemon run; grows at every start of the daemon. */
  incarnation: number;
  job: MirrorJob | null;
  queued: QueuedCommand | null;
  maxloop: MaxloopState;
  lastFailure: string | null;
  persisted: MirrorPersisted;
  /** usersetting.failover, changeable at runtime (reference 2.4). */
  failover: 'on' | 'off';
  intent: StartIntent | null;
  /** `second fullsync`, or the primary asked for it. */
  fullsync: boolean;
  peer: MirrorPeerView;
  /** Our send time of the newest primary advert the peer acknowledged while not primary. */
  promiseFromMs: number | null;
  primary: boolean;
  vip: boolean;
  replication: ReplicationCommand;
  secondaryOf: number | null;
  /** The primary tenure attached to: a primary that left and took the role again is another one. */
  secondaryTenure: number | null;
  /** Times this incarnation took the primary role. */
  tenure: number;
  confirmedSecondary: number | null;
  /** As SECOND: the primary incarnation that confirmed us in sync (then we may fail over). */
  confirmedBy: number | null;
  /** Attachments to a primary in this incarnation (advertised: a primary tells them apart). */
  attach: number;
  /** As primary: the secondary attachment it dropped (it went ALONE without it). */
  dropped: AttachmentRef | null;
  /** As primary: the secondary attachment its replication serves now. */
  served: AttachmentRef | null;
  handover: boolean;
  /** After a `swap nosync` released the primary role: attach to the new primary without resync. */
  swapNosync: boolean;
  /** The reintegration ended while a job still ran: SECOND Ready once the job is over. */
  reintegratedEarly: boolean;
  /** The replication layer asked for a resynchronisation while a job ran: done after it. */
  pendingResync: { identity: string; origin: Origin } | null;
  /** The data path reported its secondary lost while a job ran: PRIM goes ALONE after it. */
  secondaryLost: boolean;
  swapRequest: { nosync: boolean; origin: Origin } | null;
  /** defaultprim swap done for this secondary incarnation: at most once per pairing. */
  autoSwapFor: number | null;
  /** Stopped by failover="off": do not promote without the peer or a `prim`. */
  failoverOffHold: boolean;
  /** Why the module rests in WAIT, shown as a detailed state. */
  hold: string | null;
  lease: LeaseClient;
  /** Generation this node will write under once the arbitrator confirmed it. */
  claim: Generation | null;
  /** Authority lost while a job ran: fenced already, the stop scripts run at the next boundary. */
  demotePending: boolean;
  lastAuthorityMs: number | null;
  splitBrain: 'staying' | null;
  /** Remote state last logged. */
  remoteLogged: string;
}
