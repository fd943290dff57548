// The primary's replication engine. Every mutating operation goes through `submit`: under one
// lock it is applied locally, numbered and queued on the stream (or journaled when the peer is
// away), so the order the secondary applies is the order the primary's tree saw; the caller then
// waits, outside the lock, for the secondary's acknowledgement (receipt with async="second"). A
// peer that does not acknowledge within `locktimeoutMs`, or makes no progress for `sendtimeoutMs`,
// is dropped: the operations it has not reported applied (acknowledged on receipt or not) go to
// the journal and the primary goes on ALONE. On (re)connection it reintegrates: only what the
// journal recorded, or a full sync by block digests.
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import {
  clientMac,
  macEquals,
  newNonce,
  serverMac,
  tlsCiphers,
  tlsFailureOf,
  tlsIdentityOf,
} from './auth.ts';
import type { ActivityLog, JournalFile, StateFile } from './journal-file.ts';
import type { JournalRecord } from './journal.ts';
import type { DirReply, DirRequest, Frame, FrameTypeCode, Op, PathSums, TimeFix } from './protocol.ts';
import {
  FrameDecoder,
  FrameType,
  decodeDirReply,
  decodeList,
  decodeSumsReply,
  decodeText,
  decodeWelcome,
  encodeDirRequest,
  encodeFrame,
  encodeHello,
  encodeOpParts,
  encodeSumsRequest,
  frameFlagCrc32c,
  frameHeaderOf,
  isBarrier,
  protocolVersion,
} from './protocol.ts';
import type { InflightEntry, WindowLimits } from './window.ts';
import { InflightWindow } from './window.ts';

export type LinkState = 'alone' | 'connecting' | 'syncing' | 'connected';

export interface ReplicatorOptions {
  readonly moduleName: string;
  readonly nodeName: string;
  readonly peerHost: string;
  readonly peerPort: number;
  readonly replicationKey: Buffer;
  /** Module encryption on: the stream runs in TLS with this pre-shared key (auth.ts tlsPskOf). */
  readonly tlsPsk?: Buffer;
  readonly window: WindowLimits;
  readonly locktimeoutMs: number;
  readonly sendtimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectIntervalMs: number;
  readonly journal: JournalFile;
  readonly activity: ActivityLog;
  readonly state: StateFile;
  /** Runs the reintegration once the link is up (resync.ts); resolves when it has been acknowledged. */
  readonly reintegrate: (replicator: Replicator, peer: PeerInfo) => Promise<void>;
}

export interface PeerInfo {
  readonly lastSyncMs: number;
  readonly syncInProgress: boolean;
  readonly suspectPaths: readonly string[];
}

/** What a locally applied operation means for the peer. */
export interface Described {
  readonly op: Op;
  readonly fixes?: readonly TimeFix[];
  /** Journal records if the peer does not get it (default: recordsForOp). */
  readonly records?: readonly JournalRecord[];
}

interface Pending {
  /**
   * What to journal if the peer drops before applying it, computed when the frame is queued: a
   * write's data is a view of libfuse's buffer, detached (length 0) once the FUSE reply is sent,
   * and with async="second" the reply precedes the secondary's apply (recordsOf afterwards
   * journaled an empty range: the reintegration did not resend it).
   */
  readonly records: readonly JournalRecord[];
  resolve: () => void;
}

export interface ReplicatorCounters {
  opsSent: number;
  opsJournaled: number;
  bytesSent: number;
  /** Bytes the secondary sent back (acks, digests, listings). */
  bytesReceived: number;
  dataBytesSent: number;
  resyncBytesSent: number;
  acks: number;
  drops: number;
}

/** A mutation refused because the data path is stopping (the primary role is being given up). */
export class FencedError extends Error {
  override name = 'FencedError';
  /** EIO: the application sees an I/O error, as on a dead mount. */
  readonly errno = -5;
}

function recordsOf(described: Described): readonly JournalRecord[] {
  return described.records ?? recordsForOp(described.op);
}

/** What the journal must remember of an operation the peer did not get. */
export function recordsForOp(op: Op): JournalRecord[] {
  switch (op.kind) {
    case 'write':
      return [{ t: 'w', p: op.path, s: op.offset, e: op.offset + op.data.length }];
    case 'fallocate':
      return [
        { t: 'w', p: op.path, s: op.offset, e: op.offset + op.length },
        { t: 'm', p: op.path },
      ];
    case 'truncate':
      return [{ t: 'tr', p: op.path, s: op.size }];
    case 'create':
    case 'mkdir':
    case 'mknod':
    case 'symlink':
    case 'unlink':
    case 'rmdir':
    case 'removeTree':
      return [{ t: 'n', n: { kind: op.kind, path: op.path } }];
    case 'link':
      return [{ t: 'n', n: { kind: 'link', path: op.path, existing: op.existing } }];
    case 'rename':
      return [{ t: 'n', n: { kind: 'rename', path: op.path, to: op.to } }];
    case 'chmod':
    case 'chown':
    case 'utimens':
    case 'setxattr':
    case 'removexattr':
    case 'keepXattrs':
      return [{ t: 'm', p: op.path }];
    case 'fsync':
    case 'fsyncdir':
    case 'syncBegin':
    case 'syncEnd':
      return [];
  }
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly waitersMax: number) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.waiting >= this.waitersMax) throw new Error(`operation lock: over ${this.waitersMax} waiters`);
    this.waiting += 1;
    let release: () => void = () => undefined;
    const previous = this.tail;
    this.tail = new Promise<void>((resolvePromise) => (release = resolvePromise));
    try {
      await previous;
      this.waiting -= 1;
      return await work();
    } finally {
      release();
    }
  }
}

const checkIntervalMs = 100;
const pingIntervalMs = 1000;
const requestsInFlightMax = 64;
const lockWaitersMax = 100_000;
/** Live rename destinations a reintegration keeps; past it, it compares the whole tree. */
const liveRenamedMax = 10_000;

/** Events: 'state' (LinkState), 'peer-lost' (reason), 'secondary-up-to-date', 'resync-progress' ({doneBytes,totalBytes}). */
export class Replicator extends EventEmitter {
  private linkState: LinkState = 'alone';
  private socket: Socket | undefined;
  private window: InflightWindow<Pending>;
  private readonly lock = new Mutex(lockWaitersMax);
  private lastProgressMs = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /**
   * While a reintegration runs: where live renames moved names to. The reintegration planned
   * its paths from the journal; a name renamed live before its ranges were sent moves, on the
   * secondary, a copy that still lacks them, and the reintegration finds nothing left to send
   * under the old name. It compares these destinations again before it ends (Jepsen check: two
   * acknowledged small files, created while ALONE and renamed during the reintegration, ended
   * empty on the secondary).
   */
  private liveRenamed: Set<string> | null = null;
  private liveRenamedOverflow = false;

  /** Set once stopping: no new mutation is applied or acknowledged (see `fence`). */
  private fencedReason: string | undefined;
  /** The control plane names a secondary to serve; without one nothing connects. */
  private peerWanted = true;
  private roomWaiter: (() => void) | undefined;
  private nextRequestId = 1n;
  private readonly requests = new Map<
    bigint,
    { resolve: (frame: Frame) => void; reject: (error: Error) => void }
  >();
  private connectionGeneration = 0;
  readonly counters: ReplicatorCounters = {
    opsSent: 0,
    opsJournaled: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dataBytesSent: 0,
    resyncBytesSent: 0,
    acks: 0,
    drops: 0,
  };
  lastDropReason = '';

  constructor(private readonly options: ReplicatorOptions) {
    super();
    this.window = new InflightWindow<Pending>(options.window);
  }

  get state(): LinkState {
    return this.linkState;
  }

  get inflight(): { frames: number; bytes: number } {
    return { frames: this.window.frames, bytes: this.window.bytes };
  }

  private setState(state: LinkState): void {
    if (state === this.linkState) return;
    this.linkState = state;
    this.emit('state', state);
  }

  start(peerWanted = true): void {
    this.peerWanted = peerWanted;
    this.timer = setInterval(() => this.check(), checkIntervalMs);
    this.scheduleConnect(0);
  }

  /**
   * Whether to serve the peer now. Off: no (re)connection, and a connected secondary is dropped
   * (its unacknowledged operations journaled), so a secondary the control plane gave up on never
   * receives writes of the generation that followed.
   */
  async setPeerWanted(wanted: boolean): Promise<void> {
    if (wanted === this.peerWanted) return;
    this.peerWanted = wanted;
    if (wanted) {
      this.scheduleConnect(0);
      return;
    }
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    // A handshake under way is abandoned by connectOnce (generation check).
    this.connectionGeneration += 1;
    await this.drop('secondary no longer served');
  }

  /**
   * From now on every mutation fails (EIO) without touching the data: the node is giving the
   * primary role up, and a write acknowledged after that (journaled, the stream closing) would be
   * on this node only while the peer takes over. Mutations already under way complete.
   */
  fence(reason: string): void {
    this.fencedReason ??= reason;
  }

  /**
   * `fence`, then a last word: once the mutations under way are done (the operation lock), the
   * operations `final` describes (times the fenced releases can no longer send) are queued past
   * the fence, and this returns when they are acknowledged or journaled (the stream's own
   * timeouts bound the wait). Without it a handover left the new primary with its own clock's
   * times on files the application was still writing.
   */
  async fenceWithFinal(reason: string, final: () => Promise<readonly Described[]>): Promise<void> {
    this.fence(reason);
    if (this.stopped) return;
    const acks: Promise<void>[] = [];
    await this.lock.run(async () => {
      for (const described of await final()) acks.push((await this.enqueue(described)).acked);
    });
    await Promise.all(acks);
  }

  async stop(): Promise<void> {
    this.fence('stopped');
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    // Let what is in flight be acknowledged (bounded), then close the stream.
    const deadlineMs = Date.now() + Math.min(this.options.locktimeoutMs, 5000);
    while (this.window.frames > 0 && this.socket !== undefined && Date.now() < deadlineMs) {
      await new Promise((resolvePromise) => setTimeout(resolvePromise, 10));
    }
    if (this.window.frames > 0) await this.drop('stopping with unacknowledged operations');
    this.socket?.end();
    this.socket = undefined;
    this.setState('alone');
  }

  private scheduleConnect(delayMs: number): void {
    if (this.stopped || !this.peerWanted || this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connectOnce();
    }, delayMs);
  }

  private async connectOnce(): Promise<void> {
    if (this.stopped || !this.peerWanted || this.socket !== undefined) return;
    this.setState('connecting');
    const generation = (this.connectionGeneration += 1);
    let socket: Socket;
    let peer: PeerInfo;
    try {
      ({ socket, peer } = await this.handshake());
    } catch (error) {
      this.lastDropReason = `connect to ${this.options.peerHost}:${this.options.peerPort}: ${(error as Error).message}`;
      this.setState('alone');
      this.scheduleConnect(this.options.reconnectIntervalMs);
      return;
    }
    if (this.stopped || generation !== this.connectionGeneration) {
      socket.destroy();
      return;
    }
    // Attach under the lock: no operation may be half-way between journal and stream.
    await this.lock.run(async () => {
      this.attach(socket);
      await this.options.activity.newEpoch();
      this.setState('syncing');
      this.liveRenamed = new Set();
      this.liveRenamedOverflow = false;
    });
    try {
      await this.options.reintegrate(this, peer);
      if (this.socket !== socket) return;
      await this.lock.run(async () => {
        await this.options.journal.reset();
        await this.options.state.update({ journalActive: false, lastSyncMs: Date.now() });
        this.setState('connected');
      });
      this.emit('secondary-up-to-date');
    } catch (error) {
      await this.drop(`reintegration failed: ${(error as Error).message}`);
    } finally {
      this.liveRenamed = null;
    }
  }

  /**
   * For the reintegration: the destinations of live renames since the last call, or `overflow`
   * when there were more than it keeps (then the whole tree must be compared).
   */
  takeLiveRenamed(): { paths: string[]; overflow: boolean } {
    const paths = [...(this.liveRenamed ?? [])];
    const overflow = this.liveRenamedOverflow;
    this.liveRenamed?.clear();
    this.liveRenamedOverflow = false;
    return { paths, overflow };
  }

  private noteLive(described: Described): void {
    if (this.liveRenamed === null || described.op.kind !== 'rename') return;
    if (this.liveRenamed.size >= liveRenamedMax) this.liveRenamedOverflow = true;
    else this.liveRenamed.add(described.op.to);
  }

  private handshake(): Promise<{ socket: Socket; peer: PeerInfo }> {
    return new Promise((resolvePromise, reject) => {
      const psk = this.options.tlsPsk;
      const identity = tlsIdentityOf(this.options.moduleName);
      // The cluster-key handshake below runs inside TLS as well: TLS proves the module key,
      // the MACs the cluster key and the module, as on a plain stream.
      const socket: Socket =
        psk === undefined
          ? connect({ host: this.options.peerHost, port: this.options.peerPort })
          : connectTls({
              host: this.options.peerHost,
              port: this.options.peerPort,
              ciphers: tlsCiphers,
              minVersion: 'TLSv1.2',
              maxVersion: 'TLSv1.2',
              pskCallback: () => ({ psk, identity }),
              // No certificate with PSK: the key is the peer's identity.
              checkServerIdentity: () => undefined,
            });
      socket.setNoDelay(true);
      const decoder = new FrameDecoder();
      const clientNonce = newNonce();
      let serverNonce: Buffer | undefined;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`handshake timeout after ${this.options.connectTimeoutMs} ms`));
      }, this.options.connectTimeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        socket.destroy();
        reject(error);
      };
      socket.on('error', (error: Error) =>
        fail(psk === undefined || !/SSL|TLS/i.test(error.message) ? error : new Error(tlsFailureOf(error))),
      );
      socket.on('close', () => fail(new Error('connection closed during handshake')));
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const frame of decoder.push(chunk)) {
            if (serverNonce === undefined) {
              if (frame.type !== FrameType.challenge)
                throw new Error(`expected challenge, got frame type ${frame.type}`);
              serverNonce = Buffer.from(frame.body);
              const mac = clientMac(
                this.options.replicationKey,
                serverNonce,
                clientNonce,
                this.options.moduleName,
              );
              const [header, body] = encodeFrame(
                FrameType.hello,
                0n,
                encodeHello({
                  version: protocolVersion,
                  moduleName: this.options.moduleName,
                  nodeName: this.options.nodeName,
                  clientNonce,
                  mac,
                }),
              );
              socket.write(header);
              socket.write(body);
            } else {
              if (frame.type === FrameType.fail) throw new Error(`peer refused: ${decodeText(frame.body)}`);
              if (frame.type !== FrameType.welcome)
                throw new Error(`expected welcome, got frame type ${frame.type}`);
              const welcome = decodeWelcome(frame.body);
              const expected = serverMac(
                this.options.replicationKey,
                serverNonce,
                clientNonce,
                this.options.moduleName,
              );
              if (!macEquals(expected, welcome.mac))
                throw new Error('peer failed authentication (cluster key differs?)');
              clearTimeout(timer);
              socket.removeAllListeners('data');
              socket.removeAllListeners('error');
              socket.removeAllListeners('close');
              if (decoder.bufferedBytes !== 0) throw new Error('unexpected frames after welcome');
              resolvePromise({
                socket,
                peer: {
                  lastSyncMs: welcome.lastSyncMs,
                  syncInProgress: welcome.syncInProgress,
                  suspectPaths: welcome.suspectPaths,
                },
              });
              return;
            }
          }
        } catch (error) {
          fail(error as Error);
        }
      });
    });
  }

  private attach(socket: Socket): void {
    this.socket = socket;
    this.window = new InflightWindow<Pending>(this.options.window);
    this.lastProgressMs = Date.now();
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      this.counters.bytesReceived += chunk.length;
      try {
        for (const frame of decoder.push(chunk)) this.onFrame(frame);
      } catch (error) {
        void this.drop(`bad frame from secondary: ${(error as Error).message}`);
      }
    });
    socket.on('drain', () => {
      this.lastProgressMs = Date.now();
    });
    socket.on('error', (error) => void this.drop(`stream error: ${error.message}`));
    socket.on('close', () => void this.drop('stream closed'));
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.ack: {
        this.counters.acks += 1;
        this.lastProgressMs = Date.now();
        // seq: received; body: applied (an empty body, async="none": the same).
        const applied = frame.body.length >= 8 ? frame.body.readBigUInt64BE(0) : frame.seq;
        if (applied > frame.seq) throw new Error(`ack: applied ${applied} past received ${frame.seq}`);
        for (const entry of this.window.receive(frame.seq)) entry.item.resolve();
        this.window.ack(applied);
        const waiter = this.roomWaiter;
        this.roomWaiter = undefined;
        waiter?.();
        break;
      }
      case FrameType.fail:
        void this.drop(`secondary failed at seq ${frame.seq}: ${decodeText(frame.body)}`);
        break;
      case FrameType.pong:
        this.lastProgressMs = Date.now();
        break;
      case FrameType.sumsReply:
      case FrameType.listReply:
      case FrameType.dirReply: {
        const request = this.requests.get(frame.seq);
        if (request === undefined) throw new Error(`reply to unknown request ${frame.seq}`);
        this.requests.delete(frame.seq);
        request.resolve(frame);
        break;
      }
      default:
        throw new Error(`unexpected frame type ${frame.type}`);
    }
  }

  private check(): void {
    const nowMs = Date.now();
    if (this.socket === undefined) return;
    const oldest = this.window.oldestUnreceived();
    if (oldest !== undefined && nowMs - oldest.sentAtMs > this.options.locktimeoutMs) {
      void this.drop(`locktimeout: seq ${oldest.seq} unacknowledged for ${nowMs - oldest.sentAtMs} ms`);
      return;
    }
    const waitingOnPeer = this.window.frames > 0 || this.requests.size > 0 || this.socket.writableLength > 0;
    if (waitingOnPeer && nowMs - this.lastProgressMs > this.options.sendtimeoutMs) {
      void this.drop(`sendtimeout: no progress for ${nowMs - this.lastProgressMs} ms`);
      return;
    }
    if (!waitingOnPeer && nowMs - this.lastProgressMs > pingIntervalMs) {
      this.lastProgressMs = nowMs;
      this.writeFrame(FrameType.ping, 0n, Buffer.alloc(0));
    }
  }

  /** One frame whose body is `parts` in order; corked, so the parts leave in one writev. */
  private writeFrame(type: FrameTypeCode, seq: bigint, ...parts: Buffer[]): void {
    const socket = this.socket;
    if (socket === undefined) throw new Error('no stream');
    // Only after the handshake (which uses encodeFrame): CRC-32C.
    const header = frameHeaderOf(type, seq, parts, frameFlagCrc32c);
    socket.cork();
    socket.write(header);
    for (const part of parts) socket.write(part);
    socket.uncork();
    this.counters.bytesSent += header.length + parts.reduce((sum, part) => sum + part.length, 0);
  }

  /** Drops the secondary: journal what it may have missed, go ALONE, retry later. */
  async drop(reason: string): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return;
    this.socket = undefined;
    this.lastDropReason = reason;
    this.counters.drops += 1;
    socket.destroy();
    // Not reported applied: a secondary that died may have lost them even if it acknowledged them.
    const unacknowledged = this.window.drain();
    for (const [, request] of this.requests) request.reject(new Error(`peer dropped: ${reason}`));
    this.requests.clear();
    const waiter = this.roomWaiter;
    this.roomWaiter = undefined;
    waiter?.();
    this.setState('alone');
    const records = unacknowledged.flatMap((entry) => entry.item.records);
    // Appended now, synchronously in call order, so it precedes every ALONE operation's records.
    const journaled = Promise.all([this.options.journal.append(records), this.markJournalActive()]);
    this.emit('peer-lost', reason);
    await journaled.catch((error: unknown) =>
      this.emit('error', new Error(`journal append on drop: ${(error as Error).message}`)),
    );
    for (const entry of unacknowledged) entry.item.resolve();
    this.counters.opsJournaled += unacknowledged.length;
    this.scheduleConnect(this.options.reconnectIntervalMs);
  }

  private markJournalActive(): Promise<void> {
    if (this.options.state.state.journalActive) return Promise.resolve();
    return this.options.state.update({ journalActive: true, journalSinceMs: Date.now() });
  }

  private waitForRoom(bytes: number): Promise<void> {
    if (this.socket === undefined || this.window.hasRoomFor(bytes)) return Promise.resolve();
    return new Promise<void>((resolvePromise) => {
      this.roomWaiter = resolvePromise;
    }).then(() => this.waitForRoom(bytes));
  }

  /**
   * Applies an operation locally and replicates it. Returns the local result once the peer has
   * acknowledged (or the change is journaled because the peer is away). `describe` returns
   * undefined for a failed or non-replicated local result.
   */
  async submit<R>(
    applyLocally: () => Promise<R>,
    describe: (result: R) => Described | undefined,
    touched: readonly string[] = [],
  ): Promise<R> {
    if (this.fencedReason !== undefined) throw new FencedError(`replication fenced: ${this.fencedReason}`);
    let acknowledged: Promise<void> | undefined;
    const result = await this.lock.run(async () => {
      if (this.fencedReason !== undefined) throw new FencedError(`replication fenced: ${this.fencedReason}`);
      if (this.socket !== undefined && touched.length > 0) await this.options.activity.touch(touched);
      const local = await applyLocally();
      const described = describe(local);
      if (described === undefined) return local;
      this.noteLive(described);
      // Room in the window is awaited here, under the lock: sequence numbers follow lock order.
      acknowledged = (await this.enqueue(described)).acked;
      return local;
    });
    if (acknowledged !== undefined) await acknowledged;
    return result;
  }

  /**
   * Like `submit`, for an operation whose frame depends only on the caller's input (a write: the
   * data is the application's buffer), so it can go out before the local apply: the secondary's
   * round trip overlaps the local write instead of following it. Both stay under the operation
   * lock, so the stream order is still the order the primary's tree saw.
   *
   * The frame carries what the primary meant to do; when the local apply did something else (a
   * failed or short write), `correct` returns the operations that bring the secondary back to the
   * primary's state (queued after the frame, still under the lock; the call returns once they are
   * acknowledged, so after an error return the secondary holds nothing the primary does not). If
   * `correct` throws (the primary cannot even read its own range back), the secondary is dropped
   * with `ahead`'s journal records: it is no longer up to date, and the reintegration resends the
   * range as the primary has it. Without a stream this is `submit(applyLocally, describeAfter)`.
   */
  async submitAhead<R>(
    ahead: Described,
    applyLocally: () => Promise<R>,
    correct: (result: R) => Promise<readonly Described[]>,
    describeAfter: (result: R) => Described | undefined,
    touched: readonly string[] = [],
  ): Promise<R> {
    if (this.fencedReason !== undefined) throw new FencedError(`replication fenced: ${this.fencedReason}`);
    let acknowledged: Promise<unknown> | undefined;
    const result = await this.lock.run(async () => {
      if (this.fencedReason !== undefined) throw new FencedError(`replication fenced: ${this.fencedReason}`);
      if (this.socket === undefined) {
        const local = await applyLocally();
        const described = describeAfter(local);
        if (described !== undefined) acknowledged = (await this.enqueue(described)).acked;
        return local;
      }
      if (touched.length > 0) await this.options.activity.touch(touched);
      const sent = (await this.enqueue(ahead)).acked;
      // The stream may hold data the primary does not have and cannot tell: resync the range.
      const resyncRange = async (error: unknown) => {
        const records = recordsOf(ahead);
        await this.drop(`local apply failed and could not be corrected: ${(error as Error).message}`);
        await this.markJournalActive();
        await this.options.journal.append(records);
        acknowledged = sent;
      };
      let local: R;
      try {
        local = await applyLocally();
      } catch (error) {
        await resyncRange(error);
        throw error;
      }
      let corrections: readonly Described[];
      try {
        corrections = await correct(local);
      } catch (error) {
        await resyncRange(error);
        return local;
      }
      const acks = [sent];
      for (const item of corrections) acks.push((await this.enqueue(item)).acked);
      acknowledged = Promise.all(acks);
      return local;
    });
    if (acknowledged !== undefined) await acknowledged;
    return result;
  }

  /**
   * Under the lock: waits for room in the window, then queues on the stream (or journals). The
   * returned `acked` resolves when acknowledged or journaled; it is wrapped so that awaiting this
   * method (under the lock) never waits for the acknowledgement. Waiting for room must happen
   * under the lock: two operations waiting at once could be numbered out of lock order, and the
   * single room waiter would lose a wake-up (a reintegration stalled for good that way).
   */
  private async enqueue(described: Described): Promise<{ acked: Promise<void> }> {
    const parts = encodeOpParts(described.op, described.fixes ?? []);
    const bodyBytes = parts.reduce((sum, part) => sum + part.length, 0);
    await this.waitForRoom(bodyBytes);
    if (this.socket === undefined) {
      await this.markJournalActive();
      this.counters.opsJournaled += 1;
      const appended = this.options.journal.append(recordsOf(described));
      return { acked: isBarrier(described.op) ? appended.then(() => this.options.journal.sync()) : appended };
    }
    let resolveAck: () => void = () => undefined;
    const acknowledged = new Promise<void>((resolvePromise) => (resolveAck = resolvePromise));
    const entry: InflightEntry<Pending> = this.window.push(
      { records: recordsOf(described), resolve: resolveAck },
      bodyBytes,
      Date.now(),
    );
    this.writeFrame(FrameType.op, entry.seq, ...parts);
    this.counters.opsSent += 1;
    if (described.op.kind === 'write') this.counters.dataBytesSent += described.op.data.length;
    return { acked: acknowledged };
  }

  /** For the resync: read and queue under the operation lock, so live writes cannot interleave. */
  async submitResync(read: () => Promise<Described[]>): Promise<{ acked: Promise<void> }> {
    // Wrapped in an object: a returned promise would be flattened and awaited under the lock.
    return this.lock.run(async () => {
      if (this.socket === undefined) throw new Error('peer dropped during reintegration');
      const described = await read();
      const acks: Promise<void>[] = [];
      for (const item of described) {
        if (item.op.kind === 'write') this.counters.resyncBytesSent += item.op.data.length;
        // Nothing to journal if the peer does not get it: the journal that planned this resync is
        // kept until the resync succeeds. Journaling the resync's own operations on a drop broke
        // it: a replayed `create` of a renamed file replaced the file's entry (its ranges) with an
        // empty one, and the next reintegration left the file empty on the peer (acknowledged
        // writes lost; found by the Jepsen check, hakitd killed on the secondary mid-reintegration).
        acks.push((await this.enqueue({ ...item, records: [] })).acked);
      }
      return { acked: Promise.all(acks).then(() => undefined) };
    });
  }

  /** Asks the secondary for digests or a listing, in stream order (after every queued op). */
  private request(type: FrameTypeCode, body: Buffer): Promise<Frame> {
    if (this.socket === undefined) return Promise.reject(new Error('no stream'));
    if (this.requests.size >= requestsInFlightMax)
      return Promise.reject(new Error(`over ${requestsInFlightMax} requests in flight`));
    const id = this.nextRequestId;
    this.nextRequestId += 1n;
    return new Promise((resolvePromise, reject) => {
      this.requests.set(id, { resolve: resolvePromise, reject });
      this.writeFrame(type, id, body);
    });
  }

  async remoteSums(path: string, blockBytes: number, xattrs = false): Promise<PathSums> {
    const body = encodeSumsRequest({ path, blockBytes, xattrs });
    return decodeSumsReply((await this.request(FrameType.sumsRequest, body)).body);
  }

  async remoteList(path: string): Promise<string[]> {
    const body = encodeSumsRequest({ path, blockBytes: 0, xattrs: false });
    return decodeList((await this.request(FrameType.listRequest, body)).body);
  }

  /** One page of a directory's entries with the digests of its small files (compare.ts). */
  async remoteDir(request: DirRequest): Promise<DirReply> {
    return decodeDirReply((await this.request(FrameType.dirRequest, encodeDirRequest(request))).body);
  }

  get requestSlotsFree(): number {
    return requestsInFlightMax - this.requests.size;
  }

  /** fsync while ALONE: make the journal records of what the app now calls durable durable too. */
  async syncJournal(): Promise<void> {
    if (this.socket === undefined) await this.options.journal.sync();
  }
}
