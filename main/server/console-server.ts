// Console server mode: the renderer's files and the console API on 127.0.0.1 only, so the same UI
// runs in a browser. The API is a WebSocket (`/rpc`) that needs the random access token printed at
// start (in the URL's fragment, which browsers never send to a server). The Host and Origin headers
// must name this server (no DNS rebinding, no other site's page). Every buffer is bounded: a client
// that stops reading is disconnected.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { type WebSocket, WebSocketServer } from 'ws';
import type { ClientMessage, ConsoleEvent, ServerMessage } from '../api/contract.ts';
import type { ConsoleServices } from '../services/console-services.ts';
import { dispatch, RpcError } from './rpc.ts';

export const messageBytesMax = 128 * 1024 * 1024;
export const clientBufferBytesMax = 32 * 1024 * 1024;
export const callsInFlightMax = 64;

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export interface ConsoleServerOptions {
  services: ConsoleServices;
  rendererDir: string;
  port: number;
  /** Given by tests; random otherwise. */
  token?: string;
  log: (message: string) => void;
}

export class ConsoleServer {
  readonly token: string;
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  private port = 0;
  private readonly clients = new Set<WebSocket>();
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: ConsoleServerOptions) {
    this.token = options.token ?? randomBytes(24).toString('base64url');
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/#token=${this.token}`;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private hostAllowed(request: IncomingMessage): boolean {
    const host = request.headers.host ?? '';
    return host === `127.0.0.1:${this.port}` || host === `localhost:${this.port}`;
  }

  private tokenMatches(given: string | null): boolean {
    if (given === null) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  private csp(): string {
    return [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self' 'unsafe-inline'",
      `connect-src 'self' ws://127.0.0.1:${this.port} ws://localhost:${this.port}`,
      "img-src 'self' data:",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
      "form-action 'none'",
    ].join('; ');
  }

  private serveStatic(request: IncomingMessage, response: ServerResponse): void {
    if (!this.hostAllowed(request)) {
      response.writeHead(403, { 'content-type': 'text/plain' }).end('wrong Host header\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const url = new URL(request.url ?? '/', 'http://localhost');
    const root = resolve(this.options.rendererDir);
    const wanted = url.pathname === '/' ? '/index.html' : decodeURIComponent(url.pathname);
    const file = normalize(join(root, wanted));
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, {
      'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
      'content-security-policy': this.csp(),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    });
    response.end(request.method === 'HEAD' ? undefined : readFileSync(file));
  }

  private send(socket: WebSocket, message: ServerMessage): void {
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > clientBufferBytesMax) {
      // A client this far behind has stopped reading: cut it off; it reconnects and reloads.
      socket.close(1013, 'too far behind');
      return;
    }
    socket.send(JSON.stringify(message));
  }

  private broadcast(event: ConsoleEvent): void {
    for (const socket of this.clients) this.send(socket, { event });
  }

  private onConnection(socket: WebSocket): void {
    this.clients.add(socket);
    let inFlight = 0;
    const services = this.options.services;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      let message: ClientMessage;
      try {
        message = JSON.parse(data.toString('utf8')) as ClientMessage;
      } catch {
        socket.close(1003, 'not JSON');
        return;
      }
      if (!Number.isInteger(message.id)) {
        socket.close(1003, 'message without an id');
        return;
      }
      if (inFlight >= callsInFlightMax) {
        this.send(socket, {
          id: message.id,
          error: { code: 'refused', message: `more than ${callsInFlightMax} calls at once` },
        });
        return;
      }
      inFlight += 1;
      dispatch(
        services,
        message.method,
        message.params,
        (text) => services.secrets.redact(text),
        this.options.log,
      )
        .then(
          (result) => this.send(socket, { id: message.id, result: result ?? null }),
          (error: unknown) =>
            this.send(socket, {
              id: message.id,
              error: error instanceof RpcError ? error.shape : { code: 'internal', message: String(error) },
            }),
        )
        .finally(() => {
          inFlight -= 1;
        });
    });
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => this.clients.delete(socket));
  }

  async listen(): Promise<void> {
    const server = createServer((request, response) => this.serveStatic(request, response));
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    const wss = new WebSocketServer({ noServer: true, maxPayload: messageBytesMax });
    server.on('upgrade', (request, socket, head) => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const origin = request.headers.origin;
      const originOk = origin === this.origin || origin === `http://localhost:${this.port}`;
      if (
        url.pathname !== '/rpc' ||
        !this.hostAllowed(request) ||
        !originOk ||
        !this.tokenMatches(url.searchParams.get('token'))
      ) {
        socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
        socket.destroy();
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws));
    });
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolvePromise();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.wss = wss;
    this.unsubscribe = this.options.services.onEvent((event) => this.broadcast(event));
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    for (const socket of this.clients) socket.terminate();
    this.clients.clear();
    this.wss?.close();
    await new Promise<void>((resolvePromise) => {
      if (!this.server) return resolvePromise();
      this.server.close(() => resolvePromise());
      this.server.closeAllConnections();
    });
  }
}
