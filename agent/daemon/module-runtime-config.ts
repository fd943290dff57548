// What the supervisor needs to run one module, derived from the module's effective
// configuration (agent/config). Durations are in milliseconds here, whatever the XML said.
import type { ErrdWatchConfig } from '../checkers/errd-monitor.ts';
import type { CheckerSpec } from '../checkers/checker-scheduler.ts';
import type { CustomCheckerSpec } from '../checkers/custom-checkers.ts';
import type { CompiledRule } from '../core/rule-engine.ts';
import type { DefaultPrimary } from '../config/model.ts';
import type { HeartbeatLanEndpoint } from '../heartbeat/endpoints.ts';
import type { VipSpec } from '../net/vip.ts';
import type { FarmRuntime } from './farm-runtime.ts';
import type { ReplicationRuntime } from './mirror-replication.ts';

/** What a mirror module needs beyond the common part: its peer, heartbeats, virtual IPs. */
export interface MirrorRuntime {
  localNode: string;
  peerNode: string;
  clusterId: string;
  key: Buffer;
  lans: HeartbeatLanEndpoint[];
  vips: VipSpec[];
  defaultPrimary: DefaultPrimary;
  failover: 'on' | 'off';
  /**
   * The reference's <splitbrain> checker: when every heartbeat is lost, the witnesses are pinged
   * and a node that reaches none waits (rule splitbrain_failure) instead of going ALONE.
   */
  splitBrain: { resource: string; witnesses: string[] } | null;
  /** cluster.xml's <arbitrator>, or null: without one a split brain can give two primaries. */
  arbitrator: ArbitratorRuntime | null;
  /** <rfs> configured. */
  replication: boolean;
  /** With <rfs>: what the replication data path needs (mirror-replication.ts). */
  rfs?: ReplicationRuntime;
}

export interface ArbitratorRuntime {
  host: string;
  portUdp: number;
  leaseMs: number;
}

export type ModuleMode = 'mirror' | 'farm' | 'light';

export interface UserSection {
  nicestopTimeoutMs: number;
  forcestopTimeoutMs: number;
  logging: 'userlog' | 'none';
  userlogBytesMax: number;
  vars: Record<string, string>;
}

export interface ModuleRuntimeConfig {
  name: string;
  id: number;
  mode: ModuleMode;
  boot: 'on' | 'off' | 'auto' | 'ignore';
  bootDelayMs: number;
  maxloop: number;
  loopIntervalMs: number;
  /** null without <user>: no scripts run. */
  user: UserSection | null;
  errd: { pollTimerMs: number; watches: ErrdWatchConfig[] } | null;
  checkers: CheckerSpec[];
  customCheckers: CustomCheckerSpec[];
  failover: { periodMs: number; handleTimeMs: number; rules: CompiledRule[] };
  mirror: MirrorRuntime | null;
  /** Farm modules with a <farm> lan: membership, load balancing, VIPs (farm-runtime.ts). */
  farm?: FarmRuntime | null;
  /**
   * Module encryption (`conf/modulekey.dat` applied): the key's signature (module-key.ts), so a
   * new key counts as a change; absent: no key, encryption off.
   */
  encryptionKeySignature?: string;
}
