// Heartbeat bookkeeping of a mirror module (reference 4.4, 2.8), pure: which heartbeat lans are
// alive, the peer's newest advert, replay and reorder decisions, and the promise a secondary
// gives by acknowledging a primary's adverts (see arbitrator-lease.ts). The daemon checks MACs,
// moves packets and timers; everything it decides from their content is decided here.
//
// One packet is sent on every lan with the same (incarnation, seq); the copy that arrives first
// carries the state, the others only prove their lan alive. A lan accepts a packet only when it
// is newer than every packet seen on that lan (a replayed or repeated packet is dropped and
// counted); the peer's state accepts only packets newer than the newest accepted on any lan.
// Incarnations must grow across restarts of the peer's daemon; packets of an older one are dropped.

export interface HeartbeatLanSettings {
  /** Resource `heartbeat.<ident>`. */
  ident: string;
  timeoutMs: number;
}

export interface LivenessSettings {
  cluster: string;
  module: string;
  localNode: string;
  peerNode: string;
  heartbeats: readonly HeartbeatLanSettings[];
}

export interface PacketId {
  incarnation: number;
  seq: number;
}

export interface PacketHeader extends PacketId {
  cluster: string;
  module: string;
  node: string;
  /** The sender's clock, for diagnostics only: clocks are never compared across nodes. */
  timeMs: number;
  /** The newest packet of ours the sender had accepted when it sent this one. */
  ack: PacketId | null;
}

/** What the automaton advertises; `primary` is all the liveness logic needs to read. */
export interface AdvertBase {
  primary: boolean;
}

export interface HeartbeatPacket<A extends AdvertBase> {
  header: PacketHeader;
  advert: A;
}

export type LanStatus = 'init' | 'up' | 'down';

export interface LanState {
  ident: string;
  timeoutMs: number;
  status: LanStatus;
  lastPacketAtMs: number | null;
  highest: PacketId | null;
}

export type PacketVerdict =
  | 'accepted'
  | 'duplicate'
  | 'replay'
  | 'old'
  | 'oldIncarnation'
  | 'foreign'
  | 'self'
  | 'unknownNode'
  | 'unknownLan';

export type LivenessCounters = Readonly<Record<PacketVerdict, number>>;

interface SentRecord {
  seq: number;
  atMs: number;
}

export interface LivenessState<A extends AdvertBase> {
  startedAtMs: number;
  incarnation: number;
  /** Sequence of the last packet sent. */
  seq: number;
  lans: readonly LanState[];
  peer: { id: PacketId; advert: A; receivedAtMs: number } | null;
  /** Recent sends of the current unbroken run of primary adverts, oldest first. */
  primarySends: readonly SentRecord[];
  /** The first seq of that run, or null when the last advert sent was not primary. */
  primaryRunFromSeq: number | null;
  /** Our send time of the newest primary advert the peer acknowledged while not primary. */
  promiseFromMs: number | null;
  counters: LivenessCounters;
}

export type PeerView<A> =
  | { status: 'init' }
  | { status: 'unknown' }
  | { status: 'up'; advert: A; incarnation: number; promiseFromMs: number | null };

export interface ResourceChange {
  resource: string;
  value: LanStatus;
}

export const heartbeatLansMax = 8;
/** Acknowledgements come back within a round trip; older sends are not worth keeping. */
export const primarySendsMax = 64;

function zeroCounters(): LivenessCounters {
  return {
    accepted: 0,
    duplicate: 0,
    replay: 0,
    old: 0,
    oldIncarnation: 0,
    foreign: 0,
    self: 0,
    unknownNode: 0,
    unknownLan: 0,
  };
}

export function initialLiveness<A extends AdvertBase>(
  settings: LivenessSettings,
  incarnation: number,
  nowMs: number,
): LivenessState<A> {
  if (settings.heartbeats.length === 0) throw new Error('a mirror module needs at least one heartbeat');
  if (settings.heartbeats.length > heartbeatLansMax)
    throw new Error(`more than ${heartbeatLansMax} heartbeats`);
  const idents = new Set(settings.heartbeats.map((lan) => lan.ident));
  if (idents.size !== settings.heartbeats.length) throw new Error('heartbeat idents must be unique');
  if (settings.localNode === settings.peerNode) throw new Error('the peer must be another node');
  if (!Number.isInteger(incarnation) || incarnation < 1)
    throw new Error('incarnation must be a positive integer');
  return {
    startedAtMs: nowMs,
    incarnation,
    seq: 0,
    lans: settings.heartbeats.map((lan) => {
      if (lan.timeoutMs <= 0) throw new Error(`heartbeat ${lan.ident}: timeout must be > 0`);
      return {
        ident: lan.ident,
        timeoutMs: lan.timeoutMs,
        status: 'init',
        lastPacketAtMs: null,
        highest: null,
      };
    }),
    peer: null,
    primarySends: [],
    primaryRunFromSeq: null,
    promiseFromMs: null,
    counters: zeroCounters(),
  };
}

/** The shortest silence after which the peer is declared lost: what a secondary's promise lasts. */
export function minimumTimeoutMs(settings: LivenessSettings): number {
  return Math.min(...settings.heartbeats.map((lan) => lan.timeoutMs));
}

function newer(id: PacketId, than: PacketId | null): boolean {
  if (than === null) return true;
  return id.incarnation > than.incarnation || (id.incarnation === than.incarnation && id.seq > than.seq);
}

function count<A extends AdvertBase>(state: LivenessState<A>, verdict: PacketVerdict): LivenessState<A> {
  return { ...state, counters: { ...state.counters, [verdict]: state.counters[verdict] + 1 } };
}

/** Builds the next packet to send on every lan. */
export function preparePacket<A extends AdvertBase>(
  state: LivenessState<A>,
  settings: LivenessSettings,
  advert: A,
  nowMs: number,
): { state: LivenessState<A>; packet: HeartbeatPacket<A> } {
  const seq = state.seq + 1;
  let { primarySends, primaryRunFromSeq, promiseFromMs } = state;
  if (advert.primary) {
    if (primaryRunFromSeq === null) primaryRunFromSeq = seq;
    primarySends = [...primarySends, { seq, atMs: nowMs }].slice(-primarySendsMax);
  } else {
    // Once the peer may see us not primary it is free of every promise it made before.
    primaryRunFromSeq = null;
    primarySends = [];
    promiseFromMs = null;
  }
  const header: PacketHeader = {
    cluster: settings.cluster,
    module: settings.module,
    node: settings.localNode,
    incarnation: state.incarnation,
    seq,
    timeMs: nowMs,
    ack: state.peer === null ? null : { ...state.peer.id },
  };
  return {
    state: { ...state, seq, primarySends, primaryRunFromSeq, promiseFromMs },
    packet: { header, advert },
  };
}

/** The send time of `seq`, or of the nearest earlier recorded send (an earlier time is safe). */
function sentAtOrBefore(sends: readonly SentRecord[], seq: number): number | null {
  let found: number | null = null;
  for (const record of sends) {
    if (record.seq > seq) break;
    found = record.atMs;
  }
  return found;
}

function applyAck<A extends AdvertBase>(
  state: LivenessState<A>,
  packet: HeartbeatPacket<A>,
): LivenessState<A> {
  if (packet.advert.primary) {
    // A peer that claims the primary role promises nothing.
    return state.promiseFromMs === null ? state : { ...state, promiseFromMs: null };
  }
  const ack = packet.header.ack;
  if (ack === null || ack.incarnation !== state.incarnation || state.primaryRunFromSeq === null) return state;
  if (ack.seq < state.primaryRunFromSeq || ack.seq > state.seq) return state;
  const sentAtMs = sentAtOrBefore(state.primarySends, ack.seq);
  if (sentAtMs === null) return state;
  if (state.promiseFromMs !== null && state.promiseFromMs >= sentAtMs) return state;
  return { ...state, promiseFromMs: sentAtMs };
}

export function receivePacket<A extends AdvertBase>(
  stateIn: LivenessState<A>,
  settings: LivenessSettings,
  lanIdent: string,
  packet: HeartbeatPacket<A>,
  nowMs: number,
): { state: LivenessState<A>; verdict: PacketVerdict; changes: ResourceChange[] } {
  const header = packet.header;
  const reject = (verdict: PacketVerdict) => ({ state: count(stateIn, verdict), verdict, changes: [] });
  if (header.cluster !== settings.cluster || header.module !== settings.module) return reject('foreign');
  if (header.node === settings.localNode) return reject('self');
  if (header.node !== settings.peerNode) return reject('unknownNode');
  const lanIndex = stateIn.lans.findIndex((lan) => lan.ident === lanIdent);
  const lan = stateIn.lans[lanIndex];
  if (lan === undefined) return reject('unknownLan');
  if (stateIn.peer !== null && header.incarnation < stateIn.peer.id.incarnation)
    return reject('oldIncarnation');
  const id: PacketId = { incarnation: header.incarnation, seq: header.seq };
  if (!newer(id, lan.highest)) return reject('replay');

  const changes: ResourceChange[] = [];
  if (lan.status !== 'up') changes.push({ resource: `heartbeat.${lan.ident}`, value: 'up' });
  const lans = stateIn.lans.map((entry, index) =>
    index === lanIndex ? { ...entry, status: 'up' as const, lastPacketAtMs: nowMs, highest: id } : entry,
  );
  let state: LivenessState<A> = { ...stateIn, lans };
  let verdict: PacketVerdict;
  if (newer(id, state.peer?.id ?? null)) {
    verdict = 'accepted';
    state = applyAck({ ...state, peer: { id, advert: packet.advert, receivedAtMs: nowMs } }, packet);
  } else if (
    state.peer !== null &&
    state.peer.id.incarnation === id.incarnation &&
    state.peer.id.seq === id.seq
  ) {
    verdict = 'duplicate';
  } else {
    verdict = 'old';
  }
  return { state: count(state, verdict), verdict, changes };
}

/** Marks lans silent for longer than their timeout down. */
export function expireLans<A extends AdvertBase>(
  state: LivenessState<A>,
  nowMs: number,
): { state: LivenessState<A>; changes: ResourceChange[] } {
  const changes: ResourceChange[] = [];
  let changed = false;
  const lans = state.lans.map((lan) => {
    if (lan.status === 'down') return lan;
    const sinceMs = lan.lastPacketAtMs ?? state.startedAtMs;
    if (nowMs - sinceMs < lan.timeoutMs) return lan;
    changed = true;
    changes.push({ resource: `heartbeat.${lan.ident}`, value: 'down' });
    return { ...lan, status: 'down' as const };
  });
  return { state: changed ? { ...state, lans } : state, changes };
}

/**
 * A `start` while every heartbeat is lost looks again before it concludes the peer is gone: each
 * lost lan goes back to `init` and is given one more timeout. A link that just came back then
 * shows the peer (one pulse) instead of letting both nodes start primary (a needless split
 * brain); a peer that is really gone is declared lost again one timeout later.
 */
export function recheckLostLans<A extends AdvertBase>(
  state: LivenessState<A>,
  nowMs: number,
): { state: LivenessState<A>; changes: ResourceChange[] } {
  if (!state.lans.every((lan) => lan.status === 'down')) return { state, changes: [] };
  const changes: ResourceChange[] = state.lans.map((lan) => ({
    resource: `heartbeat.${lan.ident}`,
    value: 'init',
  }));
  const lans = state.lans.map((lan) => ({ ...lan, status: 'init' as const, lastPacketAtMs: nowMs }));
  return { state: { ...state, lans }, changes };
}

/** When the next lan may time out, for the daemon's timer. */
export function nextLivenessDeadlineMs<A extends AdvertBase>(state: LivenessState<A>): number | null {
  let deadline: number | null = null;
  for (const lan of state.lans) {
    if (lan.status === 'down') continue;
    const atMs = (lan.lastPacketAtMs ?? state.startedAtMs) + lan.timeoutMs;
    deadline = deadline === null ? atMs : Math.min(deadline, atMs);
  }
  return deadline;
}

/** The remote node as the automaton sees it: UNKNOWN only when every heartbeat is lost. */
export function peerView<A extends AdvertBase>(state: LivenessState<A>): PeerView<A> {
  if (state.peer !== null && state.lans.some((lan) => lan.status === 'up')) {
    return {
      status: 'up',
      advert: state.peer.advert,
      incarnation: state.peer.id.incarnation,
      promiseFromMs: state.promiseFromMs,
    };
  }
  if (state.lans.every((lan) => lan.status === 'down')) return { status: 'unknown' };
  return { status: 'init' };
}

export function heartbeatResources<A extends AdvertBase>(state: LivenessState<A>): Record<string, LanStatus> {
  const resources: Record<string, LanStatus> = {};
  for (const lan of state.lans) resources[`heartbeat.${lan.ident}`] = lan.status;
  return resources;
}
