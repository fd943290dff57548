// Ports derived from a module id (reference §7.1), the same on every node of the cluster.

/** The reference's module limit is 32; ids up to this keep every derived port apart. */
export const moduleIdMax = 255;

/** UDP port of the mirror heartbeats: 8888 + (id - 1). */
export function heartbeatPortOf(id: number): number {
  return 8888 + (id - 1);
}

/** UDP port of the farm membership: 4803 + (id - 1) * 3. */
export function farmPortOf(id: number): number {
  return 4803 + (id - 1) * 3;
}

/** TCP port of the mirror replication: 5600 + (id - 1) * 4. */
export function replicationPortOf(id: number): number {
  return 5600 + (id - 1) * 4;
}
