// The agent's HTTP(S) API: what the console, load balancers, scripts and other nodes talk to.
// HTTPS (9453) serves everything; HTTP (9010) serves the health check and, only when enabled,
// the API (`httpApi`), so passwords do not cross the network in clear by default.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { readSafeBuffer, writeSafeBuffer } from '../config/package-io.ts';
import { PackageError } from '../config/module-package.ts';
import type { CommandHandler } from '../daemon/command-handler.ts';
import type { ControlRequest, ControlResponse } from '../daemon/control-protocol.ts';
import { checkPackage, ModuleAdminError } from '../daemon/module-admin.ts';
import type { ModuleRegistry } from '../daemon/module-registry.ts';
import type { NodePaths } from '../daemon/paths.ts';
import { readModuleFolder } from '../config/package-io.ts';
import { hakitVersion } from '../version.ts';
import { type Credentials, parseRole, type Role, roleAllows } from './credentials.ts';
import type { EventHub } from './events.ts';
import {
  type ApiReply,
  type Caller,
  matchPath,
  openApiDocument,
  type Route,
  type RouteContext,
} from './routes.ts';
import { LoginThrottle, Sessions } from './sessions.ts';
import { certificateFingerprint, type TlsFiles } from './tls.ts';
import { roleOfVerb } from './verb-roles.ts';
import { proxyToNode } from './node-proxy.ts';
import { type NodeTrust, writeTrust } from './node-trust.ts';
import { applyClusterFile, clusterKeyFile } from '../daemon/cluster-files.ts';
import { writeFileDurably } from '../daemon/durable-file.ts';
import { createSnapshot } from './snapshot.ts';
import { PreflightInputError, preflightRequestOf, runPreflight } from './preflight.ts';
import { listScriptLogs, readScriptLog } from './script-logs.ts';
import { serveMosaic } from './mosaic.ts';
import { clusterPreflightRequestOf, runClusterPreflight } from './cluster-preflight.ts';

export const jsonBodyBytesMax = 1024 * 1024;
export const uploadBytesMax = 64 * 1024 * 1024;
const requestTimeoutMs = 120_000;

export interface ApiServerOptions {
  paths: NodePaths;
  registry: ModuleRegistry;
  handler: CommandHandler;
  credentials: Credentials;
  events: EventHub;
  tls: TlsFiles;
  httpPort: number;
  httpsPort: number;
  /** Serve the whole API on HTTP too (off by default: only the health check and the mosaic page). */
  httpApi: boolean;
  bindAddress: string;
  log: (message: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(text);
}

function readBody(request: IncomingMessage, bytesMax: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'] ?? '0');
    if (declared > bytesMax) {
      reject(new HttpError(413, `body larger than ${bytesMax} bytes`));
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > bytesMax) {
        reject(new HttpError(413, `body larger than ${bytesMax} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? '';
  const body = await readBody(request, jsonBodyBytesMax);
  if (body.length === 0) return {};
  if (!type.startsWith('application/json'))
    throw new HttpError(415, 'send JSON (content-type: application/json)');
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new HttpError(400, 'body is not a JSON object', (error as Error).message);
  }
}

function cookie(request: IncomingMessage, name: string): string | null {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return null;
}

function statusOf(response: ControlResponse): number {
  if (response.exitCode === 0) return 200;
  if (response.exitCode === 2) return 400;
  if (/not configured|not installed|does not exist/.test(response.error ?? '')) return 404;
  return 409;
}

function controlReply(response: ControlResponse): ApiReply {
  if (response.exitCode === 0 || (response.error === undefined && response.text.length > 0)) {
    return {
      status: 200,
      body: { exitCode: response.exitCode, text: response.text, data: response.data ?? null },
    };
  }
  return { status: statusOf(response), body: { error: response.error ?? 'failed', detail: response.text } };
}

const readyStates: Record<string, readonly string[]> = {
  mirror: ['PRIM', 'ALONE'],
  farm: ['UP'],
  light: ['UP'],
};

export class ApiServer {
  private readonly sessions = new Sessions();
  private readonly throttle = new LoginThrottle();
  private readonly routes: Route[];
  private servers: Server[] = [];
  private httpsServer: ReturnType<typeof createHttpsServer> | null = null;

  constructor(private readonly options: ApiServerOptions) {
    this.routes = this.buildRoutes();
  }

  private control(caller: Caller, request: Omit<ControlRequest, 'caller'>): Promise<ControlResponse> {
    return this.options.handler.handle({ ...request, caller: caller.name });
  }

  private requireModule(module: string): void {
    if (!this.options.registry.get(module) && !this.options.registry.installed().includes(module)) {
      throw new HttpError(404, `module ${module} is not installed on this node`);
    }
  }

  private buildRoutes(): Route[] {
    const action = (verb: string): Route => ({
      method: 'POST',
      path: `/api/v1/modules/:module/${verb}`,
      role: 'Control',
      summary: `hakit ${verb} -m MODULE [-i IDENTITY]; body {"identity"?: string}`,
      handle: async ({ request, params, caller }) => {
        const body = await readJson(request);
        const identity = typeof body.identity === 'string' ? body.identity : undefined;
        this.requireModule(params.module ?? '');
        const control: Omit<ControlRequest, 'caller'> = { verb, module: params.module, args: [] };
        if (identity !== undefined) control.identity = identity;
        return controlReply(await this.control(caller, control));
      },
    });
    const setting = (key: string, role: Role): Route => ({
      method: 'POST',
      path: `/api/v1/modules/:module/settings/${key}`,
      role,
      summary: `hakit ${key} on|off -m MODULE; body {"value": "on"|"off"}`,
      handle: async ({ request, params, caller }) => {
        const body = await readJson(request);
        if (body.value !== 'on' && body.value !== 'off')
          throw new HttpError(400, 'value must be "on" or "off"');
        this.requireModule(params.module ?? '');
        return controlReply(
          await this.control(caller, { verb: key, module: params.module, args: [body.value] }),
        );
      },
    });
    return [
      {
        method: 'GET',
        path: '/var/modules/:module/ready.txt',
        role: 'Monitor',
        summary:
          'Health check for load balancers: 200 OK when PRIM/ALONE Ready (mirror) or UP Ready (farm, light)',
        handle: async ({ params }) => {
          const supervisor = this.options.registry.get(params.module ?? '');
          const status = supervisor?.status();
          const ready =
            status !== undefined &&
            status.readiness === 'Ready' &&
            (readyStates[status.mode] ?? []).includes(status.state);
          return ready
            ? { status: 200, raw: { contentType: 'text/plain', data: Buffer.from('OK\n') } }
            : { status: 404, raw: { contentType: 'text/plain', data: Buffer.from('NOT FOUND\n') } };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/level',
        role: 'Monitor',
        summary: 'Agent version and the node certificate fingerprint',
        handle: async () => ({
          status: 200,
          body: {
            version: hakitVersion,
            node: hostname(),
            fingerprint: certificateFingerprint(this.options.tls),
          },
        }),
      },
      {
        method: 'GET',
        path: '/api/v1/openapi.json',
        role: 'Monitor',
        summary: 'This API, as OpenAPI 3',
        handle: async () => ({ status: 200, body: openApiDocument(this.routes, hakitVersion) }),
      },
      {
        method: 'GET',
        path: '/api/v1/modules',
        role: 'Monitor',
        summary: 'Installed modules with their state (hakit state)',
        handle: async () => ({
          status: 200,
          body: {
            modules: this.options.registry.installed().map((module) => {
              const status = this.options.registry.get(module)?.status();
              return {
                module,
                configured: status !== undefined,
                state: status?.state ?? null,
                readiness: status?.readiness ?? null,
              };
            }),
          },
        }),
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/state',
        role: 'Monitor',
        summary: 'hakit state -m MODULE -v',
        handle: async ({ params, caller }) => {
          this.requireModule(params.module ?? '');
          return controlReply(
            await this.control(caller, { verb: 'state', module: params.module, args: ['-v'] }),
          );
        },
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/resources',
        role: 'Monitor',
        summary: 'The resource table with history',
        handle: async ({ params }) => {
          const supervisor = this.options.registry.get(params.module ?? '');
          if (!supervisor) throw new HttpError(404, `module ${params.module} is not configured on this node`);
          return { status: 200, body: { resources: supervisor.status().resources } };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/log',
        role: 'Monitor',
        summary: 'hakit log -m MODULE -s LINES [-A]; query lines=N&verbose=1',
        handle: async ({ params, query, caller }) => {
          const lines = query.get('lines') ?? '300';
          if (!/^\d{1,6}$/.test(lines)) throw new HttpError(400, 'lines must be a whole number');
          const args = ['-s', lines, ...(query.get('verbose') === '1' ? ['-A'] : [])];
          this.requireModule(params.module ?? '');
          return controlReply(await this.control(caller, { verb: 'log', module: params.module, args }));
        },
      },
      ...['start', 'stop', 'restart', 'stopstart', 'forcestop'].map(action),
      setting('errd', 'Control'),
      setting('checker', 'Control'),
      setting('boot', 'Admin'),
      setting('failover', 'Admin'),
      {
        method: 'POST',
        path: '/api/v1/modules/:module/config',
        role: 'Admin',
        summary: 'hakit config -m MODULE: apply the installed module',
        handle: async ({ params, caller }) =>
          controlReply(await this.control(caller, { verb: 'config', module: params.module, args: [] })),
      },
      {
        method: 'PUT',
        path: '/api/v1/modules/:module/package',
        role: 'Admin',
        summary:
          'Upload a .safe (application/zip): validated completely, then installed and applied; ?apply=0 installs only',
        handle: async (context) => this.upload(context),
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/package',
        role: 'Admin',
        summary: 'hakit module package: the installed module as a .safe',
        handle: async ({ params }) => {
          this.requireModule(params.module ?? '');
          const data = await writeSafeBuffer(
            await readModuleFolder(join(this.options.paths.modulesDir, params.module ?? '')),
          );
          return {
            status: 200,
            raw: { contentType: 'application/zip', data, filename: `${params.module}.safe` },
          };
        },
      },
      {
        method: 'DELETE',
        path: '/api/v1/modules/:module',
        role: 'Admin',
        summary: 'hakit module uninstall -m MODULE',
        handle: async ({ params, caller }) =>
          controlReply(
            await this.control(caller, { verb: 'module', module: params.module, args: ['uninstall'] }),
          ),
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/snapshot',
        role: 'Control',
        summary: 'hakit snapshot -m MODULE: support snapshot zip; ?anonymize=1 for the anonymised variant',
        handle: async ({ params, query }) => {
          this.requireModule(params.module ?? '');
          const snapshot = await createSnapshot(
            this.options.paths,
            this.options.registry,
            params.module ?? '',
            {
              anonymize: query.get('anonymize') === '1',
            },
          );
          return {
            status: 200,
            raw: { contentType: 'application/zip', data: snapshot.zip, filename: snapshot.fileName },
          };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/scriptlogs',
        role: 'Monitor',
        summary: 'The script logs (userlog files, one per script run) of the module, newest first',
        handle: async ({ params }) => {
          this.requireModule(params.module ?? '');
          const dir = join(this.options.paths.moduleStateDir, params.module ?? '');
          return { status: 200, body: { files: listScriptLogs(dir) } };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/modules/:module/scriptlogs/:file',
        role: 'Monitor',
        summary: 'One script log (the last 256 KiB): {name, bytes, truncated, text}',
        handle: async ({ params }) => {
          this.requireModule(params.module ?? '');
          const dir = join(this.options.paths.moduleStateDir, params.module ?? '');
          const found = readScriptLog(dir, params.file ?? '');
          if (!found) throw new HttpError(404, `no script log ${params.file} for module ${params.module}`);
          return { status: 200, body: found };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/preflight',
        role: 'Monitor',
        summary:
          'Pre-flight checks for a module before deploy; query vip=, port=, udp=, dir= (repeatable), diskMb=, now= (caller ms), fuse=0|1, module=',
        handle: async ({ query }) => {
          let request;
          try {
            request = preflightRequestOf(query);
          } catch (error) {
            if (error instanceof PreflightInputError)
              throw new HttpError(400, 'bad pre-flight request', error.message);
            throw error;
          }
          const report = await runPreflight(request, {
            safeVar: this.options.paths.safeVar,
            moduleState:
              request.module === null
                ? null
                : (this.options.registry.get(request.module)?.status().state ?? null),
            nowMs: () => Date.now(),
          });
          return { status: 200, body: report };
        },
      },
      {
        method: 'POST',
        path: '/api/v1/preflight/cluster',
        // Admin: the node opens connections to the addresses and ports the caller names.
        role: 'Admin',
        summary:
          'Cluster-setup pre-flight from this node: body {"self", "nodes": [{"name", "apiPort", "addrs": {lan: addr}}], "tcp"?: [{"port", "what"}], "udp"?: [{"port", "what"}], "now"?: caller ms}; probes every peer on every lan, reports its OS family and clock',
        handle: async ({ request }) => {
          const body = await readJson(request);
          let parsed;
          try {
            parsed = clusterPreflightRequestOf(body);
          } catch (error) {
            if (error instanceof PreflightInputError)
              throw new HttpError(400, 'bad cluster pre-flight request', error.message);
            throw error;
          }
          return { status: 200, body: await runClusterPreflight(parsed, { nowMs: () => Date.now() }) };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/events',
        role: 'Monitor',
        summary:
          'Server-Sent Events: state, resource and log events; query module=, types=state,resource,log; resumes from Last-Event-ID',
        streams: true,
        handle: async ({ request, response, query }) => {
          const lastEventHeader = request.headers['last-event-id'] ?? query.get('lastEventId');
          const lastEventId =
            typeof lastEventHeader === 'string' && /^\d+$/.test(lastEventHeader)
              ? Number(lastEventHeader)
              : null;
          const types = query.get('types');
          this.options.events.attach(response, {
            module: query.get('module'),
            types: types
              ? types.split(',').filter((type) => ['state', 'resource', 'log'].includes(type))
              : null,
            lastEventId,
          });
          return null;
        },
      },
      {
        method: 'POST',
        path: '/api/v1/cli',
        role: 'Monitor',
        summary:
          'Run one hakit command on this node (distributed commands); body {"argv": [...]}; the role depends on the verb',
        handle: async ({ request, caller }) => {
          const body = await readJson(request);
          const argv = body.argv;
          if (
            !Array.isArray(argv) ||
            argv.length === 0 ||
            argv.length > 64 ||
            !argv.every((arg) => typeof arg === 'string' && arg.length <= 4096)
          ) {
            throw new HttpError(400, 'argv must be 1 to 64 strings');
          }
          const parsed = parseArgv(argv as string[]);
          const needed = roleOfVerb(parsed.verb, parsed.args);
          if (!roleAllows(caller.role, needed))
            throw new HttpError(403, `${parsed.verb} needs the ${needed} role`);
          const response = await this.control(caller, parsed);
          return {
            status: 200,
            body: { exitCode: response.exitCode, stdout: response.text, stderr: response.error ?? '' },
          };
        },
      },
      {
        method: 'PUT',
        path: '/api/v1/tls',
        role: 'Admin',
        summary:
          'Install the node certificate (e.g. signed by the console CA): body {"cert": PEM, "key": PEM}; checked, then served at once',
        handle: async ({ request }) => {
          const body = await readJson(request);
          if (typeof body.cert !== 'string' || typeof body.key !== 'string')
            throw new HttpError(400, 'cert and key must be PEM text');
          let fingerprint: string;
          try {
            const certificate = new X509Certificate(body.cert);
            if (!certificate.checkPrivateKey(createPrivateKey(body.key)))
              throw new Error('the key does not belong to the certificate');
            if (new Date(certificate.validTo).getTime() < Date.now())
              throw new Error(`the certificate expired on ${certificate.validTo}`);
            fingerprint = certificate.fingerprint256;
          } catch (error) {
            throw new HttpError(400, 'certificate refused', (error as Error).message);
          }
          // The key first, then the certificate: both are complete files before either is used.
          writeFileDurably(this.options.tls.keyFile, body.key, 0o600);
          writeFileDurably(this.options.tls.certFile, body.cert, 0o644);
          this.httpsServer?.setSecureContext({ cert: body.cert, key: body.key, minVersion: 'TLSv1.2' });
          return { status: 200, body: { fingerprint } };
        },
      },
      {
        method: 'PUT',
        path: '/api/v1/cluster/config',
        role: 'Admin',
        summary:
          'hakit -G: body {"clusterXml": string, "trust"?: node trust}; cluster.xml is checked before it replaces anything',
        handle: async ({ request }) => {
          const body = await readJson(request);
          if (typeof body.clusterXml !== 'string')
            throw new HttpError(400, 'clusterXml must be the text of cluster.xml');
          const dir = mkdtempSync(join(this.options.paths.safeVar, '.cluster-'));
          try {
            const file = join(dir, 'cluster.xml');
            writeFileSync(file, body.clusterXml, { mode: 0o600 });
            let text: string;
            try {
              text = applyClusterFile(this.options.paths, file);
            } catch (error) {
              throw new HttpError(400, 'cluster configuration refused', (error as Error).message);
            }
            if (body.clusterKey !== undefined && body.clusterKey !== null) {
              if (typeof body.clusterKey !== 'string' || !/^[0-9a-f]{64}$/i.test(body.clusterKey)) {
                throw new HttpError(400, 'clusterKey must be 64 hex characters');
              }
              writeFileDurably(clusterKeyFile(this.options.paths), `${body.clusterKey}\n`, 0o600);
            }
            const trust = body.trust as NodeTrust | undefined;
            if (trust !== undefined) {
              if (
                typeof trust !== 'object' ||
                trust === null ||
                trust.version !== 1 ||
                typeof trust.fingerprints !== 'object'
              ) {
                throw new HttpError(400, 'trust has the wrong shape');
              }
              writeTrust(this.options.paths, trust);
              if (trust.keyName && trust.token)
                this.options.credentials.importKey(trust.keyName, 'Admin', trust.token, Date.now());
            }
            return { status: 200, body: { applied: true, text } };
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      },
      {
        method: 'POST',
        path: '/api/v1/apikeys',
        role: 'Admin',
        summary:
          'Create an API key; body {"role": "Admin"|"Control"|"Monitor", "name": string}; the token is shown once',
        handle: async ({ request }) => {
          const body = await readJson(request);
          const role = typeof body.role === 'string' ? parseRole(body.role) : null;
          if (!role || typeof body.name !== 'string')
            throw new HttpError(400, 'give role (Admin, Control or Monitor) and name');
          return {
            status: 200,
            body: {
              name: body.name,
              role,
              token: this.options.credentials.createKey(body.name, role, Date.now()),
            },
          };
        },
      },
      {
        method: 'GET',
        path: '/api/v1/apikeys',
        role: 'Admin',
        summary: 'API keys (names and roles, never tokens)',
        handle: async () => ({ status: 200, body: { keys: this.options.credentials.listKeys() } }),
      },
      {
        method: 'DELETE',
        path: '/api/v1/apikeys/:name',
        role: 'Admin',
        summary: 'Delete an API key',
        handle: async ({ params }) =>
          this.options.credentials.deleteKey(params.name ?? '')
            ? { status: 200, body: { deleted: params.name } }
            : { status: 404, body: { error: `no API key named ${params.name}` } },
      },
    ];
  }

  private async upload({ request, params, query, caller }: RouteContext): Promise<ApiReply> {
    const module = params.module ?? '';
    const type = request.headers['content-type'] ?? '';
    if (!type.startsWith('application/zip') && !type.startsWith('application/octet-stream')) {
      throw new HttpError(415, 'send the .safe package as application/zip');
    }
    const data = await readBody(request, uploadBytesMax);
    let warnings: string[];
    try {
      // Everything is checked before anything on the node changes.
      const modulePackage = await readSafeBuffer(data);
      warnings = checkPackage(this.options.paths, module, modulePackage, `${module}.safe`);
    } catch (error) {
      if (error instanceof PackageError || error instanceof ModuleAdminError)
        throw new HttpError(400, 'package refused', error.message);
      throw error;
    }
    const apply = query.get('apply') !== '0';
    const running = this.options.registry.get(module);
    if (apply && running && running.status().state !== 'STOP') {
      throw new HttpError(
        409,
        `module ${module} is ${running.describe()}: stop it before applying a new configuration`,
      );
    }
    const dir = mkdtempSync(join(this.options.paths.safeVar, '.upload-'));
    try {
      const file = join(dir, `${module}.safe`);
      writeFileSync(file, data, { mode: 0o600 });
      const id = query.get('id');
      if (id !== null && !/^\d{1,3}$/.test(id)) throw new HttpError(400, 'id must be a module id (1 to 255)');
      const installed = await this.control(caller, {
        verb: 'module',
        module,
        args: ['install', '-r', ...(id ? ['-M', id] : []), file],
      });
      if (installed.exitCode !== 0) return controlReply(installed);
      if (!apply) return { status: 200, body: { installed: module, warnings } };
      const applied = await this.control(caller, { verb: 'config', module, args: [] });
      if (applied.exitCode !== 0) return controlReply(applied);
      return { status: 200, body: { installed: module, applied: true, warnings } };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private authenticate(request: IncomingMessage, address: string): Caller | null {
    const authorization = request.headers.authorization ?? '';
    if (authorization.startsWith('Bearer ')) {
      const key = this.options.credentials.checkToken(authorization.slice('Bearer '.length).trim());
      if (!key) return null;
      const caller: Caller = { name: `key:${key.name}`, role: key.role, address };
      // A node proxying for one of its callers says on whose behalf, never above its own role.
      const onBehalf = request.headers['x-hakit-on-behalf'];
      if (key.name.startsWith('node-') && typeof onBehalf === 'string') {
        const [role, who] = onBehalf.split(' ', 2);
        const asserted = role ? parseRole(role) : null;
        if (asserted && roleAllows(key.role, asserted))
          return { name: `${who ?? 'proxy'}@${key.name}`, role: asserted, address };
      }
      return caller;
    }
    const sessionId = cookie(request, 'sessionSK');
    if (sessionId) {
      const session = this.sessions.check(sessionId, Date.now());
      if (session) return { name: session.user, role: session.role, address };
    }
    return null;
  }

  private async login(
    request: IncomingMessage,
    response: ServerResponse,
    address: string,
    secure: boolean,
  ): Promise<void> {
    const waitMs = this.throttle.waitMs(address, Date.now());
    if (waitMs > 0) {
      sendJson(
        response,
        429,
        { error: 'too many failed logins', detail: `try again in ${Math.ceil(waitMs / 1000)} s` },
        { 'retry-after': String(Math.ceil(waitMs / 1000)) },
      );
      return;
    }
    const body = await readBody(request, 64 * 1024);
    const { user, password } = loginFields(request.headers['content-type'] ?? '', body);
    const role = this.options.credentials.checkPassword(user, password);
    if (!role) {
      this.throttle.fail(address, Date.now());
      sendJson(response, 401, { error: 'wrong user or password' });
      return;
    }
    this.throttle.succeed(address);
    const id = this.sessions.create(user, role, Date.now());
    sendJson(
      response,
      200,
      { user, role },
      {
        'set-cookie': `sessionSK=${id}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`,
      },
    );
  }

  private async serve(request: IncomingMessage, response: ServerResponse, secure: boolean): Promise<void> {
    const address = request.socket.remoteAddress ?? '?';
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    const path = url.pathname;
    if (path.includes('..') || path.length > 2048) throw new HttpError(400, 'bad path');
    // The mosaic test page is public like the health check: it is reached through the farm's VIP.
    if (serveMosaic(request, response, path, url.searchParams, hostname())) return;
    const isHealth = path.startsWith('/var/modules/');
    if (!secure && !this.options.httpApi && !isHealth) {
      throw new HttpError(
        403,
        'the API is served over HTTPS only',
        `use https://<node>:${this.options.httpsPort}${path}`,
      );
    }
    if (path === '/login' && method === 'POST') return this.login(request, response, address, secure);
    if (path === '/logout' && method === 'POST') {
      const id = cookie(request, 'sessionSK');
      if (id) this.sessions.end(id);
      sendJson(response, 200, { loggedOut: true });
      return;
    }
    const proxied = /^\/nodes\/([^/]+)(\/.*)$/.exec(path);
    let caller: Caller | null = null;
    if (!isHealth) {
      caller = this.authenticate(request, address);
      if (!caller)
        throw new HttpError(
          401,
          'authentication required',
          'send Authorization: Bearer <API key> or log in with POST /login',
        );
    }
    if (proxied && caller) {
      await proxyToNode(
        this.options.paths,
        this.options.credentials,
        proxied[1] ?? '',
        `${proxied[2] ?? '/'}${url.search}`,
        request,
        response,
        caller,
      );
      return;
    }
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = matchPath(route.path, path);
      if (!params) continue;
      if (caller && !roleAllows(caller.role, route.role)) {
        throw new HttpError(403, `this needs the ${route.role} role; ${caller.name} has ${caller.role}`);
      }
      const reply = await route.handle({
        request,
        response,
        params,
        query: url.searchParams,
        caller: caller ?? { name: 'anonymous', role: 'Monitor', address },
      });
      if (route.streams || reply === null) return;
      if (reply.raw) {
        const headers: Record<string, string> = {
          'content-type': reply.raw.contentType,
          'cache-control': 'no-store',
        };
        if (reply.raw.filename)
          headers['content-disposition'] = `attachment; filename="${reply.raw.filename}"`;
        response.writeHead(reply.status, headers);
        response.end(reply.raw.data);
      } else sendJson(response, reply.status, reply.body ?? {});
      return;
    }
    const pathKnown = this.routes.some((route) => matchPath(route.path, path) !== null);
    throw new HttpError(
      pathKnown ? 405 : 404,
      pathKnown ? `${method} is not allowed on ${path}` : `no such endpoint: ${path}`,
    );
  }

  private handler(secure: boolean) {
    return (request: IncomingMessage, response: ServerResponse) => {
      request.setTimeout(requestTimeoutMs);
      this.serve(request, response, secure).catch((error: unknown) => {
        if (response.headersSent) {
          response.destroy();
          return;
        }
        if (error instanceof HttpError) {
          sendJson(response, error.status, { error: error.message, detail: error.detail ?? null });
          return;
        }
        this.options.log(
          `API error on ${request.method} ${request.url}: ${(error as Error).stack ?? String(error)}`,
        );
        sendJson(response, 500, { error: 'internal error', detail: (error as Error).message });
      });
    };
  }

  async listen(): Promise<void> {
    const httpsServer = createHttpsServer(
      {
        cert: readFileSync(this.options.tls.certFile),
        key: readFileSync(this.options.tls.keyFile),
        minVersion: 'TLSv1.2',
      },
      this.handler(true),
    );
    this.httpsServer = httpsServer;
    const httpServer = createHttpServer(this.handler(false));
    for (const [server, port] of [
      [httpsServer, this.options.httpsPort],
      [httpServer, this.options.httpPort],
    ] as const) {
      server.headersTimeout = 30_000;
      server.maxHeadersCount = 100;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.options.bindAddress, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.servers.push(server);
    }
  }

  async close(): Promise<void> {
    this.options.events.close();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise((resolve) => {
            server.close(resolve);
            server.closeAllConnections();
          }),
      ),
    );
    this.servers = [];
  }
}

/** User and password from the reference's login form, or from JSON {user, password}. */
function loginFields(contentType: string, body: Buffer): { user: string; password: string } {
  if (contentType.startsWith('application/json')) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'body is not JSON');
    }
    return {
      user: typeof parsed.user === 'string' ? parsed.user : '',
      password: typeof parsed.password === 'string' ? parsed.password : '',
    };
  }
  const form = new URLSearchParams(body.toString('utf8'));
  return { user: form.get('httpd_username') ?? '', password: form.get('httpd_password') ?? '' };
}

/** `[verb, ...args]` with -m/-i pulled out, as the CLI does. */
function parseArgv(argv: string[]): Omit<ControlRequest, 'caller'> {
  const [verb, ...rest] = argv;
  const args: string[] = [];
  const parsed: Omit<ControlRequest, 'caller'> = { verb: verb ?? '', args };
  for (let index = 0; index < rest.length; index += 1) {
    const arg = rest[index] ?? '';
    if ((arg === '-m' || arg === '-i') && rest[index + 1] !== undefined) {
      if (arg === '-m') parsed.module = rest[index + 1];
      else parsed.identity = rest[index + 1];
      index += 1;
    } else args.push(arg);
  }
  return parsed;
}
