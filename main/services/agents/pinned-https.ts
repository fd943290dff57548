// HTTPS to a node's agent with its certificate pinned by SHA-256 fingerprint. The TLS connection is
// made and its certificate checked before the request (and its bearer token) is handed to it, so
// nothing reaches a host that is not the pinned node. No TLS session reuse (a resumed session shows
// no certificate to check). Bounded in time and in answer size.
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { checkServerIdentity, connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';

export const answerBytesMax = 64 * 1024 * 1024;

export interface AgentEndpoint {
  host: string;
  port: number;
  /** `AB:CD:...` as `hakit level` prints it. */
  fingerprint: string;
  token: string;
  /** The console CA (PEM) when the node's certificate was issued by it: a certificate that chains to
   *  it and names this host is accepted even after the node's certificate was renewed. */
  ca?: string;
}

export interface AgentAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
}

type ConnectCallback = (error: Error | null, socket?: Duplex) => void;

function pinnedConnection(endpoint: AgentEndpoint, timeoutMs: number, done: ConnectCallback): void {
  const socket: TLSSocket = tlsConnect({
    host: endpoint.host,
    port: endpoint.port,
    // The certificate is self-signed (or signed by the console's CA): identity is the pin below.
    rejectUnauthorized: false,
    servername: /^[0-9.:]+$/.test(endpoint.host) ? undefined : endpoint.host,
    minVersion: 'TLSv1.2',
    ...(endpoint.ca ? { ca: endpoint.ca } : {}),
  });
  const timer = setTimeout(() => {
    socket.destroy();
    done(new AgentRequestError(`${endpoint.host}:${endpoint.port}: no TLS handshake within ${timeoutMs} ms`));
  }, timeoutMs);
  socket.once('secureConnect', () => {
    clearTimeout(timer);
    const peer = socket.getPeerCertificate();
    const presented = peer.fingerprint256;
    // With the CA pinned: the chain ends at the console CA and the certificate names this host.
    const byCa =
      endpoint.ca !== undefined &&
      socket.authorized &&
      checkServerIdentity(endpoint.host, peer) === undefined;
    if (!byCa && presented !== endpoint.fingerprint) {
      socket.destroy();
      done(
        new AgentRequestError(
          `${endpoint.host}:${endpoint.port} presents certificate ${presented ?? '(none)'}, not the pinned ${endpoint.fingerprint}: refused`,
        ),
      );
      return;
    }
    done(null, socket);
  });
  socket.once('error', (error) => {
    clearTimeout(timer);
    done(new AgentRequestError(`${endpoint.host}:${endpoint.port}: ${error.message}`));
  });
}

/** One agent per request: its only connection is the pinned one, never reused, no TLS session cache. */
class PinnedAgent extends HttpsAgent {
  constructor(
    private readonly endpoint: AgentEndpoint,
    private readonly timeoutMs: number,
  ) {
    super({ keepAlive: false, maxCachedSessions: 0 });
  }

  override createConnection(
    _options: unknown,
    callback?: (error: Error | null, stream: Duplex) => void,
  ): undefined {
    pinnedConnection(this.endpoint, this.timeoutMs, (error, socket) => {
      // Node's agent takes (error) on failure and (null, socket) on success.
      if (error !== null || socket === undefined)
        callback?.(error ?? new AgentRequestError('no socket'), undefined as never);
      else callback?.(null, socket);
    });
    return undefined;
  }
}

export function openAgentRequest(
  endpoint: AgentEndpoint,
  method: string,
  path: string,
  headers: Record<string, string>,
  timeoutMs: number,
): ClientRequest {
  return httpsRequest({
    host: endpoint.host,
    port: endpoint.port,
    method,
    path,
    headers: { authorization: `Bearer ${endpoint.token}`, ...headers },
    agent: new PinnedAgent(endpoint, timeoutMs),
    timeout: timeoutMs,
  });
}

export function agentRequest(
  endpoint: AgentEndpoint,
  method: string,
  path: string,
  options: { body?: Buffer | string; contentType?: string; timeoutMs: number },
): Promise<AgentAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.contentType) headers['content-type'] = options.contentType;
    const request = openAgentRequest(endpoint, method, path, headers, options.timeoutMs);
    request.on('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > answerBytesMax) {
          request.destroy(
            new AgentRequestError(`answer from ${endpoint.host} larger than ${answerBytesMax} bytes`),
          );
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
      );
      response.on('error', (error: Error) =>
        reject(new AgentRequestError(`${endpoint.host}: ${error.message}`)),
      );
    });
    request.on('timeout', () =>
      request.destroy(
        new AgentRequestError(
          `${endpoint.host}:${endpoint.port} did not answer within ${options.timeoutMs} ms`,
        ),
      ),
    );
    request.on('error', (error: Error) =>
      reject(
        error instanceof AgentRequestError
          ? error
          : new AgentRequestError(`${endpoint.host}:${endpoint.port}: ${error.message}`),
      ),
    );
    request.end(options.body);
  });
}

/** JSON answer or an error that carries the agent's own `{error, detail}`. */
export async function agentJson<T>(
  endpoint: AgentEndpoint,
  method: string,
  path: string,
  body: unknown,
  timeoutMs = 20_000,
): Promise<T> {
  const answer = await agentRequest(endpoint, method, path, {
    body: body === undefined ? undefined : JSON.stringify(body),
    contentType: body === undefined ? undefined : 'application/json',
    timeoutMs,
  });
  return parseAgentAnswer<T>(endpoint, method, path, answer);
}

export function parseAgentAnswer<T>(
  endpoint: AgentEndpoint,
  method: string,
  path: string,
  answer: AgentAnswer,
): T {
  let parsed: unknown;
  try {
    parsed = answer.body.length > 0 ? JSON.parse(answer.body.toString('utf8')) : {};
  } catch {
    parsed = null;
  }
  if (answer.status < 200 || answer.status >= 300) {
    const shape = (parsed ?? {}) as { error?: string; detail?: string | null };
    const detail = shape.detail ? `: ${shape.detail}` : '';
    throw new AgentRequestError(
      `${method} ${path} on ${endpoint.host} answered ${answer.status} ${shape.error ?? answer.body.toString('utf8').slice(0, 200)}${detail}`,
    );
  }
  if (parsed === null)
    throw new AgentRequestError(`${method} ${path} on ${endpoint.host}: answer is not JSON`);
  return parsed as T;
}
