// The console store: the user's work (sites > clusters > nodes, lans, modules and their files,
// what was deployed where, install history, the action audit log, the snapshot index) in one
// SQLite file. Every write that touches more than one row is one transaction. Secrets are never
// here: nodes and clusters hold only references to entries of the secret store.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type {
  AuditEntry,
  ClusterView,
  Id,
  InstallNodeReport,
  InstallRun,
  LanView,
  ModuleDetail,
  ModuleFile,
  ModuleKind,
  ModuleSummary,
  NodeView,
  SiteSummary,
  SnapshotInfo,
} from '../../api/contract.ts';
import { badInput, ConsoleError, notFound } from '../errors.ts';
import { storedSignature } from '../modules/signature.ts';
import { hostKeyFingerprint } from './host-keys.ts';
import { consoleMigrations, type Migration, migrate, type MigrationReport } from './migrations.ts';

const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const moduleNamePattern = /^[A-Za-z0-9_]{1,32}$/;
export const auditRowsMax = 100_000;

export function checkName(what: string, name: string, pattern: RegExp = namePattern): string {
  if (typeof name !== 'string' || !pattern.test(name))
    throw badInput(
      `${what} name '${String(name)}' is not valid: letters, digits, '_', '.', '-', starting with a letter or digit, at most 63`,
    );
  return name;
}

export function checkModuleName(name: string): string {
  if (typeof name !== 'string' || !moduleNamePattern.test(name))
    throw badInput(`module name '${String(name)}' is not valid: 1 to 32 letters, digits or '_'`);
  return name;
}

export function checkAddress(address: string): string {
  if (typeof address !== 'string' || !/^[A-Za-z0-9:._-]{1,253}$/.test(address))
    throw badInput(`address '${String(address)}' is not a host name or an IP address`);
  return address;
}

export function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw badInput(`${what} ${String(port)} is not a port (1 to 65535)`);
  return port;
}

interface SiteRow {
  id: number;
  name: string;
  notes: string;
  created_ms: number;
  updated_ms: number;
}

interface ClusterRow {
  id: number;
  site_id: number;
  name: string;
  node_key_secret: string | null;
  /** The cluster key (heartbeats, replication; 64 hex) in the secret store. */
  cluster_key_secret: string | null;
}

export interface NodeRow {
  id: number;
  cluster_id: number;
  name: string;
  address: string;
  ssh_port: number;
  ssh_user: string;
  ssh_auth: 'password' | 'key';
  ssh_secret: string | null;
  host_key: string | null;
  api_port: number;
  api_fingerprint: string | null;
  api_token_secret: string | null;
  agent_version: string | null;
  installed_ms: number | null;
  /** 1: the API certificate was issued by the console CA (pinned: the CA). */
  api_ca: number;
}

interface ModuleRow {
  id: number;
  cluster_id: number;
  name: string;
  kind: ModuleKind;
  module_id: number;
  template: string;
  userconfig: string;
  updated_ms: number;
}

export interface NewNode {
  name: string;
  address: string;
  sshPort: number;
  sshUser: string;
  sshAuth: 'password' | 'key';
  sshSecret: string | null;
}

export interface NewModule {
  clusterId: Id;
  name: string;
  kind: ModuleKind;
  template: string;
  userconfig: string;
  files: ModuleFile[];
  /** A given module id (import, pull); otherwise the lowest free one of the cluster. */
  moduleId?: number;
}

export function nodeView(row: NodeRow): NodeView {
  return {
    id: row.id,
    clusterId: row.cluster_id,
    name: row.name,
    address: row.address,
    sshPort: row.ssh_port,
    sshUser: row.ssh_user,
    sshAuth: row.ssh_auth,
    hostKeyFingerprint: row.host_key ? hostKeyFingerprint(Buffer.from(row.host_key, 'base64')) : null,
    apiPort: row.api_port,
    apiFingerprint: row.api_fingerprint,
    hasApiToken: row.api_token_secret !== null,
    apiCertificateByCa: row.api_ca === 1,
    agentVersion: row.agent_version,
    installedMs: row.installed_ms,
  };
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SiteStore {
  readonly db: BetterSqlite3.Database;
  readonly migration: MigrationReport;

  /** `file` null: in memory (tests). */
  constructor(
    readonly file: string | null,
    migrations: readonly Migration[] = consoleMigrations,
    private readonly nowMs: () => number = Date.now,
  ) {
    if (file !== null) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      this.db = new Database(file ?? ':memory:', { timeout: 5000 });
    } catch (error) {
      throw new ConsoleError(
        'internal',
        `cannot open the console store ${file}: ${(error as Error).message}`,
      );
    }
    try {
      // A store from a newer console is refused before anything (even the journal mode) changes.
      const version = Number(this.db.pragma('user_version', { simple: true }));
      if (version > migrations.length)
        throw new ConsoleError(
          'refused',
          `the console store ${file} is at schema version ${version}, newer than this console knows (${migrations.length}): ` +
            'use a newer console; the store was left untouched',
        );
      if (file !== null) this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      const integrity = this.db.pragma('quick_check', { simple: true });
      if (integrity !== 'ok')
        throw new ConsoleError('refused', `the console store ${file} is damaged (${String(integrity)})`);
      this.migration = migrate(this.db, file, migrations, this.nowMs());
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  transaction<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  // --- sites

  listSites(): SiteSummary[] {
    const rows = this.db
      .prepare<[], SiteRow & { cluster_count: number; node_count: number }>(
        `SELECT s.*, (SELECT COUNT(*) FROM clusters c WHERE c.site_id = s.id) AS cluster_count,
                (SELECT COUNT(*) FROM nodes n JOIN clusters c ON n.cluster_id = c.id WHERE c.site_id = s.id) AS node_count
         FROM sites s ORDER BY s.name`,
      )
      .all();
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      notes: row.notes,
      clusterCount: row.cluster_count,
      nodeCount: row.node_count,
      updatedMs: row.updated_ms,
    }));
  }

  site(siteId: Id): SiteSummary {
    const found = this.listSites().find((site) => site.id === siteId);
    if (!found) throw notFound(`no site with id ${siteId}`);
    return found;
  }

  createSite(name: string, notes: string): SiteSummary {
    checkName('site', name);
    if (typeof notes !== 'string' || notes.length > 10_000) throw badInput('notes: at most 10000 characters');
    try {
      const id = Number(
        this.db
          .prepare('INSERT INTO sites (name, notes, created_ms, updated_ms) VALUES (?, ?, ?, ?)')
          .run(name, notes, this.nowMs(), this.nowMs()).lastInsertRowid,
      );
      return this.site(id);
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConsoleError('conflict', `a site named ${name} already exists`);
      throw error;
    }
  }

  deleteSite(siteId: Id): void {
    const changes = this.db.prepare('DELETE FROM sites WHERE id = ?').run(siteId).changes;
    if (changes === 0) throw notFound(`no site with id ${siteId}`);
  }

  private touchSite(siteId: Id): void {
    this.db.prepare('UPDATE sites SET updated_ms = ? WHERE id = ?').run(this.nowMs(), siteId);
  }

  private touchCluster(clusterId: Id): void {
    const cluster = this.clusterRow(clusterId);
    this.db.prepare('UPDATE clusters SET updated_ms = ? WHERE id = ?').run(this.nowMs(), clusterId);
    this.touchSite(cluster.site_id);
  }

  // --- clusters

  clusterRow(clusterId: Id): ClusterRow {
    const row = this.db.prepare<[number], ClusterRow>('SELECT * FROM clusters WHERE id = ?').get(clusterId);
    if (!row) throw notFound(`no cluster with id ${clusterId}`);
    return row;
  }

  clusterIdsOfSite(siteId: Id): Id[] {
    return this.db
      .prepare<[number], { id: number }>('SELECT id FROM clusters WHERE site_id = ? ORDER BY name')
      .all(siteId)
      .map((row) => row.id);
  }

  createCluster(siteId: Id, name: string): Id {
    checkName('cluster', name);
    this.site(siteId);
    try {
      const id = Number(
        this.db
          .prepare('INSERT INTO clusters (site_id, name, created_ms, updated_ms) VALUES (?, ?, ?, ?)')
          .run(siteId, name, this.nowMs(), this.nowMs()).lastInsertRowid,
      );
      this.touchSite(siteId);
      return id;
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConsoleError('conflict', `this site already has a cluster named ${name}`);
      throw error;
    }
  }

  deleteCluster(clusterId: Id): void {
    const cluster = this.clusterRow(clusterId);
    this.transaction(() => {
      this.db.prepare('DELETE FROM clusters WHERE id = ?').run(clusterId);
      this.touchSite(cluster.site_id);
    });
  }

  setClusterKeySecret(clusterId: Id, ref: string): void {
    this.db.prepare('UPDATE clusters SET cluster_key_secret = ? WHERE id = ?').run(ref, clusterId);
  }

  setClusterNodeKeySecret(clusterId: Id, ref: string): void {
    this.db.prepare('UPDATE clusters SET node_key_secret = ? WHERE id = ?').run(ref, clusterId);
  }

  cluster(clusterId: Id): ClusterView {
    const row = this.clusterRow(clusterId);
    return {
      id: row.id,
      siteId: row.site_id,
      name: row.name,
      nodes: this.nodesOf(clusterId).map(nodeView),
      lans: this.lansOf(clusterId),
      modules: this.modulesOf(clusterId),
    };
  }

  // --- nodes

  nodesOf(clusterId: Id): NodeRow[] {
    return this.db
      .prepare<[number], NodeRow>('SELECT * FROM nodes WHERE cluster_id = ?')
      .all(clusterId)
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  nodeRow(nodeId: Id): NodeRow {
    const row = this.db.prepare<[number], NodeRow>('SELECT * FROM nodes WHERE id = ?').get(nodeId);
    if (!row) throw notFound(`no node with id ${nodeId}`);
    return row;
  }

  addNode(clusterId: Id, node: NewNode): NodeRow {
    checkName('node', node.name);
    checkAddress(node.address);
    checkPort(node.sshPort, 'SSH port');
    checkName('SSH user', node.sshUser, /^[a-z_][a-z0-9_.-]{0,31}$/);
    this.clusterRow(clusterId);
    try {
      return this.transaction(() => {
        const id = Number(
          this.db
            .prepare(
              `INSERT INTO nodes (cluster_id, name, address, ssh_port, ssh_user, ssh_auth, ssh_secret)
               VALUES (?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(clusterId, node.name, node.address, node.sshPort, node.sshUser, node.sshAuth, node.sshSecret)
            .lastInsertRowid,
        );
        // Every cluster has a default lan; a new node joins it at its address.
        const lan = this.ensureLan(clusterId, 'default');
        this.db
          .prepare('INSERT OR REPLACE INTO lan_addresses (lan_id, node_id, addr) VALUES (?, ?, ?)')
          .run(lan, id, node.address);
        this.touchCluster(clusterId);
        return this.nodeRow(id);
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConsoleError('conflict', `this cluster already has a node named ${node.name}`);
      throw error;
    }
  }

  updateNode(nodeId: Id, node: NewNode): NodeRow {
    const before = this.nodeRow(nodeId);
    checkName('node', node.name);
    checkAddress(node.address);
    checkPort(node.sshPort, 'SSH port');
    checkName('SSH user', node.sshUser, /^[a-z_][a-z0-9_.-]{0,31}$/);
    return this.transaction(() => {
      // A new address is a new host: its host key and certificate must be checked again.
      const moved = before.address !== node.address || before.ssh_port !== node.sshPort;
      this.db
        .prepare(
          `UPDATE nodes SET name = ?, address = ?, ssh_port = ?, ssh_user = ?, ssh_auth = ?, ssh_secret = ?,
             host_key = CASE WHEN ? THEN NULL ELSE host_key END WHERE id = ?`,
        )
        .run(
          node.name,
          node.address,
          node.sshPort,
          node.sshUser,
          node.sshAuth,
          node.sshSecret,
          moved ? 1 : 0,
          nodeId,
        );
      this.touchCluster(before.cluster_id);
      return this.nodeRow(nodeId);
    });
  }

  removeNode(nodeId: Id): NodeRow {
    const row = this.nodeRow(nodeId);
    this.transaction(() => {
      this.db.prepare('DELETE FROM nodes WHERE id = ?').run(nodeId);
      this.touchCluster(row.cluster_id);
    });
    return row;
  }

  pinHostKey(nodeId: Id, keyBase64: string | null): void {
    this.db.prepare('UPDATE nodes SET host_key = ? WHERE id = ?').run(keyBase64, nodeId);
  }

  recordInstall(
    nodeId: Id,
    values: { agentVersion: string; apiFingerprint: string; apiTokenSecret: string; apiPort: number },
  ): void {
    this.db
      .prepare(
        `UPDATE nodes SET agent_version = ?, api_fingerprint = ?, api_token_secret = ?, api_port = ?, installed_ms = ?, api_ca = 0
         WHERE id = ?`,
      )
      .run(
        values.agentVersion,
        values.apiFingerprint,
        values.apiTokenSecret,
        values.apiPort,
        this.nowMs(),
        nodeId,
      );
  }

  /** The node now serves a certificate issued by the console CA, with this fingerprint. */
  recordCaCertificate(nodeId: Id, fingerprint: string): void {
    this.db.prepare('UPDATE nodes SET api_fingerprint = ?, api_ca = 1 WHERE id = ?').run(fingerprint, nodeId);
  }

  // --- lans

  private ensureLan(clusterId: Id, name: string): Id {
    const found = this.db
      .prepare<[number, string], { id: number }>('SELECT id FROM lans WHERE cluster_id = ? AND name = ?')
      .get(clusterId, name);
    if (found) return found.id;
    return Number(
      this.db.prepare('INSERT INTO lans (cluster_id, name) VALUES (?, ?)').run(clusterId, name)
        .lastInsertRowid,
    );
  }

  lansOf(clusterId: Id): LanView[] {
    const lans = this.db
      .prepare<[number], { id: number; name: string }>(
        'SELECT id, name FROM lans WHERE cluster_id = ? ORDER BY id',
      )
      .all(clusterId);
    return lans.map((lan) => ({
      id: lan.id,
      name: lan.name,
      addresses: this.db
        .prepare<[number], { node_id: number; addr: string }>(
          'SELECT node_id, addr FROM lan_addresses WHERE lan_id = ? ORDER BY node_id',
        )
        .all(lan.id)
        .map((row) => ({ nodeId: row.node_id, addr: row.addr })),
    }));
  }

  setLan(clusterId: Id, name: string, addresses: { nodeId: Id; addr: string }[]): LanView {
    checkName('lan', name);
    const nodes = new Set(this.nodesOf(clusterId).map((node) => node.id));
    for (const entry of addresses) {
      if (!nodes.has(entry.nodeId)) throw badInput(`node ${entry.nodeId} is not in this cluster`);
      checkAddress(entry.addr);
    }
    return this.transaction(() => {
      const lanId = this.ensureLan(clusterId, name);
      this.db.prepare('DELETE FROM lan_addresses WHERE lan_id = ?').run(lanId);
      const insert = this.db.prepare('INSERT INTO lan_addresses (lan_id, node_id, addr) VALUES (?, ?, ?)');
      for (const entry of addresses) insert.run(lanId, entry.nodeId, entry.addr);
      this.touchCluster(clusterId);
      const lan = this.lansOf(clusterId).find((candidate) => candidate.id === lanId);
      if (!lan) throw new Error('lan vanished inside its own transaction');
      return lan;
    });
  }

  removeLan(lanId: Id): void {
    const row = this.db
      .prepare<[number], { cluster_id: number; name: string }>(
        'SELECT cluster_id, name FROM lans WHERE id = ?',
      )
      .get(lanId);
    if (!row) throw notFound(`no lan with id ${lanId}`);
    this.transaction(() => {
      this.db.prepare('DELETE FROM lans WHERE id = ?').run(lanId);
      this.touchCluster(row.cluster_id);
    });
  }

  // --- modules

  private moduleFiles(moduleDbId: Id): ModuleFile[] {
    return this.db
      .prepare<[number], { path: string; content: string; executable: number }>(
        'SELECT path, content, executable FROM module_files WHERE module_id = ? ORDER BY path',
      )
      .all(moduleDbId)
      .map((row) => ({ path: row.path, text: row.content, executable: row.executable === 1 }));
  }

  private summary(row: ModuleRow, files: ModuleFile[]): ModuleSummary {
    return {
      id: row.id,
      clusterId: row.cluster_id,
      name: row.name,
      kind: row.kind,
      moduleId: row.module_id,
      template: row.template,
      updatedMs: row.updated_ms,
      signature: storedSignature(row.userconfig, files),
      deployed: this.db
        .prepare<[number], { node_id: number; signature: string; at_ms: number }>(
          'SELECT node_id, signature, at_ms FROM module_deployments WHERE module_id = ? ORDER BY node_id',
        )
        .all(row.id)
        .map((deployment) => ({
          nodeId: deployment.node_id,
          signature: deployment.signature,
          atMs: deployment.at_ms,
        })),
    };
  }

  modulesOf(clusterId: Id): ModuleSummary[] {
    return this.db
      .prepare<[number], ModuleRow>('SELECT * FROM modules WHERE cluster_id = ? ORDER BY name')
      .all(clusterId)
      .map((row) => this.summary(row, this.moduleFiles(row.id)));
  }

  module(moduleDbId: Id): ModuleDetail {
    const row = this.db.prepare<[number], ModuleRow>('SELECT * FROM modules WHERE id = ?').get(moduleDbId);
    if (!row) throw notFound(`no module with id ${moduleDbId}`);
    const files = this.moduleFiles(moduleDbId);
    return { ...this.summary(row, files), userconfig: row.userconfig, files };
  }

  moduleByName(clusterId: Id, name: string): ModuleDetail | null {
    const row = this.db
      .prepare<[number, string], { id: number }>('SELECT id FROM modules WHERE cluster_id = ? AND name = ?')
      .get(clusterId, name);
    return row ? this.module(row.id) : null;
  }

  private freeModuleId(clusterId: Id): number {
    const used = new Set(
      this.db
        .prepare<[number], { module_id: number }>('SELECT module_id FROM modules WHERE cluster_id = ?')
        .all(clusterId)
        .map((row) => row.module_id),
    );
    for (let id = 1; id <= 255; id += 1) if (!used.has(id)) return id;
    throw new ConsoleError('conflict', 'this cluster already has 255 modules, the most module ids allow');
  }

  private checkFiles(files: ModuleFile[]): void {
    if (!Array.isArray(files) || files.length > 256) throw badInput('a module has at most 256 files');
    const seen = new Set<string>();
    for (const file of files) {
      if (
        typeof file.path !== 'string' ||
        !/^(bin|conf)\/[A-Za-z0-9_.-]{1,128}$/.test(file.path) ||
        file.path === 'conf/userconfig.xml'
      )
        throw badInput(
          `module file '${String(file.path)}': only bin/NAME and conf/NAME (not userconfig.xml)`,
        );
      if (seen.has(file.path)) throw badInput(`module file ${file.path} is given twice`);
      seen.add(file.path);
      if (typeof file.text !== 'string' || file.text.length > 1024 * 1024)
        throw badInput(`module file ${file.path}: text of at most 1 MiB`);
    }
  }

  createModule(module: NewModule): ModuleDetail {
    checkModuleName(module.name);
    this.checkFiles(module.files);
    this.clusterRow(module.clusterId);
    try {
      return this.transaction(() => {
        const moduleId = module.moduleId ?? this.freeModuleId(module.clusterId);
        const id = Number(
          this.db
            .prepare(
              `INSERT INTO modules (cluster_id, name, kind, module_id, template, userconfig, created_ms, updated_ms)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .run(
              module.clusterId,
              module.name,
              module.kind,
              moduleId,
              module.template,
              module.userconfig,
              this.nowMs(),
              this.nowMs(),
            ).lastInsertRowid,
        );
        this.writeFiles(id, module.files);
        this.addHistory(id, 'created');
        this.touchCluster(module.clusterId);
        return this.module(id);
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw new ConsoleError(
          'conflict',
          `this cluster already has a module named ${module.name} (or its id)`,
        );
      throw error;
    }
  }

  private writeFiles(moduleDbId: Id, files: ModuleFile[]): void {
    this.db.prepare('DELETE FROM module_files WHERE module_id = ?').run(moduleDbId);
    const insert = this.db.prepare(
      'INSERT INTO module_files (module_id, path, content, executable) VALUES (?, ?, ?, ?)',
    );
    for (const file of files) insert.run(moduleDbId, file.path, file.text, file.executable ? 1 : 0);
  }

  private addHistory(moduleDbId: Id, event: string): void {
    const module = this.module(moduleDbId);
    this.db
      .prepare(
        'INSERT INTO module_history (module_id, at_ms, event, signature, userconfig) VALUES (?, ?, ?, ?, ?)',
      )
      .run(moduleDbId, this.nowMs(), event, module.signature, module.userconfig);
  }

  saveModule(moduleDbId: Id, userconfig: string, files: ModuleFile[], event = 'edited'): ModuleDetail {
    if (typeof userconfig !== 'string' || userconfig.length > 1024 * 1024)
      throw badInput('userconfig.xml: text of at most 1 MiB');
    this.checkFiles(files);
    const before = this.module(moduleDbId);
    return this.transaction(() => {
      this.db
        .prepare('UPDATE modules SET userconfig = ?, updated_ms = ? WHERE id = ?')
        .run(userconfig, this.nowMs(), moduleDbId);
      this.writeFiles(moduleDbId, files);
      this.addHistory(moduleDbId, event);
      this.touchCluster(before.clusterId);
      return this.module(moduleDbId);
    });
  }

  setModuleKind(moduleDbId: Id, kind: ModuleKind): void {
    this.db.prepare('UPDATE modules SET kind = ? WHERE id = ?').run(kind, moduleDbId);
  }

  deleteModule(moduleDbId: Id): void {
    const module = this.module(moduleDbId);
    this.transaction(() => {
      this.db.prepare('DELETE FROM modules WHERE id = ?').run(moduleDbId);
      this.touchCluster(module.clusterId);
    });
  }

  recordDeployment(
    moduleDbId: Id,
    nodeId: Id,
    signature: string,
    how: 'push' | 'pull',
    atMs: number = this.nowMs(),
  ): void {
    this.transaction(() => {
      this.db
        .prepare(
          'INSERT OR REPLACE INTO module_deployments (module_id, node_id, signature, at_ms, how) VALUES (?, ?, ?, ?, ?)',
        )
        .run(moduleDbId, nodeId, signature, atMs, how);
      if (how === 'push') this.addHistory(moduleDbId, `deployed to ${this.nodeRow(nodeId).name}`);
    });
  }

  moduleHistory(moduleDbId: Id): { atMs: number; event: string; signature: string }[] {
    return this.db
      .prepare<[number], { at_ms: number; event: string; signature: string }>(
        'SELECT at_ms, event, signature FROM module_history WHERE module_id = ? ORDER BY id DESC LIMIT 200',
      )
      .all(moduleDbId)
      .map((row) => ({ atMs: row.at_ms, event: row.event, signature: row.signature }));
  }

  // --- install history

  startInstallRun(clusterId: Id): Id {
    return Number(
      this.db
        .prepare('INSERT INTO install_runs (cluster_id, started_ms) VALUES (?, ?)')
        .run(clusterId, this.nowMs()).lastInsertRowid,
    );
  }

  finishInstallRun(runId: Id, nodes: InstallNodeReport[]): InstallRun {
    const ok = nodes.every((node) => node.ok);
    this.db
      .prepare('UPDATE install_runs SET finished_ms = ?, ok = ?, report = ? WHERE id = ?')
      .run(this.nowMs(), ok ? 1 : 0, JSON.stringify(nodes), runId);
    const run = this.installRuns(null).find((candidate) => candidate.id === runId);
    if (!run) throw notFound(`no install run ${runId}`);
    return run;
  }

  installRuns(clusterId: Id | null): InstallRun[] {
    const rows = this.db
      .prepare<
        [number | null, number | null],
        {
          id: number;
          cluster_id: number;
          started_ms: number;
          finished_ms: number | null;
          ok: number | null;
          report: string;
        }
      >('SELECT * FROM install_runs WHERE (? IS NULL OR cluster_id = ?) ORDER BY id DESC LIMIT 100')
      .all(clusterId, clusterId);
    return rows.map((row) => ({
      id: row.id,
      clusterId: row.cluster_id,
      startedMs: row.started_ms,
      finishedMs: row.finished_ms,
      ok: row.ok === null ? null : row.ok === 1,
      nodes: JSON.parse(row.report) as InstallNodeReport[],
    }));
  }

  // --- audit log

  audit(action: string, target: string, cli: string, result: string): void {
    this.transaction(() => {
      this.db
        .prepare('INSERT INTO audit_log (at_ms, action, target, cli, result) VALUES (?, ?, ?, ?, ?)')
        .run(this.nowMs(), action, target, cli, result.slice(0, 4000));
      // Bounded: the oldest entries go first.
      this.db
        .prepare('DELETE FROM audit_log WHERE id <= (SELECT MAX(id) FROM audit_log) - ?')
        .run(auditRowsMax);
    });
  }

  auditLog(limit: number): AuditEntry[] {
    const bounded = Math.max(1, Math.min(Number.isInteger(limit) ? limit : 200, 5000));
    return this.db
      .prepare<
        [number],
        { id: number; at_ms: number; action: string; target: string; cli: string; result: string }
      >('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?')
      .all(bounded)
      .map((row) => ({
        id: row.id,
        atMs: row.at_ms,
        action: row.action,
        target: row.target,
        cli: row.cli,
        result: row.result,
      }));
  }

  // --- snapshots

  addSnapshot(clusterId: Id, module: string, file: string, bytes: number, nodes: string[]): SnapshotInfo {
    const id = Number(
      this.db
        .prepare(
          'INSERT INTO snapshots (cluster_id, module, file, created_ms, bytes, nodes) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run(clusterId, module, file, this.nowMs(), bytes, JSON.stringify(nodes)).lastInsertRowid,
    );
    const found = this.snapshots(clusterId).find((snapshot) => snapshot.id === id);
    if (!found) throw notFound(`snapshot ${id} vanished`);
    return found;
  }

  snapshots(clusterId: Id): SnapshotInfo[] {
    return this.db
      .prepare<
        [number],
        {
          id: number;
          cluster_id: number;
          module: string;
          file: string;
          created_ms: number;
          bytes: number;
          nodes: string;
        }
      >('SELECT * FROM snapshots WHERE cluster_id = ? ORDER BY id DESC')
      .all(clusterId)
      .map((row) => ({
        id: row.id,
        clusterId: row.cluster_id,
        module: row.module,
        file: row.file,
        createdMs: row.created_ms,
        bytes: row.bytes,
        nodes: JSON.parse(row.nodes) as string[],
      }));
  }

  snapshot(snapshotId: Id): SnapshotInfo {
    const row = this.db
      .prepare<[number], { cluster_id: number }>('SELECT cluster_id FROM snapshots WHERE id = ?')
      .get(snapshotId);
    const found = row
      ? this.snapshots(row.cluster_id).find((snapshot) => snapshot.id === snapshotId)
      : undefined;
    if (!found) throw notFound(`no snapshot with id ${snapshotId}`);
    return found;
  }
}
