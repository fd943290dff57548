// The console API: the one contract between the renderer and the console services. Types only
// (plus the list of method names, plain data), so the renderer can import it without pulling in
// Node. The same service object answers behind the Electron preload bridge and behind the console
// server's WebSocket; both transports carry `call(method, params)` and push `ConsoleEvent`s.

export type Id = number;

/** A module's state as the agent reports it, plus the console's own "not configured"/"unreachable". */
export type ModuleState = 'STOP' | 'WAIT' | 'ALONE' | 'PRIM' | 'SECOND' | 'UP';
export type Readiness = 'NotReady' | 'Transient' | 'Ready';
export type ModuleKind = 'mirror' | 'farm' | 'light';

export interface SecretsStatus {
  /** `keychain`: the OS keychain; `file`: an encrypted file keyed by the master passphrase. */
  backend: 'keychain' | 'file';
  /** The file backend is locked until the master passphrase is given. */
  locked: boolean;
  /** The file backend has no passphrase yet: the first unlock sets it. */
  initialised: boolean;
  detail: string;
}

export interface ConsoleInfo {
  version: string;
  transport: 'electron' | 'server';
  dataDir: string;
  secrets: SecretsStatus;
  /** Whether "Try it on a local lab" can run here, and why not. */
  lab: { available: boolean; reason: string };
  agentPackage: { file: string | null; version: string | null; reason: string };
  /** SHA-256 fingerprint of the console's CA, null until it issued its first node certificate. */
  caFingerprint: string | null;
}

export interface SiteSummary {
  id: Id;
  name: string;
  notes: string;
  clusterCount: number;
  nodeCount: number;
  updatedMs: number;
}

export type SshAuthInput =
  | { kind: 'password'; password: string }
  | { kind: 'key'; privateKey: string; passphrase?: string }
  /** Keep the secret already stored for this node. */
  | { kind: 'keep' };

export interface NodeView {
  id: Id;
  clusterId: Id;
  name: string;
  /** Address the console reaches the node at (SSH and API). */
  address: string;
  sshPort: number;
  sshUser: string;
  sshAuth: 'password' | 'key';
  /** SHA-256 fingerprint of the pinned SSH host key, null before the first connection. */
  hostKeyFingerprint: string | null;
  apiPort: number;
  /** SHA-256 fingerprint of the pinned node certificate (from `hakit level`). */
  apiFingerprint: string | null;
  hasApiToken: boolean;
  /** The node's API certificate was issued by the console's CA (and the CA is pinned). */
  apiCertificateByCa: boolean;
  agentVersion: string | null;
  installedMs: number | null;
}

export interface NodeInput {
  name: string;
  address: string;
  sshPort: number;
  sshUser: string;
  auth: SshAuthInput;
}

export interface LanView {
  id: Id;
  name: string;
  /** Address of each node on this lan (heartbeats, cluster.xml). */
  addresses: { nodeId: Id; addr: string }[];
}

export interface ModuleSummary {
  id: Id;
  clusterId: Id;
  name: string;
  kind: ModuleKind;
  /** The module id (1..255) used on every node (it fixes ports). */
  moduleId: number;
  template: string;
  updatedMs: number;
  /** Signature of the configuration in the store (files of the module package). */
  signature: string;
  /** What each node was known to run at the last push or pull. */
  deployed: { nodeId: Id; signature: string; atMs: number }[];
}

export interface ModuleFile {
  /** Module-relative path, e.g. `bin/start_prim`. */
  path: string;
  text: string;
  executable: boolean;
}

export interface ModuleDetail extends ModuleSummary {
  userconfig: string;
  files: ModuleFile[];
}

export interface ClusterView {
  id: Id;
  siteId: Id;
  name: string;
  nodes: NodeView[];
  lans: LanView[];
  modules: ModuleSummary[];
}

export interface SiteView {
  site: SiteSummary;
  clusters: ClusterView[];
}

/** A validator problem, located for an editor. */
export interface Diagnostic {
  severity: 'error' | 'warning' | 'info';
  message: string;
  hint: string | null;
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface TemplateParameter {
  name: string;
  label: string;
  defaultValue: string;
  help: string;
}

export interface TemplateInfo {
  name: string;
  kind: ModuleKind;
  title: string;
  description: string;
  parameters: TemplateParameter[];
}

export type InstallStep =
  'connect' | 'detect' | 'upload' | 'verify' | 'install' | 'configure' | 'pin' | 'check';
export const installSteps: readonly InstallStep[] = [
  'connect',
  'detect',
  'upload',
  'verify',
  'install',
  'configure',
  'pin',
  'check',
];

export interface InstallNodeReport {
  nodeId: Id;
  node: string;
  ok: boolean;
  /** The step that failed, when one did. */
  failedStep: InstallStep | null;
  error: string | null;
  version: string | null;
  seconds: number;
  /** Whether a partial install was undone. */
  rolledBack: boolean;
  /** What was found on the node: OS, architecture, init system. */
  detected: string | null;
}

export interface InstallRun {
  id: Id;
  clusterId: Id;
  startedMs: number;
  finishedMs: number | null;
  ok: boolean | null;
  nodes: InstallNodeReport[];
}

export interface LiveCell {
  nodeId: Id;
  module: string;
  /** null: the module is not configured on that node (grey). */
  state: ModuleState | null;
  readiness: Readiness | null;
  /** Badges beside the state: `uptodate`, `not uptodate`, `degraded`, a rule that fired, a share. */
  badges: string[];
  atMs: number;
}

export interface LiveNode {
  nodeId: Id;
  node: string;
  status: 'connecting' | 'connected' | 'unreachable' | 'not installed';
  detail: string;
  agentVersion: string | null;
  /** Clock difference node - console from the HTTP Date header, ms (rounded to the second). */
  clockSkewMs: number | null;
  atMs: number;
}

export interface LiveMatrix {
  clusterId: Id;
  nodes: LiveNode[];
  modules: string[];
  cells: LiveCell[];
}

export type ActionName =
  | 'start'
  | 'stop'
  | 'restart'
  | 'stopstart'
  | 'swap'
  | 'prim'
  | 'second'
  | 'primforce'
  | 'failover-on'
  | 'failover-off'
  | 'boot-on'
  | 'boot-off';

export const actionNames: readonly ActionName[] = [
  'start',
  'stop',
  'restart',
  'stopstart',
  'swap',
  'prim',
  'second',
  'primforce',
  'failover-on',
  'failover-off',
  'boot-on',
  'boot-off',
];

export interface ActionRequest {
  clusterId: Id;
  module: string;
  action: ActionName;
  nodeIds: Id[];
}

export interface ActionPlan {
  /** Empty when the action carries no particular risk. */
  risks: string[];
  /** Same effect from a shell. */
  cli: string[];
  /** The order the nodes are acted on (stop: secondaries first). */
  nodeOrder: Id[];
}

export interface Task {
  id: Id;
  title: string;
  cli: string[];
  status: 'running' | 'done' | 'failed';
  /** 0..1 */
  progress: number;
  result: string;
  startedMs: number;
  finishedMs: number | null;
}

export interface LogEntryView {
  node: string;
  timeMs: number;
  level: string;
  component: string;
  message: string;
}

export interface DeployNodeResult {
  nodeId: Id;
  node: string;
  /** `refused`: the agent's pre-flight found a blocking problem; nothing was sent to any node. */
  outcome: 'deployed' | 'unchanged' | 'conflict' | 'failed' | 'refused';
  detail: string;
}

export interface PullResult {
  nodeId: Id;
  signature: string;
  changed: boolean;
}

export interface ModuleDiff {
  nodeId: Id;
  node: string;
  /** null when the module is not on the node. */
  deployedSignature: string | null;
  lines: { kind: 'same' | 'added' | 'removed'; text: string }[];
  filesChanged: string[];
}

export interface PreflightCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** One node's answer to the agent's pre-flight (`GET /api/v1/preflight`) for a module. */
export interface NodePreflight {
  nodeId: Id;
  node: string;
  /** No blocking problem on this node (warnings allowed). */
  ok: boolean;
  checks: (PreflightCheck & {
    severity: 'error' | 'warning';
    /** Facts the console compares between nodes (an interface's MAC, a VIP holder's MAC). */
    facts?: Record<string, string | number>;
  })[];
}

export interface ModulePreflight {
  module: string;
  ok: boolean;
  nodes: NodePreflight[];
  /** Comparisons between nodes: the same owner of each replicated directory, who holds each VIP. */
  across: PreflightCheck[];
  atMs: number;
}

/** One path of the cluster pre-flight: from one node to another on one lan, all ports together. */
export interface ClusterPathCheck {
  from: string;
  to: string;
  lan: string;
  /** The address of `to` on that lan. */
  addr: string;
  ok: boolean;
  /** Only warnings (a silent UDP port): reported, does not block. */
  warning: boolean;
  /** `ok`, or what failed (the first blocking probe's reason). */
  detail: string;
  probes: {
    protocol: 'tcp' | 'udp';
    port: number;
    what: string;
    ok: boolean;
    severity: 'error' | 'warning';
    detail: string;
  }[];
}

/** One node's part of the cluster pre-flight (`POST /api/v1/preflight/cluster` on its agent). */
export interface ClusterPreflightNode {
  nodeId: Id;
  node: string;
  /** The agent ran the checks (false: `error` says why). */
  answered: boolean;
  error: string | null;
  /** `Debian GNU/Linux 12 (bookworm)`, or null. */
  os: string | null;
  /** os-release ID then ID_LIKE: two nodes are of one family when these meet. */
  osFamily: string[];
  arch: string | null;
  /** The node's clock minus the console's (includes the request's transit), or null. */
  clockSkewMs: number | null;
  /** This node's own address on each lan is one of its interfaces. */
  selfAddresses: { lan: string; addr: string; ok: boolean; detail: string }[];
}

export interface ClusterPreflight {
  /** No blocking problem: the push may go ahead. */
  ok: boolean;
  lans: string[];
  nodes: ClusterPreflightNode[];
  /** Every (node, peer, lan), in node order. */
  paths: ClusterPathCheck[];
  /** The verdicts: reachability, clock skew, OS family, own addresses, agents answering. */
  checks: PreflightCheck[];
  atMs: number;
}

/** One script run's log (userlog) on a node. */
export interface ScriptLogInfo {
  nodeId: Id;
  node: string;
  name: string;
  script: string;
  startedMs: number | null;
  bytes: number;
  modifiedMs: number;
}

export interface ScriptLogText {
  nodeId: Id;
  node: string;
  name: string;
  bytes: number;
  /** Only the end of a long log is sent. */
  truncated: boolean;
  text: string;
}

export interface ClusterPushResult {
  nodeId: Id;
  node: string;
  ok: boolean;
  detail: string;
  signature: string | null;
}

export interface SnapshotInfo {
  id: Id;
  clusterId: Id;
  module: string;
  file: string;
  createdMs: number;
  bytes: number;
  nodes: string[];
}

export interface SnapshotContent {
  module: string;
  nodes: string[];
  entries: LogEntryView[];
  files: string[];
}

export interface AuditEntry {
  id: Id;
  atMs: number;
  action: string;
  target: string;
  cli: string;
  result: string;
}

export interface LabStep {
  step: string;
  status: 'running' | 'done' | 'failed';
  detail: string;
}

export type ConsoleEvent =
  | { type: 'live'; clusterId: Id; nodes: LiveNode[]; cells: LiveCell[]; modules: string[] }
  | {
      type: 'install';
      runId: Id;
      nodeId: Id;
      node: string;
      step: InstallStep;
      status: 'running' | 'done' | 'failed';
      /** 0..1 within the step (upload bytes). */
      progress: number;
      message: string;
    }
  | { type: 'installDone'; run: InstallRun }
  | { type: 'task'; task: Task }
  | { type: 'log'; clusterId: Id; module: string; entries: LogEntryView[] }
  | { type: 'snapshot'; clusterId: Id; module: string; node: string; status: string; progress: number }
  | { type: 'lab'; step: LabStep }
  | { type: 'site'; siteId: Id };

/** Every console call: one object in, one promise out. */
export interface ConsoleApi {
  consoleInfo(params: Record<string, never>): Promise<ConsoleInfo>;
  unlockSecrets(params: { passphrase: string }): Promise<SecretsStatus>;

  listSites(params: Record<string, never>): Promise<SiteSummary[]>;
  createSite(params: { name: string; notes: string }): Promise<SiteSummary>;
  deleteSite(params: { siteId: Id }): Promise<void>;
  getSite(params: { siteId: Id }): Promise<SiteView>;
  exportSite(params: { siteId: Id }): Promise<{ fileName: string; content: string }>;
  importSite(params: { content: string; newName?: string }): Promise<SiteSummary>;

  createCluster(params: { siteId: Id; name: string }): Promise<ClusterView>;
  deleteCluster(params: { clusterId: Id }): Promise<void>;
  getCluster(params: { clusterId: Id }): Promise<ClusterView>;
  addNode(params: { clusterId: Id; node: NodeInput }): Promise<NodeView>;
  updateNode(params: { nodeId: Id; node: NodeInput }): Promise<NodeView>;
  removeNode(params: { nodeId: Id }): Promise<void>;
  forgetHostKey(params: { nodeId: Id }): Promise<NodeView>;
  setLan(params: {
    clusterId: Id;
    name: string;
    addresses: { nodeId: Id; addr: string }[];
  }): Promise<LanView>;
  removeLan(params: { lanId: Id }): Promise<void>;
  clusterXml(params: { clusterId: Id }): Promise<{ xml: string; diagnostics: Diagnostic[] }>;
  /**
   * Runs the cluster pre-flight on every node first and refuses (every result `ok: false`,
   * nothing pushed) when it finds a blocking problem, unless `skipPreflight`.
   */
  pushCluster(params: { clusterId: Id; skipPreflight?: boolean }): Promise<ClusterPushResult[]>;
  preflight(params: { clusterId: Id }): Promise<PreflightCheck[]>;
  /** The agents' cluster pre-flight: every node probes every other on every lan and port. */
  clusterPreflight(params: { clusterId: Id }): Promise<ClusterPreflight>;

  installNodes(params: {
    clusterId: Id;
    nodeIds: Id[];
    /** Link /usr/local/bin/hakit (default true; lab nodes share /usr/local/bin with the host). */
    pathLink?: boolean;
  }): Promise<InstallRun>;
  installRuns(params: { clusterId: Id }): Promise<InstallRun[]>;

  listTemplates(params: Record<string, never>): Promise<TemplateInfo[]>;
  createModule(params: {
    clusterId: Id;
    name: string;
    template: string;
    values: Record<string, string>;
  }): Promise<ModuleDetail>;
  getModule(params: { moduleDbId: Id }): Promise<ModuleDetail>;
  saveModule(params: { moduleDbId: Id; userconfig: string; files: ModuleFile[] }): Promise<ModuleDetail>;
  deleteModule(params: { moduleDbId: Id }): Promise<void>;
  validateModule(params: {
    clusterId: Id;
    name: string;
    userconfig: string;
    files: ModuleFile[];
  }): Promise<Diagnostic[]>;
  diffModule(params: { moduleDbId: Id }): Promise<ModuleDiff[]>;
  pullModule(params: { moduleDbId: Id; nodeId: Id }): Promise<PullResult>;
  /** The agents' pre-flight checks for this module on every installed node. */
  modulePreflight(params: { moduleDbId: Id }): Promise<ModulePreflight>;
  /** Runs the agents' pre-flight first (skipPreflight to deploy anyway). */
  deployModule(params: {
    moduleDbId: Id;
    force: boolean;
    skipPreflight?: boolean;
  }): Promise<DeployNodeResult[]>;

  watchCluster(params: { clusterId: Id }): Promise<LiveMatrix>;
  unwatchCluster(params: { clusterId: Id }): Promise<void>;
  planAction(params: ActionRequest): Promise<ActionPlan>;
  runAction(params: ActionRequest): Promise<Task>;
  listTasks(params: Record<string, never>): Promise<Task[]>;
  moduleLog(params: {
    clusterId: Id;
    module: string;
    nodeIds: Id[];
    lines: number;
    verbose: boolean;
  }): Promise<LogEntryView[]>;
  followLog(params: { clusterId: Id; module: string; follow: boolean }): Promise<void>;
  /** The script runs' logs of a module on the installed nodes (or the ones given), newest first. */
  scriptLogs(params: {
    clusterId: Id;
    module: string;
    nodeIds: Id[];
  }): Promise<{ files: ScriptLogInfo[]; errors: string[] }>;
  scriptLog(params: { clusterId: Id; module: string; nodeId: Id; name: string }): Promise<ScriptLogText>;

  gatherSnapshot(params: { clusterId: Id; module: string }): Promise<SnapshotInfo>;
  listSnapshots(params: { clusterId: Id }): Promise<SnapshotInfo[]>;
  openSnapshot(
    params: { snapshotId: Id } | { fileName: string; contentBase64: string },
  ): Promise<SnapshotContent>;

  auditLog(params: { limit: number }): Promise<AuditEntry[]>;
  tryLocalLab(params: Record<string, never>): Promise<{ siteId: Id; clusterId: Id }>;
}

export type MethodName = keyof ConsoleApi;
export type ParamsOf<M extends MethodName> = Parameters<ConsoleApi[M]>[0];
export type ResultOf<M extends MethodName> = Awaited<ReturnType<ConsoleApi[M]>>;

/** Every method, for the transports' allow-lists. The type below fails to compile if one is missing. */
export const methodNames = [
  'consoleInfo',
  'unlockSecrets',
  'listSites',
  'createSite',
  'deleteSite',
  'getSite',
  'exportSite',
  'importSite',
  'createCluster',
  'deleteCluster',
  'getCluster',
  'addNode',
  'updateNode',
  'removeNode',
  'forgetHostKey',
  'setLan',
  'removeLan',
  'clusterXml',
  'pushCluster',
  'preflight',
  'clusterPreflight',
  'installNodes',
  'installRuns',
  'listTemplates',
  'createModule',
  'getModule',
  'saveModule',
  'deleteModule',
  'validateModule',
  'diffModule',
  'pullModule',
  'modulePreflight',
  'deployModule',
  'watchCluster',
  'unwatchCluster',
  'planAction',
  'runAction',
  'listTasks',
  'moduleLog',
  'followLog',
  'scriptLogs',
  'scriptLog',
  'gatherSnapshot',
  'listSnapshots',
  'openSnapshot',
  'auditLog',
  'tryLocalLab',
] as const satisfies readonly MethodName[];

type MissingMethods = Exclude<MethodName, (typeof methodNames)[number]>;
/** Compile-time check: `true` only when methodNames lists every method. */
export const methodNamesComplete: MissingMethods extends never ? true : never = true;

/** An error a call returns to the renderer: what failed and where, never a stack or a secret. */
export interface ConsoleErrorShape {
  message: string;
  code: string;
}

/** The message shapes of the WebSocket transport (and of the preload bridge, minus ids). */
export type ClientMessage = { id: number; method: string; params: unknown };
export type ServerMessage =
  { id: number; result: unknown } | { id: number; error: ConsoleErrorShape } | { event: ConsoleEvent };

/** What the Electron preload exposes as `window.hakit`, and what the browser client implements. */
export interface ConsoleBridge {
  call(method: string, params: unknown): Promise<unknown>;
  onEvent(listener: (event: ConsoleEvent) => void): () => void;
}
