// Reads the cluster key (`$SAFEVAR/cluster/cluster.key`, written by `hakit cluster genkey`) that
// authenticates heartbeats. Refuses a key readable by group or others: anyone who reads it can
// forge heartbeats.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseClusterKey } from './packet.ts';

const keyFileBytesMax = 1024;

export function loadClusterKey(file: string): Buffer {
  let mode: number;
  let size: number;
  try {
    ({ mode, size } = statSync(file));
  } catch (error) {
    throw new Error(
      `cluster key ${file}: ${(error as Error).message} (make one with: hakit cluster genkey, then hakit -H "*" -G)`,
      { cause: error },
    );
  }
  if ((mode & 0o077) !== 0)
    throw new Error(
      `cluster key ${file}: mode ${(mode & 0o777).toString(8)} lets others read it; chmod 600 it`,
    );
  if (size > keyFileBytesMax) throw new Error(`cluster key ${file}: ${size} bytes, over ${keyFileBytesMax}`);
  try {
    return parseClusterKey(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** The cluster's public name, derived from its key: packets of another cluster are told apart. */
export function clusterIdOf(key: Buffer): string {
  return `hakit-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}
