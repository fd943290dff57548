// The API's route table: method, path pattern, the role it needs, and its handler. The
// OpenAPI document is generated from this same table, so it cannot drift from what is served.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Role } from './credentials.ts';

export interface Caller {
  /** `admin`, `key:console`, or `node:n1` for node-to-node calls. */
  name: string;
  role: Role;
  address: string;
}

export interface RouteContext {
  request: IncomingMessage;
  response: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  caller: Caller;
}

export interface ApiReply {
  status: number;
  body?: unknown;
  /** Raw bytes with their content type (downloads). */
  raw?: { contentType: string; data: Buffer; filename?: string };
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** `/api/v1/modules/:module/state`; parameters are single path segments. */
  path: string;
  role: Role;
  summary: string;
  /** Streams its own response (events) instead of returning a reply. */
  streams?: boolean;
  handle(context: RouteContext): Promise<ApiReply | null>;
}

const segmentPattern = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Matches a path against a pattern; null when it does not match. Parameters are validated. */
export function matchPath(pattern: string, path: string): Record<string, string> | null {
  const patternParts = pattern.split('/');
  const pathParts = path.split('/');
  if (patternParts.length !== pathParts.length) return null;
  const params: Record<string, string> = {};
  for (let index = 0; index < patternParts.length; index += 1) {
    const expected = patternParts[index] ?? '';
    const actual = pathParts[index] ?? '';
    if (expected.startsWith(':')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(actual);
      } catch {
        return null;
      }
      if (!segmentPattern.test(decoded)) return null;
      params[expected.slice(1)] = decoded;
    } else if (expected !== actual) return null;
  }
  return params;
}

export function openApiDocument(routes: readonly Route[], version: string): unknown {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const openApiPath = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((match) => ({
      name: match[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    paths[openApiPath] ??= {};
    const entry = paths[openApiPath];
    if (!entry) continue;
    entry[route.method.toLowerCase()] = {
      summary: route.summary,
      description: `Role needed: ${route.role}.`,
      parameters,
      security: route.path.startsWith('/var/') ? [] : [{ bearer: [] }, { session: [] }],
      responses: {
        200: { description: 'OK' },
        400: { description: 'bad input: {error, detail}' },
        401: { description: 'no or bad credentials' },
        403: { description: 'role too small' },
        404: { description: 'no such module or resource' },
        409: { description: 'not possible in the current state' },
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'hakit agent API', version },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'sessionSK' },
      },
    },
    paths,
  };
}
