// How nodes reach each other's APIs: one node-to-node API key (the reference's rcmdadmin) and
// the pinned certificate fingerprint of every node, kept in $SAFEVAR/cluster/trust.json and
// pushed to all nodes with `hakit -H "*" -G`. A node whose fingerprint is not pinned is refused.
import { join } from 'node:path';
import { readJsonFile, writeJsonDurably } from '../daemon/durable-file.ts';
import type { NodePaths } from '../daemon/paths.ts';

export interface NodeTrust {
  version: 1;
  /** The node-to-node key's name (`node-...`) and token. */
  keyName: string | null;
  token: string | null;
  /** Node name or host -> SHA-256 fingerprint of its certificate (`AB:CD:...`). */
  fingerprints: Record<string, string>;
}

function isNodeTrust(value: unknown): value is NodeTrust {
  const candidate = value as NodeTrust;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    candidate.version === 1 &&
    typeof candidate.fingerprints === 'object'
  );
}

export function trustFile(paths: NodePaths): string {
  return join(paths.clusterDir, 'trust.json');
}

export function readTrust(paths: NodePaths): NodeTrust {
  const read = readJsonFile(trustFile(paths), isNodeTrust);
  if (read.kind === 'corrupt') throw new Error(`${trustFile(paths)} is damaged (${read.reason})`);
  return read.kind === 'ok' ? read.value : { version: 1, keyName: null, token: null, fingerprints: {} };
}

export function writeTrust(paths: NodePaths, trust: NodeTrust): void {
  writeJsonDurably(trustFile(paths), trust);
}

const fingerprintPattern = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

export function normaliseFingerprint(text: string): string | null {
  const upper = text.trim().toUpperCase();
  return fingerprintPattern.test(upper) ? upper : null;
}
