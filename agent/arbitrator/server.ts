// `hakitd --arbitrator`: the lease arbitrator on a third host (issue 6). A UDP adapter around the
// pure arbitrator of agent/core/arbitrator-lease.ts: it decodes and authenticates each datagram,
// feeds it to the core with the monotonic clock, writes the durable part of the state to disk
// (fsync'd) before any reply that depends on it leaves, and sends the reply.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import {
  type ArbitratorDurable,
  type ArbitratorState,
  arbitratorDurable,
  arbitratorHandleRelease,
  arbitratorHandleRequest,
  initialArbitrator,
  type LeaseReply,
  type LeaseTiming,
} from '../core/arbitrator-lease.ts';
import { readJsonFile, writeJsonDurably } from '../daemon/durable-file.ts';
import { type ArbitratorDropReason, decodeArbitratorMessage, encodeArbitratorMessage } from './message.ts';

export interface ArbitratorServerSettings {
  key: Buffer;
  clusterId: string;
  /** Address to bind ('::' for every address, both families). */
  bindAddress: string;
  port: number;
  timing: LeaseTiming;
  /** Where the registered generations survive a restart. */
  stateFile: string;
}

export interface ArbitratorCounters {
  received: number;
  granted: number;
  refused: Record<string, number>;
  released: number;
  dropped: Partial<Record<ArbitratorDropReason | 'unexpected' | 'repeated', number>>;
  sendErrors: number;
}

function isDurableRecord(value: unknown): value is Record<string, ArbitratorDurable> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).every(
    (entry) =>
      typeof entry === 'object' && entry !== null && 'registered' in entry && 'unconfirmedClaim' in entry,
  );
}

export class ArbitratorServer {
  private socket: Socket | null = null;
  private state: ArbitratorState;
  private durableText: string;
  readonly counters: ArbitratorCounters = {
    received: 0,
    granted: 0,
    refused: {},
    released: 0,
    dropped: {},
    sendErrors: 0,
  };

  constructor(
    private readonly settings: ArbitratorServerSettings,
    private readonly log: (message: string) => void,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    const loaded = readJsonFile(settings.stateFile, isDurableRecord);
    let durable: Record<string, ArbitratorDurable> = {};
    if (loaded.kind === 'ok') durable = loaded.value;
    else if (loaded.kind === 'corrupt') {
      // A damaged file must not be taken for "nothing registered": that could grant a stale node.
      throw new Error(
        `arbitrator state ${settings.stateFile}: ${loaded.reason}; move it away only if you know why`,
      );
    }
    this.state = initialArbitrator(this.nowMs(), settings.timing, durable);
    this.durableText = JSON.stringify(arbitratorDurable(this.state));
  }

  async listen(): Promise<void> {
    const socket = createSocket({ type: this.settings.bindAddress.includes(':') ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (datagram, from) => {
      try {
        this.receive(datagram, from);
      } catch (error) {
        // A reply is never sent without its durable state on disk: say why and drop the datagram.
        this.log(`message from ${from.address}:${from.port} not handled: ${(error as Error).message}`);
      }
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.settings.port, this.settings.bindAddress, () => {
        socket.off('error', reject);
        socket.on('error', (error) => this.log(`socket error: ${error.message}`));
        resolve();
      });
    });
    this.log(
      `arbitrator for cluster ${this.settings.clusterId} on udp ${this.settings.bindAddress} port ${this.settings.port}, ` +
        `lease ${this.settings.timing.leaseMs} ms; no grant for the next ${this.settings.timing.leaseMs} ms (old leases end)`,
    );
  }

  /** The UDP port bound (the configured one, or the one the system chose for port 0). */
  boundPort(): number {
    if (this.socket === null) throw new Error('arbitrator not listening');
    return this.socket.address().port;
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  private drop(reason: ArbitratorDropReason | 'unexpected' | 'repeated'): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private receive(datagram: Buffer, from: RemoteInfo): void {
    this.counters.received += 1;
    const decoded = decodeArbitratorMessage(this.settings.key, this.settings.clusterId, datagram);
    if (!decoded.ok) {
      this.drop(decoded.reason);
      return;
    }
    const message = decoded.message;
    let reply: LeaseReply | null;
    if (message.type === 'leaseRequest') {
      const handled = arbitratorHandleRequest(this.state, message, this.settings.timing, this.nowMs());
      this.commit(handled.state);
      reply = handled.reply;
      if (reply === null) this.drop('repeated');
    } else if (message.type === 'leaseRelease') {
      const handled = arbitratorHandleRelease(this.state, message);
      this.commit(handled.state);
      reply = handled.reply;
      this.counters.released += 1;
    } else {
      this.drop('unexpected');
      return;
    }
    if (reply === null) return;
    if (reply.type === 'leaseGranted') this.counters.granted += 1;
    if (reply.type === 'leaseRefused') {
      this.counters.refused[reply.reason] = (this.counters.refused[reply.reason] ?? 0) + 1;
    }
    this.logChange(reply);
    const out = encodeArbitratorMessage(this.settings.key, this.settings.clusterId, reply);
    this.socket?.send(out, from.port, from.address, (error) => {
      if (error) {
        this.counters.sendErrors += 1;
        this.log(`reply to ${from.address}:${from.port} not sent: ${error.message}`);
      }
    });
  }

  /** The durable part goes to disk before the reply that reveals it; the rest lives in memory. */
  private commit(next: ArbitratorState): void {
    const text = JSON.stringify(arbitratorDurable(next));
    if (text !== this.durableText) {
      writeJsonDurably(this.settings.stateFile, arbitratorDurable(next));
      this.durableText = text;
    }
    this.state = next;
  }

  private lastHolder = new Map<string, string | null>();

  /** Logs changes of holder, not every renewal. */
  private logChange(reply: LeaseReply): void {
    if (reply.type === 'leaseGranted') {
      if (this.lastHolder.get(reply.module) !== reply.node) {
        this.log(`module ${reply.module}: lease granted to ${reply.node}`);
        this.lastHolder.set(reply.module, reply.node);
      }
    } else if (reply.type === 'leaseReleased') {
      if (this.lastHolder.get(reply.module) === reply.node) {
        this.log(`module ${reply.module}: lease released by ${reply.node}`);
        this.lastHolder.set(reply.module, null);
      }
    } else if (reply.type === 'leaseRefused' && reply.reason !== 'held') {
      this.log(`module ${reply.module}: lease refused to ${reply.node} (${reply.reason})`);
    }
  }

  /** Who holds each module's lease now, for `hakit arbitrator status` style reports and tests. */
  holders(): Record<string, { node: string; remainingMs: number } | null> {
    const nowMs = this.nowMs();
    const result: Record<string, { node: string; remainingMs: number } | null> = {};
    for (const [module, entry] of Object.entries(this.state.modules)) {
      const holder = entry.holder;
      result[module] =
        holder !== null && holder.expiresAtMs > nowMs
          ? { node: holder.node, remainingMs: Math.round(holder.expiresAtMs - nowMs) }
          : null;
    }
    return result;
  }
}
