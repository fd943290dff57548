// The link between a mirror module's two nodes: heartbeats on every lan (agent/heartbeat), the
// pure liveness bookkeeping (agent/core/peer-liveness), and the advert each packet carries in its
// payload. It turns packets and silences into `peer` events for the automaton.
import { checkFreshness, type FreshnessState } from '../core/packet-freshness.ts';
import type { MirrorAdvert, MirrorPeerView } from '../core/mirror-automaton.ts';
import type { Generation } from '../core/mirror-data.ts';
import {
  expireLans,
  minimumTimeoutMs,
  recheckLostLans,
  heartbeatResources,
  initialLiveness,
  type LivenessSettings,
  type LivenessState,
  peerView,
  preparePacket,
  receivePacket,
} from '../core/peer-liveness.ts';
import type { HeartbeatLanEndpoint } from '../heartbeat/endpoints.ts';
import { type HeartbeatFields, payloadBytesMax } from '../heartbeat/packet.ts';
import { HeartbeatTransport, type ReceivedHeartbeat } from '../heartbeat/transport.ts';

export interface MirrorLinkSettings {
  clusterId: string;
  module: string;
  localNode: string;
  peerNode: string;
  key: Buffer;
  lans: readonly HeartbeatLanEndpoint[];
}

export interface MirrorLinkHooks {
  /** The advert to send now (the automaton's view of itself). */
  advert(nowMs: number): MirrorAdvert;
  onPeer(view: MirrorPeerView, nowMs: number): void;
  onLanResource(resource: string, value: string): void;
  onError(error: Error): void;
}

/** Adverts travel as compact JSON in the packet payload; generation nodes as s(ender)/p(eer). */
export function encodeAdvert(advert: MirrorAdvert, sender: string, monotonicMs = 0): Uint8Array {
  const history = advert.history.map((generation) => [
    generation.counter,
    generation.node === sender ? 's' : 'p',
  ]);
  // `m`: the sender's monotonic clock, for the receiver's staleness check (packet-freshness.ts).
  const compact = { ...advert, history, m: Math.round(monotonicMs) };
  let bytes = Buffer.from(JSON.stringify(compact));
  // The oldest generations go first if the payload would not fit: the newest decide.
  for (let keep = history.length - 1; bytes.length > payloadBytesMax && keep >= 1; keep -= 1) {
    bytes = Buffer.from(JSON.stringify({ ...compact, history: history.slice(-keep) }));
  }
  if (bytes.length > payloadBytesMax)
    throw new Error(`mirror advert of ${bytes.length} bytes does not fit a heartbeat`);
  return bytes;
}

export function decodeAdvert(payload: Uint8Array, sender: string, receiver: string): MirrorAdvert | null {
  return decodeAdvertWithTime(payload, sender, receiver)?.advert ?? null;
}

export function decodeAdvertWithTime(
  payload: Uint8Array,
  sender: string,
  receiver: string,
): { advert: MirrorAdvert; senderMonotonicMs: number | null } | null {
  try {
    const { m, ...raw } = JSON.parse(Buffer.from(payload).toString('utf8')) as Omit<
      MirrorAdvert,
      'history'
    > & {
      history: unknown;
      m?: unknown;
    };
    if (
      typeof raw !== 'object' ||
      raw === null ||
      typeof raw.primary !== 'boolean' ||
      !Array.isArray(raw.history)
    )
      return null;
    const history: Generation[] = (raw.history as [number, string][]).map(([counter, who]) => ({
      counter,
      node: who === 's' ? sender : receiver,
    }));
    // An older agent sends no clock: its packets skip the staleness check (rolling upgrades).
    const senderMonotonicMs = typeof m === 'number' && Number.isFinite(m) ? m : null;
    return { advert: { ...raw, history }, senderMonotonicMs };
  } catch {
    return null;
  }
}

const livenessTickMs = 50;
/** How long a burst of heartbeats may take to arrive and still count as one event. */
const burstCoalesceMs = 5;

export class MirrorLink {
  private liveness: LivenessState<MirrorAdvert>;
  private freshness: FreshnessState | null = null;
  private staleDropped = 0;
  /** Later than this (see the constructor), an advert is the past. */
  private readonly staleMs: number;
  private readonly livenessSettings: LivenessSettings;
  private readonly transport: HeartbeatTransport;
  private timer: NodeJS.Timeout | null = null;
  private publishTimer: NodeJS.Timeout | null = null;
  private lastViewKey = '';

  constructor(
    private readonly settings: MirrorLinkSettings,
    incarnation: number,
    private readonly hooks: MirrorLinkHooks,
    private readonly nowMs: () => number,
  ) {
    this.livenessSettings = {
      cluster: settings.clusterId,
      module: settings.module,
      localNode: settings.localNode,
      peerNode: settings.peerNode,
      heartbeats: settings.lans.map((lan) => ({ ident: lan.ident, timeoutMs: lan.timeoutMs })),
    };
    this.liveness = initialLiveness(this.livenessSettings, incarnation, nowMs());
    // Two pulses late (at least 500 ms) is no network delay any more, and at most half the
    // timeout, so the freshest packets of any burst always pass.
    const pulseMs = Math.max(...settings.lans.map((lan) => lan.pulseMs));
    this.staleMs = Math.min(
      Math.max(100, Math.floor(minimumTimeoutMs(this.livenessSettings) / 2)),
      Math.max(500, 2 * pulseMs),
    );
    this.transport = new HeartbeatTransport(
      {
        clusterId: settings.clusterId,
        module: settings.module,
        localNode: settings.localNode,
        peerNode: settings.peerNode,
        key: settings.key,
        lans: settings.lans,
      },
      {
        nextFields: () => this.nextFields(),
        onHeartbeat: (received) => this.received(received),
        onError: (error) => hooks.onError(error),
      },
    );
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.timer = setInterval(() => this.expire(), livenessTickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.publishTimer) clearTimeout(this.publishTimer);
    this.publishTimer = null;
    await this.transport.stop();
  }

  /** The advert changed: tell the peer now rather than at the next pulse. */
  sendNow(): void {
    this.transport.sendNow();
  }

  counters(): unknown {
    return {
      transport: this.transport.counters(),
      liveness: this.liveness.counters,
      staleDropped: this.staleDropped,
    };
  }

  private nextFields(): HeartbeatFields {
    const nowMs = this.nowMs();
    const advert = this.hooks.advert(nowMs);
    const prepared = preparePacket(this.liveness, this.livenessSettings, advert, nowMs);
    this.liveness = prepared.state;
    const header = prepared.packet.header;
    return {
      clusterId: this.settings.clusterId,
      module: this.settings.module,
      node: this.settings.localNode,
      incarnation: header.incarnation,
      seq: header.seq,
      senderTimeMs: Date.now(),
      state: advert.state,
      readiness: advert.readiness,
      uptodate: advert.uptodate,
      generation: advert.history[advert.history.length - 1] ?? null,
      ack: header.ack,
      payload: encodeAdvert(advert, this.settings.localNode, nowMs),
    };
  }

  private received(received: ReceivedHeartbeat): void {
    const fields = received.fields;
    const decoded = decodeAdvertWithTime(fields.payload, fields.node, this.settings.localNode);
    if (!decoded) {
      this.hooks.onError(
        new Error(`heartbeat from ${fields.node} on ${received.lanIdent}: unreadable advert`),
      );
      return;
    }
    const advert = decoded.advert;
    const nowMs = this.nowMs();
    if (decoded.senderMonotonicMs !== null) {
      const freshness = checkFreshness(
        this.freshness,
        fields.incarnation,
        decoded.senderMonotonicMs,
        nowMs,
        this.staleMs,
      );
      if (!freshness.fresh) {
        // Held in a queue while a link was down: what it says is the past.
        this.staleDropped += 1;
        return;
      }
      this.freshness = freshness.state;
    }
    const outcome = receivePacket(
      this.liveness,
      this.livenessSettings,
      received.lanIdent,
      {
        header: {
          cluster: fields.clusterId,
          module: fields.module,
          node: fields.node,
          incarnation: fields.incarnation,
          seq: fields.seq,
          timeMs: fields.senderTimeMs,
          ack: fields.ack,
        },
        advert,
      },
      nowMs,
    );
    this.liveness = outcome.state;
    for (const change of outcome.changes) this.hooks.onLanResource(change.resource, change.value);
    if (outcome.verdict === 'accepted') this.publishSoon();
  }

  private expire(): void {
    const nowMs = this.nowMs();
    const expired = expireLans(this.liveness, nowMs);
    this.liveness = expired.state;
    for (const change of expired.changes) this.hooks.onLanResource(change.resource, change.value);
    this.publish(nowMs, false);
  }

  /**
   * Before a `start`: lost heartbeats get one more timeout (see recheckLostLans), and the peer
   * view is returned as it is now, for the caller to apply before the command. Always returned:
   * a heartbeat accepted a moment ago may still wait for its publication (burst coalescing), and a
   * start decided on the view before it took a peer that had just come back for UNKNOWN (seen in
   * the failover benchmark: the returning node started ALONE, a needless split brain).
   */
  peerViewForStart(nowMs: number): MirrorPeerView {
    const rechecked = recheckLostLans(this.liveness, nowMs);
    this.liveness = rechecked.state;
    for (const change of rechecked.changes) this.hooks.onLanResource(change.resource, change.value);
    const view = peerView(this.liveness);
    this.lastViewKey = viewKeyOf(view);
    return view;
  }

  /** Peer events go to the automaton on every accepted advert and whenever the view changes. */
  /**
   * Packets that arrive in a burst (released by a link that comes back) are one event: only the
   * newest advert, which the liveness state holds, reaches the automaton.
   */
  private publishSoon(): void {
    if (this.publishTimer !== null) return;
    this.publishTimer = setTimeout(() => {
      this.publishTimer = null;
      this.publish(this.nowMs(), true);
    }, burstCoalesceMs);
  }

  private publish(nowMs: number, always: boolean): void {
    const view = peerView(this.liveness);
    const key = viewKeyOf(view);
    if (!always && key === this.lastViewKey) return;
    this.lastViewKey = key;
    this.hooks.onPeer(view, nowMs);
  }

  lanResources(): Record<string, string> {
    return heartbeatResources(this.liveness);
  }
}

/** What makes two peer views the same event for the automaton. */
function viewKeyOf(view: MirrorPeerView): string {
  return view.status === 'up' ? `up:${view.incarnation}:${view.promiseFromMs}` : view.status;
}
