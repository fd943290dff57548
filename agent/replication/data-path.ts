// One module's replication data path, as the replication child process runs it: start as primary
// (FUSE over each replicated dir, stream to the peer, journal while ALONE, reintegration), start
// as secondary (read-only dirs, apply the stream), stop, status with the `rfs.*` resources,
// verify, full sync. Events go to `onEvent`; nothing here blocks on the network under a lock
// for longer than the configured timeouts.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { lstat, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadClusterKey } from '../heartbeat/cluster-key.ts';
import { replicationKeyOf, tlsPskOf } from './auth.ts';
import { crc32cImplementation } from './checksum.ts';
import type { ExclusionRule } from './filter.ts';
import { makePathFilter } from './filter.ts';
import type { FuseAddon } from './fuse/addon.ts';
import { fuseApiOf, loadFuseAddon } from './fuse/addon.ts';
import { FuseMount } from './fuse/fuse-mount.ts';
import { Interceptor } from './interceptor.ts';
import { ActivityLog, JournalFile, StateFile } from './journal-file.ts';
import { bindPrivate, clearStaleMounts, mountReadOnly, privateDirOf, unmountReporting } from './mounts.ts';
import { type Described, Replicator } from './replicator.ts';
import type { Difference } from './compare.ts';
import { fullSync, verifyTrees } from './compare.ts';
import type { SyncReport, SyncSource } from './resync.ts';
import { incrementalSync } from './resync.ts';
import { SecondaryServer } from './secondary.ts';
import { joinRoot, xattrReader } from './tree.ts';

export interface ReplicatedDirConfig {
  readonly dir: string;
  readonly exclusions: readonly ExclusionRule[];
}

export interface DataPathConfig {
  readonly moduleName: string;
  readonly nodeName: string;
  /** `$SAFEVAR/modules/AM/replication`: journal, state, private mounts. */
  readonly stateDir: string;
  readonly clusterKeyFile: string;
  /**
   * Module encryption (`conf/modulekey.dat` in the applied module): when set, the stream runs in
   * TLS with a pre-shared key derived from the cluster key and this one (auth.ts tlsPskOf).
   */
  readonly moduleKeyFile?: string;
  readonly dirs: readonly ReplicatedDirConfig[];
  /** `replicationPortOf(id)`. */
  readonly port: number;
  readonly asyncMode: 'second' | 'none';
  readonly acl: boolean;
  readonly locktimeoutMs: number;
  readonly sendtimeoutMs: number;
  readonly reiallowedbwBytesPerSec: number;
  /** `nbrei`: files reintegrated in parallel (default 1). */
  readonly nbrei?: number;
  /** Skip FUSE and bind mounts (tests of the stream on plain directories). */
  readonly noMounts?: boolean;
}

export interface PrimaryStart {
  readonly peerHost: string;
  /** Force a full sync at the next (re)connection (`primforce`, `second fullsync`). */
  readonly fullSync: boolean;
  /** Connect to the peer at once (default); false: wait for `setPeer`. */
  readonly peerWanted?: boolean;
}

export interface PeerControl {
  /** Serve the peer's secondary now (connect, reintegrate, replicate), or stop serving it. */
  readonly wanted: boolean;
  /** The next reintegration is a full comparison. */
  readonly fullSync: boolean;
}

export interface SecondaryStart {
  readonly listenHost: string;
  /** Ask the primary for a full comparison (`second fullsync`, data kept aside). */
  readonly fullSync?: boolean;
}

export type DataPathEvent =
  | { readonly event: 'state'; readonly state: string }
  | { readonly event: 'peer-lost'; readonly reason: string }
  | { readonly event: 'secondary-up-to-date'; readonly report: SyncReport | undefined }
  | { readonly event: 'resync-progress'; readonly doneBytes: number; readonly totalBytes: number }
  | { readonly event: 'sync-begin'; readonly full: boolean }
  | { readonly event: 'up-to-date' }
  | { readonly event: 'apply-failed'; readonly message: string }
  | { readonly event: 'warning'; readonly message: string };

export interface ResyncEstimate {
  /** A full comparison (first sync, primforce, journal overflowed or untrusted). */
  readonly full: boolean;
  readonly paths: number;
  /** Bytes the journal recorded as changed; for a full comparison the size of the tree (an upper bound). */
  readonly bytes: number;
  readonly namespaceChanges: number;
}

const estimateEntriesMax = 10_000_000;
/** Files and bytes under `dirs` (lstat, no links followed), at most `entriesMax` entries. */
async function treeSize(
  dirs: readonly string[],
  entriesMax: number,
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  let entries = 0;
  const pending = [...dirs];
  while (pending.length > 0) {
    const dir = pending.pop() as string;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      entries += 1;
      if (entries > entriesMax) throw new Error(`over ${entriesMax} entries: estimate abandoned`);
      const path = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) {
        files += 1;
        bytes += (await lstat(path)).size;
      }
    }
  }
  return { files, bytes };
}

/** The `rfs.*` resources and counters the daemon and console show. */
export interface DataPathStatus {
  readonly role: 'stopped' | 'primary' | 'secondary';
  readonly binding: string;
  readonly link: string;
  /** rfs.uptodate: primary: own data good; secondary: synced and not mid-reintegration. */
  readonly uptodate: boolean;
  /** The peer is behind (the primary is ALONE with a journal). */
  readonly journalActive: boolean;
  readonly journalPaths: number;
  readonly syncInProgress: boolean;
  readonly lastSyncMs: number;
  readonly lastDropReason: string;
  readonly counters: Record<string, number | string>;
}

export class DataPath extends EventEmitter {
  private role: 'stopped' | 'primary' | 'secondary' = 'stopped';
  private addon: FuseAddon | undefined;
  private bindingReason = '';
  private state: StateFile | undefined;
  private journal: JournalFile | undefined;
  private activity: ActivityLog | undefined;
  private replicator: Replicator | undefined;
  private secondary: SecondaryServer | undefined;
  private mounts: FuseMount[] = [];
  private interceptors: Interceptor[] = [];
  private roMounted: string[] = [];
  private privateDirs: string[] = [];
  private lastReport: SyncReport | undefined;
  /** Wall clock at the end of the last resync: tells one resync's figures from the next's. */
  private lastReportEndMs = 0;
  private forceFull = false;

  constructor(private readonly config: DataPathConfig) {
    super();
    const load = loadFuseAddon();
    if (load.ok) this.addon = load.addon;
    else this.bindingReason = load.reason;
  }

  /** The stream's keys: the cluster-key MAC key, and the TLS key when module encryption is on. */
  private streamKeys(): { replicationKey: Buffer; tlsPsk?: Buffer } {
    const clusterKey = loadClusterKey(this.config.clusterKeyFile);
    const replicationKey = replicationKeyOf(clusterKey);
    if (this.config.moduleKeyFile === undefined) return { replicationKey };
    let moduleKey: Buffer;
    try {
      moduleKey = loadClusterKey(this.config.moduleKeyFile);
    } catch (error) {
      throw new Error(`module encryption key: ${(error as Error).message}`, { cause: error });
    }
    return { replicationKey, tlsPsk: tlsPskOf(clusterKey, moduleKey, this.config.moduleName) };
  }

  private emitEvent(event: DataPathEvent): void {
    this.emit('event', event);
  }

  private source(): SyncSource {
    return {
      dirs: this.privateDirs,
      filters: this.config.dirs.map((dir) => makePathFilter(dir.exclusions)),
      bandwidthBytesPerSec: this.config.reiallowedbwBytesPerSec,
      parallelPaths: this.config.nbrei ?? 1,
      blockBytesMin: 1024 * 1024,
      ...(this.config.acl && this.addon !== undefined ? { readXattrs: xattrReader(this.addon) } : {}),
    };
  }

  private async openState(): Promise<void> {
    this.state = await StateFile.open(this.config.stateDir);
    this.journal = await JournalFile.open(this.config.stateDir);
    this.activity = await ActivityLog.open(this.config.stateDir);
  }

  /** Marks that read-only mounts are made (removed once unmounted): a crashed run's are cleared. */
  private get readOnlyMarker(): string {
    return join(this.config.stateDir, 'read-only-mounted');
  }

  private async prepareRealDirs(): Promise<void> {
    this.privateDirs = [];
    if (this.config.noMounts !== true) {
      const readOnlyLeft = existsSync(this.readOnlyMarker);
      for (const dir of this.config.dirs) {
        const removed = await clearStaleMounts(dir.dir, `hakit-${this.config.moduleName}`, readOnlyLeft);
        if (removed.length > 0)
          this.emitEvent({
            event: 'warning',
            message: `${dir.dir}: removed mounts left by a crashed run: ${removed.join(', ')}`,
          });
      }
      await rm(this.readOnlyMarker, { force: true });
    }
    for (let index = 0; index < this.config.dirs.length; index += 1) {
      const dir = (this.config.dirs[index] as ReplicatedDirConfig).dir;
      if (this.config.noMounts === true) {
        this.privateDirs.push(dir);
        continue;
      }
      const privateDir = privateDirOf(this.config.stateDir, index);
      await bindPrivate(dir, privateDir);
      this.privateDirs.push(privateDir);
    }
  }

  async startPrimary(start: PrimaryStart): Promise<void> {
    if (this.role !== 'stopped')
      throw new Error(`replication of ${this.config.moduleName} already started as ${this.role}`);
    if (this.addon === undefined && this.config.noMounts !== true) throw new Error(this.bindingReason);
    await this.openState();
    const state = this.state as StateFile;
    const journal = this.journal as JournalFile;
    const activity = this.activity as ActivityLog;
    this.forceFull = start.fullSync || !state.journalTrusted;
    if (!state.journalTrusted)
      this.emitEvent({
        event: 'warning',
        message:
          'the previous run crashed with the machine: the journal is not trusted, the next reintegration is a full comparison',
      });
    await this.prepareRealDirs();
    const replicator = new Replicator({
      moduleName: this.config.moduleName,
      nodeName: this.config.nodeName,
      peerHost: start.peerHost,
      peerPort: this.config.port,
      ...this.streamKeys(),
      window: { framesMax: 4096, bytesMax: 64 * 1024 * 1024 },
      locktimeoutMs: this.config.locktimeoutMs,
      sendtimeoutMs: this.config.sendtimeoutMs,
      connectTimeoutMs: 5000,
      reconnectIntervalMs: 1000,
      journal,
      activity,
      state,
      reintegrate: async (replicatorNow, peer) => {
        const source = this.source();
        const plan = journal.journal.plan();
        const full = this.forceFull || peer.lastSyncMs === 0 || plan.overflowed;
        this.lastReport = full
          ? await fullSync(replicatorNow, source)
          : await incrementalSync(replicatorNow, source, plan, peer);
        this.lastReportEndMs = Date.now();
        this.forceFull = false;
      },
    });
    this.replicator = replicator;
    replicator.on('state', (linkState: string) => this.emitEvent({ event: 'state', state: linkState }));
    replicator.on('peer-lost', (reason: string) => this.emitEvent({ event: 'peer-lost', reason }));
    replicator.on('secondary-up-to-date', () =>
      this.emitEvent({ event: 'secondary-up-to-date', report: this.lastReport }),
    );
    replicator.on('resync-progress', (progress: { doneBytes: number; totalBytes: number }) =>
      this.emitEvent({ event: 'resync-progress', ...progress }),
    );
    replicator.on('error', (error: Error) => this.emitEvent({ event: 'warning', message: error.message }));
    if (this.config.noMounts !== true) {
      const addon = this.addon as FuseAddon;
      for (let index = 0; index < this.config.dirs.length; index += 1) {
        const dirConfig = this.config.dirs[index] as ReplicatedDirConfig;
        const interceptor = new Interceptor({
          index,
          realDir: this.privateDirs[index] as string,
          replicator,
          filter: makePathFilter(dirConfig.exclusions),
          addon,
          acl: this.config.acl,
          warn: (message) => this.emitEvent({ event: 'warning', message }),
        });
        const mount = new FuseMount(addon, dirConfig.dir, interceptor, {
          options: fuseMountOptions(this.config.moduleName, fuseApiOf(addon)),
          onInternalError: (op, error) => {
            // A fenced mutation is expected while stopping: it fails with EIO, nothing to report.
            if ((error as Error).name === 'FencedError') return;
            this.emitEvent({
              event: 'warning',
              message: `FUSE ${op}: ${(error as Error).stack ?? String(error)}`,
            });
          },
        });
        await mount.mount();
        this.mounts.push(mount);
        this.interceptors.push(interceptor);
      }
    }
    this.role = 'primary';
    replicator.start(start.peerWanted ?? true);
  }

  async setPeer(control: PeerControl): Promise<void> {
    if (this.role !== 'primary' || this.replicator === undefined)
      throw new Error(`replication of ${this.config.moduleName} is not primary`);
    if (control.fullSync) this.forceFull = true;
    await this.replicator.setPeerWanted(control.wanted);
  }

  /** The replicator, for in-process drivers (tests, benchmarks). */
  get primaryEngine(): Replicator | undefined {
    return this.replicator;
  }

  async startSecondary(start: SecondaryStart): Promise<void> {
    if (this.role !== 'stopped')
      throw new Error(`replication of ${this.config.moduleName} already started as ${this.role}`);
    await this.openState();
    const state = this.state as StateFile;
    const activity = this.activity as ActivityLog;
    // Forgetting the last sync makes the primary compare everything (resync.ts).
    if (start.fullSync === true) await state.update({ lastSyncMs: 0, upToDate: false });
    await this.prepareRealDirs();
    if (this.config.noMounts !== true) {
      await writeFile(this.readOnlyMarker, `${this.config.dirs.map((dir) => dir.dir).join('\n')}\n`, {
        mode: 0o600,
      });
      for (const dir of this.config.dirs) {
        await mountReadOnly(dir.dir);
        this.roMounted.push(dir.dir);
      }
    }
    const server = new SecondaryServer({
      moduleName: this.config.moduleName,
      listenHost: start.listenHost,
      port: this.config.port,
      ...this.streamKeys(),
      dirs: this.privateDirs,
      asyncMode: this.config.asyncMode,
      addon: this.addon,
      state,
      suspectPaths: activity.previousPaths,
      handshakeTimeoutMs: 5000,
      idleTimeoutMs: Math.max(this.config.sendtimeoutMs, 5000),
    });
    server.on('connected', (peer: string) => this.emitEvent({ event: 'state', state: `connected ${peer}` }));
    server.on('peer-lost', (reason: string) => this.emitEvent({ event: 'peer-lost', reason }));
    server.on('sync-begin', (full: boolean) => this.emitEvent({ event: 'sync-begin', full }));
    server.on('up-to-date', () => {
      // The suspect paths were corrected by this reintegration.
      void activity.close(true);
      this.emitEvent({ event: 'up-to-date' });
    });
    server.on('apply-failed', (message: string) => this.emitEvent({ event: 'apply-failed', message }));
    server.on('refused', (reason: string) =>
      this.emitEvent({ event: 'warning', message: `replication connection refused ${reason}` }),
    );
    await server.start();
    this.secondary = server;
    this.role = 'secondary';
  }

  /** Stops; a busy FUSE or read-only mount is reported (BusyError) unless `force`. */
  async stop(force = false): Promise<void> {
    if (this.role === 'primary') {
      // First: no write may be acknowledged from here on (open files outlive a lazy unmount);
      // the times of files still open for writing follow, as their releases would have sent;
      // then a barrier per directory, acknowledged only once the secondary applied everything
      // before it: with async="second" it acknowledged on receipt, and the peer may take the
      // primary role right after this (a swap).
      const interceptors = this.interceptors;
      const roots = this.config.dirs.map((_dir, index) => joinRoot(index, '/'));
      await this.replicator?.fenceWithFinal('the primary role is being given up', async () => [
        ...(await Promise.all(interceptors.map((interceptor) => interceptor.pendingTimeFixes()))).flat(),
        ...roots.map((path): Described => ({ op: { kind: 'fsyncdir', path } })),
      ]);
      for (const mount of [...this.mounts].reverse()) {
        try {
          await mount.unmount(false);
        } catch (error) {
          if (!force) throw await busyOf(mount.mountPoint, error as Error);
          await mount.unmount(true);
        }
      }
      this.mounts = [];
      this.interceptors = [];
      await this.replicator?.stop();
      this.replicator = undefined;
    }
    if (this.role === 'secondary') {
      await this.secondary?.stop();
      this.secondary = undefined;
      for (const dir of [...this.roMounted].reverse()) {
        await unmountReporting(dir, force);
        this.roMounted = this.roMounted.filter((other) => other !== dir);
      }
      await rm(this.readOnlyMarker, { force: true });
    }
    if (this.config.noMounts !== true) {
      for (let index = 0; index < this.privateDirs.length; index += 1) {
        await unmountReporting(privateDirOf(this.config.stateDir, index), true);
      }
    }
    await this.journal?.close();
    await this.activity?.close(this.role === 'primary' && this.state?.state.journalActive === false);
    await this.state?.update({ clean: true });
    this.role = 'stopped';
  }

  async verify(): Promise<Difference[]> {
    if (this.replicator === undefined || this.replicator.state !== 'connected')
      throw new Error('rfsverify needs a connected secondary (run it on the primary)');
    return verifyTrees(this.replicator, this.source());
  }

  /** rfsdiff: what the next reintegration would send, from the journal (run on the primary). */
  async estimate(): Promise<ResyncEstimate> {
    if (this.role !== 'primary' || this.journal === undefined)
      throw new Error('rfsdiff needs the primary (ALONE or PRIM) of this module');
    const plan = this.journal.journal.plan();
    if (this.forceFull || plan.overflowed) {
      // Every file is compared by block digests: only differing blocks are sent, at most all.
      const tree = await treeSize(this.privateDirs, estimateEntriesMax);
      return { full: true, paths: tree.files, bytes: tree.bytes, namespaceChanges: 0 };
    }
    let bytes = 0;
    for (const change of plan.paths) for (const range of change.ranges) bytes += range.end - range.start;
    return { full: false, paths: plan.paths.length, bytes, namespaceChanges: plan.namespace.length };
  }

  async fullSync(): Promise<SyncReport> {
    if (this.replicator === undefined || this.replicator.state !== 'connected')
      throw new Error('full sync needs a connected secondary');
    return fullSync(this.replicator, this.source());
  }

  status(): DataPathStatus {
    const state = this.state?.state;
    const replicator = this.replicator;
    const secondary = this.secondary?.status();
    return {
      role: this.role,
      binding:
        this.addon === undefined
          ? this.bindingReason
          : fuseApiOf(this.addon) === 3
            ? 'vendored fuse-native on libfuse 3 (requests up to 1 MiB)'
            : 'vendored fuse-native on libfuse 2.9 (big_writes, 128 KiB requests)',
      link: replicator?.state ?? (secondary?.connected === true ? 'connected' : 'waiting'),
      uptodate:
        this.role === 'primary' ? true : (state?.upToDate ?? false) && !(state?.syncInProgress ?? false),
      journalActive: state?.journalActive ?? false,
      journalPaths: this.journal?.journal.pathCount ?? 0,
      syncInProgress: state?.syncInProgress ?? false,
      lastSyncMs: state?.lastSyncMs ?? 0,
      lastDropReason: replicator?.lastDropReason ?? '',
      counters: {
        streamEncryption: this.config.moduleKeyFile === undefined ? 'off' : 'TLS 1.2 ECDHE-PSK',
        streamChecksum: `CRC-32C, ${crc32cImplementation()}`,
        ...(replicator === undefined
          ? {}
          : {
              ...replicator.counters,
              inflightFrames: replicator.inflight.frames,
              inflightBytes: replicator.inflight.bytes,
            }),
        ...(secondary === undefined
          ? {}
          : {
              opsApplied: secondary.opsApplied,
              bytesApplied: secondary.bytesApplied,
              bytesReceived: secondary.bytesReceived,
              lastAppliedSeq: secondary.lastAppliedSeq,
            }),
        ...(this.lastReport === undefined
          ? {}
          : {
              lastResyncBytesSent: this.lastReport.bytesSent,
              lastResyncFull: String(this.lastReport.full),
              lastResyncMs: this.lastReport.durationMs,
              lastResyncEndMs: this.lastReportEndMs,
              lastResyncParallelMax: this.lastReport.parallelPathsMax,
            }),
      },
    };
  }

  wirePathOf(index: number, path: string): string {
    return joinRoot(index, path);
  }
}

/**
 * FUSE options. libfuse 2: big_writes + max_write=128 KiB (4 KiB requests cap a Node passthrough
 * near 45 MiB/s, 128 KiB ones reach ~400, docs/replication.md); hard_remove: no .fuse_hidden
 * files; nonempty: the mount goes over a directory that holds the data. libfuse 3: writes of up to
 * 1 MiB (max_pages), big writes and mounting over a non-empty directory are the default, and the
 * addon sets hard_remove itself (its init). Both: allow_other + default_permissions, so every
 * user sees the mount and the kernel checks modes as on the real directory.
 */
export function fuseMountOptions(moduleName: string, api: 2 | 3 = 2): string[] {
  const sized = api === 3 ? [] : ['big_writes', 'max_write=131072', 'hard_remove', 'nonempty'];
  return [...sized, 'allow_other', 'default_permissions', `fsname=hakit-${moduleName}`, 'subtype=hakit'];
}

async function busyOf(mountPoint: string, error: Error): Promise<Error> {
  if (!/busy/i.test(error.message)) return error;
  const { holdersOf, BusyError } = await import('./mounts.ts');
  return new BusyError(mountPoint, await holdersOf(mountPoint));
}

export function stateDirOf(safeVar: string, moduleName: string): string {
  return join(safeVar, 'modules', moduleName, 'replication');
}
