// A mirror node's side of the arbitrator link: sends the core's lease requests and releases as
// authenticated datagrams and hands back the replies. Retries, timeouts and what a reply means
// are the core's business (agent/core/arbitrator-lease.ts); this only moves bytes.
import { createSocket, type Socket } from 'node:dgram';
import type { LeaseRelease, LeaseReply, LeaseRequest } from '../core/arbitrator-lease.ts';
import { decodeArbitratorMessage, encodeArbitratorMessage } from './message.ts';

export interface ArbitratorClientSettings {
  key: Buffer;
  clusterId: string;
  /** The arbitrator's address (IPv4 or IPv6 literal, or a DNS name resolved by the OS). */
  host: string;
  port: number;
}

export interface ArbitratorClientHooks {
  onReply(reply: LeaseReply): void;
  onError(error: Error): void;
}

/** Sends in flight at once: the core sends at most a few per retry period. */
const sendsInFlightMax = 16;

export class ArbitratorClient {
  private socket: Socket | null = null;
  private sendsInFlight = 0;
  readonly counters = { sent: 0, replies: 0, dropped: 0, sendErrors: 0 };

  constructor(
    private readonly settings: ArbitratorClientSettings,
    private readonly hooks: ArbitratorClientHooks,
  ) {}

  async start(): Promise<void> {
    const socket = createSocket({ type: this.settings.host.includes(':') ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (datagram, from) => {
      if (from.port !== this.settings.port) {
        this.counters.dropped += 1;
        return;
      }
      const decoded = decodeArbitratorMessage(this.settings.key, this.settings.clusterId, datagram);
      if (!decoded.ok) {
        this.counters.dropped += 1;
        this.hooks.onError(new Error(`arbitrator reply from ${from.address} dropped: ${decoded.reason}`));
        return;
      }
      const message = decoded.message;
      if (message.type === 'leaseRequest' || message.type === 'leaseRelease') {
        this.counters.dropped += 1;
        return;
      }
      this.counters.replies += 1;
      this.hooks.onReply(message);
    });
    socket.on('error', (error) => this.hooks.onError(new Error(`arbitrator socket: ${error.message}`)));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  }

  send(message: LeaseRequest | LeaseRelease): void {
    const socket = this.socket;
    if (socket === null) return;
    if (this.sendsInFlight >= sendsInFlightMax) {
      // The core sends again after its retry period: dropping one here is a lost datagram.
      this.counters.sendErrors += 1;
      return;
    }
    const datagram = encodeArbitratorMessage(this.settings.key, this.settings.clusterId, message);
    this.sendsInFlight += 1;
    this.counters.sent += 1;
    socket.send(datagram, this.settings.port, this.settings.host, (error) => {
      this.sendsInFlight -= 1;
      if (error) {
        this.counters.sendErrors += 1;
        this.hooks.onError(
          new Error(`arbitrator ${this.settings.host}:${this.settings.port}: ${error.message}`),
        );
      }
    });
  }

  stop(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}
