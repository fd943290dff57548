// Deterministic simulator of a 2-node mirror module with an optional arbitrator: the real pure
// core (mirror automaton, peer liveness, lease logic) on virtual nodes, with a simulated clock
// per node (offset and rate drift), a simulated network (loss, delay, reordering, duplicates,
// one-way and two-way partitions), crashes, restarts, daemon pauses, script failures and hangs,
// an application writing data, and an operator. Everything comes from one seeded PRNG: a seed
// replays exactly. Invariants are checked after every step (see `Violation`).
import {
  arbitratorHandleRelease,
  arbitratorHandleRequest,
  type ArbitratorDurable,
  arbitratorDurable,
  type ArbitratorState,
  initialArbitrator,
  type LeaseReply,
  type LeaseRelease,
  type LeaseRequest,
  type LeaseTiming,
} from '../../agent/core/arbitrator-lease.ts';
import type { DefaultPrimary } from '../../agent/config/model.ts';
import {
  advertOf,
  initialMirrorCore,
  initialPersisted,
  nextDeadlineMs,
  stepMirror,
} from '../../agent/core/mirror-automaton.ts';
import type { Generation } from '../../agent/core/mirror-data.ts';
import type {
  MirrorAction,
  MirrorAdvert,
  MirrorCore,
  MirrorEvent,
  MirrorPeerView,
  MirrorPersisted,
  MirrorSettings,
  MirrorVerb,
  ReplicationCommand,
} from '../../agent/core/mirror-types.ts';
import {
  expireLans,
  type HeartbeatPacket,
  initialLiveness,
  type LivenessSettings,
  type LivenessState,
  nextLivenessDeadlineMs,
  peerView,
  preparePacket,
  receivePacket,
} from '../../agent/core/peer-liveness.ts';
import type { WaitStatus } from '../../agent/core/job.ts';
import { EventHeap } from './heap.ts';
import { Prng } from './prng.ts';

// ---------------------------------------------------------------------------------------------
// Configuration

export interface SimConfig {
  arbitrator: boolean;
  /** <rfs>: data is replicated and the application writes. */
  replication: boolean;
  scriptsEnabled: boolean;
  defaultPrimary: DefaultPrimary;
  lans: string[];
  pulseMs: number;
  timeoutMs: number;
  leaseMs: number;
  /** The bound the core assumes. */
  driftPpm: number;
  /** The drift the simulated clocks really have (|rate - 1| at most this); > driftPpm breaks the argument. */
  actualDriftPpmMax: number;
  marginMs: number;
  /** How long a blocked synchronous write waits before the primary drops its secondary. */
  lockTimeoutMs: number;
  /** Fault intensity: 0 none, 1 normal, up to 3 stormy. */
  chaos: number;
}

export type ViolationKind =
  | 'dualPrimary'
  | 'stalePromotion'
  | 'silentDiscard'
  | 'syncDivergence'
  | 'noConvergence'
  | 'coreError'
  | 'operatorNeeded';

export interface Violation {
  kind: ViolationKind;
  atMs: number;
  message: string;
}

export interface SimOptions {
  seed: number;
  /** Steps (processed events) of the fault phase; the heal phase follows. */
  steps: number;
  config?: Partial<SimConfig>;
  /** Keep a readable trace of every step (slower; used to print a failure). */
  trace?: boolean;
  traceLinesMax?: number;
}

export interface SimStats {
  writes: number;
  promotions: number;
  keepAsides: number;
  dualPrimaryChecks: number;
  crashes: number;
  pauses: number;
  partitions: number;
  adminCommands: number;
  operatorInterventions: number;
}

export interface SimResult {
  seed: number;
  config: SimConfig;
  steps: number;
  faultSteps: number;
  healSteps: number;
  simulatedMs: number;
  converged: boolean;
  convergeMs: number | null;
  convergeBoundMs: number;
  violation: Violation | null;
  stats: SimStats;
  trace: string[];
}

export function randomConfig(prng: Prng): SimConfig {
  const pulseMs = prng.pick([100, 200, 300, 500]);
  const timeoutMs = pulseMs * prng.range(5, 12);
  return {
    arbitrator: prng.chance(0.7),
    replication: prng.chance(0.85),
    scriptsEnabled: prng.chance(0.9),
    defaultPrimary: prng.pick<DefaultPrimary>([
      { kind: 'alone' },
      { kind: 'alone' },
      { kind: 'lastprim' },
      { kind: 'node', node: 'n1' },
      { kind: 'node', node: 'n2' },
    ]),
    lans: prng.chance(0.6) ? ['lan1', 'flow'] : ['lan1'],
    pulseMs,
    timeoutMs,
    leaseMs: Math.max(500, Math.round(timeoutMs * prng.pick([0.5, 1, 1.5]))),
    driftPpm: prng.pick([100, 1000, 10_000]),
    actualDriftPpmMax: 0,
    marginMs: 50,
    lockTimeoutMs: Math.round(timeoutMs / 2),
    chaos: prng.pick([0.5, 1, 1, 2]),
  };
}

// ---------------------------------------------------------------------------------------------
// Ground truth of the replicated data: a lineage of (tenure, writes) segments. A tenure is one
// continuous period during which a node acted as primary.

interface Segment {
  readonly tenure: number;
  readonly writes: number;
}
type Lineage = readonly Segment[];

/** True when `a` holds every write of `b`. */
function covers(a: Lineage, b: Lineage): boolean {
  if (b.length === 0) return true;
  if (b.length > a.length) return false;
  for (let index = 0; index < b.length - 1; index += 1) {
    const x = a[index];
    const y = b[index];
    if (x === undefined || y === undefined || x.tenure !== y.tenure || x.writes !== y.writes) return false;
  }
  const last = b.length - 1;
  const x = a[last];
  const y = b[last];
  if (x === undefined || y === undefined || x.tenure !== y.tenure) return false;
  return x.writes >= y.writes;
}

function sameLineage(a: Lineage, b: Lineage): boolean {
  return a === b || (a.length === b.length && covers(a, b) && covers(b, a));
}

function appendWrite(lineage: Lineage, tenure: number): Lineage {
  const last = lineage[lineage.length - 1];
  if (last !== undefined && last.tenure === tenure) {
    return [...lineage.slice(0, -1), { tenure, writes: last.writes + 1 }];
  }
  return [...lineage, { tenure, writes: 1 }];
}

function describeLineage(lineage: Lineage): string {
  return lineage.map((segment) => `t${segment.tenure}x${segment.writes}`).join(',') || 'empty';
}

// ---------------------------------------------------------------------------------------------
// World model

type NodeIndex = 0 | 1;
const names = ['n1', 'n2'] as const;

interface Link {
  downUntilMs: number;
  lossP: number;
  dupP: number;
  delayMinMs: number;
  delayMaxMs: number;
  degradedUntilMs: number;
}

interface Disk {
  incarnation: number;
  persisted: MirrorPersisted;
  failover: 'on' | 'off';
  data: Lineage;
  aside: Lineage[];
}

interface SimNode {
  index: NodeIndex;
  name: string;
  machineUp: boolean;
  boot: number;
  pausedUntilMs: number | null;
  deferred: SimEvent[];
  offsetMs: number;
  rate: number;
  disk: Disk;
  core: MirrorCore | null;
  liveness: LivenessState<MirrorAdvert> | null;
  lastViewKey: string;
  scriptToken: number;
  scriptRunning: string | null;
  vip: boolean;
  authorityUntilMs: number | null;
  replication: ReplicationCommand;
  reintToken: number;
  synced: boolean;
  keptAside: boolean;
  blockedSinceMs: number | null;
  secondaryLostSent: boolean;
  /** As primary: the secondary named in the replication command completed its reintegration. */
  servedInSync: boolean;
  adminPrim: boolean;
  wantRunning: boolean;
  tenure: number;
  timerTokens: { pulse: number; core: number; liveness: number };
  coreDeadlineMs: number | null;
  livenessDeadlineMs: number | null;
  waitStatus: WaitStatus;
}

interface SimArbitrator {
  up: boolean;
  state: ArbitratorState;
  offsetMs: number;
  rate: number;
  durable: Record<string, ArbitratorDurable>;
}

type SimEvent = (
  | { kind: 'hb'; node: NodeIndex; lan: string; packet: HeartbeatPacket<MirrorAdvert> }
  | { kind: 'toArbitrator'; from: NodeIndex; message: LeaseRequest | LeaseRelease }
  | { kind: 'leaseReply'; node: NodeIndex; reply: LeaseReply }
  | { kind: 'timer'; node: NodeIndex; which: 'pulse' | 'core' | 'liveness'; token: number; boot: number }
  | {
      kind: 'script';
      node: NodeIndex;
      token: number;
      boot: number;
      exitCode: number | null;
      timedOut: boolean;
    }
  | { kind: 'reint'; node: NodeIndex; token: number; boot: number }
  | { kind: 'resume'; node: NodeIndex; boot: number }
  | { kind: 'restart'; node: NodeIndex }
  | { kind: 'arbitratorRestart' }
  | { kind: 'chaos' }
  | { kind: 'write' }
  | { kind: 'operator' }
) & { atMs: number; order: number };

type SimEventBody = SimEvent extends infer E
  ? E extends SimEvent
    ? Omit<E, 'atMs' | 'order'>
    : never
  : never;

const queueCapacity = 200_000;
/** Guards against a runaway: no instant needs this many steps, no heal this many. */
const sameTimeStepsMax = 10_000;
const healStepsMax = 2_000_000;
const deferredMax = 50_000;
const traceLinesDefault = 120;

class SimFailure extends Error {
  constructor(readonly violation: Violation) {
    super(violation.message);
  }
}

class World {
  readonly prng: Prng;
  readonly faultPrng: Prng;
  readonly config: SimConfig;
  readonly timing: LeaseTiming | null;
  readonly settings: [MirrorSettings, MirrorSettings];
  readonly livenessSettings: [LivenessSettings, LivenessSettings];
  readonly nodes: [SimNode, SimNode];
  readonly arbitrator: SimArbitrator | null;
  readonly links = new Map<string, Link>();
  readonly queue = new EventHeap<SimEvent>(queueCapacity);
  nowMs = 0;
  order = 0;
  steps = 0;
  phase: 'form' | 'fault' | 'heal' = 'form';
  healStartedMs = 0;
  tenureCounter = 0;
  latest: Lineage = [];
  rescueTarget: SimNode | null = null;
  readonly stats: SimStats = {
    writes: 0,
    promotions: 0,
    keepAsides: 0,
    dualPrimaryChecks: 0,
    crashes: 0,
    pauses: 0,
    partitions: 0,
    adminCommands: 0,
    operatorInterventions: 0,
  };
  readonly trace: string[] = [];
  readonly recent: string[] = [];

  constructor(
    readonly seed: number,
    config: SimConfig,
    readonly tracing: boolean,
    readonly traceLinesMax: number,
  ) {
    this.prng = new Prng(seed);
    this.faultPrng = this.prng.fork();
    this.config = config;
    this.timing = config.arbitrator
      ? {
          leaseMs: config.leaseMs,
          driftPpm: config.driftPpm,
          marginMs: config.marginMs,
          renewMs: Math.max(50, Math.round(config.leaseMs / 4)),
          retryMs: Math.max(50, Math.round(config.leaseMs / 4)),
        }
      : null;
    const heartbeats = config.lans.map((ident) => ({ ident, timeoutMs: config.timeoutMs }));
    const settingsFor = (index: NodeIndex): MirrorSettings => ({
      module: 'mirror',
      node: names[index],
      peerNode: names[1 - index] as string,
      maxloop: 3,
      loopIntervalMs: 86_400_000,
      scriptsEnabled: config.scriptsEnabled,
      replication: config.replication,
      defaultPrimary: config.defaultPrimary,
      heartbeatTimeoutMs: config.timeoutMs,
      arbitrator: this.timing,
    });
    this.settings = [settingsFor(0), settingsFor(1)];
    const livenessFor = (index: NodeIndex): LivenessSettings => ({
      cluster: 'sim',
      module: 'mirror',
      localNode: names[index],
      peerNode: names[1 - index] as string,
      heartbeats,
    });
    this.livenessSettings = [livenessFor(0), livenessFor(1)];
    const drift = () =>
      config.actualDriftPpmMax === 0 ? 0 : (this.prng.float() * 2 - 1) * config.actualDriftPpmMax;
    const makeNode = (index: NodeIndex): SimNode => ({
      index,
      name: names[index],
      machineUp: false,
      boot: 0,
      pausedUntilMs: null,
      deferred: [],
      offsetMs: this.prng.range(0, 1_000_000),
      rate: 1 + drift() / 1_000_000,
      disk: { incarnation: 0, persisted: initialPersisted(), failover: 'on', data: [], aside: [] },
      core: null,
      liveness: null,
      lastViewKey: '',
      scriptToken: 0,
      scriptRunning: null,
      vip: false,
      authorityUntilMs: null,
      replication: { role: 'none' },
      reintToken: 0,
      synced: false,
      keptAside: false,
      blockedSinceMs: null,
      secondaryLostSent: false,
      servedInSync: false,
      adminPrim: false,
      wantRunning: false,
      tenure: 0,
      timerTokens: { pulse: 0, core: 0, liveness: 0 },
      coreDeadlineMs: null,
      livenessDeadlineMs: null,
      waitStatus: { status: 'clear' },
    });
    this.nodes = [makeNode(0), makeNode(1)];
    this.arbitrator =
      this.timing === null
        ? null
        : {
            up: true,
            state: initialArbitrator(0, this.timing),
            offsetMs: this.prng.range(0, 1_000_000),
            rate: 1 + drift() / 1_000_000,
            durable: {},
          };
    if (this.arbitrator !== null && this.timing !== null) {
      // The arbitrator has been up for a while when the cluster starts.
      this.arbitrator.state = initialArbitrator(this.arbitratorLocal() - this.timing.leaseMs, this.timing);
    }
  }

  // ---- time ----

  local(node: SimNode): number {
    return Math.floor(node.offsetMs + this.nowMs * node.rate);
  }

  arbitratorLocal(): number {
    const arbitrator = this.arbitrator;
    if (arbitrator === null) throw new Error('no arbitrator');
    return Math.floor(arbitrator.offsetMs + this.nowMs * arbitrator.rate);
  }

  /** The first real time at which the node's clock reads at least `localMs`. */
  realAt(node: SimNode, localMs: number): number {
    let realMs = Math.max(this.nowMs, Math.ceil((localMs - node.offsetMs) / node.rate));
    while (Math.floor(node.offsetMs + realMs * node.rate) < localMs) realMs += 1;
    return realMs;
  }

  /** Queues an event; `body` must be a fresh object (it is completed in place, not copied). */
  schedule(delayMs: number, body: SimEventBody): void {
    this.scheduleAt(this.nowMs + Math.max(0, Math.round(delayMs)), body);
  }

  scheduleAt(atMs: number, body: SimEventBody): void {
    this.order += 1;
    const event = body as SimEvent;
    event.atMs = Math.max(this.nowMs, atMs);
    event.order = this.order;
    this.queue.push(event);
  }

  // ---- tracing ----

  note(line: string): void {
    const entry = `${this.nowMs.toString().padStart(8)} ${line}`;
    if (this.tracing) {
      this.trace.push(entry);
      if (this.trace.length > this.traceLinesMax * 4)
        this.trace.splice(0, this.trace.length - this.traceLinesMax);
    }
  }

  fail(kind: ViolationKind, message: string): never {
    throw new SimFailure({ kind, atMs: this.nowMs, message });
  }

  // ---- network ----

  link(from: string, to: string, channel: string): Link {
    const key = `${from}>${to}/${channel}`;
    let link = this.links.get(key);
    if (link === undefined) {
      link = { downUntilMs: 0, lossP: 0, dupP: 0, delayMinMs: 0, delayMaxMs: 2, degradedUntilMs: 0 };
      this.links.set(key, link);
    }
    return link;
  }

  linkUp(from: string, to: string, channel: string): boolean {
    return this.link(from, to, channel).downUntilMs <= this.nowMs;
  }

  /** Sends a message over a link: it may be lost, delayed (hence reordered) or duplicated. */
  transmit(from: string, to: string, channel: string, body: SimEventBody): void {
    const link = this.link(from, to, channel);
    if (link.downUntilMs > this.nowMs) return;
    const degraded = link.degradedUntilMs > this.nowMs;
    if (degraded && this.faultPrng.chance(link.lossP)) return;
    const delay = () =>
      degraded ? this.faultPrng.range(link.delayMinMs, link.delayMaxMs) : this.faultPrng.range(0, 2);
    this.schedule(delay(), body);
    if (degraded && this.faultPrng.chance(link.dupP)) this.schedule(delay(), { ...body } as SimEventBody);
  }

  flowUp(a: SimNode, b: SimNode): boolean {
    const lan = this.config.lans[this.config.lans.length - 1] as string;
    return this.linkUp(a.name, b.name, lan) && this.linkUp(b.name, a.name, lan);
  }

  // ---- nodes ----

  peerOf(node: SimNode): SimNode {
    return this.nodes[1 - node.index] as SimNode;
  }

  bootNode(node: SimNode): void {
    if (node.machineUp) throw new Error(`${node.name} booted twice`);
    node.machineUp = true;
    node.boot += 1;
    node.disk.incarnation += 1;
    node.pausedUntilMs = null;
    node.deferred = [];
    const local = this.local(node);
    node.core = initialMirrorCore(local, node.disk.incarnation, node.disk.persisted, node.disk.failover);
    node.liveness = initialLiveness<MirrorAdvert>(
      this.livenessSettings[node.index],
      node.disk.incarnation,
      local,
    );
    node.lastViewKey = '';
    node.scriptRunning = null;
    node.vip = false;
    node.authorityUntilMs = null;
    node.replication = { role: 'none' };
    node.synced = false;
    node.keptAside = false;
    node.blockedSinceMs = null;
    node.secondaryLostSent = false;
    node.servedInSync = false;
    node.adminPrim = false;
    node.coreDeadlineMs = null;
    node.livenessDeadlineMs = null;
    node.waitStatus = { status: 'clear' };
    this.note(`${node.name} boots (incarnation ${node.disk.incarnation})`);
    this.schedule(0, {
      kind: 'timer',
      node: node.index,
      which: 'pulse',
      token: node.timerTokens.pulse,
      boot: node.boot,
    });
    this.rescheduleLiveness(node);
  }

  crashNode(node: SimNode, downMs: number): void {
    if (!node.machineUp) return;
    this.stats.crashes += 1;
    this.note(`${node.name} CRASH for ${downMs} ms`);
    node.machineUp = false;
    node.core = null;
    node.liveness = null;
    node.vip = false;
    node.authorityUntilMs = null;
    node.replication = { role: 'none' };
    node.scriptRunning = null;
    node.synced = false;
    node.pausedUntilMs = null;
    node.deferred = [];
    node.tenure = 0;
    this.scheduleAt(this.nowMs + downMs, { kind: 'restart', node: node.index });
  }

  pauseNode(node: SimNode, pauseMs: number): void {
    if (!node.machineUp || node.pausedUntilMs !== null) return;
    this.stats.pauses += 1;
    this.note(`${node.name} PAUSE for ${pauseMs} ms`);
    node.pausedUntilMs = this.nowMs + pauseMs;
    this.scheduleAt(node.pausedUntilMs, { kind: 'resume', node: node.index, boot: node.boot });
  }

  /** Runs one core event on a node and carries out what the core asks for. */
  step(node: SimNode, event: MirrorEvent): { accepted: boolean; message: string } {
    const core = node.core;
    if (core === null) throw new Error(`step on ${node.name} while it is down`);
    let result;
    try {
      result = stepMirror(core, event, this.settings[node.index]);
    } catch (error) {
      this.fail('coreError', `${node.name}: ${(error as Error).stack ?? String(error)}`);
    }
    node.core = result.core;
    if (this.tracing) {
      const label = event.type === 'command' ? `command ${event.verb}` : event.type;
      const detail = event.type === 'peer' ? ` ${viewLabel(event.view)}` : '';
      this.note(
        `${node.name} ${label}${detail} -> ${result.core.state} ${result.core.readiness}` +
          `${result.message ? ` (${result.message})` : ''}`,
      );
    }
    for (const action of result.actions) this.carryOut(node, action);
    this.afterStep(node);
    return { accepted: result.accepted, message: result.message };
  }

  /**
   * prim/primforce took effect: the administrator declared this node's data the newest and
   * sacrificed the other's writes (kept aside when that node rejoins). The forced generation is
   * committed as soon as the core takes the primary role, even if the node then freezes or
   * crashes before its VIP is up: from then on promotions are compared to this data.
   */
  adoptAdminDecision(node: SimNode): void {
    if (!node.adminPrim || node.core?.primary !== true) return;
    this.latest = node.disk.data;
    node.adminPrim = false;
    this.note(`${node.name} forced primary by the administrator: its data is the reference now`);
  }

  afterStep(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    if (core.state === 'STOP') node.adminPrim = false;
    this.adoptAdminDecision(node);
    const deadline = nextDeadlineMs(core, this.settings[node.index], this.local(node));
    if (deadline !== node.coreDeadlineMs) {
      node.coreDeadlineMs = deadline;
      node.timerTokens.core += 1;
      if (deadline !== null) {
        this.scheduleAt(this.realAt(node, deadline), {
          kind: 'timer',
          node: node.index,
          which: 'core',
          token: node.timerTokens.core,
          boot: node.boot,
        });
      }
    }
  }

  carryOut(node: SimNode, action: MirrorAction): void {
    if (this.tracing && action.type !== 'log' && action.type !== 'persist' && action.type !== 'sendState') {
      this.note(`  ${node.name} ${describeAction(action)}`);
    } else if (
      this.tracing &&
      action.type === 'log' &&
      (action.level === 'E' || action.level === 'C' || action.level === 'U')
    ) {
      this.note(`  ${node.name} log ${action.level} ${action.message}`);
    }
    switch (action.type) {
      case 'runScript':
        this.runScript(node, action.script, action.stage);
        break;
      case 'killScript':
        if (node.scriptRunning !== null) {
          node.scriptToken += 1;
          this.schedule(1, {
            kind: 'script',
            node: node.index,
            token: node.scriptToken,
            boot: node.boot,
            exitCode: null,
            timedOut: false,
          });
        }
        break;
      case 'persist': {
        const core = node.core;
        if (core !== null) {
          node.disk.persisted = core.persisted;
          node.disk.failover = core.failover;
        }
        break;
      }
      case 'vip':
        if (action.op === 'set') this.startActing(node);
        else node.vip = false;
        break;
      case 'authority':
        node.authorityUntilMs = action.untilMs;
        break;
      case 'replication':
        this.replicationCommand(node, action.command);
        break;
      case 'keepAside':
        node.keptAside = true;
        node.disk.aside = [...node.disk.aside, node.disk.data].slice(-16);
        this.stats.keepAsides += 1;
        break;
      case 'sendState':
        this.sendHeartbeat(node);
        break;
      case 'leaseRequest':
      case 'leaseRelease': {
        const message = action.type === 'leaseRequest' ? action.request : action.release;
        this.transmit(node.name, 'w', 'arb', { kind: 'toArbitrator', from: node.index, message });
        break;
      }
      case 'log':
      case 'state':
      case 'classes':
      case 'resource':
        break;
    }
  }

  runScript(node: SimNode, _script: string, stage: string): void {
    node.scriptToken += 1;
    node.scriptRunning = _script;
    const chaos = this.phase === 'fault' ? this.config.chaos : 0;
    let delayMs = this.faultPrng.range(1, 300);
    let exitCode: number | null = 0;
    let timedOut = false;
    if (chaos > 0) {
      if (stage === 'start' && this.faultPrng.chance(0.015 * chaos)) exitCode = 1;
      else if ((stage === 'stop' || stage === 'force') && this.faultPrng.chance(0.01 * chaos)) {
        timedOut = true;
        exitCode = null;
        delayMs = 2000;
      } else if (this.faultPrng.chance(0.01 * chaos)) exitCode = 1;
      if (stage === 'start' && this.faultPrng.chance(0.01 * chaos))
        delayMs = this.faultPrng.range(2000, 8000);
    }
    this.schedule(delayMs, {
      kind: 'script',
      node: node.index,
      token: node.scriptToken,
      boot: node.boot,
      exitCode,
      timedOut,
    });
  }

  startActing(node: SimNode): void {
    if (node.vip) return;
    node.vip = true;
    this.stats.promotions += 1;
    this.tenureCounter += 1;
    node.tenure = this.tenureCounter;
    this.note(
      `${node.name} acts as primary (tenure ${node.tenure}, data ${describeLineage(node.disk.data)})`,
    );
    this.adoptAdminDecision(node);
    if (this.config.arbitrator && this.config.replication && !covers(node.disk.data, this.latest)) {
      this.fail(
        'stalePromotion',
        `${node.name} became primary without primforce/prim with data ${describeLineage(node.disk.data)}, ` +
          `newest written data is ${describeLineage(this.latest)}`,
      );
    }
    this.checkPrimaries();
  }

  acting(node: SimNode): boolean {
    if (!node.machineUp || !node.vip) return false;
    if (!this.config.arbitrator) return true;
    // With an arbitrator the VIP and the data layer obey the authority deadline on their own
    // (address lifetimes, write fencing), even when the daemon is frozen.
    return node.authorityUntilMs !== null && this.local(node) < node.authorityUntilMs;
  }

  checkPrimaries(): void {
    if (!this.config.arbitrator) return;
    this.stats.dualPrimaryChecks += 1;
    const [a, b] = this.nodes;
    if (this.acting(a) && this.acting(b)) {
      this.fail(
        'dualPrimary',
        `both nodes act as primary: n1 authority until ${a.authorityUntilMs} (clock ${this.local(a)}), ` +
          `n2 authority until ${b.authorityUntilMs} (clock ${this.local(b)})`,
      );
    }
  }

  replicationCommand(node: SimNode, command: ReplicationCommand): void {
    const previous = node.replication;
    node.replication = command;
    if (command.role !== 'secondary') {
      node.synced = false;
      node.keptAside = false;
      node.reintToken += 1;
    }
    if (
      command.role === 'secondary' &&
      (previous.role !== 'secondary' || previous.primary !== command.primary)
    ) {
      node.synced = false;
      node.reintToken += 1;
      if (this.config.replication) {
        this.schedule(this.faultPrng.range(20, 1500), {
          kind: 'reint',
          node: node.index,
          token: node.reintToken,
          boot: node.boot,
        });
      }
    }
    const sameSecondary =
      previous.role === 'primary' &&
      command.role === 'primary' &&
      previous.secondary?.incarnation === command.secondary?.incarnation &&
      previous.secondary?.attach === command.secondary?.attach;
    if (!sameSecondary) {
      node.servedInSync = false;
      node.blockedSinceMs = null;
      node.secondaryLostSent = false;
    }
  }

  sendHeartbeat(node: SimNode): void {
    const core = node.core;
    const liveness = node.liveness;
    if (core === null || liveness === null) return;
    const advert = advertOf(core, this.settings[node.index], this.local(node));
    const prepared = preparePacket(liveness, this.livenessSettings[node.index], advert, this.local(node));
    node.liveness = prepared.state;
    const peer = this.peerOf(node);
    for (const lan of this.config.lans) {
      this.transmit(node.name, peer.name, lan, {
        kind: 'hb',
        node: peer.index,
        lan,
        packet: prepared.packet,
      });
    }
  }

  rescheduleLiveness(node: SimNode): void {
    const liveness = node.liveness;
    if (liveness === null) return;
    const deadline = nextLivenessDeadlineMs(liveness);
    if (deadline === node.livenessDeadlineMs) return;
    node.livenessDeadlineMs = deadline;
    node.timerTokens.liveness += 1;
    if (deadline !== null) {
      this.scheduleAt(this.realAt(node, deadline), {
        kind: 'timer',
        node: node.index,
        which: 'liveness',
        token: node.timerTokens.liveness,
        boot: node.boot,
      });
    }
  }

  /** Feeds the core the peer view when it changed in a way the core cares about. */
  feedPeer(node: SimNode): void {
    const liveness = node.liveness;
    const core = node.core;
    if (liveness === null || core === null) return;
    const view = peerView(liveness);
    const key = viewKey(view, core.primary && this.config.arbitrator);
    if (key === node.lastViewKey) return;
    node.lastViewKey = key;
    this.step(node, { type: 'peer', view, nowMs: this.local(node) });
  }

  // ---- the data path ----

  reintegrate(node: SimNode): void {
    const core = node.core;
    const command = node.replication;
    if (core === null || command.role !== 'secondary') return;
    const primary = this.peerOf(node);
    const serving =
      primary.machineUp &&
      primary.core !== null &&
      primary.core.incarnation === command.primary &&
      primary.replication.role === 'primary' &&
      primary.replication.secondary?.incarnation === core.incarnation &&
      primary.replication.secondary.attach === command.attach &&
      this.flowUp(node, primary);
    if (!serving) {
      this.schedule(200, { kind: 'reint', node: node.index, token: node.reintToken, boot: node.boot });
      return;
    }
    if (this.phase === 'fault' && this.faultPrng.chance(0.02 * this.config.chaos)) {
      node.reintToken += 1;
      this.step(node, { type: 'reintegration', outcome: 'failed', nowMs: this.local(node) });
      return;
    }
    if (!covers(primary.disk.data, node.disk.data)) {
      if (!command.reintegrate) {
        this.fail('syncDivergence', `${node.name} attached without resync to different data`);
      }
      if (!node.keptAside) {
        this.fail(
          'silentDiscard',
          `${node.name} reintegration overwrites ${describeLineage(node.disk.data)} with ` +
            `${describeLineage(primary.disk.data)} and nothing was kept aside`,
        );
      }
    }
    node.disk.data = primary.disk.data;
    node.synced = true;
    primary.servedInSync = true;
    node.reintToken += 1;
    this.note(`${node.name} reintegration done from ${primary.name}`);
    this.step(node, { type: 'reintegration', outcome: 'done', nowMs: this.local(node) });
  }

  writeTick(): void {
    if (!this.config.replication) return;
    for (const node of this.nodes) {
      if (!this.acting(node) || node.replication.role !== 'primary') continue;
      const secondary = node.replication.secondary;
      const peer = this.peerOf(node);
      const peerCore = peer.core;
      const syncedPeer =
        secondary !== null &&
        peer.machineUp &&
        peerCore !== null &&
        peerCore.incarnation === secondary.incarnation &&
        peer.replication.role === 'secondary' &&
        peer.replication.primary === node.core?.incarnation &&
        peer.replication.attach === secondary.attach &&
        peer.synced;
      if (secondary === null || (!node.servedInSync && !syncedPeer)) {
        // Alone, or the secondary is still reintegrating: it will get these writes from the
        // reintegration.
        this.write(node, null);
        continue;
      }
      if (syncedPeer && this.flowUp(node, peer)) {
        node.blockedSinceMs = null;
        if (!sameLineage(node.disk.data, peer.disk.data)) {
          this.fail(
            'syncDivergence',
            `${peer.name} in sync with ${node.name} but holds ${describeLineage(peer.disk.data)} ` +
              `instead of ${describeLineage(node.disk.data)}`,
          );
        }
        this.write(node, peer);
        continue;
      }
      // The secondary in sync is unreachable or gone: the write blocks until a replication
      // command names a new generation; after lockTimeoutMs the primary drops its secondary
      // (the reference's locktimeout).
      node.blockedSinceMs ??= this.nowMs;
      if (!node.secondaryLostSent && this.nowMs - node.blockedSinceMs >= this.config.lockTimeoutMs) {
        node.secondaryLostSent = true;
        peer.synced = false;
        if (node.core !== null && node.pausedUntilMs === null) {
          this.step(node, { type: 'secondaryLost', nowMs: this.local(node) });
        }
      }
    }
  }

  write(node: SimNode, peer: SimNode | null): void {
    if (node.tenure === 0) throw new Error('write outside a tenure');
    node.disk.data = appendWrite(node.disk.data, node.tenure);
    if (peer !== null) peer.disk.data = node.disk.data;
    this.latest = node.disk.data;
    this.stats.writes += 1;
    if (this.tracing) {
      this.note(
        `${node.name} writes${peer === null ? '' : ` (and ${peer.name})`}: ${describeLineage(node.disk.data)}`,
      );
    }
  }

  // ---- the arbitrator ----

  arbitratorReceive(from: NodeIndex, message: LeaseRequest | LeaseRelease): void {
    const arbitrator = this.arbitrator;
    const timing = this.timing;
    if (arbitrator === null || timing === null || !arbitrator.up) return;
    const now = this.arbitratorLocal();
    let reply: LeaseReply | null;
    if (message.type === 'leaseRequest') {
      const handled = arbitratorHandleRequest(arbitrator.state, message, timing, now);
      arbitrator.state = handled.state;
      reply = handled.reply;
    } else {
      const handled = arbitratorHandleRelease(arbitrator.state, message);
      arbitrator.state = handled.state;
      reply = handled.reply;
    }
    arbitrator.durable = arbitratorDurable(arbitrator.state);
    if (this.tracing) {
      const registered = arbitrator.state.modules.mirror?.registered ?? null;
      this.note(
        `w <- ${this.nodes[from].name} ${message.type} seq=${message.seq}: ` +
          `${reply === null ? 'dropped' : reply.type === 'leaseRefused' ? `refused ${reply.reason}` : reply.type}, ` +
          `registered ${gen(registered)}`,
      );
    }
    if (reply !== null) {
      const to = this.nodes[from];
      this.transmit('w', to.name, 'arb', { kind: 'leaseReply', node: from, reply });
    }
  }

  // ---- the fault generator and the operator ----

  chaosTick(): void {
    const prng = this.faultPrng;
    const chaos = this.config.chaos;
    const node = prng.pick(this.nodes);
    const peer = this.peerOf(node);
    const timeoutMs = this.config.timeoutMs;
    const roll = prng.float();
    if (roll < 0.18) {
      this.partition(prng, node, peer, timeoutMs);
    } else if (roll < 0.28) {
      for (const lan of this.config.lans) {
        for (const [from, to] of [
          [node.name, peer.name],
          [peer.name, node.name],
        ] as const) {
          const link = this.link(from, to, lan);
          link.degradedUntilMs = this.nowMs + prng.range(timeoutMs, 4 * timeoutMs);
          link.lossP = prng.float() * 0.4;
          link.dupP = prng.float() * 0.2;
          link.delayMinMs = 0;
          link.delayMaxMs = prng.range(1, 3 * this.config.pulseMs);
        }
      }
      this.note(`network degraded between ${node.name} and ${peer.name}`);
    } else if (roll < 0.34) {
      this.crashNode(node, prng.range(100, 4 * timeoutMs));
    } else if (roll < 0.42) {
      this.pauseNode(node, prng.range(100, 3 * timeoutMs));
    } else if (roll < 0.46 && this.arbitrator !== null) {
      if (this.arbitrator.up) {
        this.arbitrator.up = false;
        this.note('arbitrator CRASH');
        this.scheduleAt(this.nowMs + prng.range(100, 3 * this.config.leaseMs), { kind: 'arbitratorRestart' });
      }
    } else if (roll < 0.56) {
      const wait: WaitStatus = prng.pick<WaitStatus>([
        { status: 'clear' },
        { status: 'clear' },
        { status: 'pending' },
        { status: 'blocked', rule: 'p_gateway' },
      ]);
      if (this.reachable(node)) {
        node.waitStatus = wait;
        this.step(node, { type: 'waitStatus', wait, nowMs: this.local(node) });
      }
    } else if (roll < 0.62) {
      if (this.reachable(node)) {
        this.stats.adminCommands += 1;
        const verb = prng.pick<MirrorVerb>(['restart', 'stopstart', 'wait']);
        this.step(node, {
          type: 'command',
          verb,
          identity: 'c_check',
          origin: { kind: 'rule', rule: 'c_check' },
          nowMs: this.local(node),
        });
      }
    } else if (roll < 0.8) {
      this.adminCommand(prng, node);
    }
    this.schedule(prng.range(100, Math.round(3000 / chaos)), { kind: 'chaos' });
  }

  partition(prng: Prng, node: SimNode, peer: SimNode, timeoutMs: number): void {
    this.stats.partitions += 1;
    const untilMs = this.nowMs + prng.range(timeoutMs / 2, 4 * timeoutMs);
    const shape = prng.int(6);
    const cut = (from: string, to: string, channel: string) => {
      this.link(from, to, channel).downUntilMs = untilMs;
    };
    const lans = this.config.lans;
    let description: string;
    switch (shape) {
      case 0: {
        const lan = prng.pick(lans);
        cut(node.name, peer.name, lan);
        description = `one-way ${node.name}->${peer.name} on ${lan}`;
        break;
      }
      case 1: {
        const lan = prng.pick(lans);
        cut(node.name, peer.name, lan);
        cut(peer.name, node.name, lan);
        description = `two-way ${node.name}<->${peer.name} on ${lan}`;
        break;
      }
      case 2:
        for (const lan of lans) cut(node.name, peer.name, lan);
        description = `one-way ${node.name}->${peer.name} on every lan`;
        break;
      case 3:
        for (const lan of lans) {
          cut(node.name, peer.name, lan);
          cut(peer.name, node.name, lan);
        }
        description = `heartbeats cut between ${node.name} and ${peer.name}`;
        break;
      case 4:
        if (prng.chance(0.5)) cut(node.name, 'w', 'arb');
        else cut('w', node.name, 'arb');
        if (prng.chance(0.5)) cut(node.name, 'w', 'arb');
        description = `${node.name} cut from the arbitrator`;
        break;
      default:
        for (const lan of lans) {
          cut(node.name, peer.name, lan);
          cut(peer.name, node.name, lan);
        }
        cut(node.name, 'w', 'arb');
        cut('w', node.name, 'arb');
        description = `${node.name} isolated`;
        break;
    }
    this.note(`PARTITION ${description} until ${untilMs}`);
  }

  reachable(node: SimNode): boolean {
    return node.machineUp && node.core !== null && node.pausedUntilMs === null;
  }

  adminCommand(prng: Prng, node: SimNode): void {
    if (!this.reachable(node)) return;
    this.stats.adminCommands += 1;
    const roll = prng.float();
    if (roll < 0.08) {
      const value = node.core?.failover === 'on' ? 'off' : 'on';
      this.step(node, { type: 'failoverSetting', value, nowMs: this.local(node) });
      return;
    }
    const verb = prng.pick<MirrorVerb>([
      'start',
      'start',
      'start',
      'stop',
      'stop',
      'stopstart',
      'restart',
      'swap',
      'swap',
      'prim',
      'second',
      'forcestop',
      'primforce',
    ]);
    this.admin(node, verb, prng.chance(0.2) ? { fullsync: true, nosync: true } : {});
  }

  admin(node: SimNode, verb: MirrorVerb, options: { fullsync?: boolean; nosync?: boolean } = {}): boolean {
    if (!this.reachable(node)) return false;
    const result = this.step(node, {
      type: 'command',
      verb,
      options,
      origin: { kind: 'caller', who: 'admin' },
      nowMs: this.local(node),
    });
    if (result.accepted) {
      if (verb === 'prim' || verb === 'primforce') node.adminPrim = true;
      if (verb === 'stop' || verb === 'forcestop') node.wantRunning = false;
      else if (verb !== 'swap' && verb !== 'restart') node.wantRunning = true;
    }
    return result.accepted;
  }

  /** The operator: the first start procedure, then (in the heal phase) restarting stopped modules. */
  operatorTick(): void {
    const [a, b] = this.nodes;
    if (this.phase === 'form') {
      const coreA = a.core;
      const coreB = b.core;
      if (coreA !== null && coreB !== null) {
        // First start (reference 2.3): prim on one node, second on the other, each from STOP.
        if (coreA.persisted.history.length === 0 && !coreA.primary) {
          if (coreA.state === 'STOP') this.admin(a, 'prim');
          else if (coreA.job === null && coreA.state === 'WAIT') this.admin(a, 'stop');
        } else if (coreA.primary && coreA.state === 'ALONE' && coreA.readiness === 'Ready') {
          if (coreB.state === 'STOP') this.admin(b, 'second');
          else if (coreB.job === null && coreB.state === 'WAIT') this.admin(b, 'stop');
        }
        if (this.converged()) {
          this.phase = 'fault';
          this.note('pair formed: fault phase begins');
          this.schedule(this.faultPrng.range(100, 1000), { kind: 'chaos' });
        }
      }
    } else if (this.phase === 'heal') {
      for (const node of this.nodes) {
        const core = node.core;
        if (node === this.rescueTarget) continue;
        if (core !== null && this.reachable(node) && core.state === 'STOP' && core.job === null) {
          this.admin(node, 'start');
        }
      }
      this.operatorRescue();
    }
    this.schedule(500, { kind: 'operator' });
  }

  /**
   * Both nodes blocked and neither has data the automaton can trust (fresh, or stopped during a
   * reintegration): only an administrator can choose (stop, then prim or primforce on the node
   * with the best data). Anything else left blocked ends as a convergence failure.
   */
  operatorRescue(): void {
    const [a, b] = this.nodes;
    const coreA = a.core;
    const coreB = b.core;
    if (coreA === null || coreB === null || !this.reachable(a) || !this.reachable(b)) return;
    const target = this.rescueTarget;
    if (target !== null) {
      const core = target.core;
      if (core !== null && core.state === 'STOP' && core.job === null) {
        this.admin(target, core.persisted.reintegrating ? 'primforce' : 'prim');
        this.rescueTarget = null;
      }
      return;
    }
    const blocked = (core: MirrorCore) =>
      core.state === 'WAIT' && core.readiness === 'NotReady' && core.job === null;
    const untrusted = (core: MirrorCore) =>
      core.persisted.history.length === 0 || core.persisted.reintegrating;
    if (!blocked(coreA) || !blocked(coreB) || !untrusted(coreA) || !untrusted(coreB)) return;
    if (this.nowMs - this.healStartedMs < 4 * (this.config.timeoutMs + this.config.leaseMs)) return;
    const best = covers(a.disk.data, b.disk.data) ? a : b;
    this.stats.operatorInterventions += 1;
    this.note(`OPERATOR: no node has trusted data; stop then prim/primforce on ${best.name}`);
    this.rescueTarget = best;
    this.admin(best, 'stop');
  }

  converged(): boolean {
    const [a, b] = this.nodes;
    const coreA = a.core;
    const coreB = b.core;
    if (coreA === null || coreB === null || a.pausedUntilMs !== null || b.pausedUntilMs !== null)
      return false;
    if (coreA.job !== null || coreB.job !== null) return false;
    const pair = (p: MirrorCore, s: MirrorCore) =>
      p.state === 'PRIM' &&
      p.readiness === 'Ready' &&
      s.state === 'SECOND' &&
      s.readiness === 'Ready' &&
      p.confirmedSecondary === s.incarnation &&
      s.confirmedBy === p.incarnation;
    return pair(coreA, coreB) || pair(coreB, coreA);
  }

  startHeal(): void {
    this.phase = 'heal';
    this.healStartedMs = this.nowMs;
    this.note('HEAL: faults stop, links heal, nodes come back');
    for (const link of this.links.values()) {
      link.downUntilMs = 0;
      link.degradedUntilMs = 0;
    }
    if (this.arbitrator !== null && !this.arbitrator.up) this.restartArbitrator();
    for (const node of this.nodes) {
      if (!node.machineUp) this.bootNode(node);
      if (node.pausedUntilMs !== null) this.resume(node);
      if (node.core !== null && node.waitStatus.status !== 'clear') {
        node.waitStatus = { status: 'clear' };
        this.step(node, { type: 'waitStatus', wait: node.waitStatus, nowMs: this.local(node) });
      }
      if (node.core !== null && node.core.failover === 'off') {
        this.step(node, { type: 'failoverSetting', value: 'on', nowMs: this.local(node) });
      }
    }
  }

  restartArbitrator(): void {
    const arbitrator = this.arbitrator;
    const timing = this.timing;
    if (arbitrator === null || timing === null) return;
    arbitrator.up = true;
    arbitrator.state = initialArbitrator(this.arbitratorLocal(), timing, arbitrator.durable);
    this.note('arbitrator restarts (quiet period)');
  }

  resume(node: SimNode): void {
    node.pausedUntilMs = null;
    this.note(`${node.name} resumes`);
    const deferred = node.deferred;
    node.deferred = [];
    for (const event of deferred) this.dispatch(event);
  }

  // ---- the event loop ----

  dispatch(event: SimEvent): void {
    switch (event.kind) {
      case 'chaos':
        if (this.phase === 'fault') this.chaosTick();
        return;
      case 'write':
        this.writeTick();
        this.schedule(this.faultPrng.range(50, 200), { kind: 'write' });
        return;
      case 'operator':
        this.operatorTick();
        return;
      case 'arbitratorRestart':
        if (this.arbitrator !== null && !this.arbitrator.up) this.restartArbitrator();
        return;
      case 'toArbitrator':
        this.arbitratorReceive(event.from, event.message);
        return;
      case 'restart': {
        const node = this.nodes[event.node];
        if (node.machineUp) return;
        this.bootNode(node);
        const wants = node.wantRunning;
        if (wants && this.faultPrng.chance(0.8)) this.admin(node, 'start');
        return;
      }
      default:
        break;
    }
    const node = this.nodes[event.node];
    if (!node.machineUp) return;
    if (event.kind === 'resume') {
      if (event.boot === node.boot && node.pausedUntilMs !== null) this.resume(node);
      return;
    }
    if (node.pausedUntilMs !== null) {
      if (node.deferred.length >= deferredMax) throw new Error(`${node.name}: too many deferred events`);
      node.deferred.push(event);
      return;
    }
    switch (event.kind) {
      case 'hb': {
        const liveness = node.liveness;
        if (liveness === null) return;
        const received = receivePacket(
          liveness,
          this.livenessSettings[node.index],
          event.lan,
          event.packet,
          this.local(node),
        );
        node.liveness = received.state;
        if (received.verdict === 'accepted' || received.changes.length > 0) this.feedPeer(node);
        this.rescheduleLiveness(node);
        return;
      }
      case 'leaseReply':
        if (this.timing === null || node.core === null) return;
        this.step(node, { type: 'lease', reply: event.reply, nowMs: this.local(node) });
        return;
      case 'timer': {
        if (event.boot !== node.boot || event.token !== node.timerTokens[event.which]) return;
        if (event.which === 'pulse') {
          this.sendHeartbeat(node);
          node.timerTokens.pulse += 1;
          this.scheduleAt(this.realAt(node, this.local(node) + this.config.pulseMs), {
            kind: 'timer',
            node: node.index,
            which: 'pulse',
            token: node.timerTokens.pulse,
            boot: node.boot,
          });
        } else if (event.which === 'liveness') {
          const liveness = node.liveness;
          if (liveness === null) return;
          node.livenessDeadlineMs = null;
          node.liveness = expireLans(liveness, this.local(node)).state;
          this.feedPeer(node);
          this.rescheduleLiveness(node);
        } else {
          node.coreDeadlineMs = null;
          this.step(node, { type: 'tick', nowMs: this.local(node) });
        }
        return;
      }
      case 'script': {
        if (event.boot !== node.boot || event.token !== node.scriptToken || node.scriptRunning === null)
          return;
        const script = node.scriptRunning;
        node.scriptRunning = null;
        node.scriptToken += 1;
        this.step(node, {
          type: 'scriptDone',
          script,
          exitCode: event.exitCode,
          timedOut: event.timedOut,
          nowMs: this.local(node),
        });
        return;
      }
      case 'reint':
        if (event.boot !== node.boot || event.token !== node.reintToken) return;
        this.reintegrate(node);
        return;
    }
  }

  run(faultSteps: number): SimResult {
    const bootStagger = this.prng.range(0, 2000);
    this.bootNode(this.nodes[0]);
    this.scheduleAt(bootStagger, { kind: 'restart', node: 1 });
    this.schedule(300, { kind: 'operator' });
    this.schedule(100, { kind: 'write' });
    const formDeadlineMs = 120_000;
    const convergeBoundMs = convergenceBoundMs(this.config);
    let faultStepsDone = 0;
    let healSteps = 0;
    let sameTimeSteps = 0;
    let convergeMs: number | null = null;
    let violation: Violation | null = null;
    try {
      for (;;) {
        const event = this.queue.pop();
        if (event === undefined) throw new Error('the simulation ran out of events');
        if (event.atMs < this.nowMs) throw new Error('time went backwards');
        if (event.atMs === this.nowMs) {
          sameTimeSteps += 1;
          if (sameTimeSteps > sameTimeStepsMax)
            throw new Error(`${sameTimeStepsMax} steps without time passing`);
        } else {
          sameTimeSteps = 0;
        }
        if (this.steps > faultSteps + healStepsMax)
          throw new Error(`more than ${healStepsMax} steps of healing`);
        this.nowMs = event.atMs;
        this.steps += 1;
        this.dispatch(event);
        this.checkPrimaries();
        if (this.phase === 'form' && this.nowMs > formDeadlineMs) {
          this.fail(
            'noConvergence',
            `the first start did not form a PRIM/SECOND pair within ${formDeadlineMs} ms`,
          );
        }
        if (this.phase === 'fault') {
          faultStepsDone += 1;
          if (faultStepsDone >= faultSteps) this.startHeal();
        } else if (this.phase === 'heal') {
          healSteps += 1;
          if (this.converged()) {
            convergeMs = this.nowMs - this.healStartedMs;
            break;
          }
          if (this.nowMs - this.healStartedMs > convergeBoundMs) {
            this.fail(
              'noConvergence',
              `no PRIM/SECOND within ${convergeBoundMs} ms of healing: ` +
                this.nodes.map((node) => `${node.name} ${describeNode(node)}`).join('; '),
            );
          }
        }
      }
    } catch (error) {
      if (!(error instanceof SimFailure)) {
        violation = { kind: 'coreError', atMs: this.nowMs, message: (error as Error).stack ?? String(error) };
      } else {
        violation = error.violation;
      }
    }
    return {
      seed: this.seed,
      config: this.config,
      steps: this.steps,
      faultSteps: faultStepsDone,
      healSteps,
      simulatedMs: this.nowMs,
      converged: convergeMs !== null,
      convergeMs,
      convergeBoundMs,
      violation,
      stats: this.stats,
      trace: this.trace.slice(-this.traceLinesMax),
    };
  }
}

/**
 * After the last fault heals, the pair must be PRIM/SECOND within this bound: a minute for the
 * scripts (at most ~25 scripts of 300 ms per transition, a few transitions) and the operator's
 * half-second period, plus six heartbeat timeouts and six leases for detection, elections,
 * refused leases and the arbitrator's quiet period.
 */
export function convergenceBoundMs(config: SimConfig): number {
  return 60_000 + 6 * (config.timeoutMs + (config.arbitrator ? config.leaseMs : 0));
}

/** Identifies a view by every advert field, so the core hears of any change. */
function viewKey(view: MirrorPeerView, withPromise: boolean): string {
  if (view.status !== 'up') return view.status;
  return `${JSON.stringify(view.advert)}|${withPromise ? view.promiseFromMs : ''}`;
}

function viewLabel(view: MirrorPeerView): string {
  if (view.status !== 'up') return view.status;
  const a = view.advert;
  return `${a.node}#${a.incarnation} ${a.state} ${a.readiness}${a.primary ? ' primary' : ''}`;
}

function describeNode(node: SimNode): string {
  const core = node.core;
  if (!node.machineUp || core === null) return 'down';
  return (
    `${core.state} ${core.readiness}${core.job ? ` job=${core.job.verb}` : ''}` +
    `${core.hold ? ` hold="${core.hold}"` : ''} history=${core.persisted.history.map((g) => `${g.counter}@${g.node}`).join(',')}` +
    `${core.persisted.reintegrating ? ' reintegrating' : ''}${core.persisted.uptodate ? ' uptodate' : ''}`
  );
}

export function describeAction(action: MirrorAction): string {
  switch (action.type) {
    case 'runScript':
      return `run ${action.script} ${action.args.join(' ')}`;
    case 'killScript':
      return 'kill running script';
    case 'log':
      return `log ${action.level} ${action.component}: ${action.message}`;
    case 'state':
      return `state ${action.state} ${action.readiness}`;
    case 'classes':
      return `classes [${action.active.join(' ')}]`;
    case 'persist':
      return 'persist';
    case 'vip':
      return `vip ${action.op}`;
    case 'replication':
      return `replication ${describeReplication(action.command)}`;
    case 'keepAside':
      return `keepAside ${action.generation === null ? 'none' : `${action.generation.counter}@${action.generation.node}`}: ${action.reason}`;
    case 'sendState':
      return 'sendState';
    case 'leaseRequest': {
      const r = action.request;
      return (
        `leaseRequest seq=${r.seq} data=${gen(r.dataGeneration)} claim=${gen(r.claim)}` +
        `${r.force ? ' force' : ''}${r.witness ? ' witness' : ''}`
      );
    }
    case 'leaseRelease':
      return (
        `leaseRelease seq=${action.release.seq}${action.release.unusedClaim ? ' unusedClaim' : ''}` +
        `${action.release.disown === null ? '' : ` disown=${gen(action.release.disown)}`}`
      );
    case 'authority':
      return `authority until ${action.untilMs}`;
    case 'resource':
      return `resource ${action.name}=${action.value}`;
  }
}

function gen(generation: Generation | null): string {
  return generation === null ? 'none' : `${generation.counter}@${generation.node}`;
}

export function describeReplication(command: ReplicationCommand): string {
  switch (command.role) {
    case 'none':
      return 'none';
    case 'primary':
      return (
        `primary generation=${gen(command.generation)} ` +
        `secondary=${command.secondary === null ? 'none' : `#${command.secondary.incarnation}/${command.secondary.attach}`}` +
        `${command.fullsync ? ' fullsync' : ''}`
      );
    case 'secondary':
      return (
        `secondary of #${command.primary} attach ${command.attach}${command.fullsync ? ' fullsync' : ''}` +
        `${command.reintegrate ? '' : ' nosync'}`
      );
  }
}

export function simulate(options: SimOptions): SimResult {
  const prng = new Prng(options.seed);
  const config = { ...randomConfig(prng), ...options.config };
  if (config.actualDriftPpmMax === 0 && options.config?.actualDriftPpmMax === undefined) {
    config.actualDriftPpmMax = config.driftPpm;
  }
  const world = new World(
    options.seed,
    config,
    options.trace === true,
    options.traceLinesMax ?? traceLinesDefault,
  );
  return world.run(options.steps);
}
