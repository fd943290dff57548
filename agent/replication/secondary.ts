// The secondary's end of the replication stream: a TCP server on the module's replication port
// that authenticates the primary with the cluster key, checks every frame's CRC, applies
// operations strictly in sequence order and acknowledges them (on receipt with async="second",
// after applying with async="none"; an fsync is acknowledged only once done). It also answers
// block-digest and listing requests in stream order, so a resync sees every earlier operation.
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import {
  clientMac,
  macEquals,
  newNonce,
  serverMac,
  tlsCiphers,
  tlsFailureOf,
  tlsIdentityOf,
} from './auth.ts';
import { ApplyError, TreeApplier } from './apply.ts';
import type { FuseAddon } from './fuse/addon.ts';
import type { StateFile } from './journal-file.ts';
import type { DecodedOp, DirRequest, Frame, Op, TimeFix } from './protocol.ts';
import {
  DeferredFrame,
  FrameDecoder,
  checkFrameBody,
  FrameType,
  decodeHello,
  decodeDirRequest,
  decodeOp,
  decodeSumsRequest,
  encodeFrame,
  frameFlagCrc32c,
  encodeList,
  encodeSumsReply,
  encodeText,
  encodeWelcome,
  isBarrier,
  isBarrierCode,
  protocolVersion,
} from './protocol.ts';
import type { XattrReader } from './tree.ts';
import { dirPage, listNames, pathSums, splitRoot, xattrReader } from './tree.ts';
import { AckTracker } from './window.ts';

export interface SecondaryOptions {
  readonly moduleName: string;
  readonly listenHost: string;
  readonly port: number;
  readonly replicationKey: Buffer;
  /** Module encryption on: the stream runs in TLS with this pre-shared key (auth.ts tlsPskOf). */
  readonly tlsPsk?: Buffer;
  /** The real directories, in `<replicated>` order. */
  readonly dirs: readonly string[];
  readonly asyncMode: 'second' | 'none';
  readonly addon: FuseAddon | undefined;
  readonly state: StateFile;
  /** Paths this node may have changed alone as a crashed primary (its activity log). */
  readonly suspectPaths: readonly string[];
  readonly handshakeTimeoutMs: number;
  /** A connected primary that sends nothing (not even a ping) for this long is dropped. */
  readonly idleTimeoutMs: number;
}

export interface SecondaryStatus {
  readonly connected: boolean;
  readonly peer: string | undefined;
  readonly upToDate: boolean;
  readonly syncInProgress: boolean;
  readonly lastAppliedSeq: string;
  readonly opsApplied: number;
  readonly bytesApplied: number;
  readonly bytesReceived: number;
}

/**
 * Events: 'connected' (peer), 'peer-lost' (reason), 'sync-begin' (full), 'up-to-date',
 * 'apply-failed' (message), 'refused' (a connection that failed TLS or the handshake: reason).
 */
export class SecondaryServer extends EventEmitter {
  private server: Server | undefined;
  private current: Socket | undefined;
  private readonly appliers: TreeApplier[];
  private bytesReceived = 0;
  private connectionCount = 0;
  /** Operations received (maybe acknowledged, async="second") and not applied yet, all connections. */
  private unapplied = 0;

  private readonly readXattrs: XattrReader | undefined;

  constructor(private readonly options: SecondaryOptions) {
    super();
    this.appliers = options.dirs.map((dir) => new TreeApplier(dir, options.addon));
    this.readXattrs = options.addon === undefined ? undefined : xattrReader(options.addon);
  }

  private xattrsFor(wanted: boolean): XattrReader | undefined {
    if (!wanted) return undefined;
    if (this.readXattrs === undefined)
      throw new Error('xattrs asked (acl="on") but the FUSE binding, which reads them, is unavailable here');
    return this.readXattrs;
  }

  status(): SecondaryStatus {
    const stats = this.appliers.reduce(
      (sum, applier) => ({
        ops: sum.ops + applier.stats.ops,
        dataBytes: sum.dataBytes + applier.stats.dataBytes,
      }),
      {
        ops: 0,
        dataBytes: 0,
      },
    );
    return {
      connected: this.current !== undefined,
      peer: this.current?.remoteAddress,
      upToDate: this.options.state.state.upToDate,
      syncInProgress: this.options.state.state.syncInProgress,
      lastAppliedSeq: String(this.lastApplied),
      opsApplied: stats.ops,
      bytesApplied: stats.dataBytes,
      bytesReceived: this.bytesReceived,
    };
  }

  private lastApplied = 0n;

  start(): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      const psk = this.options.tlsPsk;
      const identity = tlsIdentityOf(this.options.moduleName);
      const server =
        psk === undefined
          ? createServer((socket) => this.accept(socket))
          : createTlsServer(
              {
                ciphers: tlsCiphers,
                minVersion: 'TLSv1.2',
                maxVersion: 'TLSv1.2',
                pskCallback: (_socket, offered) => (offered === identity ? psk : null),
                handshakeTimeout: this.options.handshakeTimeoutMs,
              },
              (socket) => this.accept(socket),
            ).on('tlsClientError', (error, socket) =>
              this.emit('refused', `from ${socket.remoteAddress ?? '?'}: ${tlsFailureOf(error)}`),
            );
      server.on('error', reject);
      server.listen({ host: this.options.listenHost, port: this.options.port }, () => {
        server.off('error', reject);
        server.on('error', (error) => this.emit('error', error));
        this.server = server;
        resolvePromise();
      });
    });
  }

  async stop(): Promise<void> {
    this.current?.destroy();
    this.current = undefined;
    await new Promise<void>((resolvePromise) =>
      this.server === undefined ? resolvePromise() : this.server.close(() => resolvePromise()),
    );
    this.server = undefined;
    // With async="second" the primary counts what was received as written: it must all be
    // applied before this node's data is handed over (say, to this node as the new primary).
    const deadlineMs = Date.now() + stopDrainTimeoutMs;
    while (this.unapplied > 0 && Date.now() < deadlineMs) {
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 5));
    }
    if (this.unapplied > 0) {
      const left = this.unapplied;
      await this.options.state.update({ upToDate: false });
      this.emit('apply-failed', `stopped with ${left} received operations not applied`);
    }
    for (const applier of this.appliers) await applier.closeAll();
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const connectionId = (this.connectionCount += 1);
    const serverNonce = newNonce();
    // async="second": a large write is acknowledged on receipt and its CRC checked before it is
    // applied, off the writer's round trip (about 0.4 ms per MiB here). Safe because an operation
    // stays in the primary's window until this node reports it applied: a mismatch fails the
    // stream, the primary journals every unapplied operation and the reintegration resends them,
    // as for a secondary killed after acknowledging. Barriers and small frames are checked first.
    const decoder = new FrameDecoder(this.options.asyncMode === 'second' ? deferredCheckBytesMin : undefined);
    let authenticated = false;
    const handshakeTimer = setTimeout(
      () => socket.destroy(new Error('handshake timeout')),
      this.options.handshakeTimeoutMs,
    );
    let idleTimer: NodeJS.Timeout | undefined;
    const touchIdle = () => {
      if (idleTimer !== undefined) idleTimer.refresh();
      else
        idleTimer = setTimeout(
          () => socket.destroy(new Error(`no frame for ${this.options.idleTimeoutMs} ms`)),
          this.options.idleTimeoutMs,
        );
    };
    const send = (type: (typeof FrameType)[keyof typeof FrameType], seq: bigint, body: Buffer) => {
      if (socket.destroyed) return;
      // The handshake's own frames with CRC-32, so that a peer of another protocol version can
      // read them and say so; every later frame with CRC-32C.
      const handshake = type === FrameType.challenge || type === FrameType.welcome;
      const [header, payload] = encodeFrame(type, seq, body, handshake ? 0 : frameFlagCrc32c);
      socket.cork();
      socket.write(header);
      socket.write(payload);
      socket.uncork();
    };
    send(FrameType.challenge, 0n, serverNonce);

    const tracker = new AckTracker(this.options.asyncMode === 'none' ? 'applied' : 'received');
    let ackSent = 0n;
    let appliedSent = 0n;
    let ackScheduled = false;
    // seq: how far the primary's callers may go on; body: how far this node applied (the primary
    // keeps the rest to journal if this node dies, window.ts).
    const ackNow = () => {
      const ackable = tracker.ackable();
      const applied = tracker.lastApplied;
      if (ackable > ackSent || applied > appliedSent) {
        ackSent = ackable;
        appliedSent = applied;
        const body = Buffer.alloc(8);
        body.writeBigUInt64BE(applied);
        send(FrameType.ack, ackable, body);
      }
    };
    const flushAck = () => {
      ackScheduled = false;
      ackNow();
    };
    const scheduleAck = () => {
      if (!ackScheduled) {
        ackScheduled = true;
        setImmediate(flushAck);
      }
    };

    type Work =
      // decoded: undefined for a large write acknowledged before its check (decoded in drain).
      | { kind: 'op'; frame: Frame; bodyBytes: number; decoded: DecodedOp | undefined }
      | { kind: 'sums'; id: bigint; path: string; blockBytes: number; xattrs: boolean }
      | { kind: 'list'; id: bigint; path: string }
      | { kind: 'dir'; id: bigint; request: DirRequest };
    // Listings of directories being paged through (prefetched directories interleave), bounded.
    const listings = new Map<string, readonly string[]>();
    const queue: Work[] = [];
    // Bytes of received operations not applied yet. With async="second" they are acknowledged on
    // receipt, so the primary's window does not bound them: past queuedBytesMax the socket is
    // paused (no more reads, no more acknowledgements) until the applier is below queuedBytesLow.
    let queuedBytes = 0;
    let paused = false;
    let draining = false;
    let failed = false;
    let syncing = this.options.state.state.syncInProgress;

    // A long piece of work (digests of a large file for a resync or rfsverify) sends no frame for
    // a while: tell the primary it is progressing, or its sendtimeout drops this secondary.
    const busyTimer = setInterval(() => {
      if (authenticated && draining) send(FrameType.pong, 0n, Buffer.alloc(0));
    }, busyPongIntervalMs);
    busyTimer.unref();

    const fail = (message: string) => {
      if (failed) return;
      failed = true;
      this.emit('apply-failed', message);
      send(FrameType.fail, tracker.lastApplied + 1n, encodeText(message));
      socket.end();
      void this.options.state.update({ upToDate: false });
    };

    const applierFor = (wirePath: string) => {
      const { index, path } = splitRoot(wirePath);
      const applier = this.appliers[index];
      if (applier === undefined) throw new ApplyError(`no replicated dir #${index} here`, 'EINVAL');
      return { applier, path };
    };

    const applyOne = async (op: Op, fixes: readonly TimeFix[]) => {
      if (op.kind === 'syncBegin') {
        syncing = true;
        await this.options.state.update({ syncInProgress: true, upToDate: false });
        this.emit('sync-begin', op.full);
        return;
      }
      if (op.kind === 'syncEnd') {
        for (const applier of this.appliers) await applier.apply(op);
        syncing = false;
        await this.options.state.update({ syncInProgress: false, upToDate: true, lastSyncMs: Date.now() });
        this.emit('up-to-date');
        return;
      }
      const { applier, path } = applierFor(op.path);
      const local = { ...op, path } as Op;
      if (local.kind === 'rename') Object.assign(local, { to: applierFor(local.to).path });
      if (local.kind === 'link') Object.assign(local, { existing: applierFor(local.existing).path });
      const localFixes = fixes.map((fix) => ({ ...fix, path: splitRoot(fix.path).path }));
      try {
        await applier.apply(local, localFixes);
      } catch (error) {
        // During a resync a live operation may name a path the resync has not brought yet; the
        // resync reads it later (under the primary's operation lock), so skipping is safe.
        const code = (error as ApplyError).code;
        if (syncing && (code === 'ENOENT' || code === 'ENOTDIR')) return;
        throw error;
      }
    };

    const drain = async () => {
      if (draining) return;
      draining = true;
      try {
        while (queue.length > 0 && !failed) {
          const work = queue.shift() as Work;
          if (work.kind === 'op') {
            queuedBytes -= work.bodyBytes;
            if (paused && queuedBytes <= queuedBytesLow) {
              paused = false;
              socket.resume();
            }
            try {
              checkFrameBody(work.frame);
              const { op, fixes } = work.decoded ?? decodeOp(work.frame.body);
              await applyOne(op, fixes);
            } finally {
              this.unapplied -= 1;
            }
            tracker.applied(work.frame.seq);
            this.lastApplied = work.frame.seq;
            scheduleAck();
          } else if (work.kind === 'sums') {
            const { applier, path } = applierFor(work.path);
            const sums = await pathSums(
              applier.abs(path),
              work.path,
              work.blockBytes,
              this.xattrsFor(work.xattrs),
            );
            send(FrameType.sumsReply, work.id, encodeSumsReply(sums));
          } else if (work.kind === 'dir') {
            const { applier, path } = applierFor(work.request.path);
            const page = dirPage(
              applier.abs(path),
              work.request,
              this.xattrsFor(work.request.xattrs),
              listings.get(work.request.path),
            );
            listings.delete(work.request.path);
            if (page.names !== undefined) {
              if (listings.size >= listingsKeptMax) listings.delete(listings.keys().next().value as string);
              listings.set(work.request.path, page.names);
            }
            send(FrameType.dirReply, work.id, page.body);
            // A page is built synchronously (tens of ms at most): let acks and pongs out between pages.
            await new Promise((resolveYield) => setImmediate(resolveYield));
          } else {
            const { applier, path } = applierFor(work.path);
            send(FrameType.listReply, work.id, encodeList(await listNames(applier.abs(path))));
          }
        }
      } catch (error) {
        fail(`secondary: ${(error as Error).message}`);
      } finally {
        draining = false;
        if (failed) {
          // Abandoned: the primary is told (fail frame) and this node is no longer up to date.
          this.unapplied -= queue.filter((work) => work.kind === 'op').length;
          queue.length = 0;
        }
      }
    };

    const onFrame = (frame: Frame) => {
      if (!authenticated) {
        if (frame.type !== FrameType.hello) throw new Error(`expected hello, got frame type ${frame.type}`);
        const hello = decodeHello(frame.body);
        if (hello.version !== protocolVersion)
          throw new Error(`protocol version ${hello.version}, expected ${protocolVersion}`);
        if (hello.moduleName !== this.options.moduleName)
          throw new Error(`module ${hello.moduleName}, expected ${this.options.moduleName}`);
        const expected = clientMac(
          this.options.replicationKey,
          serverNonce,
          hello.clientNonce,
          hello.moduleName,
        );
        if (!macEquals(expected, hello.mac)) throw new Error('authentication failed (cluster key differs?)');
        authenticated = true;
        clearTimeout(handshakeTimer);
        // One primary at a time: a reconnecting primary replaces the old connection.
        if (this.current !== undefined && this.current !== socket)
          this.current.destroy(new Error('replaced by a new connection'));
        this.current = socket;
        const mac = serverMac(this.options.replicationKey, serverNonce, hello.clientNonce, hello.moduleName);
        send(
          FrameType.welcome,
          0n,
          encodeWelcome({
            mac,
            lastSyncMs: this.options.state.state.lastSyncMs,
            syncInProgress: this.options.state.state.syncInProgress,
            suspectPaths: this.options.suspectPaths,
          }),
        );
        this.emit('connected', `${hello.nodeName} ${socket.remoteAddress ?? ''}`);
        return;
      }
      switch (frame.type) {
        case FrameType.op: {
          // After a failure nothing more is applied (nor acknowledged): the primary drops us.
          if (failed) break;
          if (frame instanceof DeferredFrame) {
            if (!isBarrierCode(frame.opCode)) {
              // Acknowledged as received now; checked, joined and decoded before it is applied.
              tracker.received(frame.seq, false);
              queue.push({ kind: 'op', frame, bodyBytes: frame.bodyBytes, decoded: undefined });
              queuedBytes += frame.bodyBytes;
              this.unapplied += 1;
              break;
            }
            // A barrier is acknowledged only once applied; never on an unchecked body.
            checkFrameBody(frame);
          }
          const decoded = decodeOp(frame.body);
          tracker.received(frame.seq, isBarrier(decoded.op));
          queue.push({ kind: 'op', frame, bodyBytes: frame.body.length, decoded });
          queuedBytes += frame.body.length;
          this.unapplied += 1;
          break;
        }
        case FrameType.sumsRequest: {
          const request = decodeSumsRequest(frame.body);
          queue.push({ kind: 'sums', id: frame.seq, ...request });
          break;
        }
        case FrameType.listRequest:
          queue.push({ kind: 'list', id: frame.seq, path: decodeSumsRequest(frame.body).path });
          break;
        case FrameType.dirRequest:
          queue.push({ kind: 'dir', id: frame.seq, request: decodeDirRequest(frame.body) });
          break;
        case FrameType.ping:
          send(FrameType.pong, frame.seq, Buffer.alloc(0));
          break;
        default:
          throw new Error(`unexpected frame type ${frame.type}`);
      }
    };

    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      touchIdle();
      try {
        for (const frame of decoder.push(chunk)) onFrame(frame);
      } catch (error) {
        if (!authenticated) {
          // A stranger (another cluster key, TLS against a plain stream, a port scan): refused
          // and logged; it says nothing about this node's data, which stays up to date.
          this.emit('refused', `from ${socket.remoteAddress ?? '?'}: ${(error as Error).message}`);
          socket.destroy();
          return;
        }
        fail(`secondary: ${(error as Error).message}`);
        socket.destroy();
        return;
      }
      if (!paused && queuedBytes > queuedBytesMax) {
        paused = true;
        socket.pause();
      }
      // What this read completed is acknowledged at once (async="second": on receipt), one
      // cumulative ack per read, not deferred to a later turn of the event loop: a single writer
      // waits for exactly this ack. Applied operations are acknowledged in batches (scheduleAck).
      ackNow();
      void drain();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      clearInterval(busyTimer);
      if (idleTimer !== undefined) clearTimeout(idleTimer);
      if (this.current === socket) {
        this.current = undefined;
        // Every acknowledged write is here, so a dead primary leaves this node up to date; a
        // primary that goes on ALONE says so in its heartbeats, and the automaton decides.
        this.emit('peer-lost', `connection ${connectionId} closed`);
      }
    });
  }
}

/** Directory listings kept between pages per connection (the primary prefetches a few directories). */
const listingsKeptMax = 32;

/** How long a stopping secondary waits to apply what it received (and maybe acknowledged). */
const stopDrainTimeoutMs = 60_000;

/** While applying or computing digests, a pong this often keeps the primary's sendtimeout off. */
const busyPongIntervalMs = 250;

/** async="second": op frames from this size on are acknowledged before their CRC is checked. */
const deferredCheckBytesMin = 64 * 1024;

/** Received, unapplied operation bytes at which the secondary stops reading, and resumes. */
const queuedBytesMax = 64 * 1024 * 1024;
const queuedBytesLow = 16 * 1024 * 1024;

export function secondaryStateDir(stateRoot: string, moduleName: string): string {
  return join(stateRoot, moduleName, 'replication');
}
