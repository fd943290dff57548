// Where a mirror module's heartbeats go: one endpoint per `<heartbeat>` (reference 4.4), from the
// module's `<heart>` and cluster.xml's lans. Pure. Addresses must be IP literals: a heartbeat must
// not wait on DNS, so the daemon resolves names first (or refuses them).
import { isIP } from 'node:net';
import type { ClusterConfig, HeartSettings } from '../config/model.ts';
import { heartbeatPortOf } from '../config/ports.ts';

export interface HeartbeatLanEndpoint {
  /** Resource `heartbeat.<ident>`. */
  readonly ident: string;
  readonly lan: string;
  /** The node's own address on the lan (`laddr` when set, behind NAT): the socket binds it. */
  readonly localAddress: string;
  readonly peerAddress: string;
  readonly port: number;
  readonly pulseMs: number;
  readonly timeoutMs: number;
}

export function heartbeatEndpoints(
  heart: HeartSettings,
  cluster: ClusterConfig,
  moduleId: number,
  localNode: string,
  peerNode: string,
): HeartbeatLanEndpoint[] {
  const port = heart.portUdp ?? heartbeatPortOf(moduleId);
  return heart.heartbeats.map((heartbeat) => {
    const where = `heartbeat ${heartbeat.ident} (lan ${heartbeat.lan})`;
    const lan = cluster.lans.find((candidate) => candidate.name === heartbeat.lan);
    if (lan === undefined) throw new Error(`${where}: no such lan in cluster.xml`);
    const local = lan.nodes.find((node) => node.name === localNode);
    const peer = lan.nodes.find((node) => node.name === peerNode);
    if (local === undefined) throw new Error(`${where}: node ${localNode} is not on this lan`);
    if (peer === undefined) throw new Error(`${where}: node ${peerNode} is not on this lan`);
    const localAddress = (local.laddr ?? local.addr).host;
    const peerAddress = peer.addr.host;
    for (const [who, address] of [
      [localNode, localAddress],
      [peerNode, peerAddress],
    ] as const) {
      if (isIP(address) === 0) throw new Error(`${where}: address ${address} of ${who} is not an IP address`);
    }
    if (isIP(localAddress) !== isIP(peerAddress))
      throw new Error(`${where}: ${localAddress} and ${peerAddress} are not of the same IP family`);
    return {
      ident: heartbeat.ident,
      lan: heartbeat.lan,
      localAddress,
      peerAddress,
      port,
      pulseMs: heartbeat.pulseMs,
      timeoutMs: heartbeat.timeoutMs,
    };
  });
}
