// UDP transport of a mirror module's heartbeats: one socket per `<heartbeat>` lan bound to the
// node's address on that lan, a packet to the peer every pulse of that lan, and received packets
// authenticated, checked for replays and handed to the daemon. No state machine here: what a
// packet means is decided by agent/core/peer-liveness.ts.
//
// Never blocks the event loop: datagrams are queued (bounded) and decoded in small batches on
// later turns, sends in flight are bounded, every failure is counted and reported, never thrown.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { heartbeatLansMax } from '../core/peer-liveness.ts';
import { sameAddress } from '../net/addresses.ts';
import type { HeartbeatLanEndpoint } from './endpoints.ts';
import {
  clusterKeyBytes,
  decodeHeartbeat,
  type DropReason,
  dropReasons,
  encodeHeartbeat,
  type HeartbeatFields,
  packetBytesMax,
} from './packet.ts';
import { checkReplay, emptyReplayWindow, type ReplayWindow } from './replay-window.ts';

export type { HeartbeatLanEndpoint } from './endpoints.ts';

/** Datagrams waiting to be decoded, all lans together; beyond it they are dropped (queueFull). */
export const receiveQueueMax = 256;
/** Datagrams decoded per event-loop turn, so a flood cannot hold the loop. */
export const receiveBatchMax = 32;
/** Sends not yet completed per lan; a stalled interface must not pile up buffers. */
export const sendsInFlightMax = 8;
export const pulseMsMin = 10;
export const pulseMsMax = 60_000;
/** Delay before binding again a socket that failed (address missing, interface down). */
export const rebindDelayMs = 1_000;
const socketReceiveBufferBytes = 256 * 1024;

export interface HeartbeatTransportSettings {
  readonly clusterId: string;
  readonly module: string;
  readonly localNode: string;
  readonly peerNode: string;
  /** The 32-byte cluster key (cluster-key.ts). */
  readonly key: Buffer;
  readonly lans: readonly HeartbeatLanEndpoint[];
}

export interface ReceivedHeartbeat {
  readonly lanIdent: string;
  readonly fields: HeartbeatFields;
  /** Local monotonic clock (performance.now()) when the datagram arrived. */
  readonly receivedAtMs: number;
  /** Receiver's wall clock at arrival, to compare with fields.senderTimeMs in diagnostics. */
  readonly receivedWallMs: number;
}

export interface HeartbeatTransportHooks {
  /**
   * The fields of the packet to send now on `lanIdents` (one lan at its pulse, or every lan for
   * sendNow). The daemon stamps incarnation, seq and ack (core preparePacket).
   */
  nextFields(lanIdents: readonly string[]): HeartbeatFields;
  onHeartbeat(received: ReceivedHeartbeat): void;
  /** Errors of sockets and sends, with the lan and addresses in the message. */
  onError(error: Error): void;
}

export interface LanCounters {
  readonly ident: string;
  readonly localAddress: string;
  readonly peerAddress: string;
  readonly port: number;
  readonly bound: boolean;
  readonly sent: number;
  readonly sendErrors: number;
  /** Pulses not sent because sendsInFlightMax sends were still pending. */
  readonly sendsSkipped: number;
  /** Datagrams that reached the socket. */
  readonly received: number;
  readonly accepted: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Monotonic time of the last accepted packet. */
  readonly lastAcceptedAtMs: number | null;
  readonly lastError: string | null;
}

interface LanRuntime {
  readonly endpoint: HeartbeatLanEndpoint;
  socket: Socket | null;
  bound: boolean;
  pulseTimer: NodeJS.Timeout | null;
  rebindTimer: NodeJS.Timeout | null;
  replay: ReplayWindow;
  inFlight: number;
  sent: number;
  sendErrors: number;
  sendsSkipped: number;
  received: number;
  accepted: number;
  dropped: Record<DropReason, number>;
  lastAcceptedAtMs: number | null;
  lastError: string | null;
}

interface Queued {
  readonly lan: LanRuntime;
  readonly data: Buffer;
  readonly from: string;
  readonly atMs: number;
  readonly wallMs: number;
}

function zeroDrops(): Record<DropReason, number> {
  const drops = {} as Record<DropReason, number>;
  for (const reason of dropReasons) drops[reason] = 0;
  return drops;
}

function validate(settings: HeartbeatTransportSettings): void {
  if (settings.key.length !== clusterKeyBytes)
    throw new Error(`heartbeat transport: the cluster key must be ${clusterKeyBytes} bytes`);
  if (settings.lans.length === 0 || settings.lans.length > heartbeatLansMax)
    throw new Error(`heartbeat transport: 1 to ${heartbeatLansMax} lans, got ${settings.lans.length}`);
  if (new Set(settings.lans.map((lan) => lan.ident)).size !== settings.lans.length)
    throw new Error('heartbeat transport: heartbeat idents must be unique');
  if (settings.localNode === settings.peerNode)
    throw new Error('heartbeat transport: the peer must be another node');
  for (const lan of settings.lans) {
    const where = `heartbeat ${lan.ident}`;
    if (isIP(lan.localAddress) === 0 || isIP(lan.localAddress) !== isIP(lan.peerAddress))
      throw new Error(
        `${where}: ${lan.localAddress} and ${lan.peerAddress} must be IP addresses of one family`,
      );
    if (!Number.isInteger(lan.port) || lan.port < 1 || lan.port > 65_535)
      throw new Error(`${where}: port ${lan.port} out of range`);
    if (!Number.isInteger(lan.pulseMs) || lan.pulseMs < pulseMsMin || lan.pulseMs > pulseMsMax)
      throw new Error(`${where}: pulse ${lan.pulseMs} ms outside ${pulseMsMin}..${pulseMsMax} ms`);
  }
}

export class HeartbeatTransport {
  private readonly lans: LanRuntime[];
  private readonly queue: Queued[] = [];
  private drainScheduled = false;
  private running = false;

  constructor(
    private readonly settings: HeartbeatTransportSettings,
    private readonly hooks: HeartbeatTransportHooks,
  ) {
    validate(settings);
    this.lans = settings.lans.map((endpoint) => ({
      endpoint,
      socket: null,
      bound: false,
      pulseTimer: null,
      rebindTimer: null,
      replay: emptyReplayWindow(),
      inFlight: 0,
      sent: 0,
      sendErrors: 0,
      sendsSkipped: 0,
      received: 0,
      accepted: 0,
      dropped: zeroDrops(),
      lastAcceptedAtMs: null,
      lastError: null,
    }));
  }

  /** Binds every lan (a lan that cannot bind retries every rebindDelayMs) and starts pulsing. */
  async start(): Promise<void> {
    if (this.running) throw new Error('heartbeat transport already started');
    this.running = true;
    await Promise.all(this.lans.map((lan) => this.bind(lan)));
    for (const lan of this.lans) {
      lan.pulseTimer = setInterval(() => this.pulse([lan]), lan.endpoint.pulseMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.queue.length = 0;
    await Promise.all(
      this.lans.map(async (lan) => {
        if (lan.pulseTimer !== null) clearInterval(lan.pulseTimer);
        if (lan.rebindTimer !== null) clearTimeout(lan.rebindTimer);
        lan.pulseTimer = null;
        lan.rebindTimer = null;
        await this.closeSocket(lan);
      }),
    );
  }

  /** Sends one packet on every lan now (the automaton's advert changed). */
  sendNow(): void {
    if (!this.running) return;
    this.pulse(this.lans);
  }

  counters(): LanCounters[] {
    return this.lans.map((lan) => ({
      ident: lan.endpoint.ident,
      localAddress: lan.endpoint.localAddress,
      peerAddress: lan.endpoint.peerAddress,
      port: lan.endpoint.port,
      bound: lan.bound,
      sent: lan.sent,
      sendErrors: lan.sendErrors,
      sendsSkipped: lan.sendsSkipped,
      received: lan.received,
      accepted: lan.accepted,
      dropped: { ...lan.dropped },
      lastAcceptedAtMs: lan.lastAcceptedAtMs,
      lastError: lan.lastError,
    }));
  }

  private report(lan: LanRuntime, message: string): void {
    const { ident, localAddress, peerAddress, port } = lan.endpoint;
    const error = new Error(
      `heartbeat ${ident} (${localAddress} -> ${peerAddress} port ${port}) of module ${this.settings.module}: ${message}`,
    );
    lan.lastError = error.message;
    try {
      this.hooks.onError(error);
    } catch {
      // The daemon's error hook failing must not take the transport down.
    }
  }

  private bind(lan: LanRuntime): Promise<void> {
    const family = isIP(lan.endpoint.localAddress) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket({ type: family, ipv6Only: family === 'udp6' });
    lan.socket = socket;
    return new Promise((resolve) => {
      let settled = false;
      const settle = () => {
        if (!settled) {
          settled = true;
          resolve();
        }
      };
      socket.on('message', (data, remote) => this.enqueue(lan, data, remote));
      socket.on('error', (error) => {
        this.report(lan, `socket error: ${error.message}`);
        void this.closeSocket(lan).then(() => this.scheduleRebind(lan));
        settle();
      });
      socket.bind({ address: lan.endpoint.localAddress, port: lan.endpoint.port, exclusive: true }, () => {
        lan.bound = true;
        try {
          socket.setRecvBufferSize(socketReceiveBufferBytes);
        } catch (error) {
          this.report(lan, `cannot size the receive buffer: ${(error as Error).message}`);
        }
        settle();
      });
    });
  }

  private scheduleRebind(lan: LanRuntime): void {
    if (!this.running || lan.rebindTimer !== null) return;
    lan.rebindTimer = setTimeout(() => {
      lan.rebindTimer = null;
      if (this.running && lan.socket === null) void this.bind(lan);
    }, rebindDelayMs);
  }

  private closeSocket(lan: LanRuntime): Promise<void> {
    const socket = lan.socket;
    lan.socket = null;
    lan.bound = false;
    lan.inFlight = 0;
    if (socket === null) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // Already closed.
      }
    });
  }

  private pulse(lans: readonly LanRuntime[]): void {
    const ready = lans.filter((lan) => lan.bound && lan.socket !== null);
    if (ready.length === 0) return;
    let data: Buffer;
    try {
      data = encodeHeartbeat(
        this.hooks.nextFields(ready.map((lan) => lan.endpoint.ident)),
        this.settings.key,
      );
    } catch (error) {
      for (const lan of ready) this.report(lan, `cannot build a heartbeat: ${(error as Error).message}`);
      return;
    }
    for (const lan of ready) this.send(lan, data);
  }

  private send(lan: LanRuntime, data: Buffer): void {
    const socket = lan.socket;
    if (socket === null) return;
    if (lan.inFlight >= sendsInFlightMax) {
      lan.sendsSkipped += 1;
      return;
    }
    lan.inFlight += 1;
    try {
      socket.send(data, lan.endpoint.port, lan.endpoint.peerAddress, (error) => {
        if (lan.socket !== socket) return;
        lan.inFlight -= 1;
        if (error) {
          lan.sendErrors += 1;
          this.report(lan, `send failed: ${error.message}`);
        } else lan.sent += 1;
      });
    } catch (error) {
      lan.inFlight -= 1;
      lan.sendErrors += 1;
      this.report(lan, `send failed: ${(error as Error).message}`);
    }
  }

  private enqueue(lan: LanRuntime, data: Buffer, remote: RemoteInfo): void {
    lan.received += 1;
    if (this.queue.length >= receiveQueueMax) {
      lan.dropped.queueFull += 1;
      return;
    }
    this.queue.push({ lan, data, from: remote.address, atMs: performance.now(), wallMs: Date.now() });
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private drain(): void {
    this.drainScheduled = false;
    const batch = this.queue.splice(0, receiveBatchMax);
    for (const item of batch) this.process(item);
    if (this.queue.length > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    }
  }

  private process(item: Queued): void {
    const { lan } = item;
    if (!this.running) return;
    const drop = (reason: DropReason) => {
      lan.dropped[reason] += 1;
    };
    if (!sameAddress(item.from, lan.endpoint.peerAddress)) return drop('unexpectedSource');
    if (item.data.length > packetBytesMax) return drop('tooBig');
    const decoded = decodeHeartbeat(item.data, this.settings.key, {
      clusterId: this.settings.clusterId,
      module: this.settings.module,
      nodes: [this.settings.peerNode],
    });
    if (!decoded.ok) return drop(decoded.reason);
    const { fields } = decoded;
    const checked = checkReplay(lan.replay, fields, fields);
    if (checked.verdict !== 'fresh') return drop(checked.verdict);
    lan.replay = checked.window;
    lan.accepted += 1;
    lan.lastAcceptedAtMs = item.atMs;
    try {
      this.hooks.onHeartbeat({
        lanIdent: lan.endpoint.ident,
        fields,
        receivedAtMs: item.atMs,
        receivedWallMs: item.wallMs,
      });
    } catch (error) {
      this.report(lan, `the heartbeat handler failed: ${(error as Error).message}`);
    }
  }
}

/** The counters as text, one block per lan, for `hakit` and support snapshots. */
export function formatLanCounters(counters: readonly LanCounters[], nowMs = performance.now()): string {
  return counters
    .map((lan) => {
      const drops = dropReasons
        .filter((reason) => lan.dropped[reason] > 0)
        .map((reason) => `${reason}=${lan.dropped[reason]}`);
      const last =
        lan.lastAcceptedAtMs === null ? 'never' : `${Math.round(nowMs - lan.lastAcceptedAtMs)} ms ago`;
      return [
        `heartbeat.${lan.ident} ${lan.localAddress} -> ${lan.peerAddress} udp/${lan.port} ${lan.bound ? 'bound' : 'NOT BOUND'}`,
        `  sent ${lan.sent} (errors ${lan.sendErrors}, skipped ${lan.sendsSkipped}), received ${lan.received}, accepted ${lan.accepted}, last accepted ${last}`,
        `  dropped: ${drops.length === 0 ? 'none' : drops.join(' ')}`,
        ...(lan.lastError === null ? [] : [`  last error: ${lan.lastError}`]),
      ].join('\n');
    })
    .join('\n');
}
