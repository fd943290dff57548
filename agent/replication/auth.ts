// Mutual authentication of a replication connection with the cluster key (HMAC-SHA256 over both
// nonces, the module and the role), with a key derived for replication only so a heartbeat MAC
// can never be replayed here.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const nonceBytes = 32;

export function replicationKeyOf(clusterKey: Buffer): Buffer {
  if (clusterKey.length !== 32)
    throw new Error(`replication auth: cluster key of ${clusterKey.length} bytes, expected 32`);
  return Buffer.from(hkdfSync('sha256', clusterKey, Buffer.alloc(0), 'hakit replication v1', 32));
}

/**
 * TLS-PSK key of a module's replication stream when module encryption is on: derived from the
 * cluster key and the module's encryption key (conf/modulekey.dat), so a node needs both to
 * complete the TLS handshake. PSK rather than the node certificates: those are self-signed until
 * the console installs its CA's, so neither side could authenticate the other by them.
 */
export function tlsPskOf(clusterKey: Buffer, moduleKey: Buffer, moduleName: string): Buffer {
  if (moduleKey.length !== 32)
    throw new Error(`replication TLS: module key of ${moduleKey.length} bytes, expected 32`);
  return Buffer.from(
    hkdfSync(
      'sha256',
      Buffer.concat([clusterKey, moduleKey]),
      Buffer.alloc(0),
      `hakit replication tls v1\0${moduleName}`,
      32,
    ),
  );
}

/** TLS 1.2 ECDHE-PSK with an AEAD: forward secrecy, no certificate (TLS 1.3 PSK is not in node:tls). */
export const tlsCiphers = 'ECDHE-PSK-CHACHA20-POLY1305';

export function tlsIdentityOf(moduleName: string): string {
  return `hakit-replication-${moduleName}`;
}

/** A readable reason for a failed TLS handshake (OpenSSL's text is cryptic). */
export function tlsFailureOf(error: Error): string {
  const text = error.message;
  if (/bad record mac|decrypt/i.test(text))
    return `TLS handshake failed: the peer's key differs (module encryption key or cluster key) [${text.trim()}]`;
  if (/wrong version number|unknown protocol|http request|packet length too long/i.test(text))
    return `TLS handshake failed: the peer does not speak TLS (module encryption off there?) [${text.trim()}]`;
  if (/socket hang up|ECONNRESET/i.test(text))
    return `TLS handshake failed: the peer closed without one, it does not speak TLS (module encryption off there?) [${text.trim()}]`;
  if (/timeout/i.test(text))
    return `TLS handshake failed: none in time, the peer does not speak TLS (module encryption off there?) [${text.trim()}]`;
  if (/no shared cipher|handshake failure/i.test(text))
    return `TLS handshake failed: no common cipher or key (module encryption on one side only?) [${text.trim()}]`;
  return `TLS: ${text.trim()}`;
}

export function newNonce(): Buffer {
  return randomBytes(nonceBytes);
}

export function clientMac(key: Buffer, serverNonce: Buffer, clientNonce: Buffer, moduleName: string): Buffer {
  return createHmac('sha256', key)
    .update('client\0')
    .update(serverNonce)
    .update(clientNonce)
    .update(moduleName)
    .digest();
}

export function serverMac(key: Buffer, serverNonce: Buffer, clientNonce: Buffer, moduleName: string): Buffer {
  return createHmac('sha256', key)
    .update('server\0')
    .update(clientNonce)
    .update(serverNonce)
    .update(moduleName)
    .digest();
}

export function macEquals(expected: Buffer, actual: Buffer): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
