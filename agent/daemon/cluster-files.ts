// The node's copy of cluster.xml (`$SAFEVAR/cluster/cluster.xml`): read for validating modules
// against its lans, replaced by `cluster config FILE` only when the new one has no error.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadClusterXml } from '../config/cluster-config.ts';
import type { ClusterConfig } from '../config/model.ts';
import { formatProblem } from '../config/problems.ts';
import { writeFileDurably } from './durable-file.ts';
import type { NodePaths } from './paths.ts';

export const clusterXmlBytesMax = 1024 * 1024;

export function clusterFile(paths: NodePaths): string {
  return join(paths.clusterDir, 'cluster.xml');
}

/** The applied cluster configuration, or undefined when there is none (or it is damaged). */
export function readClusterForValidation(paths: NodePaths): ClusterConfig | undefined {
  const file = clusterFile(paths);
  if (!existsSync(file)) return undefined;
  const loaded = loadClusterXml(readFileSync(file, 'utf8'), { file });
  return loaded.ok ? loaded.cluster : undefined;
}

export function signatureOf(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex').slice(0, 16);
}

/** `cluster config FILE`: checks FILE completely, then replaces the node's cluster.xml. */
export function applyClusterFile(paths: NodePaths, source: string): string {
  if (!existsSync(source)) throw new Error(`cluster config: ${source} does not exist`);
  const text = readFileSync(source, 'utf8');
  if (Buffer.byteLength(text) > clusterXmlBytesMax)
    throw new Error(`cluster config: ${source} is over ${clusterXmlBytesMax} bytes`);
  const loaded = loadClusterXml(text, { file: source });
  const lines = loaded.problems.map(formatProblem);
  if (!loaded.ok) throw new Error(`cluster configuration refused:\n${lines.join('\n')}`);
  writeFileDurably(clusterFile(paths), text, 0o644);
  return [...lines, `cluster configuration applied (signature ${signatureOf(text)})`].join('\n');
}

export function clusterConfinfo(paths: NodePaths): string {
  const file = clusterFile(paths);
  if (!existsSync(file)) return 'no cluster configuration';
  const content = readFileSync(file);
  return `${file}: signature ${signatureOf(content)}, ${content.length} bytes`;
}

/** `cluster confcheck FILE`: the problems of a cluster.xml, without applying it. */
export function checkClusterFile(source: string): { ok: boolean; text: string } {
  if (!existsSync(source)) return { ok: false, text: `cluster confcheck: ${source} does not exist` };
  const loaded = loadClusterXml(readFileSync(source, 'utf8'), { file: source });
  const lines = loaded.problems.map(formatProblem);
  return {
    ok: loaded.ok,
    text: [...lines, loaded.ok ? `${source}: cluster configuration is valid` : ''].filter(Boolean).join('\n'),
  };
}

export function clusterKeyFile(paths: NodePaths): string {
  return join(paths.clusterDir, 'cluster.key');
}

/** `cluster genkey`: a new key for authenticating heartbeats; `-G` distributes it. */
export function generateClusterKey(paths: NodePaths): string {
  writeFileDurably(clusterKeyFile(paths), `${randomBytes(32).toString('hex')}\n`, 0o600);
  return `cluster key generated in ${clusterKeyFile(paths)}; push it to every node with: hakit -H "*" -G`;
}

export function deleteClusterKey(paths: NodePaths): string {
  rmSync(clusterKeyFile(paths), { force: true });
  return 'cluster key deleted; push the change with: hakit -H "*" -G';
}
