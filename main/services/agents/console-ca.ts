// The console's own certificate authority: made once (ECDSA P-256, ten years), kept in the secret
// store (never in the database), it signs one certificate per node (its name and address in the
// subjectAltName, serverAuth and clientAuth, 825 days) that the console installs with
// `PUT /api/v1/tls`. Node's crypto verifies certificates but cannot issue them, so issuing goes
// through the openssl command in a private temporary folder that is always removed.
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  fingerprint: string;
  validTo: string;
}

const opensslTimeoutMs = 30_000;
export const nodeCertificateDays = 825;
const caDays = 3650;

function openssl(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'openssl',
      args,
      { cwd, timeout: opensslTimeoutMs, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          reject(
            new Error(
              missing
                ? 'the openssl command is not installed on this machine: the console needs it to issue node certificates'
                : `openssl ${args[0]} failed: ${stderr.trim().slice(-500) || error.message}`,
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}

async function inTempDir<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'hakit-ca-'));
  try {
    return await work(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Subject names are kept to safe characters: they go into an openssl -subj argument. */
function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9 ._-]/g, '_').slice(0, 60) || 'node';
}

export function createCa(label: string): Promise<CaMaterial> {
  return inTempDir(async (dir) => {
    await openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        String(caDays),
        '-subj',
        `/O=hakit console/CN=${safeName(label)} ${randomBytes(4).toString('hex')}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE,pathlen:0',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    return {
      certPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
    };
  });
}

export function issueNodeCertificate(
  ca: CaMaterial,
  node: { name: string; address: string },
): Promise<IssuedCertificate> {
  return inTempDir(async (dir) => {
    writeFileSync(join(dir, 'ca.pem'), ca.certPem, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
    const names = [`DNS:${safeName(node.name).replace(/ /g, '-')}`];
    if (isIP(node.address)) names.push(`IP:${node.address}`);
    else if (/^[A-Za-z0-9.-]{1,253}$/.test(node.address)) names.push(`DNS:${node.address}`);
    writeFileSync(
      join(dir, 'ext.cnf'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=${names.join(',')}`,
        '',
      ].join('\n'),
    );
    await openssl(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'node.key'],
      dir,
    );
    await openssl(
      ['req', '-new', '-key', 'node.key', '-out', 'node.csr', '-subj', `/O=hakit/CN=${safeName(node.name)}`],
      dir,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'node.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        String(nodeCertificateDays),
        '-sha256',
        '-extfile',
        'ext.cnf',
        '-out',
        'node.pem',
      ],
      dir,
    );
    const certPem = readFileSync(join(dir, 'node.pem'), 'utf8');
    const certificate = new X509Certificate(certPem);
    if (!certificate.verify(new X509Certificate(ca.certPem).publicKey))
      throw new Error(`the certificate issued for ${node.name} does not verify against the console CA`);
    return {
      certPem,
      keyPem: readFileSync(join(dir, 'node.key'), 'utf8'),
      fingerprint: certificate.fingerprint256,
      validTo: certificate.validTo,
    };
  });
}

export function caFingerprint(ca: Pick<CaMaterial, 'certPem'>): string {
  return new X509Certificate(ca.certPem).fingerprint256;
}
