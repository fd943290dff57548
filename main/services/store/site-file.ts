// A whole site as one file, to carry between machines (a field integrator prepares it offline on a
// laptop, the office imports it). JSON with a format tag, a version and a SHA-256 of the body, so a
// truncated or edited file is refused rather than half-imported. Secrets (SSH passwords and keys,
// API tokens, the node-to-node key) are never in it: they are entered again on the other machine.
// Pinned host keys and certificate fingerprints are carried: they are public and they are trust.
import { createHash } from 'node:crypto';
import type { Id, ModuleFile, ModuleKind } from '../../api/contract.ts';
import { badInput, ConsoleError } from '../errors.ts';
import type { SiteStore } from './site-store.ts';

export const siteFileFormat = 'hakit-site';
export const siteFileVersion = 1;
export const siteFileBytesMax = 64 * 1024 * 1024;

interface SiteFileNode {
  name: string;
  address: string;
  sshPort: number;
  sshUser: string;
  sshAuth: 'password' | 'key';
  hostKey: string | null;
  apiPort: number;
  apiFingerprint: string | null;
  agentVersion: string | null;
}

interface SiteFileModule {
  name: string;
  kind: ModuleKind;
  moduleId: number;
  template: string;
  userconfig: string;
  files: ModuleFile[];
  deployed: { node: string; signature: string; atMs: number }[];
}

interface SiteFileCluster {
  name: string;
  nodes: SiteFileNode[];
  lans: { name: string; addresses: { node: string; addr: string }[] }[];
  modules: SiteFileModule[];
}

export interface SiteFileBody {
  site: { name: string; notes: string };
  clusters: SiteFileCluster[];
}

interface SiteFile {
  format: string;
  version: number;
  exportedMs: number;
  sha256: string;
  body: SiteFileBody;
}

function digest(body: SiteFileBody): string {
  return createHash('sha256').update(JSON.stringify(body)).digest('hex');
}

export function exportSite(
  store: SiteStore,
  siteId: Id,
  nowMs: number,
): { fileName: string; content: string } {
  const site = store.site(siteId);
  const clusters: SiteFileCluster[] = store.clusterIdsOfSite(siteId).map((clusterId) => {
    const cluster = store.cluster(clusterId);
    const rows = store.nodesOf(clusterId);
    const nameOf = new Map(rows.map((row) => [row.id, row.name]));
    return {
      name: cluster.name,
      nodes: rows.map((row) => ({
        name: row.name,
        address: row.address,
        sshPort: row.ssh_port,
        sshUser: row.ssh_user,
        sshAuth: row.ssh_auth,
        hostKey: row.host_key,
        apiPort: row.api_port,
        apiFingerprint: row.api_fingerprint,
        agentVersion: row.agent_version,
      })),
      lans: cluster.lans.map((lan) => ({
        name: lan.name,
        addresses: lan.addresses.map((entry) => ({
          node: nameOf.get(entry.nodeId) ?? '?',
          addr: entry.addr,
        })),
      })),
      modules: cluster.modules.map((summary) => {
        const module = store.module(summary.id);
        return {
          name: module.name,
          kind: module.kind,
          moduleId: module.moduleId,
          template: module.template,
          userconfig: module.userconfig,
          files: module.files,
          deployed: module.deployed.map((entry) => ({
            node: nameOf.get(entry.nodeId) ?? '?',
            signature: entry.signature,
            atMs: entry.atMs,
          })),
        };
      }),
    };
  });
  const body: SiteFileBody = { site: { name: site.name, notes: site.notes }, clusters };
  const file: SiteFile = {
    format: siteFileFormat,
    version: siteFileVersion,
    exportedMs: nowMs,
    sha256: digest(body),
    body,
  };
  return { fileName: `${site.name}.hakit-site.json`, content: `${JSON.stringify(file, null, 1)}\n` };
}

function parseSiteFile(content: string): SiteFileBody {
  if (typeof content !== 'string' || content.length > siteFileBytesMax)
    throw badInput(`a site file is text of at most ${siteFileBytesMax} bytes`);
  let parsed: SiteFile;
  try {
    parsed = JSON.parse(content) as SiteFile;
  } catch (error) {
    throw badInput(`not a site file (JSON does not parse: ${(error as Error).message})`);
  }
  if (parsed?.format !== siteFileFormat) throw badInput(`not a site file (format is not ${siteFileFormat})`);
  if (parsed.version !== siteFileVersion)
    throw badInput(
      `site file version ${String(parsed.version)} is not supported (this console reads ${siteFileVersion})`,
    );
  if (typeof parsed.body !== 'object' || parsed.body === null || digest(parsed.body) !== parsed.sha256)
    throw badInput('the site file is damaged or was edited: its SHA-256 does not match its content');
  return parsed.body;
}

/** Imports in one transaction: all of the site or nothing. */
export function importSite(store: SiteStore, content: string, newName?: string): Id {
  const body = parseSiteFile(content);
  const name = newName ?? body.site.name;
  try {
    return store.transaction(() => {
      const site = store.createSite(name, body.site.notes ?? '');
      for (const cluster of body.clusters) {
        const clusterId = store.createCluster(site.id, cluster.name);
        const nodeIds = new Map<string, Id>();
        for (const node of cluster.nodes) {
          const row = store.addNode(clusterId, {
            name: node.name,
            address: node.address,
            sshPort: node.sshPort,
            sshUser: node.sshUser,
            sshAuth: node.sshAuth,
            sshSecret: null,
          });
          store.pinHostKey(row.id, node.hostKey);
          if (node.apiFingerprint !== null) {
            store.db
              .prepare('UPDATE nodes SET api_fingerprint = ?, api_port = ?, agent_version = ? WHERE id = ?')
              .run(node.apiFingerprint, node.apiPort, node.agentVersion, row.id);
          }
          nodeIds.set(node.name, row.id);
        }
        for (const lan of cluster.lans) {
          store.setLan(
            clusterId,
            lan.name,
            lan.addresses.map((entry) => {
              const nodeId = nodeIds.get(entry.node);
              if (nodeId === undefined)
                throw badInput(`lan ${lan.name} names node ${entry.node}, which is not in the file`);
              return { nodeId, addr: entry.addr };
            }),
          );
        }
        for (const module of cluster.modules) {
          const created = store.createModule({
            clusterId,
            name: module.name,
            kind: module.kind,
            moduleId: module.moduleId,
            template: module.template,
            userconfig: module.userconfig,
            files: module.files,
          });
          for (const deployed of module.deployed) {
            const nodeId = nodeIds.get(deployed.node);
            if (nodeId !== undefined)
              store.recordDeployment(created.id, nodeId, deployed.signature, 'pull', deployed.atMs);
          }
        }
      }
      return site.id;
    });
  } catch (error) {
    if (error instanceof ConsoleError) throw error;
    throw badInput(`the site file could not be imported (nothing was changed): ${(error as Error).message}`);
  }
}
