// The arbitrator's primary lease (issue 6, better than the reference's witness ping). A third host
// `w` grants each mirror module a time-bounded lease; a node may become primary only with a
// lease and stays primary only while it holds authority: a lease, or the promise of a secondary
// that still hears it. Both sides here are pure: (state, message, local time) -> (state, reply).
//
// Timing argument (docs/mirror.md has the long form). Every clock's rate is within `driftPpm`
// of real time; nothing assumes synchronised clocks, only durations on one clock are compared.
//   Arbitrator: grants at its time a, then refuses every other node until a + leaseMs on its own
//     clock, which is at least leaseMs / (1 + drift) of real time after the request arrived.
//   Holder: counts from the moment it SENT the request (s <= arrival), and keeps authority until
//     s + leaseMs * (1 - drift) / (1 + drift) - marginMs on its own clock, at most
//     leaseMs / (1 + drift) - marginMs of real time after s. So its authority ends marginMs
//     before any other node can be granted the lease; marginMs covers fencing (dropping the VIP,
//     blocking writes) and event latency.
// The same bound makes a secondary's promise safe: a secondary that received a primary advert at
// r will not promote itself before r + heartbeatTimeoutMs on its clock; the primary, which sent
// that advert at s <= r, keeps authority from it until s + timeout * (1 - d) / (1 + d) - margin.
import { formatGeneration, type Generation, sameGeneration } from './mirror-data.ts';

export interface LeaseTiming {
  /** How long the arbitrator keeps a grant, from the arrival of the request, on its clock. */
  leaseMs: number;
  /** Bound on every clock's rate error against real time, in parts per million. */
  driftPpm: number;
  /** Fencing and scheduling slack taken off every authority deadline. */
  marginMs: number;
  /** A holder renews this often. */
  renewMs: number;
  /** A request without answer, or refused, is sent again after this. */
  retryMs: number;
}

export const driftPpmMax = 100_000;

export function assertLeaseTiming(timing: LeaseTiming): void {
  if (!Number.isInteger(timing.leaseMs) || timing.leaseMs <= 0) throw new Error('leaseMs must be > 0');
  if (timing.driftPpm < 0 || timing.driftPpm > driftPpmMax)
    throw new Error(`driftPpm out of [0, ${driftPpmMax}]`);
  if (timing.marginMs < 0) throw new Error('marginMs must be >= 0');
  if (timing.renewMs <= 0 || timing.retryMs <= 0) throw new Error('renewMs and retryMs must be > 0');
  if (holderLeaseMs(timing) <= timing.renewMs) {
    throw new Error('a holder must renew well before its lease ends: lower renewMs or marginMs');
  }
}

/** Shortest and longest lease cluster.xml may set: renewals and the margin need room. */
export const leaseMsMin = 1500;
export const leaseMsMax = 600_000;

/**
 * The timing a deployment uses for a configured lease: clocks within 1 % of real time (far
 * looser than any NTP-less quartz), renewals every quarter lease, and a margin of an eighth
 * (at least 200 ms) that covers fencing and scheduling delays.
 */
export function leaseTimingFor(leaseMs: number): LeaseTiming {
  if (!Number.isInteger(leaseMs) || leaseMs < leaseMsMin || leaseMs > leaseMsMax) {
    throw new Error(`lease ${leaseMs} ms out of ${leaseMsMin}..${leaseMsMax} ms`);
  }
  const timing: LeaseTiming = {
    leaseMs,
    driftPpm: 10_000,
    marginMs: Math.max(200, Math.floor(leaseMs / 8)),
    renewMs: Math.floor(leaseMs / 4),
    retryMs: Math.min(250, Math.floor(leaseMs / 6)),
  };
  assertLeaseTiming(timing);
  return timing;
}

/** A duration measured on one clock, shortened so it is certainly over on any other clock. */
export function shrinkForDrift(durationMs: number, driftPpm: number): number {
  return Math.floor((durationMs * (1_000_000 - driftPpm)) / (1_000_000 + driftPpm));
}

/** How long after sending a granted request the holder keeps authority, on its own clock. */
export function holderLeaseMs(timing: LeaseTiming): number {
  return shrinkForDrift(timing.leaseMs, timing.driftPpm) - timing.marginMs;
}

/** How long after sending a primary advert that the secondary acknowledged the primary keeps authority. */
export function promiseMs(heartbeatTimeoutMs: number, timing: LeaseTiming): number {
  return shrinkForDrift(heartbeatTimeoutMs, timing.driftPpm) - timing.marginMs;
}

// ---- messages ----

export interface LeaseRequest {
  type: 'leaseRequest';
  module: string;
  node: string;
  incarnation: number;
  seq: number;
  /** The newest generation of the requester's data. */
  dataGeneration: Generation | null;
  /** The generation it will write under once granted (the arbitrator records it). */
  claim: Generation | null;
  /** `prim`/`primforce`: the administrator vouches for this node's data. */
  force: boolean;
  /**
   * The requester does not know its data is the newest (its uptodate flag is off) and asks the
   * arbitrator to vouch: granted only if the arbitrator knows the newest generation and it is
   * the requester's.
   */
  witness: boolean;
}

export interface LeaseRelease {
  type: 'leaseRelease';
  module: string;
  node: string;
  incarnation: number;
  seq: number;
  /** The claim of that grant was never written under: the arbitrator may forget it. */
  unusedClaim: boolean;
  /**
   * Disowns this claim of the node, whichever grant made it: the node's persisted history, which
   * records a generation before anything is written under it, proves it was never used. Null in
   * an ordinary release.
   */
  disown: Generation | null;
}

/** `unreachable` is the node's own conclusion when the arbitrator does not answer. */
export type LeaseRefusal = 'held' | 'stale' | 'quiet' | 'full' | 'unreachable';

export type LeaseReply =
  | { type: 'leaseGranted'; module: string; node: string; incarnation: number; seq: number }
  | {
      type: 'leaseRefused';
      module: string;
      node: string;
      incarnation: number;
      seq: number;
      reason: Exclude<LeaseRefusal, 'unreachable'>;
      holder: string | null;
      registered: Generation | null;
    }
  /** Answers every release, so a node can stop sending it. */
  | { type: 'leaseReleased'; module: string; node: string; incarnation: number; seq: number };

export function describeRefusal(
  reason: LeaseRefusal,
  holder: string | null,
  registered: Generation | null,
): string {
  switch (reason) {
    case 'held':
      return `the lease is held by ${holder ?? 'another node'}`;
    case 'stale':
      return `data not up to date (the arbitrator knows generation ${formatGeneration(registered)})`;
    case 'quiet':
      return 'the arbitrator restarted recently and waits for old leases to end';
    case 'full':
      return 'the arbitrator tracks too many modules';
    case 'unreachable':
      return 'no answer from the arbitrator';
  }
}

// ---- the node's side ----

export interface LeaseClient {
  /** Last sequence used; requests and releases share it. */
  seq: number;
  pending: { seq: number; sentAtMs: number; claim: Generation | null } | null;
  /** The latest grant: authority until validUntilMs on this node's clock. */
  grant: { seq: number; validUntilMs: number; claim: Generation | null } | null;
  refusal: { reason: LeaseRefusal; message: string; atMs: number; registered: Generation | null } | null;
  /** The claim carried by request `seq` (the last one sent). */
  sentClaim: Generation | null;
  /** An unused claim given back (or disowned): sent again until the arbitrator answers. */
  releasing: { seq: number; sentAtMs: number; disown: Generation | null } | null;
}

export function initialLeaseClient(): LeaseClient {
  return { seq: 0, pending: null, grant: null, refusal: null, sentClaim: null, releasing: null };
}

export function leaseValid(client: LeaseClient, nowMs: number): boolean {
  return client.grant !== null && nowMs < client.grant.validUntilMs;
}

/** A grant valid now that recorded this claim at the arbitrator. */
export function leaseConfirms(client: LeaseClient, claim: Generation | null, nowMs: number): boolean {
  return leaseValid(client, nowMs) && sameGeneration(client.grant?.claim ?? null, claim);
}

export interface LeaseIdentity {
  module: string;
  node: string;
  incarnation: number;
}

export interface LeaseAsk {
  dataGeneration: Generation | null;
  claim: Generation | null;
  force: boolean;
  witness: boolean;
}

export function requestLease(
  client: LeaseClient,
  identity: LeaseIdentity,
  ask: LeaseAsk,
  nowMs: number,
): { client: LeaseClient; request: LeaseRequest } {
  const seq = client.seq + 1;
  return {
    // A new request supersedes an unanswered release: the arbitrator orders them by seq.
    client: {
      ...client,
      seq,
      pending: { seq, sentAtMs: nowMs, claim: ask.claim },
      sentClaim: ask.claim,
      releasing: null,
    },
    request: { type: 'leaseRequest', ...identity, seq, ...ask },
  };
}

/** The request in flight got no answer within retryMs: the arbitrator counts as unreachable. */
export function leaseRequestTimedOut(client: LeaseClient, timing: LeaseTiming, nowMs: number): boolean {
  return client.pending !== null && nowMs >= client.pending.sentAtMs + timing.retryMs;
}

export function markUnreachable(client: LeaseClient, nowMs: number): LeaseClient {
  return {
    ...client,
    pending: null,
    refusal: {
      reason: 'unreachable',
      message: describeRefusal('unreachable', null, null),
      atMs: nowMs,
      registered: null,
    },
  };
}

function replyMatches(reply: LeaseReply, identity: LeaseIdentity): boolean {
  return (
    reply.node === identity.node &&
    reply.module === identity.module &&
    reply.incarnation === identity.incarnation
  );
}

export function handleLeaseReply(
  client: LeaseClient,
  reply: LeaseReply,
  identity: LeaseIdentity,
  timing: LeaseTiming,
  nowMs: number,
): { client: LeaseClient; outcome: 'granted' | 'refused' | 'released' | 'ignored' } {
  if (!replyMatches(reply, identity)) return { client, outcome: 'ignored' };
  if (reply.type === 'leaseReleased') {
    if (client.releasing === null || client.releasing.seq !== reply.seq)
      return { client, outcome: 'ignored' };
    return { client: { ...client, releasing: null }, outcome: 'released' };
  }
  // Only the answer to the request in flight counts: an old or duplicated answer says nothing
  // about the arbitrator's present view.
  const pending = client.pending;
  if (pending === null || reply.seq !== pending.seq) return { client, outcome: 'ignored' };
  if (reply.type === 'leaseGranted') {
    // One request at a time, each sent after the last: a newer grant always ends later.
    const grant = {
      seq: pending.seq,
      validUntilMs: pending.sentAtMs + holderLeaseMs(timing),
      claim: pending.claim,
    };
    if (client.grant !== null && grant.validUntilMs < client.grant.validUntilMs) {
      throw new Error('lease grant for a request sent before the previous one');
    }
    return { client: { ...client, pending: null, grant, refusal: null }, outcome: 'granted' };
  }
  return {
    client: {
      ...client,
      pending: null,
      refusal: {
        reason: reply.reason,
        message: describeRefusal(reply.reason, reply.holder, reply.registered),
        atMs: nowMs,
        registered: reply.registered,
      },
    },
    outcome: 'refused',
  };
}

/**
 * Gives the lease back after fencing; forgets the grant locally at once. The last sequence sent
 * is named: if the arbitrator granted it the release matches its records, if not it is ignored
 * there and the lease simply runs out. `uncommitted` is a claim never written under: only when
 * the last request carried exactly that claim may the arbitrator forget it (an earlier grant's
 * claim may have been written under). Such a release is sent again until answered.
 */
export function releaseLease(
  client: LeaseClient,
  identity: LeaseIdentity,
  uncommitted: Generation | null,
  nowMs: number,
): { client: LeaseClient; release: LeaseRelease } {
  const unusedClaim = uncommitted !== null && sameGeneration(client.sentClaim, uncommitted);
  const release: LeaseRelease = {
    type: 'leaseRelease',
    ...identity,
    seq: client.seq,
    unusedClaim,
    disown: null,
  };
  return {
    client: {
      ...client,
      pending: null,
      grant: null,
      releasing: unusedClaim ? { seq: client.seq, sentAtMs: nowMs, disown: null } : null,
    },
    release,
  };
}

/**
 * Tells the arbitrator that `claim`, a generation named after this node that it registered, was
 * never written under (this node's persisted history lacks it). Needed when the node lost track
 * of the request that made it (a crash) or asks again under another counter.
 */
export function disownClaim(
  client: LeaseClient,
  identity: LeaseIdentity,
  claim: Generation,
  nowMs: number,
): { client: LeaseClient; release: LeaseRelease } {
  if (claim.node !== identity.node) throw new Error('a node can only disown its own claims');
  const seq = client.seq + 1;
  return {
    client: { ...client, seq, pending: null, releasing: { seq, sentAtMs: nowMs, disown: claim } },
    release: { type: 'leaseRelease', ...identity, seq, unusedClaim: true, disown: claim },
  };
}

/** The unused-claim release to send again now, if its answer is overdue. */
export function releaseToResend(
  client: LeaseClient,
  identity: LeaseIdentity,
  timing: LeaseTiming,
  nowMs: number,
): { client: LeaseClient; release: LeaseRelease } | null {
  const releasing = client.releasing;
  if (releasing === null || nowMs < releasing.sentAtMs + timing.retryMs) return null;
  return {
    client: { ...client, releasing: { ...releasing, sentAtMs: nowMs } },
    release: {
      type: 'leaseRelease',
      ...identity,
      seq: releasing.seq,
      unusedClaim: true,
      disown: releasing.disown,
    },
  };
}

// ---- the arbitrator's side ----

export interface GrantRef {
  node: string;
  incarnation: number;
  seq: number;
}

export interface UnconfirmedClaim {
  by: GrantRef;
  /** The registered generation before the claim: the claimer's data when it asked, unless forced. */
  fallback: Generation | null;
  forced: boolean;
}

/** What the arbitrator keeps on disk per module, so a restart forgets no generation. */
export interface ArbitratorDurable {
  registered: Generation | null;
  unconfirmedClaim: UnconfirmedClaim | null;
}

export interface ArbitratorModule {
  holder: (GrantRef & { expiresAtMs: number }) | null;
  /** The newest generation a holder may have written under. */
  registered: Generation | null;
  /**
   * The latest grant that claimed `registered` while nobody has yet been seen writing under it
   * (a request whose data generation is `registered`): what to go back to if that grant's claim
   * is given back unused, and whether an administrator forced it.
   */
  unconfirmedClaim: UnconfirmedClaim | null;
  /** Highest (incarnation, seq) seen per node: older and repeated messages are dropped. */
  lastSeen: Record<string, { incarnation: number; seq: number }>;
}

export interface ArbitratorState {
  /** After a restart the arbitrator knows no holder: it grants nothing until old leases ended. */
  quietUntilMs: number;
  modules: Record<string, ArbitratorModule>;
}

export const arbitratorModulesMax = 1024;
const nodesPerModuleMax = 8;

/** `durable`: what the arbitrator kept on disk (arbitratorDurable) before it restarted. */
export function initialArbitrator(
  nowMs: number,
  timing: LeaseTiming,
  durable: Record<string, ArbitratorDurable> = {},
): ArbitratorState {
  const modules: Record<string, ArbitratorModule> = {};
  for (const [module, entry] of Object.entries(durable)) {
    modules[module] = {
      holder: null,
      registered: entry.registered,
      unconfirmedClaim: entry.unconfirmedClaim,
      lastSeen: {},
    };
  }
  return { quietUntilMs: nowMs + timing.leaseMs, modules };
}

/** What the arbitrator must keep on disk, written before it sends the reply that changed it. */
export function arbitratorDurable(state: ArbitratorState): Record<string, ArbitratorDurable> {
  const result: Record<string, ArbitratorDurable> = {};
  for (const [module, entry] of Object.entries(state.modules)) {
    result[module] = { registered: entry.registered, unconfirmedClaim: entry.unconfirmedClaim };
  }
  return result;
}

function isNewer(
  seen: { incarnation: number; seq: number } | undefined,
  incarnation: number,
  seq: number,
): boolean {
  if (seen === undefined) return true;
  return incarnation > seen.incarnation || (incarnation === seen.incarnation && seq > seen.seq);
}

function sameGrant(a: GrantRef | null, b: GrantRef): boolean {
  return a !== null && a.node === b.node && a.incarnation === b.incarnation && a.seq === b.seq;
}

function refusal(
  request: LeaseRequest,
  reason: Exclude<LeaseRefusal, 'unreachable'>,
  holder: string | null,
  registered: Generation | null,
): LeaseReply {
  return {
    type: 'leaseRefused',
    module: request.module,
    node: request.node,
    incarnation: request.incarnation,
    seq: request.seq,
    reason,
    holder,
    registered,
  };
}

export function arbitratorHandleRequest(
  state: ArbitratorState,
  request: LeaseRequest,
  timing: LeaseTiming,
  nowMs: number,
): { state: ArbitratorState; reply: LeaseReply | null } {
  const existing = state.modules[request.module];
  if (existing === undefined && Object.keys(state.modules).length >= arbitratorModulesMax) {
    return { state, reply: refusal(request, 'full', null, null) };
  }
  const module: ArbitratorModule = existing ?? {
    holder: null,
    registered: null,
    unconfirmedClaim: null,
    lastSeen: {},
  };
  if (!isNewer(module.lastSeen[request.node], request.incarnation, request.seq))
    return { state, reply: null };
  if (
    module.lastSeen[request.node] === undefined &&
    Object.keys(module.lastSeen).length >= nodesPerModuleMax
  ) {
    return { state, reply: refusal(request, 'full', null, module.registered) };
  }
  const seen: ArbitratorModule = {
    ...module,
    lastSeen: { ...module.lastSeen, [request.node]: { incarnation: request.incarnation, seq: request.seq } },
  };
  const withModule = (next: ArbitratorModule): ArbitratorState => ({
    ...state,
    modules: { ...state.modules, [request.module]: next },
  });
  if (nowMs < state.quietUntilMs) {
    return { state: withModule(seen), reply: refusal(request, 'quiet', null, seen.registered) };
  }
  const holder = seen.holder;
  if (holder !== null && holder.node !== request.node && nowMs < holder.expiresAtMs) {
    return { state: withModule(seen), reply: refusal(request, 'held', holder.node, seen.registered) };
  }
  const dataCurrent = seen.registered !== null && sameGeneration(seen.registered, request.dataGeneration);
  // The requester's own unconfirmed claim asked again (the first answer may have been lost):
  // fine if it rests on the same data as then; a forced claim is granted again only if forced.
  const pendingClaim = seen.unconfirmedClaim;
  const ownClaim =
    pendingClaim !== null &&
    pendingClaim.by.node === request.node &&
    !pendingClaim.forced &&
    sameGeneration(seen.registered, request.claim) &&
    sameGeneration(pendingClaim.fallback, request.dataGeneration);
  const current = dataCurrent || ownClaim || (!request.witness && seen.registered === null);
  if (!current && !request.force) {
    return { state: withModule(seen), reply: refusal(request, 'stale', null, seen.registered) };
  }
  const ref: GrantRef = { node: request.node, incarnation: request.incarnation, seq: request.seq };
  let { registered, unconfirmedClaim } = seen;
  if (dataCurrent) unconfirmedClaim = null;
  if (request.claim !== null) {
    if (!sameGeneration(request.claim, registered)) {
      unconfirmedClaim = { by: ref, fallback: registered, forced: !current };
      registered = request.claim;
    } else if (unconfirmedClaim !== null && unconfirmedClaim.by.node === request.node) {
      // The same claim asked again: only the newest grant may give it back.
      unconfirmedClaim = { ...unconfirmedClaim, by: ref };
    }
  }
  const granted: ArbitratorModule = {
    ...seen,
    holder: { ...ref, expiresAtMs: nowMs + timing.leaseMs },
    registered,
    unconfirmedClaim,
  };
  return {
    state: withModule(granted),
    reply: {
      type: 'leaseGranted',
      module: request.module,
      node: request.node,
      incarnation: request.incarnation,
      seq: request.seq,
    },
  };
}

export function arbitratorHandleRelease(
  state: ArbitratorState,
  release: LeaseRelease,
): { state: ArbitratorState; reply: LeaseReply } {
  const reply: LeaseReply = {
    type: 'leaseReleased',
    module: release.module,
    node: release.node,
    incarnation: release.incarnation,
    seq: release.seq,
  };
  const module = state.modules[release.module];
  if (module === undefined) return { state, reply };
  const ref: GrantRef = { node: release.node, incarnation: release.incarnation, seq: release.seq };
  let next = module;
  // A release also closes its sequence: the request it gives back, if it arrives after it
  // (reordered), is then dropped instead of granted.
  const seen = module.lastSeen[release.node];
  if (
    isNewer(seen, release.incarnation, release.seq) &&
    (seen !== undefined || Object.keys(module.lastSeen).length < nodesPerModuleMax)
  ) {
    next = {
      ...next,
      lastSeen: { ...next.lastSeen, [release.node]: { incarnation: release.incarnation, seq: release.seq } },
    };
  }
  // Only the holder's latest grant may be released: a delayed release must never end a newer lease.
  if (module.holder !== null && sameGrant(module.holder, ref)) next = { ...next, holder: null };
  const pending = next.unconfirmedClaim;
  const disowned =
    release.disown !== null &&
    pending !== null &&
    pending.by.node === release.node &&
    release.disown.node === release.node &&
    sameGeneration(next.registered, release.disown);
  if (pending !== null && ((release.unusedClaim && sameGrant(pending.by, ref)) || disowned)) {
    next = { ...next, registered: pending.fallback, unconfirmedClaim: null };
  }
  // A node disowning its claim is not primary (it checks): a grant it holds, maybe from an
  // incarnation that crashed, ends too.
  if (disowned && next.holder !== null && next.holder.node === release.node) next = { ...next, holder: null };
  if (next === module) return { state, reply };
  return { state: { ...state, modules: { ...state.modules, [release.module]: next } }, reply };
}
