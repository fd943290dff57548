// The node certificate for HTTPS: made at first start (self-signed, with the node's names and
// addresses) until the console installs one signed by its own CA. Its SHA-256 fingerprint is
// what `hakit level` prints so clients can pin it.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { NodePaths } from '../daemon/paths.ts';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export function tlsFiles(paths: NodePaths): TlsFiles {
  const dir = join(paths.safeVar, 'web', 'tls');
  return { certFile: join(dir, 'node.crt'), keyFile: join(dir, 'node.key') };
}

function subjectAltNames(): string {
  const names = new Set<string>([`DNS:${hostname()}`, 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      if (!entry.internal && !entry.address.startsWith('fe80')) names.add(`IP:${entry.address}`);
    }
  }
  return [...names].join(',');
}

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`openssl ${args[0]} failed: ${stderr.trim() || error.message}`));
      else resolve();
    });
  });
}

/** Creates the self-signed node certificate if there is none. */
export async function ensureNodeCertificate(files: TlsFiles): Promise<void> {
  if (existsSync(files.certFile) && existsSync(files.keyFile)) return;
  const dir = join(files.certFile, '..');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temporaryKey = `${files.keyFile}.tmp`;
  const temporaryCert = `${files.certFile}.tmp`;
  try {
    await openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      `/O=hakit/CN=${hostname()}`,
      '-addext',
      `subjectAltName=${subjectAltNames()}`,
      '-keyout',
      temporaryKey,
      '-out',
      temporaryCert,
    ]);
    chmodSync(temporaryKey, 0o600);
    renameSync(temporaryKey, files.keyFile);
    renameSync(temporaryCert, files.certFile);
  } finally {
    rmSync(temporaryKey, { force: true });
    rmSync(temporaryCert, { force: true });
  }
}

/** `AB:CD:...` SHA-256 fingerprint of the node certificate, or null when there is none yet. */
export function certificateFingerprint(files: TlsFiles): string | null {
  if (!existsSync(files.certFile)) return null;
  return new X509Certificate(readFileSync(files.certFile)).fingerprint256;
}
