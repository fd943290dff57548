// What the supervisor needs to run one module, derived from the module's effective
// configuration (agent/config). Durations are in milliseconds here, whatever the XML said.
import type { ErrdWatchConfig } from '../checkers/errd-monitor.ts';
import type { CheckerSpec } from '../checkers/checker-scheduler.ts';
import type { CustomCheckerSpec } from '../checkers/custom-checkers.ts';
import type { CompiledRule } from '../core/rule-engine.ts';
import type { DefaultPrimary } from '../config/model.ts';
import type { HeartbeatLanEndpoint } from '../heartbeat/endpoints.ts';
import type { VipSpec } from '../net/vip.ts';

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
  /** <rfs> configured. */
  replication: boolean;
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
}
