// Local commands that manage who may use this node's API, run as root on the node:
// `webservercfg -passwd P [-user U] [-role R]`, `apikey create|list|delete|import`,
// `cluster trust NODE FINGERPRINT`, `cluster nodekey TOKEN`.
import { Credentials, CredentialError, credentialsFile, parseRole, type Role } from '../api/credentials.ts';
import { normaliseFingerprint, readTrust, writeTrust } from '../api/node-trust.ts';
import { certificateFingerprint, tlsFiles } from '../api/tls.ts';
import { nodePaths } from '../daemon/paths.ts';
import { CliUsageError } from './module-commands.ts';

export const nodeKeyName = 'node-cluster';

function flag(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (value === undefined) throw new CliUsageError(`${name} needs a value`);
  return value;
}

function role(text: string | undefined, fallback: Role): Role {
  if (text === undefined) return fallback;
  const parsed = parseRole(text);
  if (!parsed) throw new CliUsageError(`bad role '${text}': Admin, Control or Monitor`);
  return parsed;
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function webservercfg(args: readonly string[]): number {
  const password = flag(args, '-passwd');
  if (password === undefined)
    throw new CliUsageError('webservercfg -passwd PASSWORD [-user USER] [-role Admin|Control|Monitor]');
  const user = flag(args, '-user') ?? 'admin';
  try {
    new Credentials(credentialsFile(nodePaths())).setPassword(
      user,
      password,
      role(flag(args, '-role'), 'Admin'),
    );
  } catch (error) {
    if (error instanceof CredentialError) {
      process.stderr.write(`hakit: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  out(`password of ${user} set`);
  return 0;
}

export function apikey(args: readonly string[]): number {
  const credentials = new Credentials(credentialsFile(nodePaths()));
  const [action, ...rest] = args;
  try {
    switch (action) {
      case 'create': {
        const [roleText, name] = rest;
        if (!roleText || !name) throw new CliUsageError('apikey create Admin|Control|Monitor NAME');
        const token = credentials.createKey(name, role(roleText, 'Monitor'), Date.now());
        out(token);
        process.stderr.write('hakit: this token is shown once; store it now (only its hash is kept)\n');
        return 0;
      }
      case 'list':
        for (const key of credentials.listKeys())
          out(`${key.name} ${key.role} ${new Date(key.createdAtMs).toISOString()}`);
        return 0;
      case 'delete': {
        const [name] = rest;
        if (!name) throw new CliUsageError('apikey delete NAME');
        if (!credentials.deleteKey(name)) {
          process.stderr.write(`hakit: no API key named ${name}\n`);
          return 1;
        }
        out(`API key ${name} deleted`);
        return 0;
      }
      case 'import': {
        const [name, roleText, token] = rest;
        if (!name || !roleText || !token) throw new CliUsageError('apikey import NAME ROLE TOKEN');
        credentials.importKey(name, role(roleText, 'Monitor'), token, Date.now());
        out(`API key ${name} imported`);
        return 0;
      }
      default:
        throw new CliUsageError('apikey create ROLE NAME | list | delete NAME | import NAME ROLE TOKEN');
    }
  } catch (error) {
    if (error instanceof CredentialError) {
      process.stderr.write(`hakit: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** `cluster trust NODE FINGERPRINT` and `cluster nodekey TOKEN`: node-to-node trust, pushed by -G. */
export function clusterTrust(args: readonly string[]): number {
  const paths = nodePaths();
  const [action, first, second] = args;
  const trust = readTrust(paths);
  if (action === 'trust') {
    if (!first || !second) throw new CliUsageError('cluster trust NODE|HOST SHA256-FINGERPRINT');
    const fingerprint = normaliseFingerprint(second);
    if (!fingerprint)
      throw new CliUsageError(`bad fingerprint '${second}': 32 hex bytes separated by colons`);
    writeTrust(paths, { ...trust, fingerprints: { ...trust.fingerprints, [first]: fingerprint } });
    out(`certificate of ${first} pinned`);
    return 0;
  }
  if (action === 'nodekey') {
    if (!first) throw new CliUsageError('cluster nodekey TOKEN');
    new Credentials(credentialsFile(paths)).importKey(nodeKeyName, 'Admin', first, Date.now());
    writeTrust(paths, { ...trust, keyName: nodeKeyName, token: first });
    out('node-to-node key installed');
    return 0;
  }
  throw new CliUsageError('cluster trust NODE FINGERPRINT | cluster nodekey TOKEN');
}

export function fingerprintLine(): string {
  const fingerprint = certificateFingerprint(tlsFiles(nodePaths()));
  return fingerprint
    ? `certificate SHA-256 fingerprint: ${fingerprint}`
    : 'certificate: none yet (made when hakitd first starts)';
}
