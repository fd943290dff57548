// `/nodes/<node>/...`: the node a client talks to forwards the request to another node of
// cluster.xml, with the node-to-node key and the caller's role (never more than the key's).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readClusterForValidation } from '../daemon/cluster-files.ts';
import type { NodePaths } from '../daemon/paths.ts';
import type { Credentials } from './credentials.ts';
import { requestNode } from './node-client.ts';
import { readTrust } from './node-trust.ts';
import type { Caller } from './routes.ts';

export const proxyBodyBytesMax = 64 * 1024 * 1024;
const proxyTimeoutMs = 60_000;
export const apiHttpsPortDefault = 9453;

export function nodeAddress(paths: NodePaths, node: string): string | null {
  const cluster = readClusterForValidation(paths);
  if (!cluster) return null;
  const lan = cluster.lans.find((candidate) => candidate.name === cluster.commandLan) ?? cluster.lans[0];
  return lan?.nodes.find((candidate) => candidate.name === node)?.addr.host ?? null;
}

function fail(response: ServerResponse, status: number, error: string): void {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify({ error, detail: null }));
}

export async function proxyToNode(
  paths: NodePaths,
  _credentials: Credentials,
  node: string,
  path: string,
  request: IncomingMessage,
  response: ServerResponse,
  caller: Caller,
): Promise<void> {
  const host = nodeAddress(paths, node);
  if (!host) return fail(response, 404, `node ${node} is not in this node's cluster.xml`);
  const trust = readTrust(paths);
  const fingerprint = trust.fingerprints[node];
  if (!trust.token || !fingerprint)
    return fail(response, 502, `no node-to-node credentials for ${node}; run: hakit -H "*" -G`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > proxyBodyBytesMax) return fail(response, 413, `body larger than ${proxyBodyBytesMax} bytes`);
    chunks.push(chunk as Buffer);
  }
  const headers: Record<string, string> = { 'x-hakit-on-behalf': `${caller.role} ${caller.name}` };
  for (const name of ['content-type', 'last-event-id']) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  try {
    const answer = await requestNode({
      host,
      port: apiHttpsPortDefault,
      method: request.method ?? 'GET',
      path,
      token: trust.token,
      fingerprint,
      headers,
      body: Buffer.concat(chunks),
      timeoutMs: proxyTimeoutMs,
    });
    const contentType = answer.headers['content-type'];
    response.writeHead(answer.status, {
      'content-type': typeof contentType === 'string' ? contentType : 'application/octet-stream',
    });
    response.end(answer.body);
  } catch (error) {
    fail(response, 502, `node ${node} (${host}): ${(error as Error).message}`);
  }
}
