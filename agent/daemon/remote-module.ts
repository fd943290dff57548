// A module checker watching a module on another node: its state through that node's API, with
// the node's certificate pinned and the node-to-node key (see agent/api/node-trust.ts).
import { requestNode } from '../api/node-client.ts';
import { readTrust } from '../api/node-trust.ts';
import type { ProbeResult } from '../checkers/probes.ts';
import type { ModuleStateName, Readiness } from '../core/states.ts';
import type { NodePaths } from './paths.ts';
import { readClusterForValidation } from './cluster-files.ts';

export function isReadyState(state: ModuleStateName, readiness: Readiness): boolean {
  return readiness === 'Ready' && state !== 'STOP' && state !== 'WAIT';
}

/** The pin for a host: by address, or by the name of the cluster node that has this address. */
function fingerprintFor(paths: NodePaths, host: string): string | undefined {
  const trust = readTrust(paths);
  if (trust.fingerprints[host]) return trust.fingerprints[host];
  const cluster = readClusterForValidation(paths);
  const node = cluster?.lans.flatMap((lan) => lan.nodes).find((candidate) => candidate.addr.host === host);
  return node ? trust.fingerprints[node.name] : undefined;
}

export async function remoteModuleReady(
  paths: NodePaths,
  module: string,
  remote: { host: string; port: number; timeoutMs: number },
): Promise<ProbeResult> {
  const trust = readTrust(paths);
  const fingerprint = fingerprintFor(paths, remote.host);
  if (!trust.token || !fingerprint) {
    return { up: false, detail: `no node-to-node credentials for ${remote.host}; run: hakit -H "*" -G` };
  }
  try {
    const answer = await requestNode({
      host: remote.host,
      port: remote.port,
      method: 'GET',
      path: `/api/v1/modules/${encodeURIComponent(module)}/state`,
      token: trust.token,
      fingerprint,
      timeoutMs: remote.timeoutMs,
    });
    if (answer.status !== 200)
      return { up: false, detail: `module ${module} on ${remote.host}: HTTP ${answer.status}` };
    const body = JSON.parse(answer.body.toString('utf8')) as {
      data?: { state?: ModuleStateName; readiness?: Readiness; readyGeneration?: number };
    };
    const state = body.data?.state;
    const readiness = body.data?.readiness;
    if (!state || !readiness)
      return { up: false, detail: `module ${module} on ${remote.host}: unexpected answer` };
    const result: ProbeResult = {
      up: isReadyState(state, readiness),
      detail: `module ${module} on ${remote.host} is ${state} (${readiness})`,
    };
    if (typeof body.data?.readyGeneration === 'number') result.readyGeneration = body.data.readyGeneration;
    return result;
  } catch (error) {
    return { up: false, detail: `module ${module} on ${remote.host}: ${(error as Error).message}` };
  }
}
