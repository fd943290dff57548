// The console's own certificate authority: made once (ECDSA P-256, ten years), kept in the secret
// store (never in the database), it signs one certificate per node (its name and address in the
// subjectAltName, serverAuth and clientAuth, 825 days) that the console installs with
// `PUT /api/v1/tls`. Node's crypto verifies certificates but cannot issue them; issuing is done in
// JavaScript (@peculiar/x509 over Node's WebCrypto), so the console needs no openssl command and
// works the same on Linux, Windows and macOS. Keys are PKCS#8 PEM, as openssl wrote them, so a CA
// made by an older console that used openssl keeps working.
// tsyringe (under @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

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

export const nodeCertificateDays = 825;
const caDays = 3650;
const dayMs = 24 * 60 * 60 * 1000;
const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Subject names are kept to safe characters (no escaping questions in a distinguished name). */
function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9 ._-]/g, '_').slice(0, 60) || 'node';
}

/** A positive 128-bit serial number, in hex (the top bit clear so DER needs no sign byte). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

function newKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** The CA's signing key from its PEM (PKCS#8 or SEC1, as openssl may have written it). */
async function importCaKey(keyPem: string): Promise<CryptoKey> {
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error(
      `the console CA key is ${key.asymmetricKeyType ?? 'unknown'} ${key.asymmetricKeyDetails?.namedCurve ?? ''}, not ECDSA P-256`,
    );
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return webcrypto.subtle.importKey('pkcs8', der, ecdsa, false, ['sign']);
}

export async function createCa(label: string): Promise<CaMaterial> {
  const keys = await newKeyPair();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `O=hakit console, CN=${safeName(label)} ${randomBytes(4).toString('hex')}`,
    notBefore: new Date(now),
    notAfter: new Date(now + caDays * dayMs),
    keys,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** subjectAltName entries for a node: its name, and its address (IP or DNS name). */
export function nodeAltNames(node: { name: string; address: string }): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = [{ type: 'dns', value: safeName(node.name).replace(/ /g, '-') }];
  if (isIP(node.address)) names.push({ type: 'ip', value: node.address });
  else if (/^[A-Za-z0-9.-]{1,253}$/.test(node.address)) names.push({ type: 'dns', value: node.address });
  return names;
}

export async function issueNodeCertificate(
  ca: CaMaterial,
  node: { name: string; address: string },
): Promise<IssuedCertificate> {
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const caKey = await importCaKey(ca.keyPem);
  const keys = await newKeyPair();
  const now = Date.now();
  const issued = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `O=hakit, CN=${safeName(node.name)}`,
    issuer: caCertificate.subject,
    notBefore: new Date(now),
    notAfter: new Date(now + nodeCertificateDays * dayMs),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(nodeAltNames(node)),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCertificate),
    ],
  });
  const certPem = issued.toString('pem');
  // Checked with Node's own X.509 code, as the agent's TLS will check it.
  const certificate = new X509Certificate(certPem);
  if (!certificate.verify(new X509Certificate(ca.certPem).publicKey))
    throw new Error(`the certificate issued for ${node.name} does not verify against the console CA`);
  return {
    certPem,
    keyPem: await privateKeyPem(keys.privateKey),
    fingerprint: certificate.fingerprint256,
    validTo: certificate.validTo,
  };
}

export function caFingerprint(ca: Pick<CaMaterial, 'certPem'>): string {
  return new X509Certificate(ca.certPem).fingerprint256;
}
