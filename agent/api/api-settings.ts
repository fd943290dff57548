// Where the API listens: $SAFEVAR/web/api.json, then environment overrides (tests, labs).
import { join } from 'node:path';
import { readJsonFile } from '../daemon/durable-file.ts';
import type { NodePaths } from '../daemon/paths.ts';

export interface ApiSettings {
  httpPort: number;
  httpsPort: number;
  /** Serve the API over plain HTTP too; off by default. */
  httpApi: boolean;
  bindAddress: string;
}

export const apiSettingsDefault: ApiSettings = {
  httpPort: 9010,
  httpsPort: 9453,
  httpApi: false,
  bindAddress: '::',
};

function isPartialSettings(value: unknown): value is Partial<ApiSettings> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function port(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${what}: bad port '${text}'`);
  return value;
}

export function readApiSettings(paths: NodePaths, env: NodeJS.ProcessEnv = process.env): ApiSettings {
  const file = join(paths.safeVar, 'web', 'api.json');
  const read = readJsonFile(file, isPartialSettings);
  if (read.kind === 'corrupt') throw new Error(`${file}: ${read.reason}`);
  const fromFile = read.kind === 'ok' ? read.value : {};
  const merged = { ...apiSettingsDefault, ...fromFile };
  return {
    httpPort: port(env.HAKIT_HTTP_PORT, merged.httpPort, 'HAKIT_HTTP_PORT'),
    httpsPort: port(env.HAKIT_HTTPS_PORT, merged.httpsPort, 'HAKIT_HTTPS_PORT'),
    httpApi: env.HAKIT_HTTP_API !== undefined ? env.HAKIT_HTTP_API === '1' : merged.httpApi === true,
    bindAddress: env.HAKIT_BIND ?? merged.bindAddress,
  };
}
