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
