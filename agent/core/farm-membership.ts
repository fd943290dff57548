// Farm membership (reference 3.2), pure: which nodes are alive and have their traffic open, and
// the view every node agrees on after a change. No leader decides anything: each node computes
// its candidate view (itself when its traffic is open, plus every peer heard recently whose
// traffic is open), advertises it in each membership packet, and adopts it as its view as soon as
// every member of the candidate advertises the same candidate, or after `agreeMs` without
// agreement (a partition: each side then serves everything, as the reference accepts).
//
// Timeouts follow the reference: a peer is lost after `slostCount` pulses without a packet on any
// farm lan, except the view's leader (the first member by name, shown in logs) which is lost after
// `mlostCount` pulses. Packets of an older incarnation, or not newer than the newest accepted from
// that peer, are dropped and counted.

export const farmNodesMax = 64;
export const farmLansMax = 8;

export interface FarmMembershipSettings {
  readonly localNode: string;
  /** Every other node of the farm lans (cluster.xml). */
  readonly peers: readonly string[];
  /** Idents of the farm lans, for the per-lan liveness shown as resources. */
  readonly lans: readonly string[];
  readonly pulseMs: number;
  readonly mlostCount: number;
  readonly slostCount: number;
}

/** What each membership packet carries besides its header. */
export interface FarmAdvert {
  /** The sender's traffic is open: it takes its buckets. */
  readonly open: boolean;
  /** The sender's candidate view, sorted. */
  readonly candidate: readonly string[];
  /** vmac_directed: the sender's MAC on the VIP interface, where the director forwards its buckets. */
  readonly mac?: string;
}

export interface FarmPacket {
  readonly node: string;
  readonly lan: string;
  readonly incarnation: number;
  readonly seq: number;
  readonly advert: FarmAdvert;
}

export interface PeerRecord {
  readonly incarnation: number;
  readonly seq: number;
  readonly advert: FarmAdvert;
  readonly lastAtMs: number;
  /** Last packet per lan. */
  readonly lanAtMs: Readonly<Record<string, number>>;
}

export interface FarmView {
  /** Members with traffic open, sorted by name. */
  readonly members: readonly string[];
  /** Increases by one at every adopted change, locally (never compared across nodes). */
  readonly number: number;
  readonly sinceMs: number;
  /** Adopted because every member agreed, or because agreement took too long. */
  readonly agreed: boolean;
}

export type FarmVerdict = 'accepted' | 'duplicate' | 'oldIncarnation' | 'unknownNode' | 'self';

export interface FarmMembershipState {
  readonly open: boolean;
  readonly peers: Readonly<Record<string, PeerRecord>>;
  readonly candidate: readonly string[];
  readonly candidateSinceMs: number;
  readonly view: FarmView;
  readonly counters: Readonly<Record<FarmVerdict, number>>;
}

export interface MembershipOutcome {
  readonly state: FarmMembershipState;
  /** The adopted view changed: recompute buckets. */
  readonly viewChanged: boolean;
  /** The candidate changed: advertise it now rather than at the next pulse. */
  readonly sendNow: boolean;
}

function sorted(names: Iterable<string>): string[] {
  return [...names].sort((left, right) => (left < right ? -1 : left > right ? 1 : 0));
}

function sameList(left: readonly string[], right: readonly string[]): boolean {
  return left.length === right.length && left.every((name, index) => name === right[index]);
}

export function checkMembershipSettings(settings: FarmMembershipSettings): void {
  const where = `farm membership of ${settings.localNode}`;
  if (settings.peers.length + 1 > farmNodesMax) throw new Error(`${where}: more than ${farmNodesMax} nodes`);
  if (settings.peers.includes(settings.localNode)) throw new Error(`${where}: the local node is a peer`);
  if (new Set(settings.peers).size !== settings.peers.length) throw new Error(`${where}: a peer is twice`);
  if (settings.lans.length === 0 || settings.lans.length > farmLansMax)
    throw new Error(`${where}: 1 to ${farmLansMax} lans needed, got ${settings.lans.length}`);
  if (!Number.isInteger(settings.pulseMs) || settings.pulseMs < 10 || settings.pulseMs > 60_000)
    throw new Error(`${where}: pulse ${settings.pulseMs} ms out of 10..60000`);
  for (const [name, count] of [
    ['mlost_count', settings.mlostCount],
    ['slost_count', settings.slostCount],
  ] as const) {
    if (!Number.isInteger(count) || count < 2 || count > 10_000)
      throw new Error(`${where}: ${name} ${count} out of 2..10000`);
  }
}

/** How long a view may wait for agreement before it is adopted anyway. */
export function agreeMs(settings: FarmMembershipSettings): number {
  return settings.slostCount * settings.pulseMs;
}

export function leaderOf(view: FarmView): string | null {
  return view.members[0] ?? null;
}

/** Silence after which a peer is lost: longer for the view's leader, as in the reference. */
export function lostAfterMs(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  node: string,
): number {
  const count = leaderOf(state.view) === node ? settings.mlostCount : settings.slostCount;
  return count * settings.pulseMs;
}

export function initialMembership(nowMs: number): FarmMembershipState {
  return {
    open: false,
    peers: {},
    candidate: [],
    candidateSinceMs: nowMs,
    view: { members: [], number: 0, sinceMs: nowMs, agreed: true },
    counters: { accepted: 0, duplicate: 0, oldIncarnation: 0, unknownNode: 0, self: 0 },
  };
}

function alivePeers(state: FarmMembershipState, settings: FarmMembershipSettings, nowMs: number): string[] {
  return settings.peers.filter((node) => {
    const record = state.peers[node];
    return record !== undefined && nowMs - record.lastAtMs < lostAfterMs(state, settings, node);
  });
}

/** Recomputes the candidate and adopts a view when it is agreed or has waited long enough. */
function settle(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  nowMs: number,
): MembershipOutcome {
  const members = alivePeers(state, settings, nowMs).filter(
    (node) => state.peers[node]?.advert.open === true,
  );
  if (state.open) members.push(settings.localNode);
  const candidate = sorted(members);
  let next = state;
  let sendNow = false;
  if (!sameList(candidate, state.candidate)) {
    next = { ...next, candidate, candidateSinceMs: nowMs };
    sendNow = true;
  }
  if (sameList(next.candidate, next.view.members)) return { state: next, viewChanged: false, sendNow };
  const agreed = next.candidate.every(
    (node) =>
      node === settings.localNode || sameList(next.peers[node]?.advert.candidate ?? [], next.candidate),
  );
  if (!agreed && nowMs - next.candidateSinceMs < agreeMs(settings))
    return { state: next, viewChanged: false, sendNow };
  const view: FarmView = { members: next.candidate, number: next.view.number + 1, sinceMs: nowMs, agreed };
  return { state: { ...next, view }, viewChanged: true, sendNow };
}

function count(state: FarmMembershipState, verdict: FarmVerdict): FarmMembershipState {
  return { ...state, counters: { ...state.counters, [verdict]: state.counters[verdict] + 1 } };
}

export function receiveFarmPacket(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  packet: FarmPacket,
  nowMs: number,
): MembershipOutcome & { verdict: FarmVerdict } {
  const unchanged = (verdict: FarmVerdict) => ({
    state: count(state, verdict),
    viewChanged: false,
    sendNow: false,
    verdict,
  });
  if (packet.node === settings.localNode) return unchanged('self');
  if (!settings.peers.includes(packet.node)) return unchanged('unknownNode');
  const known = state.peers[packet.node];
  if (known !== undefined && packet.incarnation < known.incarnation) return unchanged('oldIncarnation');
  const newer = known === undefined || packet.incarnation > known.incarnation || packet.seq > known.seq;
  if (!newer) {
    // The same packet over another lan: proves that lan alive, nothing more.
    if (known === undefined || !settings.lans.includes(packet.lan)) return unchanged('duplicate');
    const peers = {
      ...state.peers,
      [packet.node]: { ...known, lanAtMs: { ...known.lanAtMs, [packet.lan]: nowMs } },
    };
    return { ...unchanged('duplicate'), state: count({ ...state, peers }, 'duplicate') };
  }
  const candidate = sorted(packet.advert.candidate.slice(0, farmNodesMax));
  const record: PeerRecord = {
    incarnation: packet.incarnation,
    seq: packet.seq,
    advert: {
      open: packet.advert.open,
      candidate,
      ...(packet.advert.mac !== undefined ? { mac: packet.advert.mac } : {}),
    },
    lastAtMs: nowMs,
    lanAtMs: {
      ...(known?.lanAtMs ?? {}),
      ...(settings.lans.includes(packet.lan) ? { [packet.lan]: nowMs } : {}),
    },
  };
  const accepted = count({ ...state, peers: { ...state.peers, [packet.node]: record } }, 'accepted');
  return { ...settle(accepted, settings, nowMs), verdict: 'accepted' };
}

/** Timer: peers fall silent, views waiting for agreement time out. */
export function tickMembership(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  nowMs: number,
): MembershipOutcome {
  return settle(state, settings, nowMs);
}

/** The MAC a peer advertised (vmac_directed), if any. */
export function peerMac(state: FarmMembershipState, node: string): string | undefined {
  return state.peers[node]?.advert.mac;
}

/** The local traffic opens (before start_both) or closes (after stop_both). */
export function setLocalOpen(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  open: boolean,
  nowMs: number,
): MembershipOutcome {
  return settle({ ...state, open }, settings, nowMs);
}

export function advertOf(state: FarmMembershipState): FarmAdvert {
  return { open: state.open, candidate: state.candidate };
}

/** Per farm lan: up when some peer was heard on it recently, down when peers exist but none was. */
export function farmLanStatus(
  state: FarmMembershipState,
  settings: FarmMembershipSettings,
  nowMs: number,
): Record<string, 'up' | 'down' | 'init'> {
  const status: Record<string, 'up' | 'down' | 'init'> = {};
  for (const lan of settings.lans) {
    const heard = settings.peers
      .map((node) => state.peers[node]?.lanAtMs[lan])
      .filter((atMs): atMs is number => atMs !== undefined);
    if (heard.length === 0) status[lan] = 'init';
    else
      status[lan] = heard.some((atMs) => nowMs - atMs < settings.slostCount * settings.pulseMs)
        ? 'up'
        : 'down';
  }
  return status;
}
