// The farm membership link of one module: a UDP socket on every `<farm><lan>` (bound to this
// node's address on that lan), a packet to every other node of the lan each pulse, packets
// authenticated with the cluster key (the mirror heartbeat format, agent/heartbeat/packet.ts,
// whose payload carries the farm advert), and the pure membership of agent/core/farm-membership
// deciding what they mean. Reports adopted views to the module.
//
// Bounded: one socket per lan, sends in flight per lan bounded, received datagrams decoded at
// once (they are small and authenticated first), rebinding after a failure delayed.
import { createSocket, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import {
  advertOf,
  checkMembershipSettings,
  type FarmAdvert,
  farmLanStatus,
  type FarmMembershipSettings,
  type FarmMembershipState,
  type FarmView,
  initialMembership,
  type MembershipOutcome,
  peerMac,
  receiveFarmPacket,
  setLocalOpen,
  tickMembership,
} from '../core/farm-membership.ts';
import type { ModuleStateName, Readiness } from '../core/states.ts';
import { decodeHeartbeat, encodeHeartbeat, newIncarnation, payloadBytesMax } from '../heartbeat/packet.ts';
import type { FarmRuntime } from './farm-runtime.ts';

const sendsInFlightMax = 16;
const rebindDelayMs = 1_000;
const tickMsMax = 50;

export interface FarmLinkHooks {
  /** The module's state, carried in each packet for diagnostics. */
  moduleState(): { state: ModuleStateName; readiness: Readiness };
  onView(view: FarmView): void;
  onLanResource(resource: string, value: string): void;
  onError(error: Error): void;
}

interface LanSocket {
  readonly ident: string;
  socket: Socket | null;
  inFlight: number;
  rebindTimer: NodeJS.Timeout | null;
}

export function encodeFarmAdvert(advert: FarmAdvert): Buffer {
  const bytes = Buffer.from(
    JSON.stringify({
      o: advert.open,
      c: advert.candidate,
      ...(advert.mac !== undefined ? { m: advert.mac } : {}),
    }),
  );
  if (bytes.length > payloadBytesMax)
    throw new Error(`farm advert of ${bytes.length} bytes does not fit a packet`);
  return bytes;
}

export function decodeFarmAdvert(payload: Uint8Array): FarmAdvert | null {
  try {
    const raw = JSON.parse(Buffer.from(payload).toString('utf8')) as {
      o?: unknown;
      c?: unknown;
      m?: unknown;
    };
    if (
      typeof raw.o !== 'boolean' ||
      !Array.isArray(raw.c) ||
      !raw.c.every((name) => typeof name === 'string')
    )
      return null;
    // A MAC that is not one is ignored, never passed on to nft.
    const mac = typeof raw.m === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(raw.m) ? raw.m : undefined;
    return { open: raw.o, candidate: raw.c as string[], ...(mac !== undefined ? { mac } : {}) };
  } catch {
    return null;
  }
}

export class FarmLink {
  private membership: FarmMembershipState;
  private readonly settings: FarmMembershipSettings;
  private readonly incarnation: number;
  private seq = 0;
  private readonly sockets: LanSocket[];
  private pulseTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private lanStatus: Record<string, string> = {};
  /** vmac_directed: this node's MAC on the VIP interface, advertised to the director. */
  private localMac: string | null = null;
  private stopped = false;
  readonly counters = {
    sent: 0,
    sendErrors: 0,
    sendsSkipped: 0,
    received: 0,
    dropped: {} as Record<string, number>,
  };

  constructor(
    private readonly runtime: FarmRuntime,
    private readonly module: string,
    private readonly hooks: FarmLinkHooks,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.settings = {
      localNode: runtime.localNode,
      peers: runtime.peers,
      lans: runtime.lans.map((lan) => lan.ident),
      pulseMs: runtime.pulseMs,
      mlostCount: runtime.mlostCount,
      slostCount: runtime.slostCount,
    };
    checkMembershipSettings(this.settings);
    this.incarnation = newIncarnation(Date.now(), randomInt(1024));
    this.membership = initialMembership(this.nowMs());
    this.sockets = runtime.lans.map((lan) => ({
      ident: lan.ident,
      socket: null,
      inFlight: 0,
      rebindTimer: null,
    }));
  }

  get view(): FarmView {
    return this.membership.view;
  }

  get open(): boolean {
    return this.membership.open;
  }

  async start(): Promise<void> {
    await Promise.all(this.sockets.map((lan) => this.bind(lan)));
    this.pulseTimer = setInterval(() => this.pulse(), this.runtime.pulseMs);
    this.pulseTimer.unref();
    this.tickTimer = setInterval(
      () => this.apply(tickMembership(this.membership, this.settings, this.nowMs())),
      Math.min(tickMsMax, this.runtime.pulseMs),
    );
    this.tickTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pulseTimer) clearInterval(this.pulseTimer);
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const lan of this.sockets) {
      if (lan.rebindTimer) clearTimeout(lan.rebindTimer);
      const socket = lan.socket;
      lan.socket = null;
      if (socket) await new Promise<void>((done) => socket.close(() => done()));
    }
  }

  setLocalMac(mac: string): void {
    this.localMac = mac;
  }

  /** The MAC a member advertised (or ours), for the director's forwarding map. */
  macOf(node: string): string | undefined {
    if (node === this.runtime.localNode) return this.localMac ?? undefined;
    return peerMac(this.membership, node);
  }

  /** Traffic opened or closed here: peers learn it now, not at the next pulse. */
  setOpen(open: boolean): void {
    this.apply(setLocalOpen(this.membership, this.settings, open, this.nowMs()));
    this.pulse();
  }

  private apply(outcome: MembershipOutcome): void {
    this.membership = outcome.state;
    if (outcome.sendNow) this.pulse();
    if (outcome.viewChanged) this.hooks.onView(this.membership.view);
    const status = farmLanStatus(this.membership, this.settings, this.nowMs());
    for (const [lan, value] of Object.entries(status)) {
      if (this.lanStatus[lan] === value) continue;
      this.lanStatus[lan] = value;
      this.hooks.onLanResource(`farmlan.${lan.replace(/[^A-Za-z0-9_.:@%-]/g, '_')}`, value);
    }
  }

  private bind(lan: LanSocket): Promise<void> {
    const endpoint = this.runtime.lans.find((candidate) => candidate.ident === lan.ident);
    if (endpoint === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const socket = createSocket({
        type: endpoint.localAddress.includes(':') ? 'udp6' : 'udp4',
        reuseAddr: true,
      });
      const retry = (error: Error) => {
        this.hooks.onError(
          new Error(`farm lan ${lan.ident}: ${endpoint.localAddress}:${endpoint.port}: ${error.message}`),
        );
        socket.close();
        if (lan.socket === socket) lan.socket = null;
        if (!this.stopped && lan.rebindTimer === null) {
          lan.rebindTimer = setTimeout(() => {
            lan.rebindTimer = null;
            void this.bind(lan);
          }, rebindDelayMs);
          lan.rebindTimer.unref();
        }
        resolve();
      };
      socket.once('error', retry);
      socket.bind(endpoint.port, endpoint.localAddress, () => {
        socket.off('error', retry);
        socket.on('error', (error) =>
          this.hooks.onError(new Error(`farm lan ${lan.ident}: ${error.message}`)),
        );
        socket.on('message', (data, remote) => this.received(lan.ident, data, remote.address));
        lan.socket = socket;
        resolve();
      });
    });
  }

  private pulse(): void {
    if (this.stopped) return;
    this.seq += 1;
    const { state, readiness } = this.hooks.moduleState();
    let data: Buffer;
    try {
      data = encodeHeartbeat(
        {
          clusterId: this.runtime.clusterId,
          module: this.module,
          node: this.runtime.localNode,
          incarnation: this.incarnation,
          seq: this.seq,
          senderTimeMs: Date.now(),
          state,
          readiness,
          uptodate: false,
          generation: null,
          ack: null,
          payload: encodeFarmAdvert({
            ...advertOf(this.membership),
            ...(this.localMac !== null ? { mac: this.localMac } : {}),
          }),
        },
        this.runtime.key,
      );
    } catch (error) {
      this.hooks.onError(error as Error);
      return;
    }
    for (const lan of this.sockets) {
      const socket = lan.socket;
      const endpoint = this.runtime.lans.find((candidate) => candidate.ident === lan.ident);
      if (socket === null || endpoint === undefined) continue;
      for (const peer of endpoint.peers) {
        if (lan.inFlight >= sendsInFlightMax) {
          this.counters.sendsSkipped += 1;
          continue;
        }
        lan.inFlight += 1;
        socket.send(data, endpoint.port, peer.address, (error) => {
          lan.inFlight -= 1;
          if (error) this.counters.sendErrors += 1;
          else this.counters.sent += 1;
        });
      }
    }
  }

  private drop(reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private received(lanIdent: string, data: Buffer, from: string): void {
    this.counters.received += 1;
    const decoded = decodeHeartbeat(data, this.runtime.key, {
      clusterId: this.runtime.clusterId,
      module: this.module,
      nodes: this.runtime.peers,
    });
    if (!decoded.ok) {
      this.drop(decoded.reason);
      return;
    }
    const fields = decoded.fields;
    // A peer sends from its own address on this lan; anything else is a forwarded or spoofed copy.
    const endpoint = this.runtime.lans.find((candidate) => candidate.ident === lanIdent);
    if (!endpoint?.peers.some((peer) => peer.node === fields.node && peer.address === from)) {
      this.drop('unexpectedSource');
      return;
    }
    const advert = decodeFarmAdvert(fields.payload);
    if (advert === null) {
      this.drop('malformed');
      return;
    }
    const outcome = receiveFarmPacket(
      this.membership,
      this.settings,
      { node: fields.node, lan: lanIdent, incarnation: fields.incarnation, seq: fields.seq, advert },
      this.nowMs(),
    );
    if (outcome.verdict !== 'accepted') this.drop(outcome.verdict);
    this.apply(outcome);
  }
}
