// SSH host keys as the console pins them: the raw public key blob (SSH wire format), shown as
// OpenSSH shows it (`SHA256:` + unpadded base64 of its SHA-256).
import { createHash } from 'node:crypto';

export function hostKeyFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside the blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function hostKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  if (length > 64 || blob.length < 4 + length) return 'unknown';
  return blob.subarray(4, 4 + length).toString('latin1');
}

export type HostKeyDecision =
  | { kind: 'pin-first-use'; fingerprint: string }
  | { kind: 'match'; fingerprint: string }
  | { kind: 'changed'; fingerprint: string; pinnedFingerprint: string };

/** Trust on first use, refuse when it changes. Pure. */
export function decideHostKey(pinnedBase64: string | null, presented: Buffer): HostKeyDecision {
  const fingerprint = hostKeyFingerprint(presented);
  if (pinnedBase64 === null) return { kind: 'pin-first-use', fingerprint };
  const pinned = Buffer.from(pinnedBase64, 'base64');
  if (pinned.equals(presented)) return { kind: 'match', fingerprint };
  return { kind: 'changed', fingerprint, pinnedFingerprint: hostKeyFingerprint(pinned) };
}
