// HTTPS requests to another node's API with its certificate pinned by fingerprint (no CA
// needed, no trust on first use), authenticated with the node-to-node key. Bounded in time and
// in the size of the answer.
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';

export const answerBytesMax = 64 * 1024 * 1024;

export interface NodeRequest {
  host: string;
  port: number;
  method: string;
  path: string;
  token: string;
  fingerprint: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
}

export interface NodeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export class NodeRequestError extends Error {
  override name = 'NodeRequestError';
}

export function requestNode(options: NodeRequest): Promise<NodeAnswer> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: options.host,
        port: options.port,
        method: options.method,
        path: options.path,
        headers: { authorization: `Bearer ${options.token}`, ...(options.headers ?? {}) },
        // The chain is self-signed: identity is proven by the pinned fingerprint below instead.
        rejectUnauthorized: false,
        // No TLS session reuse: a resumed session presents no certificate to check the pin against.
        agent: false,
        timeout: options.timeoutMs,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > answerBytesMax) {
            request.destroy(
              new NodeRequestError(`answer from ${options.host} larger than ${answerBytesMax} bytes`),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const presented = (socket as TLSSocket).getPeerCertificate().fingerprint256;
        if (presented !== options.fingerprint) {
          request.destroy(
            new NodeRequestError(
              `${options.host}:${options.port} presents certificate ${presented}, not the pinned ${options.fingerprint}`,
            ),
          );
        }
      });
    });
    request.on('timeout', () =>
      request.destroy(
        new NodeRequestError(`${options.host}:${options.port} did not answer within ${options.timeoutMs} ms`),
      ),
    );
    request.on('error', (error) =>
      reject(
        error instanceof NodeRequestError
          ? error
          : new NodeRequestError(`${options.host}:${options.port}: ${error.message}`),
      ),
    );
    request.end(options.body);
  });
}
