// Runs one module: feeds events (commands, finished scripts, checker verdicts, rule timer) one
// at a time into the pure automaton and carries out the actions it returns: scripts, checker
// classes, logs, persistence. All I/O of a module happens here or in the adapters it owns.
import { ArbitratorClient } from '../arbitrator/client.ts';
import { leaseTimingFor } from '../core/arbitrator-lease.ts';
import { AuthorityFence, removeFence } from '../net/authority-fence.ts';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CustomCheckerSpec, CustomCheckers } from '../checkers/custom-checkers.ts';
import { CheckerScheduler, type ModuleCheckerSpec } from '../checkers/checker-scheduler.ts';
import type { ProbeResult } from '../checkers/probes.ts';
import { ErrdMonitor, type ErrdReport, pidPollMsDefault } from '../checkers/errd-monitor.ts';
import type { Origin } from '../core/farm-automaton.ts';
import type { MaxloopState } from '../core/maxloop.ts';
import { type AutomatonDriver, type DriverEvent, FarmDriver } from './automaton-driver.ts';
import { randomInt } from 'node:crypto';
import {
  advertOf,
  type MirrorEvent,
  type MirrorPersisted,
  type MirrorCore,
  type MirrorSettings,
  nextDeadlineMs,
} from '../core/mirror-automaton.ts';
import { newIncarnation } from '../heartbeat/packet.ts';
import { VirtualIp } from '../net/vip.ts';
import { pingProbe } from '../checkers/probes.ts';
import type { MirrorPeerView } from '../core/mirror-types.ts';
import { type MirrorExtraAction, MirrorDriver } from './mirror-driver.ts';
import { MirrorLink } from './mirror-link.ts';
import { FarmController } from './farm-controller.ts';
import { FarmModuleDriver, type FarmTrafficAction } from './farm-driver.ts';
import { MirrorReplication } from './mirror-replication.ts';
import { dynamicUpdatePlan, updateRefusal } from './dynamic-update.ts';

/**
 * How long a node becoming primary waits for the previous holder to release the VIP. A SIGKILLed
 * or crashed hakitd leaves its VIP until hakitd-supervisor restarts it (immediately the first
 * time, after up to 30 s of back-off when it keeps dying) and the new daemon drops it: waiting
 * past that keeps the new primary from giving up (ip_failure, stopstart) on a peer that is about
 * to let go. Seen in the failover benchmark: repeated kills, 8 s back-off, takeover abandoned.
 */
const vipConflictWaitMs = 35_000;
const vipConflictRetryMs = 250;
/** Each witness of <splitbrain> gets one ping with this timeout when the heartbeats are lost. */
const splitBrainPingMs = 1_000;
const mirrorTickMs = 50;
import type { ActivityClass, CoreAction, LogLevel } from '../core/job.ts';
import { countAction, maxloopReached, resetMaxloop } from '../core/maxloop.ts';
import { type ResourceTable, setResource } from '../core/resources.ts';
import { evaluateRules, initialRuleEngine, type RuleEngineState } from '../core/rule-engine.ts';
import { formatState, type ModuleStateName, type Readiness } from '../core/states.ts';
import { type JsonReadResult, readJsonFile, writeJsonDurably } from './durable-file.ts';
import { type LogEntry, ModuleLog } from './module-log.ts';
import type { MirrorRuntime, ModuleRuntimeConfig } from './module-runtime-config.ts';
import type { NodePaths } from './paths.ts';
import {
  type RunningScript,
  type ScriptRunRequest,
  type ScriptRunResult,
  startScript,
} from '../scripts/runner.ts';

export interface UserSettings {
  errd: 'on' | 'off';
  checker: 'on' | 'off';
  boot: 'on' | 'off';
  failover: 'on' | 'off';
}

interface PersistedModule {
  version: 1;
  core: { state: ModuleStateName; readiness: Readiness; maxloop: MaxloopState; lastFailure: string | null };
  settings: UserSettings;
  customClassesEnabled: string[];
  bootId: string;
  /** Mirror modules: what the automaton keeps across restarts, and the last incarnation used. */
  mirror?: { persisted: MirrorPersisted; incarnation: number };
}

function isPersistedModule(value: unknown): value is PersistedModule {
  const candidate = value as PersistedModule;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.version === 1 &&
    typeof candidate.core?.state === 'string' &&
    typeof candidate.settings?.errd === 'string'
  );
}

export interface ModuleStatus {
  module: string;
  mode: string;
  state: ModuleStateName;
  readiness: Readiness;
  /** A transition is being carried out. */
  busy: boolean;
  readyGeneration: number;
  detail: string[];
  resources: ResourceTable;
  settings: UserSettings;
}

type Listener = (status: ModuleStatus) => void;

/** What the API's event stream carries for this module. */
export interface ModuleEvent {
  type: 'state' | 'resource' | 'log';
  module: string;
  timeMs: number;
  data: unknown;
}

export interface CommandOutcome {
  accepted: boolean;
  message: string;
}

export interface UpdateOutcome extends CommandOutcome {
  /** The new configuration is the running one (even if the update script then failed). */
  applied: boolean;
}

const eventQueueMax = 1024;

/** `service="yes"` watches: whether a systemd unit is active. */
function systemdUnitActive(unit: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('systemctl', ['is-active', '--quiet', '--', unit], { timeout: 10_000 }, (error) =>
      resolve(!error),
    );
  });
}

export function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export class ModuleSupervisor {
  private driver: AutomatonDriver<MirrorExtraAction | FarmTrafficAction, MirrorEvent>;
  private farm: FarmController | null = null;
  private mirrorDriver: MirrorDriver | null = null;
  private link: MirrorLink | null = null;
  private arbitratorClient: ArbitratorClient | null = null;
  private fence: AuthorityFence | null = null;
  /** With <rfs>: the replication data path (mirror-replication.ts). */
  private replication: MirrorReplication | null = null;
  private readonly vips: VirtualIp[] = [];
  private mirrorTimer: NodeJS.Timeout | null = null;
  private resources: ResourceTable = {};
  private ruleState: RuleEngineState = initialRuleEngine();
  private settings: UserSettings = { errd: 'on', checker: 'on', boot: 'off', failover: 'on' };
  private customClassesEnabled: string[] = [];
  private readonly log: ModuleLog;
  private readonly errd: ErrdMonitor | null;
  private readonly checkers: CheckerScheduler;
  private readonly customCheckers: CustomCheckers;
  private queue: Promise<void> = Promise.resolve();
  private queuedEvents = 0;
  private runningScript: RunningScript | null = null;
  private ruleTimer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<Listener>();
  private closed = false;
  private readonly stateFile: string;
  private readonly moduleVarDir: string;

  constructor(
    private config: ModuleRuntimeConfig,
    private readonly paths: NodePaths,
    private readonly nowMs: () => number = Date.now,
    private readonly onEvent: (event: ModuleEvent) => void = () => undefined,
  ) {
    if (config.mode === 'mirror' && config.mirror === null) {
      throw new Error(`module ${config.name}: a mirror module needs its mirror settings`);
    }
    this.moduleVarDir = join(paths.moduleStateDir, config.name);
    this.stateFile = join(this.moduleVarDir, 'state.json');
    this.log = new ModuleLog(join(this.moduleVarDir, 'log', 'module.log'));
    const farmDriver = new FarmDriver(
      {
        maxloop: config.maxloop,
        loopIntervalMs: config.loopIntervalMs,
        scriptsEnabled: config.user !== null,
      },
      nowMs(),
    );
    this.driver = config.farm ? new FarmModuleDriver(farmDriver, config.farm.scriptControl) : farmDriver;
    this.errd = config.errd
      ? new ErrdMonitor(config.errd.watches, {
          pollTimerMs: config.errd.pollTimerMs,
          pidPollMs: pidPollMsDefault,
          onReport: (report) => this.enqueue(() => this.onErrdReport(report)),
          onError: (error) => this.write('C', 'errd', `errd: ${error.message}`),
          ...(existsSync('/run/systemd/system') ? { serviceActive: systemdUnitActive } : {}),
        })
      : null;
    this.checkers = new CheckerScheduler(config.checkers, {
      moduleReady: (spec) => this.moduleReady(spec),
      onModuleRestarted: (spec, detail) =>
        this.enqueue(async () => {
          // The reference: a module checker also stopstarts this module when the watched one
          // restarts or fails over, so a dependent application reconnects to it.
          const view = this.driver.view();
          if (view.state !== 'UP' || view.jobVerb !== null) return;
          this.write('E', 'modulecheck', `Module ${spec.module} restarted (${detail})`);
          this.apply({
            type: 'command',
            verb: 'stopstart',
            identity: 'modulecheck',
            origin: { kind: 'caller', who: 'modulecheck' },
            nowMs: this.nowMs(),
          });
        }),
      // Synchronous on purpose: a checker switched on must read `init` before the next rule evaluation.
      setResource: (resource, value, detail) => this.setResourceValue(resource, value, 'checker', detail),
    });
    this.customCheckers = new CustomCheckers(config.customCheckers, {
      module: config.name,
      binDir: this.binDir(),
      env: this.scriptEnv(),
      setResource: (resource, value, detail) => this.setResourceValue(resource, value, 'checker', detail),
      log: (level, message) => this.write(level, 'checker', message),
      pidFile: join(this.moduleVarDir, 'custom-checkers.pid'),
    });
  }

  /** Set by the registry: how `module` checkers see other modules, here or on other nodes. */
  moduleReady: (spec: ModuleCheckerSpec) => Promise<ProbeResult> = (spec) =>
    Promise.resolve({ up: false, detail: `module ${spec.module} is not known here` });

  /** How many times this module has become Ready; module checkers of others watch it. */
  private readyGeneration = 0;

  get name(): string {
    return this.config.name;
  }

  private binDir(): string {
    return join(this.paths.runtimeModulesDir, this.config.name, 'bin');
  }

  private scriptEnv(): Record<string, string> {
    const runtimeDir = join(this.paths.runtimeModulesDir, this.config.name);
    return {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      LANG: 'C.UTF-8',
      HOME: '/root',
      ...(this.config.user?.vars ?? {}),
      SAFE: this.paths.safe,
      SAFEBIN: this.paths.safeBin,
      SAFEVAR: this.paths.safeVar,
      SAFEMODULE: this.config.name,
      SAFEUSERBIN: join(runtimeDir, 'bin'),
      SAFEUSERCONF: join(runtimeDir, 'conf'),
      SAFEUSERVAR: this.moduleVarDir,
      // Lets `hakit` called from a script find this daemon when paths are moved (tests).
      HAKIT_SAFE: this.paths.safe,
      HAKIT_SAFEVAR: this.paths.safeVar,
      HAKIT_RUN: this.paths.run,
    };
  }

  private write(level: LogLevel, component: string, message: string): void {
    const entry: LogEntry = { timeMs: this.nowMs(), component, level, message };
    this.log.append(entry);
    this.onEvent({ type: 'log', module: this.config.name, timeMs: entry.timeMs, data: entry });
  }

  /** Loads persisted state and recovers to a safe state after a daemon crash; starts at boot. */
  async open(): Promise<void> {
    const loaded: JsonReadResult<PersistedModule> = readJsonFile(this.stateFile, isPersistedModule);
    if (this.config.farm) await this.openFarm(this.config.farm);
    if (this.config.mirror && loaded.kind !== 'ok') await this.openMirror(undefined);
    const bootId = readBootId();
    let wasRunning: ModuleStateName | null = null;
    let newBoot = true;
    if (loaded.kind === 'corrupt') {
      this.write(
        'C',
        'heart',
        `State file ${this.stateFile} unreadable (${loaded.reason}): starting from STOP`,
      );
    } else if (loaded.kind === 'ok') {
      const persisted = loaded.value;
      this.settings = persisted.settings;
      this.customClassesEnabled = persisted.customClassesEnabled;
      if (this.config.mirror) await this.openMirror(persisted.mirror);
      this.driver.restore({ maxloop: persisted.core.maxloop, lastFailure: persisted.core.lastFailure });
      newBoot = persisted.bootId !== bootId;
      if (persisted.core.state !== 'STOP' && !newBoot) wasRunning = persisted.core.state;
    }
    for (const [key, value] of Object.entries(this.settings)) {
      this.resources = setResource(this.resources, `usersetting.${key}`, value, 'hakitd', this.nowMs()).table;
    }
    // Not a toggle: whether the applied module has its encryption key (module genkey, then config).
    const encryption = this.config.encryptionKeySignature === undefined ? 'off' : 'on';
    this.resources = setResource(
      this.resources,
      'usersetting.encryption',
      encryption,
      'hakitd',
      this.nowMs(),
    ).table;
    for (const watchClass of this.customClassesEnabled) this.errd?.setCustomClass(watchClass, true);
    this.errd?.setSuspended(this.settings.errd === 'off');
    this.checkers.setSuspended(this.settings.checker === 'off');
    this.customCheckers.setSuspended(this.settings.checker === 'off');
    this.persist();
    this.ruleTimer = setInterval(
      () => this.enqueue(async () => this.evaluateRulesNow(true)),
      this.config.failover.periodMs,
    );
    this.ruleTimer.unref();
    if (wasRunning !== null) {
      // The daemon died while the module ran: its scripts' processes may be half up. Force a
      // stop to reach a known state, then start again.
      this.write(
        'E',
        'heart',
        `hakitd restarted while the module was ${wasRunning}: stopping it with force, then starting again`,
      );
      this.driver.assumeRunning();
      if (this.mirrorDriver) {
        // The mirror core restarts from STOP with what it persisted. What the dead daemon left
        // running (the VIP, the application) goes first, or a node that starts SECOND would keep
        // answering for the VIP and block the real primary's.
        await this.dropMirrorLeftovers(wasRunning);
        await this.command('start', { kind: 'caller', who: 'hakitd recovery' });
      } else {
        await this.command('stopstart', { kind: 'caller', who: 'hakitd recovery' });
      }
    } else if (newBoot && this.startsAtBoot(loaded)) {
      const delayMs = this.config.bootDelayMs;
      setTimeout(() => {
        if (!this.closed) void this.command('start', { kind: 'caller', who: 'at boot time' });
      }, delayMs).unref();
    }
  }

  /** After a daemon crash: every VIP released, then the forced stop scripts, in the reference's order. */
  private async dropMirrorLeftovers(wasRunning: string): Promise<void> {
    for (const vip of this.vips) {
      try {
        const released = await vip.release();
        if (released.removed)
          this.write('E', 'vip', `Virtual IP ${vip.spec.address} left by the dead daemon: unset`);
      } catch (error) {
        this.write(
          'C',
          'vip',
          `Virtual IP ${vip.spec.address} unset after a crash: ${(error as Error).message}`,
        );
      }
    }
    const user = this.config.user;
    if (user === null) return;
    for (const script of ['stop_sec', 'stop_prim', 'stop_second', 'stop_both']) {
      const request = this.scriptRequest(
        user,
        script,
        ['force', wasRunning, 'STOP', 'stop'],
        user.forcestopTimeoutMs,
      );
      const result = await startScript(request).result.catch((error: unknown) => {
        this.write('C', 'userplug', `Script ${script} could not run: ${(error as Error).message}`);
        return null;
      });
      if (result !== null && !result.missing)
        this.write('S', 'userplug', `Script ${script} (forced, after a crash)`);
    }
  }

  /** boot on (setting or config), or auto when the module was running before the reboot. */
  private startsAtBoot(loaded: JsonReadResult<PersistedModule>): boolean {
    if (this.config.boot === 'off') return false;
    if (this.config.boot === 'on') return true;
    if (this.config.boot === 'auto') return loaded.kind === 'ok' && loaded.value.core.state !== 'STOP';
    return this.settings.boot === 'on';
  }

  private persist(): void {
    const view = this.driver.view();
    const persisted: PersistedModule = {
      version: 1,
      core: {
        state: view.state,
        readiness: view.readiness,
        maxloop: view.maxloop,
        lastFailure: view.lastFailure,
      },
      settings: this.settings,
      customClassesEnabled: this.customClassesEnabled,
      bootId: readBootId(),
      ...(this.mirrorDriver
        ? {
            mirror: {
              persisted: this.mirrorDriver.persisted(),
              incarnation: this.mirrorDriver.mirrorCore.incarnation,
            },
          }
        : {}),
    };
    writeJsonDurably(this.stateFile, persisted);
  }

  /** Serialises every change of the module: events never interleave. */
  private enqueue(work: () => Promise<void>): Promise<void> {
    if (this.queuedEvents >= eventQueueMax) {
      this.write('C', 'heart', `event queue full (${eventQueueMax}): event dropped`);
      return Promise.resolve();
    }
    this.queuedEvents += 1;
    const next = this.queue.then(work).then(
      () => {
        this.queuedEvents -= 1;
      },
      (error: unknown) => {
        this.queuedEvents -= 1;
        this.write(
          'C',
          'heart',
          `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      },
    );
    this.queue = next;
    return next;
  }

  private apply(event: DriverEvent | MirrorEvent): CommandOutcome {
    const result = this.driver.step(event);
    for (const action of result.actions) this.carryOut(action);
    return { accepted: result.accepted, message: result.message };
  }

  private carryOut(action: CoreAction | MirrorExtraAction | FarmTrafficAction): void {
    switch (action.type) {
      case 'log':
        this.write(action.level, action.component, action.message);
        break;
      case 'state':
        if (action.readiness === 'Ready') this.readyGeneration += 1;
        this.resources = setResource(
          this.resources,
          'state.local',
          action.state,
          'heart',
          this.nowMs(),
        ).table;
        this.notify();
        break;
      case 'classes':
        this.setClasses(action.active);
        break;
      case 'persist':
        this.persist();
        break;
      case 'runScript':
        this.launchScript(action.script, action.args, action.stage);
        break;
      case 'killScript':
        this.runningScript?.kill();
        break;
      default:
        if (action.type === 'farmTraffic') this.carryOutFarm(action);
        else this.carryOutMirror(action);
    }
  }

  /** Farm modules: membership link and load-balancing state, running while the daemon runs. */
  private async openFarm(runtime: NonNullable<ModuleRuntimeConfig['farm']>): Promise<void> {
    this.farm = new FarmController(runtime, this.config.name, this.config.id, this.moduleVarDir, {
      log: (level, component, message) => this.write(level, component, message),
      setResource: (resource, value) => this.setResourceValue(resource, value, 'vipd'),
      moduleState: () => {
        const view = this.driver.view();
        return { state: view.state, readiness: view.readiness };
      },
    });
    await this.farm.start();
  }

  /** Traffic opens before the actions that follow it (start_both); closes in the background. */
  private carryOutFarm(action: FarmTrafficAction): void {
    const farm = this.farm;
    const rest = () => {
      for (const next of action.then) this.carryOut(next);
    };
    if (farm === null) {
      rest();
      return;
    }
    if (!action.open && action.leftToScripts === true) {
      if (!farm.isOpen) return;
      this.write(
        'E',
        'vipd',
        'scriptcontrol: the traffic is still open but the module left UP (the stop scripts did not close it with vip traffic close / SETGROUPS none none none): closing it',
      );
    }
    void farm.traffic(action.open).then(() => this.enqueue(async () => rest()));
  }

  /** Mirror start: the automaton with its persisted state, heartbeats, virtual IPs, timers. */
  private async openMirror(
    saved: { persisted: MirrorPersisted; incarnation: number } | undefined,
  ): Promise<void> {
    const mirror = this.config.mirror;
    if (!mirror) return;
    // Incarnations must grow across restarts, even if the wall clock steps back.
    const fresh = newIncarnation(Date.now(), randomInt(1024));
    const incarnation = Math.max(fresh, (saved?.incarnation ?? 0) + 1);
    const settings: MirrorSettings = {
      module: this.config.name,
      node: mirror.localNode,
      peerNode: mirror.peerNode,
      scriptsEnabled: this.config.user !== null,
      replication: mirror.replication,
      defaultPrimary: mirror.defaultPrimary,
      heartbeatTimeoutMs: Math.min(...mirror.lans.map((lan) => lan.timeoutMs)),
      arbitrator: mirror.arbitrator === null ? null : leaseTimingFor(mirror.arbitrator.leaseMs),
      maxloop: this.config.maxloop,
      loopIntervalMs: this.config.loopIntervalMs,
    };
    const failover = this.settings.failover === 'off' || mirror.failover === 'off' ? 'off' : 'on';
    const driver = new MirrorDriver(settings, this.nowMs(), incarnation, saved?.persisted, failover);
    this.mirrorDriver = driver;
    this.driver = driver;
    for (const spec of mirror.vips) {
      this.vips.push(
        new VirtualIp(spec, {
          onError: (error) => this.write('E', 'vip', `Virtual IP ${spec.address}: ${error.message}`),
        }),
      );
    }
    this.link = new MirrorLink(
      {
        clusterId: mirror.clusterId,
        module: this.config.name,
        localNode: mirror.localNode,
        peerNode: mirror.peerNode,
        key: mirror.key,
        lans: mirror.lans,
      },
      incarnation,
      {
        advert: (nowMs) => advertOf(driver.mirrorCore, settings, nowMs),
        onPeer: (view, nowMs) => {
          void this.enqueue(async () => {
            // The witness verdict comes first: a node that reaches none must not fail over.
            const pingedMs = await this.checkSplitBrain(view);
            this.apply({ type: 'peer', view, nowMs: nowMs + pingedMs });
          });
        },
        onLanResource: (resource, value) => this.setResourceValue(resource, value, 'heart'),
        onError: (error) => this.write('I', 'heart', error.message),
      },
      this.nowMs,
    );
    await this.link.start();
    await this.openArbitrator(mirror);
    // No split brain is known at start: a wait rule on a resource still `init` would hold it.
    if (mirror.splitBrain !== null) this.setResourceValue(mirror.splitBrain.resource, 'up', 'splitbrain');
    if (mirror.rfs !== undefined) {
      this.replication = new MirrorReplication(mirror.rfs, {
        feed: (event) =>
          void this.enqueue(async () => {
            this.apply({ ...event, nowMs: this.nowMs() });
          }),
        setResource: (resource, value) => this.setResourceValue(resource, value, 'rfs'),
        log: (level, message) => this.write(level, 'rfs', message),
      });
    }
    // The core's next deadline, as the simulator honours it: computed when the core changes
    // (from the previous check, so a deadline that fell due in between is not skipped) and
    // after each tick, and ticked once it is reached.
    let lastCheckMs = this.nowMs();
    let seenCore: MirrorCore | null = null;
    let dueAtMs: number | null = null;
    this.mirrorTimer = setInterval(() => {
      const nowMs = this.nowMs();
      const core = driver.mirrorCore;
      if (core !== seenCore) {
        seenCore = core;
        dueAtMs = nextDeadlineMs(core, settings, lastCheckMs);
      }
      lastCheckMs = nowMs;
      if (dueAtMs !== null && dueAtMs <= nowMs) {
        dueAtMs = null;
        seenCore = null;
        void this.enqueue(async () => {
          this.apply({ type: 'tick', nowMs: this.nowMs() });
        });
      }
    }, mirrorTickMs);
    this.mirrorTimer.unref();
  }

  /**
   * The reference's <splitbrain> checker (2.6): tested only when every heartbeat is lost. A
   * node that reaches at least one witness goes on (ALONE); one that reaches none waits, by the
   * rule splitbrain_failure, in WAIT (NotReady) until the heartbeats return. Returns how long
   * the pings took (the peer event is applied that much later).
   */
  private async checkSplitBrain(view: MirrorPeerView): Promise<number> {
    const split = this.config.mirror?.splitBrain ?? null;
    if (split === null) return 0;
    if (view.status === 'up') {
      if (this.resources[split.resource]?.value !== 'up') {
        this.setResourceValue(split.resource, 'up', 'splitbrain');
        this.evaluateRulesNow(false);
      }
      return 0;
    }
    if (view.status !== 'unknown') return 0;
    const startedMs = this.nowMs();
    const results = await Promise.all(split.witnesses.map((witness) => pingProbe(witness, splitBrainPingMs)));
    const reached = split.witnesses.filter((_, index) => results[index]?.up === true);
    const up = reached.length > 0;
    this.setResourceValue(
      split.resource,
      up ? 'up' : 'down',
      'splitbrain',
      up ? `witness ${reached.join(', ')} answers` : `no witness answers (${split.witnesses.join(', ')})`,
    );
    const state = this.driver.view().state;
    if (!up && (state === 'PRIM' || state === 'ALONE' || state === 'SECOND')) {
      this.apply({
        type: 'command',
        verb: 'wait',
        identity: 'splitbrain_failure',
        origin: { kind: 'rule', rule: 'splitbrain_failure' },
        nowMs: this.nowMs(),
      });
    }
    this.evaluateRulesNow(false);
    return this.nowMs() - startedMs;
  }

  /**
   * With an arbitrator: the lease link, and the kernel fence that stops the VIPs at the end of
   * authority even if this daemon is frozen. Without one: no fence tables may stay behind.
   */
  private async openArbitrator(mirror: MirrorRuntime): Promise<void> {
    const arbitrator = mirror.arbitrator;
    if (arbitrator === null) {
      await removeFence(this.config.name).catch((error: unknown) =>
        this.write('E', 'heart', `Removing the arbitrator fence: ${(error as Error).message}`),
      );
      return;
    }
    const addresses = mirror.vips.map((vip) => vip.address);
    for (const address of AuthorityFence.unfenced(addresses)) {
      this.write(
        'I',
        'heart',
        `Virtual IP ${address}: IPv6, not fenced by the kernel at the end of authority`,
      );
    }
    this.fence = new AuthorityFence(this.config.name, addresses, this.paths.run, this.nowMs, (error) =>
      this.write('E', 'heart', `Arbitrator fence: ${error.message}`),
    );
    await this.fence.install();
    this.arbitratorClient = new ArbitratorClient(
      { key: mirror.key, clusterId: mirror.clusterId, host: arbitrator.host, port: arbitrator.portUdp },
      {
        onReply: (reply) =>
          void this.enqueue(async () => {
            this.apply({ type: 'lease', reply, nowMs: this.nowMs() });
          }),
        onError: (error) => this.write('I', 'heart', error.message),
      },
    );
    await this.arbitratorClient.start();
    this.write(
      'I',
      'heart',
      `Arbitrator ${arbitrator.host} port ${arbitrator.portUdp}, lease ${arbitrator.leaseMs} ms`,
    );
  }

  private carryOutMirror(action: MirrorExtraAction): void {
    switch (action.type) {
      case 'vip':
        if (action.op === 'unset') void this.fence?.revoke();
        for (const vip of this.vips) void this.moveVip(vip, action.op);
        break;
      case 'sendState':
        this.link?.sendNow();
        break;
      case 'resource':
        this.setResourceValue(action.name, action.value, 'heart');
        break;
      case 'keepAside':
        this.write('C', 'heart', `Data kept aside (${action.reason}); nothing was discarded`);
        this.replication?.keepAside(action.reason);
        break;
      case 'replication':
        this.write('D', 'rfsplug', `Replication role ${action.command.role}`);
        this.replication?.command(action.command);
        break;
      case 'authority':
        void this.fence?.authorize(action.untilMs);
        break;
      case 'leaseRequest':
        this.arbitratorClient?.send(action.request);
        break;
      case 'leaseRelease':
        this.arbitratorClient?.send(action.release);
        break;
    }
  }

  /** Whether the automaton still wants the VIP here (a pending set may have been overtaken). */
  private wantsVip(): boolean {
    return this.mirrorDriver === null || this.mirrorDriver.mirrorCore.vip;
  }

  /** Runs outside the event queue: an ARP probe takes hundreds of ms and must not delay heartbeats. */
  private async moveVip(vip: VirtualIp, op: 'set' | 'unset'): Promise<void> {
    const address = vip.spec.address;
    try {
      if (op === 'set') {
        // The authority must be in the kernel before the gratuitous ARPs leave.
        await this.fence?.settled();
        let result = await vip.acquire();
        // The old primary releases its VIP in the background after it announced its new state,
        // and a restarting daemon drops what it left: wait a bounded time for the address.
        const deadlineMs = this.nowMs() + vipConflictWaitMs;
        if (result.status === 'conflict') {
          this.write(
            'I',
            'vip',
            `Virtual IP ${address} still held by another host: waiting up to ${vipConflictWaitMs} ms`,
          );
        }
        while (result.status === 'conflict' && this.nowMs() < deadlineMs && this.wantsVip()) {
          await new Promise((done) => setTimeout(done, vipConflictRetryMs));
          result = await vip.acquire();
        }
        if (!this.wantsVip()) {
          // Released meanwhile by the automaton (a split brain healed while the other node still
          // held the address): the unset queued behind this removes it if it was added. Not a
          // conflict of this node's: marking ip.<vip> down would make the ip_failure rule restart
          // a node that no longer wants the address (seen in the soak: a SECOND restarted every
          // 15 s until maxloop stopped it).
          if (result.status === 'conflict')
            this.write('I', 'vip', `Virtual IP ${address} no longer wanted here: not set`);
          return;
        }
        if (result.status === 'conflict') {
          this.write('C', 'vip', `Virtual IP ${address} is held by another host: not set`);
          this.setResourceValue(`ip.${address}`, 'down', 'vip', 'conflict');
          return;
        }
        this.write('I', 'vip', `Virtual IP ${address} set`);
        this.setResourceValue(`ip.${address}`, 'up', 'vip');
      } else {
        const result = await vip.release();
        this.write(
          'I',
          'vip',
          `Virtual IP ${address} unset${result.connectionsReset > 0 ? ` (${result.connectionsReset} connections reset)` : ''}`,
        );
        this.setResourceValue(`ip.${address}`, 'init', 'vip');
      }
    } catch (error) {
      this.write('C', 'vip', `Virtual IP ${address} ${op}: ${(error as Error).message}`);
    }
  }

  private setClasses(active: ActivityClass[]): void {
    this.errd?.setActiveClasses(active);
    this.checkers.setActiveClasses(active);
    this.customCheckers.setActiveClasses(active);
  }

  /** What every run of a module script gets: its folder, environment, userlog and limits. */
  private scriptRequest(
    user: NonNullable<ModuleRuntimeConfig['user']>,
    script: string,
    args: string[],
    timeoutMs: number,
  ): ScriptRunRequest {
    return {
      script,
      args,
      binDir: this.binDir(),
      env: this.scriptEnv(),
      timeoutMs,
      userlogDir: user.logging === 'userlog' ? this.moduleVarDir : null,
      userlogBytesMax: user.userlogBytesMax,
    };
  }

  private launchScript(script: string, args: string[], stage: string): void {
    const user = this.config.user;
    if (!user) throw new Error(`script ${script} requested without <user>`);
    const timeoutMs =
      stage === 'stop' ? user.nicestopTimeoutMs : stage === 'force' ? user.forcestopTimeoutMs : 0;
    const request = this.scriptRequest(user, script, args, timeoutMs);
    const running =
      this.replication === null
        ? startScript(request)
        : this.afterReplication(this.replication, request, stage);
    this.runningScript = running;
    running.result.then(
      (result) =>
        this.enqueue(async () => {
          this.runningScript = null;
          if (result.missing) this.write('D', 'userplug', `Script ${script} absent: skipped`);
          this.apply({
            type: 'scriptDone',
            script,
            exitCode: result.missing ? 0 : result.exitCode,
            timedOut: result.timedOut,
            nowMs: this.nowMs(),
          });
        }),
      (error: unknown) =>
        this.enqueue(async () => {
          this.runningScript = null;
          this.write('C', 'userplug', `Script ${script} could not run: ${(error as Error).message}`);
          this.apply({ type: 'scriptDone', script, exitCode: 127, timedOut: false, nowMs: this.nowMs() });
        }),
    );
  }

  /**
   * A script starts once the data path matches the automaton's command: start_prim on the FUSE
   * mount (never on the bare directory), start_second on the read-only one. A start script
   * fails without running when the replication could not be set up.
   */
  private afterReplication(
    replication: MirrorReplication,
    request: ScriptRunRequest,
    stage: string,
  ): RunningScript {
    let inner: RunningScript | null = null;
    let killed = false;
    const result = replication.ready().then((ready): ScriptRunResult | Promise<ScriptRunResult> => {
      const notRun = {
        script: request.script,
        userlogFile: null,
        missing: false,
        timedOut: false,
        durationMs: 0,
      };
      if (killed) return { ...notRun, exitCode: null, signal: 'SIGKILL' };
      if (!ready.ok && stage === 'start') {
        this.write('C', 'rfs', `Script ${request.script} not run: replication not ready (${ready.reason})`);
        return { ...notRun, exitCode: 1, signal: null };
      }
      inner = startScript(request);
      return inner.result;
    });
    return {
      result,
      kill: () => {
        killed = true;
        inner?.kill();
      },
    };
  }

  private setResourceValue(resource: string, value: string, by: string, detail?: string): void {
    const changed = setResource(this.resources, resource, value, by, this.nowMs());
    if (!changed.changed) return;
    this.resources = changed.table;
    this.onEvent({
      type: 'resource',
      module: this.config.name,
      timeMs: this.nowMs(),
      data: { resource, value, setBy: by },
    });
    this.write(
      value === 'down' ? 'E' : 'I',
      by,
      `Resource ${resource} set to ${value} by ${by}${detail ? ` (${detail})` : ''}`,
    );
    this.notify();
    // A module held in WAIT goes on as soon as its wait rules clear, not a whole period later.
    if (this.driver.view().jobVerb !== null && this.driver.view().state === 'WAIT') {
      void this.enqueue(async () => this.evaluateRulesNow(false));
    }
  }

  private async onErrdReport(report: ErrdReport): Promise<void> {
    this.setResourceValue(`proc.${report.name}`, report.up ? 'up' : 'down', 'errd', report.message);
    if (report.up) return;
    this.write('E', 'errd', report.message);
    const action = report.action;
    if (action === 'noaction') return;
    if (action === 'restart' || action === 'stopstart' || action === 'stop') {
      this.apply({
        type: 'command',
        verb: action,
        identity: 'errd',
        origin: { kind: 'caller', who: 'errd' },
        nowMs: this.nowMs(),
      });
      return;
    }
    // A handler executable of the module: it decides; a failure of the handler means stopstart.
    const running = startScript({
      script: action,
      args: [this.config.name, `proc.${report.name}`],
      binDir: this.binDir(),
      env: this.scriptEnv(),
      timeoutMs: this.config.user?.nicestopTimeoutMs ?? 300_000,
      userlogDir: this.config.user?.logging === 'userlog' ? this.moduleVarDir : null,
      userlogBytesMax: this.config.user?.userlogBytesMax ?? 2 * 1024 * 1024,
    });
    const result = await running.result;
    if (result.missing || result.exitCode !== 0) {
      this.write(
        'E',
        'errd',
        `errd handler ${action} failed (${result.missing ? 'missing' : `exit ${result.exitCode}`})`,
      );
      this.apply({
        type: 'command',
        verb: 'stopstart',
        identity: 'errd',
        origin: { kind: 'caller', who: 'errd' },
        nowMs: this.nowMs(),
      });
    }
  }

  private evaluateRulesNow(allowFire: boolean): void {
    const evaluation = evaluateRules(
      this.config.failover.rules,
      this.resources,
      this.ruleState,
      this.nowMs(),
      this.config.failover.handleTimeMs,
    );
    this.ruleState = evaluation.state;
    this.apply({ type: 'waitStatus', wait: evaluation.wait, nowMs: this.nowMs() });
    const fire = evaluation.fire;
    const view = this.driver.view();
    if (!allowFire || fire === null || view.jobVerb !== null) return;
    if (fire.action === 'swap' || fire.action === 'noaction') return;
    // A wait rule true while running stops into WAIT (farm UP, and mirror states: reference M15).
    if (fire.action === 'wait' && !['UP', 'PRIM', 'ALONE', 'SECOND'].includes(view.state)) return;
    if (view.state === 'STOP') return;
    this.apply({
      type: 'command',
      verb: fire.action,
      identity: fire.rule,
      origin: { kind: 'rule', rule: fire.rule },
      nowMs: this.nowMs(),
    });
  }

  /** An admin or script command. `identity` (-i) makes it count toward maxloop. */
  command(
    verb: string,
    origin: Origin,
    identity?: string,
    options?: Record<string, boolean>,
  ): Promise<CommandOutcome> {
    return new Promise((resolve) => {
      void this.enqueue(async () => {
        const event: DriverEvent = { type: 'command', verb, origin, nowMs: this.nowMs() };
        if (options !== undefined) event.options = options;
        if (identity !== undefined) event.identity = identity;
        // The automaton must hold at its wait step on a verdict made now, not on one from before
        // the checkers of the new state were switched on.
        this.evaluateRulesNow(false);
        if (verb === 'start' && this.link !== null && this.driver.view().state === 'STOP') {
          this.apply({ type: 'peer', view: this.link.peerViewForStart(event.nowMs), nowMs: event.nowMs });
        }
        const outcome = this.apply(event);
        if (outcome.accepted && verb === 'start') {
          // A start re-evaluates the wait rules at once instead of a whole period later.
          this.evaluateRulesNow(false);
        }
        resolve(outcome);
      });
    });
  }

  /**
   * `vip traffic open|close` (reference: `SETGROUPS all all all` / `none none none`): the
   * scripts of a farm module with scriptcontrol="on" open and close this node's share.
   */
  async scriptTraffic(open: boolean, by: string): Promise<CommandOutcome> {
    const name = this.config.name;
    const refuse = (message: string): CommandOutcome => ({ accepted: false, message });
    if (this.config.mode !== 'farm')
      return refuse(`${name} is a ${this.config.mode} module: vip traffic is for farm modules`);
    const runtime = this.config.farm ?? null;
    const farm = this.farm;
    if (runtime === null || farm === null)
      return refuse(`${name} has no <farm> lan: it runs on this node only, with no load-balanced traffic`);
    if (!runtime.scriptControl)
      return refuse(
        `${name} has <vip scriptcontrol="off">: the automaton opens the traffic before start_both and closes it after stop_both (set scriptcontrol="on" to let scripts do it)`,
      );
    const view = this.driver.view();
    if (open && view.state !== 'UP')
      return refuse(
        `${name} is ${formatState(view.state, view.readiness)}: the traffic opens only while the module is UP (from start_both on)`,
      );
    if (farm.isOpen === open)
      return { accepted: true, message: `farm traffic already ${open ? 'open' : 'closed'}` };
    this.write('U', 'vipd', `farm traffic ${open ? 'open' : 'close'} asked by ${by} (scriptcontrol)`);
    const done = await farm.traffic(open);
    return done
      ? { accepted: true, message: `farm traffic ${open ? 'opened' : 'closed'}` }
      : refuse(
          `farm traffic ${open ? 'open' : 'close'} failed: see hakit log -m ${name}${open ? '; close it (vip traffic close) before opening again' : ''}`,
        );
  }

  /**
   * A dynamic update (`hakit update`, `hakit config` of a running module): `next` is the module's
   * configuration read again (cluster.xml names resolved again). Only in UP (Ready) or ALONE
   * (Ready); what differs must be dynamic (dynamic-update.ts), else nothing changes. Then the
   * `update` script runs with the reference's arguments (`UP UP`, `ALONE ALONE`), outside the
   * event queue so it can call hakit itself (scriptcontrol: `vip traffic open`).
   */
  async update(next: ModuleRuntimeConfig, by: string): Promise<UpdateOutcome> {
    let refusal: string | null = null;
    let applied: string[] = [];
    let state: ModuleStateName = 'STOP';
    await this.enqueue(async () => {
      const view = this.driver.view();
      state = view.state;
      refusal = updateRefusal(this.config.mode, {
        state: view.state,
        readiness: view.readiness,
        busy: view.jobVerb !== null,
      });
      if (refusal !== null) return;
      const plan = dynamicUpdatePlan(this.config, next);
      if (plan.refused.length > 0) {
        refusal = `changed in the configuration, needs a stop (hakit stop, config, start): ${plan.refused.join('; ')}`;
        return;
      }
      try {
        if (plan.applied.length > 0 && this.farm !== null && next.farm)
          await this.farm.reconfigure(next.farm);
      } catch (error) {
        refusal = `the new load-balancing groups cannot be set: ${(error as Error).message}`;
        return;
      }
      this.config = next;
      applied = plan.applied;
      this.write(
        'U',
        'heart',
        `Dynamic update asked by ${by}: ${applied.length > 0 ? `applied ${applied.join('; ')}` : 'nothing changed in the configuration'}`,
      );
    });
    if (refusal !== null) {
      this.write('E', 'heart', `Dynamic update asked by ${by} refused: ${refusal}`);
      return { accepted: false, applied: false, message: `update refused: ${refusal}` };
    }
    const summary =
      applied.length > 0 ? `updated (${applied.join('; ')})` : 'updated (no configuration change)';
    const user = this.config.user;
    if (user === null) return { accepted: true, applied: true, message: summary };
    const request = this.scriptRequest(user, 'update', [state, state], user.nicestopTimeoutMs);
    const result = await startScript(request).result.catch((error: unknown) => {
      this.write('C', 'userplug', `Script update could not run: ${(error as Error).message}`);
      return null;
    });
    if (result === null)
      return { accepted: false, applied: true, message: `${summary}, but the update script could not run` };
    if (result.missing) {
      this.write('D', 'userplug', 'Script update absent: skipped');
      return { accepted: true, applied: true, message: summary };
    }
    if (result.exitCode !== 0) {
      const how = result.timedOut
        ? `timed out after ${user.nicestopTimeoutMs} ms`
        : `exit ${result.exitCode ?? result.signal}`;
      this.write('E', 'userplug', `Script update ${state} ${state} failed (${how})`);
      return { accepted: false, applied: true, message: `${summary}, but the update script failed (${how})` };
    }
    this.write('S', 'userplug', `Script update ${state} ${state}`);
    return { accepted: true, applied: true, message: `${summary}; update script done` };
  }

  setResourceFromCli(resource: string, value: string, by: string): Promise<void> {
    return this.enqueue(async () => {
      this.setResourceValue(resource, value, by);
    });
  }

  printMessage(level: 'E' | 'I', message: string): void {
    this.write(level, 'user', message);
  }

  async setSetting(key: keyof UserSettings, value: 'on' | 'off'): Promise<void> {
    await this.enqueue(async () => {
      this.settings = { ...this.settings, [key]: value };
      this.setResourceValue(`usersetting.${key}`, value, 'admin');
      if (key === 'errd') this.errd?.setSuspended(value === 'off');
      if (key === 'failover' && this.mirrorDriver)
        this.apply({ type: 'failoverSetting', value, nowMs: this.nowMs() });
      if (key === 'checker') {
        this.checkers.setSuspended(value === 'off');
        this.customCheckers.setSuspended(value === 'off');
      }
      this.persist();
    });
  }

  async setCustomClass(watchClass: string, enabled: boolean): Promise<void> {
    await this.enqueue(async () => {
      this.customClassesEnabled = enabled
        ? [...new Set([...this.customClassesEnabled, watchClass])]
        : this.customClassesEnabled.filter((name) => name !== watchClass);
      this.errd?.setCustomClass(watchClass, enabled);
      this.persist();
    });
  }

  /** `incloop`: exit 1 when the limit is reached. */
  async incloop(identity: string): Promise<boolean> {
    let exceeded = false;
    await this.enqueue(async () => {
      const counted = countAction(this.driver.view().maxloop, this.config, this.nowMs());
      this.driver.setMaxloop(counted.state);
      exceeded = counted.exceeded;
      this.write('I', 'heart', `maxloop counter incremented by ${identity}: ${counted.count}`);
      this.persist();
    });
    return exceeded;
  }

  async resetloop(): Promise<void> {
    await this.enqueue(async () => {
      this.driver.setMaxloop(resetMaxloop(this.nowMs()));
      this.persist();
    });
  }

  checkloop(): boolean {
    return maxloopReached(this.driver.view().maxloop, this.config, this.nowMs());
  }

  status(): ModuleStatus {
    const detail: string[] = [];
    const view = this.driver.view();
    if (view.blockingRule) detail.push(view.blockingRule);
    detail.push(...view.detail);
    if (view.lastFailure) detail.push(view.lastFailure);
    if (view.jobVerb) detail.push(`${view.jobVerb} in progress`);
    if (this.farm) detail.push(...this.farm.detail());
    return {
      module: this.config.name,
      mode: this.config.mode,
      state: view.state,
      readiness: view.readiness,
      busy: view.jobVerb !== null,
      readyGeneration: this.readyGeneration,
      detail,
      resources: {
        ...this.resources,
        ...this.replication?.resources(this.nowMs()),
        'heart.stopstartloop': {
          value: String(Math.floor(view.maxloop.initialisedAtMs / 1000)),
          setBy: 'heart',
          atMs: view.maxloop.initialisedAtMs,
          history: [],
        },
      },
      settings: this.settings,
    };
  }

  /** `rfsverify` / `rfsdiff` (mirror modules with <rfs>). */
  async replicationReport(kind: 'verify' | 'estimate'): Promise<string> {
    if (this.replication === null) throw new Error(`module ${this.config.name} has no <rfs> replication`);
    return kind === 'verify' ? this.replication.verify() : this.replication.estimate();
  }

  logTail(count: number, includeVerbose: boolean): LogEntry[] {
    return this.log.tail(count, includeVerbose);
  }

  describe(): string {
    const view = this.driver.view();
    return `${this.config.name}: ${formatState(view.state, view.readiness)}`;
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    const status = this.status();
    this.onEvent({
      type: 'state',
      module: this.config.name,
      timeMs: this.nowMs(),
      data: { state: status.state, readiness: status.readiness, busy: status.busy, detail: status.detail },
    });
    for (const listener of this.listeners) listener(status);
  }

  /** Stops adapters and timers; the module's processes keep running (daemon restart is not a stop). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.ruleTimer) clearInterval(this.ruleTimer);
    this.errd?.stop();
    this.checkers.stop();
    this.customCheckers.stop();
    if (this.mirrorTimer) clearInterval(this.mirrorTimer);
    await this.link?.stop();
    await this.farm?.stop();
    await this.arbitratorClient?.stop();
    await this.queue;
    await this.replication?.close();
  }
}

export type { CustomCheckerSpec };
