// The typed, effective module configuration: macros expanded, defaults filled, every duration an
// integer in the unit its name carries. This is what the agent runs and the console shows (the
// reference's safeconf.xml). When the problems of a load contain errors the model is best effort
// (invalid values fall back to defaults or empty strings) and must not be applied.
import type { ModuleMode } from './schema.ts';

export type { ModuleMode } from './schema.ts';

export type OnOff = 'on' | 'off';

/** Where an item is written, for problems found after the schema walk. */
export interface SourceRef {
  readonly line: number;
  readonly column: number;
  readonly path: string;
  /** Offsets of the element name and of each attribute value, for precise problem spans. */
  readonly start: number;
  readonly end: number;
  readonly attributes: Readonly<Record<string, { readonly start: number; readonly end: number }>>;
}

export interface MacroValue {
  readonly name: string;
  readonly value: string;
}

export type DefaultPrimary =
  | { readonly kind: 'alone' }
  | { readonly kind: 'lastprim' }
  | { readonly kind: 'node'; readonly node: string };

export interface ServiceSettings {
  readonly boot: 'on' | 'off' | 'auto' | 'ignore';
  readonly bootDelaySec: number;
  readonly failover: OnOff;
  readonly defaultPrimary: DefaultPrimary;
  readonly maxloop: number;
  /** 0 disables the maxloop counter. */
  readonly loopIntervalHours: number;
  readonly automaticReboot: OnOff;
}

export interface Heartbeat {
  /** A `<lan name>` of cluster.xml. */
  readonly lan: string;
  /** Resource `heartbeat.<ident>`; `flow` also carries replication. */
  readonly ident: string;
  readonly pulseMs: number;
  readonly timeoutMs: number;
  readonly source: SourceRef;
}

export interface HeartSettings {
  /** Undefined: derived from the module id (8888 + id - 1). */
  readonly portUdp: number | undefined;
  readonly pulseMs: number;
  readonly timeoutMs: number;
  readonly permanentArp: OnOff;
  readonly heartbeats: readonly Heartbeat[];
  readonly source: SourceRef;
}

export interface FarmLan {
  readonly name: string;
  readonly source: SourceRef;
}

export interface FarmSettings {
  /** Undefined: derived from the module id (4803 + (id - 1) * 3). */
  readonly portUdp: number | undefined;
  readonly pulseMs: number;
  readonly mlostCount: number;
  readonly slostCount: number;
  readonly lans: readonly FarmLan[];
  readonly source: SourceRef;
}

export type VirtualAddressPlacement = 'one_side_alias' | 'one_side' | 'alias';

export interface VirtualAddress {
  readonly addr: string;
  readonly where: VirtualAddressPlacement;
  readonly check: OnOff;
  readonly connections: OnOff;
  readonly netmask: string | undefined;
  readonly source: SourceRef;
}

export interface VirtualInterface {
  readonly type: 'vmac_directed' | 'vmac_invisible';
  readonly mac: string | undefined;
  readonly addresses: readonly VirtualAddress[];
  readonly source: SourceRef;
}

export interface VipInterface {
  readonly name: string | undefined;
  readonly check: OnOff;
  readonly arpreroute: OnOff;
  readonly arpintervalSec: number;
  readonly arpelapseSec: number;
  /** `<real_interface>` addresses (mirror). */
  readonly realAddresses: readonly VirtualAddress[];
  readonly virtualInterfaces: readonly VirtualInterface[];
  readonly source: SourceRef;
}

export interface LoadBalancingHost {
  readonly node: string;
  readonly power: number;
  readonly source: SourceRef;
}

export interface LoadBalancingRule {
  /** `*` or an address. */
  readonly virtualAddr: string;
  /** `*` or a port. */
  readonly port: number | '*';
  readonly proto: 'tcp' | 'udp' | 'arp';
  readonly filter: 'on_addr' | 'on_port' | 'on_ipid';
  readonly source: SourceRef;
}

export interface LoadBalancingGroup {
  readonly name: string;
  readonly hosts: readonly LoadBalancingHost[];
  readonly rules: readonly LoadBalancingRule[];
  readonly source: SourceRef;
}

export interface VipSettings {
  readonly tcpreset: OnOff;
  readonly scriptcontrol: OnOff;
  readonly interfaces: readonly VipInterface[];
  readonly groups: readonly LoadBalancingGroup[];
  readonly source: SourceRef;
}

export type NotReplicated =
  | { readonly kind: 'path'; readonly path: string; readonly source: SourceRef }
  | {
      readonly kind: 'regexpath';
      readonly regex: string;
      readonly negated: boolean;
      readonly source: SourceRef;
    };

export interface ReplicatedDir {
  readonly dir: string;
  readonly readOnly: boolean;
  readonly notReplicated: readonly NotReplicated[];
  readonly toCheck: readonly { readonly path: string; readonly source: SourceRef }[];
  readonly source: SourceRef;
}

export interface RfsSettings {
  readonly acl: OnOff;
  readonly async: 'second' | 'none';
  readonly locktimeoutSec: number;
  readonly sendtimeoutSec: number;
  readonly iotimeoutSec: number;
  readonly roflags: number;
  readonly nbrei: number;
  readonly reitimeoutSec: number;
  readonly reidetail: OnOff;
  readonly reicommit: number;
  /** Undefined: the NFS server default. */
  readonly packetsizeBytes: number | undefined;
  readonly reipacketsizeBytes: number;
  readonly ruzoneBlocksizeBytes: number;
  readonly namespacepolicy: number;
  readonly allocthresholdGb: number;
  readonly nbremconn: number;
  readonly checktimeMs: number;
  readonly checkintvSec: number;
  readonly nfsboxOptions: string;
  readonly scripts: OnOff;
  readonly reiallowedbwKBps: number | undefined;
  /** 0: disabled. */
  readonly syncdeltaMin: number;
  readonly syncat: string | undefined;
  readonly mountoversuffix: string;
  /** Legacy attribute, kept so nothing is lost; it has no effect. */
  readonly mountover: OnOff | undefined;
  /** Legacy `<flow name>`: the replication lan. */
  readonly flowLan: string | undefined;
  readonly replicated: readonly ReplicatedDir[];
  readonly source: SourceRef;
}

export interface ScriptVariable {
  readonly name: string;
  readonly value: string;
  readonly source: SourceRef;
}

export interface UserSettings {
  readonly nicestoptimeoutSec: number;
  readonly forcestoptimeoutSec: number;
  readonly logging: 'userlog' | 'none';
  readonly userlogsizeKB: number;
  readonly vars: readonly ScriptVariable[];
  readonly source: SourceRef;
}

export interface VirtualHostname {
  readonly name: string;
  readonly envfile: string;
  readonly when: 'prim' | 'second' | 'both';
  readonly source: SourceRef;
}

export interface ProcessMonitor {
  readonly name: string;
  readonly service: boolean;
  readonly nameregex: string | undefined;
  readonly argregex: string | undefined;
  readonly atleast: number;
  /** -1: unused. */
  readonly atmax: number;
  /** restart, stopstart, stop, noaction, or a handler in bin/. */
  readonly action: string;
  readonly class: string;
  readonly startAfter: number | undefined;
  readonly restartServices: readonly string[];
  /** `proc.<name>` */
  readonly resource: string;
  readonly source: SourceRef;
}

export interface ErrdSettings {
  readonly polltimerSec: number;
  readonly processes: readonly ProcessMonitor[];
  readonly source: SourceRef;
}

export type CheckerWhen = 'prim' | 'second' | 'both' | 'pre';
export type CheckerAction = 'restart' | 'stopstart' | 'stop' | 'wait' | 'noaction';

interface CheckerBase {
  readonly ident: string;
  /** `<tag>.<ident>` */
  readonly resource: string;
  /** Made from `<interface check>` / `<virtual_addr check>` rather than written in `<check>`. */
  readonly generated: boolean;
  readonly source: SourceRef;
}

export interface TcpChecker extends CheckerBase {
  readonly type: 'tcp';
  readonly when: CheckerWhen;
  readonly action: CheckerAction;
  readonly targets: readonly { addr: string; port: number; intervalSec: number; timeoutSec: number }[];
}

export interface PingChecker extends CheckerBase {
  readonly type: 'ping';
  readonly when: CheckerWhen;
  readonly action: CheckerAction;
  readonly targets: readonly { addr: string; intervalSec: number; timeoutSec: number }[];
}

export interface InterfaceChecker extends CheckerBase {
  readonly type: 'intf';
  readonly when: CheckerWhen;
  readonly localAddrs: readonly string[];
}

export interface IpChecker extends CheckerBase {
  readonly type: 'ip';
  readonly when: 'prim' | 'both';
  readonly targets: readonly { addr: string; intervalSec: number }[];
}

export interface CustomChecker extends CheckerBase {
  readonly type: 'custom';
  readonly when: CheckerWhen;
  readonly exec: string;
  readonly arg: string | undefined;
  readonly action: CheckerAction;
}

export interface ModuleChecker extends CheckerBase {
  readonly type: 'module';
  readonly module: string;
  /** addr undefined: this node. */
  readonly targets: readonly {
    addr: string | undefined;
    port: number;
    intervalSec: number;
    timeoutSec: number;
    secure: OnOff;
  }[];
}

export interface SplitBrainChecker extends CheckerBase {
  readonly type: 'splitbrain';
  readonly witnesses: readonly string[];
}

/** Checkers that probe a target on their own (the others run a program or watch a module). */
export type ProbeChecker = TcpChecker | PingChecker | InterfaceChecker | IpChecker;

export type Checker = ProbeChecker | CustomChecker | ModuleChecker | SplitBrainChecker;

export type CheckerType = Checker['type'];

export const checkerTypes: readonly CheckerType[] = [
  'tcp',
  'ping',
  'intf',
  'ip',
  'custom',
  'module',
  'splitbrain',
];

// Failover rules, legacy grammar (reference §4.12).

export type ResourceScope = 'local' | 'remote';

export interface ResourceRef {
  readonly kind: 'resource';
  readonly scope: ResourceScope | undefined;
  readonly class: string;
  /** A name, or `*` (every resource of the class) or `?` (any one). */
  readonly name: string;
  readonly start: number;
  readonly end: number;
}

export type RuleExpression =
  | { readonly kind: 'or' | 'and'; readonly left: RuleExpression; readonly right: RuleExpression }
  | { readonly kind: 'not'; readonly operand: RuleExpression }
  | {
      readonly kind: 'compare';
      readonly op: '==' | '!=';
      readonly left: RuleExpression;
      readonly right: RuleExpression;
    }
  | ResourceRef
  | { readonly kind: 'state'; readonly value: 'init' | 'down' | 'up' | 'unknown' }
  | { readonly kind: 'call'; readonly name: string }
  | { readonly kind: 'word'; readonly value: string };

export type RuleAction =
  | { readonly kind: 'command'; readonly command: 'stop' | 'stopstart' | 'wait' | 'restart' | 'swap' }
  | { readonly kind: 'assign'; readonly resource: ResourceRef; readonly value: string };

export interface FailoverRule {
  readonly label: string;
  readonly condition: RuleExpression;
  readonly action: RuleAction;
  readonly line: number;
  readonly column: number;
}

export interface LuaBlock {
  readonly text: string;
  readonly line: number;
  readonly column: number;
}

export interface FailoverSettings {
  readonly extends: boolean;
  readonly periodMs: number;
  readonly handleTimeMs: number;
  readonly rules: readonly FailoverRule[];
  /** Kept verbatim; not run by hakit (reported as an error). */
  readonly luaBlocks: readonly LuaBlock[];
  readonly source: SourceRef;
}

export interface ModuleConfig {
  readonly mode: ModuleMode;
  readonly macros: readonly MacroValue[];
  readonly service: ServiceSettings;
  readonly heart: HeartSettings | undefined;
  readonly farm: FarmSettings | undefined;
  readonly vip: VipSettings | undefined;
  readonly rfs: RfsSettings | undefined;
  /** Undefined: no `<user>`, so no script runs. */
  readonly user: UserSettings | undefined;
  readonly vhosts: readonly VirtualHostname[];
  readonly errd: ErrdSettings | undefined;
  /** Written checkers plus the ones generated by `<vip>` (ip checkers). */
  readonly checkers: readonly Checker[];
  readonly failover: FailoverSettings | undefined;
}

// cluster.xml

export interface NodeAddress {
  /** As written, with brackets for IPv6. */
  readonly raw: string;
  readonly kind: 'ipv4' | 'ipv6' | 'dns';
  /** Without brackets. */
  readonly host: string;
}

export interface LanNode {
  readonly name: string;
  readonly addr: NodeAddress;
  readonly laddr: NodeAddress | undefined;
  readonly source: SourceRef;
}

export interface ClusterLan {
  readonly name: string;
  /** Explicit `command` attribute, if any. */
  readonly command: OnOff | undefined;
  readonly nodes: readonly LanNode[];
  readonly source: SourceRef;
}

export interface ClusterConfig {
  readonly portUdp: number;
  readonly pulseMs: number;
  readonly mlostCount: number;
  readonly slostCount: number;
  readonly lans: readonly ClusterLan[];
  /** Every node name, in order of first appearance. */
  readonly nodes: readonly string[];
  /** The lan for distributed commands: the one with command="on", else the first. */
  readonly commandLan: string | undefined;
  /** hakit extension: the lease arbitrator of the mirror modules, if any. */
  readonly arbitrator?: ClusterArbitrator;
}

export interface ClusterArbitrator {
  readonly addr: NodeAddress;
  readonly portUdp: number;
  readonly leaseMs: number;
  readonly source: SourceRef;
}
