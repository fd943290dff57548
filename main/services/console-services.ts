// The console services behind the console API: one object, the same one the Electron preload
// bridge and the console server's WebSocket call. It owns the store, the secrets, the installer,
// the live state, the tasks; every method validates what it is given, says what failed and where,
// and records user actions in the audit log.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafeBuffer, writeSafeBuffer } from '../../agent/config/package-io.ts';
import type {
  ActionRequest,
  AuditEntry,
  ClusterPreflight,
  ClusterPushResult,
  ClusterView,
  ConsoleApi,
  ConsoleEvent,
  ConsoleInfo,
  DeployNodeResult,
  Diagnostic,
  Id,
  InstallNodeReport,
  InstallRun,
  LanView,
  LiveMatrix,
  LogEntryView,
  ModuleDetail,
  ModuleDiff,
  ModuleFile,
  ModulePreflight,
  NodePreflight,
  NodeInput,
  NodeView,
  PreflightCheck,
  PullResult,
  ScriptLogInfo,
  ScriptLogText,
  SecretsStatus,
  SiteSummary,
  SiteView,
  SnapshotContent,
  SnapshotInfo,
  Task,
  TemplateInfo,
} from '../api/contract.ts';
import { actionNames } from '../api/contract.ts';
import { planAction, type PlanNode } from './actions/action-plan.ts';
import { clockSkewOf } from './agents/event-stream.ts';
import { type CaMaterial, caFingerprint, createCa, issueNodeCertificate } from './agents/console-ca.ts';
import { type AgentEndpoint, agentJson, agentRequest, parseAgentAnswer } from './agents/pinned-https.ts';
import { badInput, ConsoleError, errorMessage, notFound } from './errors.ts';
import { type AgentPackage, checkAgentPackage, findAgentPackage } from './installer/agent-package.ts';
import {
  boundedParallel,
  installConcurrencyMax,
  installNode,
  type InstallTarget,
  newApiToken,
  newPassword,
} from './installer/installer.ts';
import type { RemoteAuth, RemoteTransport } from './installer/transport.ts';
import { LocalLab } from './lab/local-lab.ts';
import { LiveService } from './live/live-service.ts';
import {
  checkModule,
  clusterDiagnostics,
  clusterXmlOf,
  decidePush,
  lineDiff,
} from './modules/module-config.ts';
import {
  modulePackageOf,
  packageModuleFiles,
  packageSignedFiles,
  signatureOf,
  storedSignature,
  userconfigFile,
} from './modules/signature.ts';
import { TemplateLibrary } from './modules/templates.ts';
import { acrossNodes, preflightNeedsOf, preflightQuery } from './modules/module-preflight.ts';
import {
  type AgentClusterReport,
  clusterPreflightBody,
  type NodeAnswer,
  summarizeClusterPreflight,
} from './cluster/cluster-preflight.ts';
import type { SecretStore } from './secrets/secret-store.ts';
import { buildArchive, openSnapshotArchive, type ArchiveManifest } from './snapshots/snapshot-archive.ts';
import { exportSite, importSite } from './store/site-file.ts';
import { checkModuleName, type NodeRow, nodeView, type SiteStore } from './store/site-store.ts';

export const tasksMax = 200;
export const logLinesMax = 10_000;
const actionTimeoutMs = 120_000;
const preflightTimeoutMs = 30_000;
export const scriptLogsMax = 1000;

export interface ConsoleOptions {
  version: string;
  transport: 'electron' | 'server';
  dataDir: string;
  store: SiteStore;
  secrets: SecretStore;
  sshTransport: RemoteTransport;
  /** resources/modules */
  templatesDir: string;
  /** Folders searched for the agent package. */
  agentPackageDirs: string[];
  /** The lab command (development tree only), for "Try it on a local lab". */
  labCli: string | null;
  /** The repository root (development tree only): lets the lab flow build the agent package. */
  repoDir: string | null;
  log: (message: string) => void;
}

function requireId(value: unknown, what: string): Id {
  if (!Number.isInteger(value) || (value as number) <= 0)
    throw badInput(`${what} must be a positive whole number`);
  return value as number;
}

function requireString(value: unknown, what: string, lengthMax = 4096): string {
  if (typeof value !== 'string' || value.length > lengthMax)
    throw badInput(`${what} must be text of at most ${lengthMax} characters`);
  return value;
}

const consoleCaRef = 'console-ca';
const secretRef = (kind: string) => `${kind}-${randomBytes(9).toString('hex')}`;

export class ConsoleServices implements ConsoleApi {
  private readonly listeners = new Set<(event: ConsoleEvent) => void>();
  readonly live: LiveService;
  private readonly templates: TemplateLibrary;
  private readonly tasks: Task[] = [];
  private nextTaskId = 1;
  private readonly lab: LocalLab;
  private installing = new Set<Id>();
  private ca: CaMaterial | null = null;

  constructor(private readonly options: ConsoleOptions) {
    this.live = new LiveService((event) => this.emit(event));
    this.templates = new TemplateLibrary(options.templatesDir);
    this.lab = new LocalLab(this, {
      labCli: options.labCli,
      repoDir: options.repoDir,
      emit: (event) => this.emit(event),
    });
  }

  get store(): SiteStore {
    return this.options.store;
  }

  get secrets(): SecretStore {
    return this.options.secrets;
  }

  agentPackageDirs(): string[] {
    return this.options.agentPackageDirs;
  }

  onEvent(listener: (event: ConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: ConsoleEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.options.log(`event listener failed: ${errorMessage(error)}`);
      }
    }
  }

  close(): void {
    this.live.close();
    this.store.close();
  }

  // --- console

  async consoleInfo(): Promise<ConsoleInfo> {
    const found = findAgentPackage(this.options.agentPackageDirs);
    const version = found.file
      ? (/hakit-agent-([0-9A-Za-z.+-]+)-linux-x64\.tar\.gz$/.exec(found.file)?.[1] ?? null)
      : null;
    return {
      version: this.options.version,
      transport: this.options.transport,
      dataDir: this.options.dataDir,
      secrets: this.secrets.status(),
      lab: this.lab.availability(),
      agentPackage: {
        file: found.file,
        version,
        reason: found.file
          ? 'found'
          : `no agent package in ${found.searched.join(', ')}: build it with npm run package:agent`,
      },
      caFingerprint: await this.caFingerprintIfAny(),
    };
  }

  private async caFingerprintIfAny(): Promise<string | null> {
    if (this.secrets.status().locked) return null;
    try {
      const raw = await this.secrets.get(consoleCaRef);
      return raw ? caFingerprint(JSON.parse(raw) as CaMaterial) : null;
    } catch {
      return null;
    }
  }

  /** The console CA from the secret store, made on first use. */
  private async consoleCa(): Promise<CaMaterial> {
    if (this.ca) return this.ca;
    const raw = await this.secrets.get(consoleCaRef);
    if (raw) {
      const parsed = JSON.parse(raw) as CaMaterial;
      if (typeof parsed.certPem !== 'string' || typeof parsed.keyPem !== 'string')
        throw new ConsoleError('internal', `the console CA in the secret store (${consoleCaRef}) is damaged`);
      this.ca = parsed;
      return parsed;
    }
    const made = await createCa('hakit console CA');
    await this.secrets.set(consoleCaRef, JSON.stringify(made));
    this.ca = made;
    this.store.audit('create console CA', caFingerprint(made), '', 'ok (kept in the secret store)');
    return made;
  }

  /**
   * Issues the node a certificate signed by the console CA, installs it with PUT /api/v1/tls over
   * the connection pinned on its current certificate, checks the node now serves it (chained to
   * the CA, naming the node), then records it: from then on the CA is the node's pin.
   */
  async installCaCertificate(row: NodeRow): Promise<string> {
    const ca = await this.consoleCa();
    const issued = await issueNodeCertificate(ca, { name: row.name, address: row.address });
    const before = await this.endpointOf(row);
    const answer = await agentJson<{ fingerprint?: string }>(before, 'PUT', '/api/v1/tls', {
      cert: issued.certPem,
      key: issued.keyPem,
    });
    if (answer.fingerprint !== issued.fingerprint)
      throw new ConsoleError(
        'refused',
        `${row.name} reports certificate ${answer.fingerprint ?? '(none)'} after the install, not ${issued.fingerprint}`,
      );
    const after: AgentEndpoint = { ...before, fingerprint: issued.fingerprint, ca: ca.certPem };
    const level = await agentJson<{ fingerprint: string }>(after, 'GET', '/api/v1/level', undefined);
    if (level.fingerprint !== issued.fingerprint)
      throw new ConsoleError('refused', `${row.name} does not serve the certificate just installed`);
    this.store.recordCaCertificate(row.id, issued.fingerprint);
    return issued.fingerprint;
  }

  async unlockSecrets(params: { passphrase: string }): Promise<SecretsStatus> {
    return this.secrets.unlock(requireString(params.passphrase, 'passphrase', 1024));
  }

  // --- sites

  async listSites(_params: Record<string, never> = {}): Promise<SiteSummary[]> {
    return this.store.listSites();
  }

  async createSite(params: { name: string; notes: string }): Promise<SiteSummary> {
    const site = this.store.createSite(params.name, params.notes ?? '');
    this.store.audit('create site', site.name, '', 'ok');
    return site;
  }

  async deleteSite(params: { siteId: Id }): Promise<void> {
    const siteId = requireId(params.siteId, 'siteId');
    const site = this.store.site(siteId);
    const refs = this.store
      .clusterIdsOfSite(siteId)
      .flatMap((clusterId) => this.secretRefsOfCluster(clusterId));
    for (const clusterId of this.store.clusterIdsOfSite(siteId)) this.live.unwatch(clusterId);
    this.store.deleteSite(siteId);
    for (const ref of refs) await this.secrets.delete(ref).catch(() => undefined);
    this.store.audit('delete site', site.name, '', 'ok');
  }

  private secretRefsOfCluster(clusterId: Id): string[] {
    const cluster = this.store.clusterRow(clusterId);
    return [
      ...(cluster.node_key_secret ? [cluster.node_key_secret] : []),
      ...this.store
        .nodesOf(clusterId)
        .flatMap((node) =>
          [node.ssh_secret, node.api_token_secret].filter((ref): ref is string => ref !== null),
        ),
    ];
  }

  async getSite(params: { siteId: Id }): Promise<SiteView> {
    const siteId = requireId(params.siteId, 'siteId');
    return {
      site: this.store.site(siteId),
      clusters: this.store.clusterIdsOfSite(siteId).map((id) => this.store.cluster(id)),
    };
  }

  async exportSite(params: { siteId: Id }): Promise<{ fileName: string; content: string }> {
    const exported = exportSite(this.store, requireId(params.siteId, 'siteId'), Date.now());
    this.store.audit('export site', exported.fileName, '', 'ok (secrets not included)');
    return exported;
  }

  async importSite(params: { content: string; newName?: string }): Promise<SiteSummary> {
    const siteId = importSite(
      this.store,
      requireString(params.content, 'content', 64 * 1024 * 1024),
      params.newName,
    );
    const site = this.store.site(siteId);
    this.store.audit('import site', site.name, '', 'ok');
    return site;
  }

  // --- clusters and nodes

  async createCluster(params: { siteId: Id; name: string }): Promise<ClusterView> {
    const clusterId = this.store.createCluster(requireId(params.siteId, 'siteId'), params.name);
    this.store.audit('create cluster', params.name, '', 'ok');
    return this.store.cluster(clusterId);
  }

  async deleteCluster(params: { clusterId: Id }): Promise<void> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const refs = this.secretRefsOfCluster(clusterId);
    const name = this.store.clusterRow(clusterId).name;
    this.live.unwatch(clusterId);
    this.store.deleteCluster(clusterId);
    for (const ref of refs) await this.secrets.delete(ref).catch(() => undefined);
    this.store.audit('delete cluster', name, '', 'ok');
  }

  async getCluster(params: { clusterId: Id }): Promise<ClusterView> {
    return this.store.cluster(requireId(params.clusterId, 'clusterId'));
  }

  private async storeSshSecret(
    input: NodeInput,
    existing: NodeRow | null,
  ): Promise<{ auth: 'password' | 'key'; ref: string | null }> {
    const auth = input.auth;
    if (auth?.kind === 'keep') {
      if (!existing) throw badInput('a new node needs a password or a key');
      return { auth: existing.ssh_auth, ref: existing.ssh_secret };
    }
    if (auth?.kind === 'password') {
      const ref = existing?.ssh_secret ?? secretRef('ssh');
      await this.secrets.set(
        ref,
        JSON.stringify({ kind: 'password', password: requireString(auth.password, 'password', 1024) }),
      );
      return { auth: 'password', ref };
    }
    if (auth?.kind === 'key') {
      const privateKey = requireString(auth.privateKey, 'private key', 64 * 1024);
      if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey))
        throw badInput('the private key is not in PEM/OpenSSH format');
      const ref = existing?.ssh_secret ?? secretRef('ssh');
      await this.secrets.set(
        ref,
        JSON.stringify({ kind: 'key', privateKey, passphrase: auth.passphrase ?? '' }),
      );
      return { auth: 'key', ref };
    }
    throw badInput('auth must be a password or a key');
  }

  async addNode(params: { clusterId: Id; node: NodeInput }): Promise<NodeView> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const input = params.node;
    if (typeof input !== 'object' || input === null) throw badInput('node is missing');
    const secret = await this.storeSshSecret(input, null);
    try {
      const row = this.store.addNode(clusterId, {
        name: input.name,
        address: input.address,
        sshPort: input.sshPort,
        sshUser: input.sshUser,
        sshAuth: secret.auth,
        sshSecret: secret.ref,
      });
      this.store.audit('add node', `${input.name} (${input.address})`, '', 'ok');
      return nodeView(row);
    } catch (error) {
      await this.secrets.delete(secret.ref).catch(() => undefined);
      throw error;
    }
  }

  async updateNode(params: { nodeId: Id; node: NodeInput }): Promise<NodeView> {
    const existing = this.store.nodeRow(requireId(params.nodeId, 'nodeId'));
    const secret = await this.storeSshSecret(params.node, existing);
    const row = this.store.updateNode(existing.id, {
      name: params.node.name,
      address: params.node.address,
      sshPort: params.node.sshPort,
      sshUser: params.node.sshUser,
      sshAuth: secret.auth,
      sshSecret: secret.ref,
    });
    this.store.audit('update node', row.name, '', 'ok');
    return nodeView(row);
  }

  async removeNode(params: { nodeId: Id }): Promise<void> {
    const row = this.store.removeNode(requireId(params.nodeId, 'nodeId'));
    await this.secrets.delete(row.ssh_secret).catch(() => undefined);
    await this.secrets.delete(row.api_token_secret).catch(() => undefined);
    this.store.audit('remove node', row.name, '', 'ok');
  }

  async forgetHostKey(params: { nodeId: Id }): Promise<NodeView> {
    const row = this.store.nodeRow(requireId(params.nodeId, 'nodeId'));
    this.store.pinHostKey(row.id, null);
    this.store.audit('forget host key', row.name, '', `was ${nodeView(row).hostKeyFingerprint ?? 'none'}`);
    return nodeView(this.store.nodeRow(row.id));
  }

  async setLan(params: {
    clusterId: Id;
    name: string;
    addresses: { nodeId: Id; addr: string }[];
  }): Promise<LanView> {
    return this.store.setLan(requireId(params.clusterId, 'clusterId'), params.name, params.addresses ?? []);
  }

  async removeLan(params: { lanId: Id }): Promise<void> {
    this.store.removeLan(requireId(params.lanId, 'lanId'));
  }

  async clusterXml(params: { clusterId: Id }): Promise<{ xml: string; diagnostics: Diagnostic[] }> {
    const xml = clusterXmlOf(this.store.cluster(requireId(params.clusterId, 'clusterId')));
    return { xml, diagnostics: clusterDiagnostics(xml) };
  }

  // --- agents

  async endpointOf(row: NodeRow): Promise<AgentEndpoint> {
    if (row.api_fingerprint === null || row.api_token_secret === null)
      throw new ConsoleError(
        'refused',
        `the agent on ${row.name} is not installed by this console yet (no pinned certificate or key)`,
      );
    return {
      host: row.address,
      port: row.api_port,
      fingerprint: row.api_fingerprint,
      token: await this.secrets.require(row.api_token_secret, `the API key of ${row.name}`),
      ...(row.api_ca === 1 ? { ca: (await this.consoleCa()).certPem } : {}),
    };
  }

  private async nodeKeyOf(clusterId: Id): Promise<string> {
    const cluster = this.store.clusterRow(clusterId);
    if (cluster.node_key_secret) {
      const existing = await this.secrets.get(cluster.node_key_secret);
      if (existing) return existing;
    }
    const ref = cluster.node_key_secret ?? secretRef('nodekey');
    const token = newApiToken();
    await this.secrets.set(ref, token);
    this.store.setClusterNodeKeySecret(clusterId, ref);
    return token;
  }

  /** The cluster key every node's heartbeats and replication are authenticated with (64 hex). */
  private async clusterKeyOf(clusterId: Id): Promise<string> {
    const cluster = this.store.clusterRow(clusterId);
    if (cluster.cluster_key_secret) {
      const existing = await this.secrets.get(cluster.cluster_key_secret);
      if (existing && /^[0-9a-f]{64}$/.test(existing)) return existing;
    }
    const ref = cluster.cluster_key_secret ?? secretRef('clusterkey');
    const key = randomBytes(32).toString('hex');
    await this.secrets.set(ref, key);
    this.store.setClusterKeySecret(clusterId, ref);
    return key;
  }

  private async sshAuthOf(row: NodeRow): Promise<RemoteAuth> {
    const raw = await this.secrets.require(row.ssh_secret, `the SSH ${row.ssh_auth} of ${row.name}`);
    const parsed = JSON.parse(raw) as {
      kind: string;
      password?: string;
      privateKey?: string;
      passphrase?: string;
    };
    if (parsed.kind === 'password') return { kind: 'password', password: parsed.password ?? '' };
    return { kind: 'key', privateKey: parsed.privateKey ?? '', passphrase: parsed.passphrase || undefined };
  }

  async agentPackage(): Promise<AgentPackage> {
    const found = findAgentPackage(this.options.agentPackageDirs);
    if (!found.file)
      throw new ConsoleError(
        'not-found',
        `no agent package found in ${found.searched.join(', ')}: build it with npm run package:agent`,
      );
    return checkAgentPackage(found.file);
  }

  async installNodes(params: { clusterId: Id; nodeIds: Id[]; pathLink?: boolean }): Promise<InstallRun> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    if (!Array.isArray(params.nodeIds) || params.nodeIds.length === 0 || params.nodeIds.length > 256)
      throw badInput('nodeIds: 1 to 256 nodes');
    const rows = params.nodeIds.map((id) => this.store.nodeRow(requireId(id, 'nodeId')));
    for (const row of rows)
      if (row.cluster_id !== clusterId) throw badInput(`node ${row.name} is not in this cluster`);
    const busy = rows.filter((row) => this.installing.has(row.id));
    if (busy.length > 0)
      throw new ConsoleError(
        'conflict',
        `an install is already running on ${busy.map((row) => row.name).join(', ')}`,
      );
    const agentPackage = await this.agentPackage();
    const nodeKey = await this.nodeKeyOf(clusterId);
    // Everything secret is gathered before anything starts, so a locked store fails up front.
    const prepared = await Promise.all(
      rows.map(async (row) => ({
        row,
        auth: await this.sshAuthOf(row),
        apiTokenRef: row.api_token_secret ?? secretRef('apitoken'),
      })),
    );
    const runId = this.store.startInstallRun(clusterId);
    for (const row of rows) this.installing.add(row.id);
    const reports: InstallNodeReport[] = [];
    try {
      const outcomes = await boundedParallel(
        prepared,
        installConcurrencyMax,
        async ({ row, auth, apiTokenRef }) => {
          const apiToken = newApiToken();
          const adminPassword = newPassword();
          const target: InstallTarget = {
            nodeId: row.id,
            node: row.name,
            host: row.address,
            sshPort: row.ssh_port,
            user: row.ssh_user,
            auth,
            pinnedHostKey: row.host_key,
            apiPort: row.api_port,
          };
          const outcome = await installNode(
            this.options.sshTransport,
            target,
            agentPackage,
            { apiToken, adminPassword, nodeKey },
            {
              progress: (step, status, progress, message) =>
                this.emit({
                  type: 'install',
                  runId,
                  nodeId: row.id,
                  node: row.name,
                  step,
                  status,
                  progress,
                  message: this.secrets.redact(message),
                }),
              hostKey: (blob, _fingerprint, firstUse) => {
                if (firstUse) this.store.pinHostKey(row.id, blob);
              },
              redact: (text) =>
                this.secrets.redact(
                  text
                    .split(apiToken)
                    .join('***')
                    .split(adminPassword)
                    .join('***')
                    .split(nodeKey)
                    .join('***'),
                ),
            },
            { pathLink: params.pathLink ?? true },
          );
          if (outcome.ok && outcome.apiFingerprint && outcome.version) {
            await this.secrets.set(apiTokenRef, apiToken);
            this.store.recordInstall(row.id, {
              agentVersion: outcome.version,
              apiFingerprint: outcome.apiFingerprint,
              apiTokenSecret: apiTokenRef,
              apiPort: row.api_port,
            });
          }
          const { apiFingerprint: _unused, ...report } = outcome;
          if (report.ok) {
            const started = Date.now();
            const progress = (status: 'running' | 'done' | 'failed', message: string) =>
              this.emit({
                type: 'install',
                runId,
                nodeId: row.id,
                node: row.name,
                step: 'pin',
                status,
                progress: status === 'running' ? 0 : 1,
                message: this.secrets.redact(message),
              });
            progress('running', 'issuing a certificate signed by the console CA');
            try {
              const fingerprint = await this.installCaCertificate(this.store.nodeRow(row.id));
              progress('done', `certificate issued by the console CA installed and pinned: ${fingerprint}`);
            } catch (error) {
              const message = `the certificate signed by the console CA was not installed: ${this.secrets.redact(errorMessage(error))}`;
              progress('failed', message);
              return {
                ...report,
                ok: false,
                failedStep: 'pin' as const,
                error: `${message} (the agent runs, pinned on its own certificate)`,
                seconds: report.seconds + Math.round((Date.now() - started) / 1000),
              };
            }
          }
          return report;
        },
      );
      reports.push(...outcomes);
    } finally {
      for (const row of rows) this.installing.delete(row.id);
    }
    const run = this.store.finishInstallRun(runId, reports);
    for (const report of reports)
      this.store.audit(
        'install agent',
        report.node,
        `npx hakit-lab install ${report.node}  # or: sh hakit-agent-${agentPackage.version}-linux-x64/install.sh`,
        report.ok
          ? `ok, agent ${report.version} in ${report.seconds} s`
          : `failed at ${report.failedStep}: ${report.error}`,
      );
    this.emit({ type: 'installDone', run });
    return run;
  }

  async installRuns(params: { clusterId: Id }): Promise<InstallRun[]> {
    return this.store.installRuns(requireId(params.clusterId, 'clusterId'));
  }

  private installedNodes(clusterId: Id): NodeRow[] {
    return this.store
      .nodesOf(clusterId)
      .filter((row) => row.api_fingerprint !== null && row.api_token_secret !== null);
  }

  /**
   * Every node's agent checks from where it stands that it reaches every other node on every lan
   * and port, and says its clock and OS; run on all nodes in parallel, bounded in time.
   */
  async clusterPreflight(params: { clusterId: Id }): Promise<ClusterPreflight> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const cluster = this.store.cluster(clusterId);
    const modules = cluster.modules.map((summary) => this.store.module(summary.id));
    const rows = this.store.nodesOf(clusterId);
    const answers = await Promise.all(
      rows.map(async (row): Promise<NodeAnswer> => {
        const base = { nodeId: row.id, node: row.name };
        try {
          const endpoint = await this.endpointOf(row);
          const report = await agentJson<AgentClusterReport>(
            endpoint,
            'POST',
            '/api/v1/preflight/cluster',
            clusterPreflightBody(cluster, modules, row.name, Date.now()),
            preflightTimeoutMs,
          );
          return { ...base, report, error: null };
        } catch (error) {
          return { ...base, report: null, error: this.secrets.redact(errorMessage(error)) };
        }
      }),
    );
    return summarizeClusterPreflight(cluster, answers, Date.now());
  }

  async pushCluster(params: { clusterId: Id; skipPreflight?: boolean }): Promise<ClusterPushResult[]> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const cluster = this.store.cluster(clusterId);
    const xml = clusterXmlOf(cluster);
    const problems = clusterDiagnostics(xml).filter((problem) => problem.severity === 'error');
    if (problems.length > 0)
      throw new ConsoleError(
        'refused',
        `cluster.xml has errors, nothing pushed: ${problems.map((problem) => `${problem.line}:${problem.column} ${problem.message}`).join('; ')}`,
      );
    if (params.skipPreflight !== true) {
      // The agents' pre-flight first: a cluster whose nodes cannot reach each other gets nothing.
      const preflight = await this.clusterPreflight({ clusterId });
      if (!preflight.ok) {
        const reasons = preflight.checks
          .filter((check) => !check.ok)
          .map((check) => `${check.name}: ${check.detail}`)
          .join('; ');
        this.store.audit(
          'push cluster',
          cluster.name,
          'hakit -H "*" -G',
          `refused by the pre-flight: ${reasons}`,
        );
        return this.store.nodesOf(clusterId).map((row) => ({
          nodeId: row.id,
          node: row.name,
          ok: false,
          detail: `refused by the cluster pre-flight, nothing pushed: ${reasons}`,
          signature: null,
        }));
      }
    }
    // Nodes installed before the console had its CA (or whose CA install failed) get one now.
    for (const row of this.store.nodesOf(clusterId))
      if (row.api_ca !== 1 && row.api_fingerprint !== null && row.api_token_secret !== null)
        try {
          await this.installCaCertificate(row);
        } catch (error) {
          this.options.log(
            `push cluster: ${row.name} keeps its own certificate: ${this.secrets.redact(errorMessage(error))}`,
          );
        }
    const rows = this.store.nodesOf(clusterId);
    const fingerprints: Record<string, string> = {};
    for (const row of rows) {
      if (row.api_fingerprint === null)
        throw new ConsoleError(
          'refused',
          `install the agent on ${row.name} first: its certificate is not pinned`,
        );
      fingerprints[row.name] = row.api_fingerprint;
      fingerprints[row.address] = row.api_fingerprint;
    }
    const nodeKey = await this.nodeKeyOf(clusterId);
    const clusterKey = await this.clusterKeyOf(clusterId);
    const trust = { version: 1, keyName: 'node-cluster', token: nodeKey, fingerprints };
    const results = await Promise.all(
      rows.map(async (row): Promise<ClusterPushResult> => {
        try {
          const endpoint = await this.endpointOf(row);
          await agentJson(endpoint, 'PUT', '/api/v1/cluster/config', { clusterXml: xml, clusterKey, trust });
          const info = await agentJson<{ stdout: string }>(endpoint, 'POST', '/api/v1/cli', {
            argv: ['cluster', 'confinfo'],
          });
          const signature = /signature (\S+)/.exec(info.stdout)?.[1] ?? null;
          return { nodeId: row.id, node: row.name, ok: true, detail: info.stdout.trim(), signature };
        } catch (error) {
          return {
            nodeId: row.id,
            node: row.name,
            ok: false,
            detail: this.secrets.redact(errorMessage(error)),
            signature: null,
          };
        }
      }),
    );
    const signatures = new Set(results.filter((result) => result.ok).map((result) => result.signature));
    if (signatures.size > 1)
      for (const result of results)
        if (result.ok) {
          result.ok = false;
          result.detail = `signatures differ between nodes: ${result.detail}`;
        }
    this.store.audit(
      'push cluster',
      cluster.name,
      'hakit -H "*" -G',
      results.map((result) => `${result.node}: ${result.ok ? 'ok' : result.detail}`).join('; '),
    );
    return results;
  }

  async preflight(params: { clusterId: Id }): Promise<PreflightCheck[]> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const cluster = this.store.cluster(clusterId);
    const checks: PreflightCheck[] = [];
    const xml = clusterXmlOf(cluster);
    const xmlErrors = clusterDiagnostics(xml).filter((problem) => problem.severity === 'error');
    checks.push({
      name: 'cluster.xml is valid',
      ok: xmlErrors.length === 0,
      detail:
        xmlErrors.map((problem) => problem.message).join('; ') ||
        `${cluster.nodes.length} nodes, ${cluster.lans.length} lan(s)`,
    });
    const versions = new Map<string, string[]>();
    for (const row of this.store.nodesOf(clusterId)) {
      try {
        const endpoint = await this.endpointOf(row);
        const before = Date.now();
        const answer = await agentRequest(endpoint, 'GET', '/api/v1/level', { timeoutMs: 10_000 });
        const level = parseAgentAnswer<{ version: string }>(endpoint, 'GET', '/api/v1/level', answer);
        const skewMs = clockSkewOf(String(answer.headers.date ?? ''), (before + Date.now()) / 2);
        versions.set(level.version, [...(versions.get(level.version) ?? []), row.name]);
        checks.push({
          name: `${row.name}: agent answers with the pinned certificate`,
          ok: true,
          detail: `agent ${level.version}`,
        });
        checks.push({
          name: `${row.name}: clock within 2 s of the console`,
          ok: skewMs !== null && Math.abs(skewMs) <= 2000,
          detail: skewMs === null ? 'no Date header' : `${skewMs / 1000} s (one-second resolution)`,
        });
      } catch (error) {
        checks.push({
          name: `${row.name}: agent answers with the pinned certificate`,
          ok: false,
          detail: this.secrets.redact(errorMessage(error)),
        });
      }
    }
    checks.push({
      name: 'same agent version on every node',
      ok: versions.size <= 1,
      detail:
        [...versions].map(([version, nodes]) => `${version} on ${nodes.join(', ')}`).join('; ') ||
        'no node answered',
    });
    for (const summary of cluster.modules) {
      const module = this.store.module(summary.id);
      const check = checkModule(module.name, module.userconfig, module.files, xml, module.moduleId);
      const errors = check.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
      checks.push({
        name: `module ${module.name} is valid for this cluster`,
        ok: check.ok,
        detail:
          errors.map((error) => `${error.line}:${error.column} ${error.message}`).join('; ') || 'no error',
      });
    }
    return checks;
  }

  // --- modules

  async listTemplates(): Promise<TemplateInfo[]> {
    return this.templates.list().map(({ userconfig: _u, files: _f, ...info }) => info);
  }

  async createModule(params: {
    clusterId: Id;
    name: string;
    template: string;
    values: Record<string, string>;
  }): Promise<ModuleDetail> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    checkModuleName(params.name);
    const made = this.templates.instantiate(params.template, params.values ?? {});
    const module = this.store.createModule({
      clusterId,
      name: params.name,
      kind: made.template.kind,
      template: made.template.name,
      userconfig: made.userconfig,
      files: made.files,
    });
    this.store.audit('create module', `${module.name} from ${made.template.name}`, '', 'ok');
    return module;
  }

  async getModule(params: { moduleDbId: Id }): Promise<ModuleDetail> {
    return this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
  }

  async saveModule(params: {
    moduleDbId: Id;
    userconfig: string;
    files: ModuleFile[];
  }): Promise<ModuleDetail> {
    const moduleDbId = requireId(params.moduleDbId, 'moduleDbId');
    const saved = this.store.saveModule(moduleDbId, params.userconfig, params.files ?? []);
    const check = checkModule(saved.name, saved.userconfig, saved.files, null, saved.moduleId);
    if (check.kind !== null && check.kind !== saved.kind) this.store.setModuleKind(moduleDbId, check.kind);
    return this.store.module(moduleDbId);
  }

  async deleteModule(params: { moduleDbId: Id }): Promise<void> {
    const module = this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
    this.store.deleteModule(module.id);
    this.store.audit('delete module', module.name, '', 'ok (nodes unchanged)');
  }

  async validateModule(params: {
    clusterId: Id;
    name: string;
    userconfig: string;
    files: ModuleFile[];
  }): Promise<Diagnostic[]> {
    const cluster = this.store.cluster(requireId(params.clusterId, 'clusterId'));
    const module = this.store.moduleByName(cluster.id, params.name);
    return checkModule(
      params.name,
      requireString(params.userconfig, 'userconfig', 1024 * 1024),
      params.files ?? [],
      clusterXmlOf(cluster),
      module?.moduleId,
    ).diagnostics;
  }

  /** The module as a node holds it, or null when the node does not have it. */
  private async fetchFromNode(
    endpoint: AgentEndpoint,
    module: string,
  ): Promise<{ signature: string; userconfig: string; files: ModuleFile[] } | null> {
    const path = `/api/v1/modules/${encodeURIComponent(module)}/package`;
    const answer = await agentRequest(endpoint, 'GET', path, { timeoutMs: 60_000 });
    if (answer.status === 404) return null;
    if (answer.status !== 200) parseAgentAnswer(endpoint, 'GET', path, answer);
    const modulePackage = await readSafeBuffer(answer.body);
    return {
      signature: signatureOf(packageSignedFiles(modulePackage)),
      ...packageModuleFiles(modulePackage),
    };
  }

  async diffModule(params: { moduleDbId: Id }): Promise<ModuleDiff[]> {
    const module = this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
    return Promise.all(
      this.installedNodes(module.clusterId).map(async (row): Promise<ModuleDiff> => {
        const onNode = await this.fetchFromNode(await this.endpointOf(row), module.name);
        const deployedFiles = new Map((onNode?.files ?? []).map((file) => [file.path, file]));
        const filesChanged = [
          ...(onNode?.userconfig !== module.userconfig ? [userconfigFile] : []),
          ...module.files
            .filter((file) => {
              const other = deployedFiles.get(file.path);
              return !other || other.text !== file.text || other.executable !== file.executable;
            })
            .map((file) => file.path),
          ...[...deployedFiles.keys()].filter((path) => !module.files.some((file) => file.path === path)),
        ];
        return {
          nodeId: row.id,
          node: row.name,
          deployedSignature: onNode?.signature ?? null,
          lines: lineDiff(onNode?.userconfig ?? '', module.userconfig),
          filesChanged,
        };
      }),
    );
  }

  async pullModule(params: { moduleDbId: Id; nodeId: Id }): Promise<PullResult> {
    const module = this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
    const row = this.store.nodeRow(requireId(params.nodeId, 'nodeId'));
    const onNode = await this.fetchFromNode(await this.endpointOf(row), module.name);
    if (onNode === null) throw notFound(`${row.name} does not have module ${module.name}`);
    const changed = onNode.signature !== module.signature;
    this.store.transaction(() => {
      if (changed)
        this.store.saveModule(module.id, onNode.userconfig, onNode.files, `pulled from ${row.name}`);
      this.store.recordDeployment(module.id, row.id, onNode.signature, 'pull');
    });
    this.store.audit(
      'pull module',
      `${module.name} from ${row.name}`,
      `hakit module package -m ${module.name} /tmp/${module.name}.safe`,
      changed ? 'changed' : 'same',
    );
    return { nodeId: row.id, signature: onNode.signature, changed };
  }

  async modulePreflight(params: { moduleDbId: Id }): Promise<ModulePreflight> {
    const module = this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
    const rows = this.installedNodes(module.clusterId);
    if (rows.length === 0)
      throw new ConsoleError('refused', 'no node of this cluster has an agent installed by this console');
    const needs = preflightNeedsOf(module.userconfig, module.moduleId);
    const nodes = await Promise.all(
      rows.map(async (row): Promise<NodePreflight> => {
        const base = { nodeId: row.id, node: row.name };
        try {
          const endpoint = await this.endpointOf(row);
          const report = await agentJson<{
            ok: boolean;
            checks: {
              name: string;
              ok: boolean;
              severity: 'error' | 'warning';
              detail: string;
              facts?: Record<string, string | number>;
            }[];
          }>(
            endpoint,
            'GET',
            `/api/v1/preflight?${preflightQuery(needs, module.name, Date.now())}`,
            undefined,
            preflightTimeoutMs,
          );
          const checks = report.checks.map((check) => ({
            name: check.name,
            ok: check.ok,
            severity: check.severity === 'warning' ? ('warning' as const) : ('error' as const),
            detail: check.detail,
            ...(check.facts ? { facts: check.facts } : {}),
          }));
          return {
            ...base,
            ok: checks.every((check) => check.ok || check.severity === 'warning'),
            checks,
          };
        } catch (error) {
          return {
            ...base,
            ok: false,
            checks: [
              {
                name: 'the agent runs the pre-flight',
                ok: false,
                severity: 'error',
                detail: this.secrets.redact(errorMessage(error)),
              },
            ],
          };
        }
      }),
    );
    const across = acrossNodes(needs, nodes);
    return {
      module: module.name,
      ok: nodes.every((node) => node.ok) && across.every((check) => check.ok),
      nodes,
      across,
      atMs: Date.now(),
    };
  }

  async deployModule(params: {
    moduleDbId: Id;
    force: boolean;
    skipPreflight?: boolean;
  }): Promise<DeployNodeResult[]> {
    const module = this.store.module(requireId(params.moduleDbId, 'moduleDbId'));
    const cluster = this.store.cluster(module.clusterId);
    const check = checkModule(
      module.name,
      module.userconfig,
      module.files,
      clusterXmlOf(cluster),
      module.moduleId,
    );
    if (!check.ok) {
      const errors = check.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
      throw new ConsoleError(
        'refused',
        `${module.name} has errors, nothing deployed: ${errors.map((error) => `${error.file}:${error.line}:${error.column} ${error.message}`).join('; ')}`,
      );
    }
    const rows = this.installedNodes(module.clusterId);
    if (rows.length === 0)
      throw new ConsoleError('refused', 'no node of this cluster has an agent installed by this console');
    if (params.skipPreflight !== true) {
      // The agents' pre-flight first: a node that lacks what the module needs gets nothing.
      const preflight = await this.modulePreflight({ moduleDbId: module.id });
      if (!preflight.ok) {
        const acrossProblems = preflight.across.filter((check) => !check.ok);
        const results: DeployNodeResult[] = preflight.nodes.map((node) => {
          const problems = [
            ...node.checks.filter((check) => !check.ok && check.severity === 'error'),
            ...acrossProblems,
          ];
          return {
            nodeId: node.nodeId,
            node: node.node,
            outcome: 'refused',
            detail:
              problems.length > 0
                ? `pre-flight: ${problems.map((check) => `${check.name}: ${check.detail}`).join('; ')}`
                : 'pre-flight failed on another node: nothing deployed',
          };
        });
        this.store.audit(
          'deploy module',
          module.name,
          '',
          `refused by the pre-flight: ${results.map((result) => `${result.node}: ${result.detail}`).join('; ')}`,
        );
        return results;
      }
    }
    const zip = await writeSafeBuffer(modulePackageOf(module.userconfig, module.files));
    const local = storedSignature(module.userconfig, module.files);
    const results = await Promise.all(
      rows.map(async (row): Promise<DeployNodeResult> => {
        const base = { nodeId: row.id, node: row.name };
        try {
          const endpoint = await this.endpointOf(row);
          const onNode = await this.fetchFromNode(endpoint, module.name);
          const recorded = module.deployed.find((entry) => entry.nodeId === row.id)?.signature ?? null;
          const decision = decidePush({
            node: row.name,
            module: module.name,
            local,
            onNode: onNode?.signature ?? null,
            recorded,
            force: params.force === true,
          });
          if (decision.kind === 'unchanged') {
            this.store.recordDeployment(module.id, row.id, local, 'push');
            return { ...base, outcome: 'unchanged', detail: decision.reason };
          }
          if (decision.kind === 'conflict') return { ...base, outcome: 'conflict', detail: decision.reason };
          const path = `/api/v1/modules/${encodeURIComponent(module.name)}/package?id=${module.moduleId}`;
          const answer = await agentRequest(endpoint, 'PUT', path, {
            body: zip,
            contentType: 'application/zip',
            timeoutMs: 120_000,
          });
          parseAgentAnswer(endpoint, 'PUT', path, answer);
          const after = await this.fetchFromNode(endpoint, module.name);
          if (after?.signature !== local)
            return {
              ...base,
              outcome: 'failed',
              detail: `after the upload ${row.name} holds signature ${after?.signature.slice(0, 12) ?? 'none'}, not ${local.slice(0, 12)}`,
            };
          this.store.recordDeployment(module.id, row.id, local, 'push');
          return { ...base, outcome: 'deployed', detail: decision.reason };
        } catch (error) {
          return { ...base, outcome: 'failed', detail: this.secrets.redact(errorMessage(error)) };
        }
      }),
    );
    this.store.audit(
      'deploy module',
      module.name,
      `hakit -H "${rows.map((row) => row.name).join(',')}" -E ${module.name}`,
      results.map((result) => `${result.node}: ${result.outcome}`).join('; '),
    );
    return results;
  }

  // --- live state, actions, logs

  async watchCluster(params: { clusterId: Id }): Promise<LiveMatrix> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const existing = this.live.matrix(clusterId);
    if (existing) return existing;
    const nodes = await Promise.all(
      this.store.nodesOf(clusterId).map(async (row) => ({
        nodeId: row.id,
        node: row.name,
        endpoint:
          row.api_fingerprint !== null && row.api_token_secret !== null ? await this.endpointOf(row) : null,
      })),
    );
    return this.live.watch(clusterId, nodes);
  }

  async unwatchCluster(params: { clusterId: Id }): Promise<void> {
    this.live.unwatch(requireId(params.clusterId, 'clusterId'));
  }

  private planNodes(request: ActionRequest): { targets: PlanNode[]; all: PlanNode[] } {
    const matrix = this.live.matrix(request.clusterId);
    const all = this.store.nodesOf(request.clusterId).map((row) => ({
      nodeId: row.id,
      node: row.name,
      cell: matrix?.cells.find((cell) => cell.nodeId === row.id && cell.module === request.module),
      live: matrix?.nodes.find((node) => node.nodeId === row.id),
    }));
    const targets = request.nodeIds.map((id) => {
      const found = all.find((node) => node.nodeId === id);
      if (!found) throw badInput(`node ${id} is not in this cluster`);
      return found;
    });
    return { targets, all };
  }

  private checkAction(params: ActionRequest): ActionRequest {
    const request: ActionRequest = {
      clusterId: requireId(params.clusterId, 'clusterId'),
      module: checkModuleName(params.module),
      action: params.action,
      nodeIds: Array.isArray(params.nodeIds) ? params.nodeIds.map((id) => requireId(id, 'nodeId')) : [],
    };
    if (!actionNames.includes(request.action)) throw badInput(`unknown action ${String(params.action)}`);
    if (request.nodeIds.length === 0 || request.nodeIds.length > 256) throw badInput('choose 1 to 256 nodes');
    return request;
  }

  async planAction(params: ActionRequest) {
    const request = this.checkAction(params);
    const { targets, all } = this.planNodes(request);
    return planAction(request.module, request.action, targets, all);
  }

  private updateTask(task: Task): void {
    this.emit({ type: 'task', task: { ...task } });
  }

  async runAction(params: ActionRequest): Promise<Task> {
    const request = this.checkAction(params);
    const { targets, all } = this.planNodes(request);
    const plan = planAction(request.module, request.action, targets, all);
    const task: Task = {
      id: this.nextTaskId++,
      title: `${request.action} ${request.module} on ${targets.map((target) => target.node).join(', ')}`,
      cli: plan.cli,
      status: 'running',
      progress: 0,
      result: '',
      startedMs: Date.now(),
      finishedMs: null,
    };
    this.tasks.unshift(task);
    this.tasks.length = Math.min(this.tasks.length, tasksMax);
    this.updateTask(task);
    void this.executeAction(task, request, plan.nodeOrder);
    return { ...task };
  }

  private async executeAction(task: Task, request: ActionRequest, order: Id[]): Promise<void> {
    const lines: string[] = [];
    let failed = false;
    for (const [index, nodeId] of order.entries()) {
      const row = this.store.nodeRow(nodeId);
      try {
        const endpoint = await this.endpointOf(row);
        const module = encodeURIComponent(request.module);
        let text: string;
        if (['start', 'stop', 'restart', 'stopstart'].includes(request.action)) {
          const answer = await agentJson<{ text?: string }>(
            endpoint,
            'POST',
            `/api/v1/modules/${module}/${request.action}`,
            {},
            actionTimeoutMs,
          );
          text = answer.text ?? 'ok';
        } else if (request.action.startsWith('failover-') || request.action.startsWith('boot-')) {
          const [setting, value] = request.action.split('-');
          const answer = await agentJson<{ text?: string }>(
            endpoint,
            'POST',
            `/api/v1/modules/${module}/settings/${setting}`,
            { value },
            actionTimeoutMs,
          );
          text = answer.text || `${setting} ${value}`;
        } else {
          const answer = await agentJson<{ exitCode: number; stdout: string; stderr: string }>(
            endpoint,
            'POST',
            '/api/v1/cli',
            { argv: [request.action, '-m', request.module] },
            actionTimeoutMs,
          );
          if (answer.exitCode !== 0)
            throw new Error(answer.stderr.trim() || answer.stdout.trim() || `exit code ${answer.exitCode}`);
          text = answer.stdout.trim() || 'ok';
        }
        lines.push(`${row.name}: ${text.trim() || 'ok'}`);
      } catch (error) {
        failed = true;
        lines.push(`${row.name}: failed: ${this.secrets.redact(errorMessage(error))}`);
      }
      task.progress = (index + 1) / order.length;
      task.result = lines.join('\n');
      this.updateTask(task);
    }
    task.status = failed ? 'failed' : 'done';
    task.finishedMs = Date.now();
    this.updateTask(task);
    this.store.audit(
      request.action,
      `${request.module} on ${order.map((id) => this.store.nodeRow(id).name).join(', ')}`,
      task.cli[0] ?? '',
      task.result,
    );
  }

  async listTasks(): Promise<Task[]> {
    return this.tasks.map((task) => ({ ...task }));
  }

  async moduleLog(params: {
    clusterId: Id;
    module: string;
    nodeIds: Id[];
    lines: number;
    verbose: boolean;
  }): Promise<LogEntryView[]> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const module = checkModuleName(params.module);
    const lines = Math.max(1, Math.min(Number.isInteger(params.lines) ? params.lines : 300, logLinesMax));
    const rows = (
      params.nodeIds?.length
        ? params.nodeIds.map((id) => this.store.nodeRow(requireId(id, 'nodeId')))
        : this.installedNodes(clusterId)
    ).filter((row) => row.cluster_id === clusterId);
    const perNode = await Promise.all(
      rows.map(async (row) => {
        try {
          const endpoint = await this.endpointOf(row);
          const answer = await agentJson<{
            data: { timeMs: number; level: string; component: string; message: string }[] | null;
          }>(
            endpoint,
            'GET',
            `/api/v1/modules/${encodeURIComponent(module)}/log?lines=${lines}${params.verbose ? '&verbose=1' : ''}`,
            undefined,
          );
          return (answer.data ?? []).map((entry) => ({ node: row.name, ...entry }));
        } catch (error) {
          return [
            {
              node: row.name,
              timeMs: Date.now(),
              level: 'E',
              component: 'console',
              message: `log not read: ${this.secrets.redact(errorMessage(error))}`,
            },
          ];
        }
      }),
    );
    return perNode.flat().sort((a, b) => a.timeMs - b.timeMs);
  }

  async followLog(params: { clusterId: Id; module: string; follow: boolean }): Promise<void> {
    this.live.follow(
      requireId(params.clusterId, 'clusterId'),
      checkModuleName(params.module),
      params.follow === true,
    );
  }

  private scriptLogRows(clusterId: Id, nodeIds: Id[] | undefined): NodeRow[] {
    const rows = nodeIds?.length
      ? nodeIds.map((id) => this.store.nodeRow(requireId(id, 'nodeId')))
      : this.installedNodes(clusterId);
    for (const row of rows)
      if (row.cluster_id !== clusterId) throw badInput(`node ${row.name} is not in this cluster`);
    return rows;
  }

  async scriptLogs(params: {
    clusterId: Id;
    module: string;
    nodeIds: Id[];
  }): Promise<{ files: ScriptLogInfo[]; errors: string[] }> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const module = checkModuleName(params.module);
    const rows = this.scriptLogRows(clusterId, params.nodeIds);
    const errors: string[] = [];
    const perNode = await Promise.all(
      rows.map(async (row): Promise<ScriptLogInfo[]> => {
        try {
          const endpoint = await this.endpointOf(row);
          const answer = await agentJson<{
            files: {
              name: string;
              script: string;
              startedMs: number | null;
              bytes: number;
              modifiedMs: number;
            }[];
          }>(endpoint, 'GET', `/api/v1/modules/${encodeURIComponent(module)}/scriptlogs`, undefined);
          return answer.files.map((file) => ({ nodeId: row.id, node: row.name, ...file }));
        } catch (error) {
          errors.push(`${row.name}: ${this.secrets.redact(errorMessage(error))}`);
          return [];
        }
      }),
    );
    const files = perNode
      .flat()
      .sort((a, b) => b.modifiedMs - a.modifiedMs)
      .slice(0, scriptLogsMax);
    return { files, errors };
  }

  async scriptLog(params: {
    clusterId: Id;
    module: string;
    nodeId: Id;
    name: string;
  }): Promise<ScriptLogText> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const module = checkModuleName(params.module);
    const [row] = this.scriptLogRows(clusterId, [requireId(params.nodeId, 'nodeId')]);
    const name = requireString(params.name, 'name', 200);
    if (!row) throw badInput('nodeId');
    if (!/^userlog_[A-Za-z0-9_.-]+\.ulog$/.test(name)) throw badInput(`${name} is not a script log name`);
    const endpoint = await this.endpointOf(row);
    try {
      const answer = await agentJson<{ name: string; bytes: number; truncated: boolean; text: string }>(
        endpoint,
        'GET',
        `/api/v1/modules/${encodeURIComponent(module)}/scriptlogs/${encodeURIComponent(name)}`,
        undefined,
      );
      return { nodeId: row.id, node: row.name, ...answer, text: this.secrets.redact(answer.text) };
    } catch (error) {
      throw new ConsoleError(
        'unreachable',
        `script log ${name} of ${module} on ${row.name}: ${this.secrets.redact(errorMessage(error))}`,
      );
    }
  }

  // --- snapshots

  private snapshotsDir(): string {
    const dir = join(this.options.dataDir, 'snapshots');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  async gatherSnapshot(params: { clusterId: Id; module: string }): Promise<SnapshotInfo> {
    const clusterId = requireId(params.clusterId, 'clusterId');
    const module = checkModuleName(params.module);
    const cluster = this.store.cluster(clusterId);
    const rows = this.installedNodes(clusterId);
    if (rows.length === 0)
      throw new ConsoleError('refused', 'no node of this cluster has an agent installed by this console');
    const createdMs = Date.now();
    const gathered = await Promise.all(
      rows.map(async (row) => {
        const progress = (status: string, value: number) =>
          this.emit({ type: 'snapshot', clusterId, module, node: row.name, status, progress: value });
        progress('requesting', 0);
        try {
          const endpoint = await this.endpointOf(row);
          const path = `/api/v1/modules/${encodeURIComponent(module)}/snapshot`;
          const answer = await agentRequest(endpoint, 'GET', path, { timeoutMs: 300_000 });
          if (answer.status !== 200) parseAgentAnswer(endpoint, 'GET', path, answer);
          progress(`received ${Math.round(answer.body.length / 1024)} KiB`, 1);
          return { node: row.name, file: `${row.name}.zip`, data: answer.body, error: null };
        } catch (error) {
          const message = this.secrets.redact(errorMessage(error));
          progress(`failed: ${message}`, 1);
          return { node: row.name, file: `${row.name}.zip`, data: null, error: message };
        }
      }),
    );
    const got = gathered.filter(
      (entry): entry is { node: string; file: string; data: Buffer; error: null } => entry.data !== null,
    );
    if (got.length === 0)
      throw new ConsoleError(
        'unreachable',
        `no node gave a snapshot: ${gathered.map((entry) => `${entry.node}: ${entry.error}`).join('; ')}`,
      );
    const manifest: ArchiveManifest = {
      format: 'hakit-snapshots',
      version: 1,
      module,
      cluster: cluster.name,
      createdMs,
      nodes: gathered.map((entry) => ({
        node: entry.node,
        file: entry.file,
        bytes: entry.data?.length ?? 0,
        error: entry.error,
      })),
    };
    const archive = await buildArchive(manifest, got);
    const stamp = new Date(createdMs).toISOString().replace(/[:.]/g, '-');
    const file = join(this.snapshotsDir(), `${cluster.name}_${module}_${stamp}.zip`);
    writeFileSync(file, archive, { mode: 0o600 });
    const info = this.store.addSnapshot(
      clusterId,
      module,
      file,
      archive.length,
      got.map((entry) => entry.node),
    );
    this.store.audit(
      'snapshot',
      `${module} on ${got.map((entry) => entry.node).join(', ')}`,
      `hakit -H "*" snapshot -m ${module} /tmp/${module}.zip`,
      `${archive.length} bytes in ${file}`,
    );
    return info;
  }

  async listSnapshots(params: { clusterId: Id }): Promise<SnapshotInfo[]> {
    return this.store.snapshots(requireId(params.clusterId, 'clusterId'));
  }

  async openSnapshot(
    params: { snapshotId: Id } | { fileName: string; contentBase64: string },
  ): Promise<SnapshotContent> {
    let buffer: Buffer;
    let name: string;
    if ('snapshotId' in params) {
      const info = this.store.snapshot(requireId(params.snapshotId, 'snapshotId'));
      if (!existsSync(info.file)) throw notFound(`the snapshot file ${info.file} is gone`);
      buffer = readFileSync(info.file);
      name = info.file;
    } else {
      buffer = Buffer.from(requireString(params.contentBase64, 'content', 512 * 1024 * 1024), 'base64');
      name = requireString(params.fileName, 'fileName', 512);
    }
    try {
      return await openSnapshotArchive(buffer, name.replace(/\.zip$/, ''));
    } catch (error) {
      throw badInput(`${name} is not a snapshot this console reads: ${errorMessage(error)}`);
    }
  }

  async auditLog(params: { limit: number }): Promise<AuditEntry[]> {
    return this.store.auditLog(params.limit);
  }

  async tryLocalLab(): Promise<{ siteId: Id; clusterId: Id }> {
    return this.lab.run();
  }
}
