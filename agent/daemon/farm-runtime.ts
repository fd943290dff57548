// What a farm module needs at run time beyond the common part (reference 3, 4.5, 4.6): the
// nodes of its `<farm><lan>`s from cluster.xml, the cluster key, membership timing, the
// load-balancing groups with each host's power, and the virtual IPs. Refuses what it cannot run
// with an error naming the file and element.
import { isIP } from 'node:net';
import type { ClusterConfig, ModuleConfig } from '../config/model.ts';
import { farmPortOf } from '../config/ports.ts';
import { farmLansMax, farmNodesMax } from '../core/farm-membership.ts';
import { defaultVirtualMac, type FarmGroupSpec, type FarmVipSpec, normaliseMac } from '../net/farm-filter.ts';

export interface FarmLanEndpoint {
  /** The cluster.xml lan name; resource `farmlan.<ident>`. */
  readonly ident: string;
  readonly localAddress: string;
  readonly peers: readonly { readonly node: string; readonly address: string }[];
  readonly port: number;
}

export interface FarmGroupRuntime extends FarmGroupSpec {
  /** Power of each node; a node absent from `<cluster>` gets 0. */
  readonly powers: Readonly<Record<string, number>>;
}

export interface FarmRuntime {
  readonly localNode: string;
  readonly peers: readonly string[];
  readonly clusterId: string;
  readonly key: Buffer;
  readonly lans: readonly FarmLanEndpoint[];
  readonly pulseMs: number;
  readonly mlostCount: number;
  readonly slostCount: number;
  readonly groups: readonly FarmGroupRuntime[];
  readonly vips: readonly FarmVipSpec[];
  readonly virtualMac: string | null;
  /** vmac_directed: the view's first member answers ARP and forwards the others' buckets. */
  readonly directed: boolean;
  /** `<vip scriptcontrol="on">`: scripts open and close the traffic, not the automaton. */
  readonly scriptControl: boolean;
}

export function farmRuntimeOf(
  module: string,
  id: number,
  config: ModuleConfig,
  cluster: ClusterConfig,
  localAddresses: ReadonlySet<string>,
  key: Buffer,
  clusterId: string,
): FarmRuntime | null {
  const farm = config.farm;
  // A farm module without <farm> keeps running on its own node only, as before.
  if (farm === undefined || farm.lans.length === 0) return null;
  const where = (line: number) => `module ${module} userconfig.xml line ${line}`;
  if (farm.lans.length > farmLansMax)
    throw new Error(`${where(farm.source.line)}: <farm> has more than ${farmLansMax} lans`);
  let localNode: string | undefined;
  const lans: FarmLanEndpoint[] = [];
  const nodes = new Set<string>();
  for (const farmLan of farm.lans) {
    const lan = cluster.lans.find((candidate) => candidate.name === farmLan.name);
    if (lan === undefined)
      throw new Error(
        `${where(farmLan.source.line)}: <lan name="${farmLan.name}"> is not a lan of cluster.xml`,
      );
    const me = lan.nodes.find(
      (node) =>
        localAddresses.has(node.addr.host) ||
        (node.laddr !== undefined && localAddresses.has(node.laddr.host)),
    );
    if (me === undefined)
      throw new Error(
        `${where(farmLan.source.line)}: none of this node's addresses is in lan ${lan.name} of cluster.xml`,
      );
    if (localNode !== undefined && localNode !== me.name)
      throw new Error(
        `${where(farmLan.source.line)}: this node is ${localNode} on one lan and ${me.name} on another`,
      );
    localNode = me.name;
    const localAddress = (me.laddr ?? me.addr).host;
    const peers = lan.nodes
      .filter((node) => node.name !== me.name)
      .map((node) => ({ node: node.name, address: node.addr.host }));
    for (const address of [localAddress, ...peers.map((peer) => peer.address)]) {
      if (isIP(address) === 0 || isIP(address) !== isIP(localAddress))
        throw new Error(
          `lan ${lan.name} of cluster.xml: ${address} must be an IP address of the lan's family`,
        );
    }
    for (const node of lan.nodes) nodes.add(node.name);
    lans.push({ ident: lan.name, localAddress, peers, port: farm.portUdp ?? farmPortOf(id) });
  }
  if (localNode === undefined) throw new Error(`module ${module}: no farm lan`);
  if (nodes.size > farmNodesMax) throw new Error(`module ${module}: more than ${farmNodesMax} farm nodes`);
  const self = localNode;
  const peers = [...nodes].filter((node) => node !== self).sort();
  const vip = config.vip;
  const vips: FarmVipSpec[] = [];
  let virtualMac: string | null = null;
  let directed = false;
  for (const vipInterface of vip?.interfaces ?? []) {
    for (const virtual of vipInterface.virtualInterfaces) {
      const line = virtual.source.line;
      if (virtual.type === 'vmac_directed') directed = true;
      for (const address of virtual.addresses) {
        if (isIP(address.addr) === 0)
          throw new Error(
            `${where(address.source.line)}: virtual_addr ${address.addr} must be an IP address`,
          );
        vips.push({
          address: address.addr,
          ...(vipInterface.name !== undefined ? { interfaceName: vipInterface.name } : {}),
          ...(address.netmask !== undefined ? { netmask: address.netmask } : {}),
        });
        if (virtual.type === 'vmac_directed') continue;
        const mac = virtual.mac !== undefined ? normaliseMac(virtual.mac) : defaultVirtualMac(address.addr);
        if (virtualMac !== null && virtualMac !== mac)
          throw new Error(`${where(line)}: every VIP of a farm module must share one virtual MAC`);
        virtualMac = mac;
      }
    }
  }
  if (directed && virtualMac !== null)
    throw new Error(`module ${module}: vmac_directed and vmac_invisible cannot be mixed in one module`);
  const groups: FarmGroupRuntime[] = (vip?.groups ?? []).map((group) => {
    const powers: Record<string, number> = {};
    if (group.hosts.length === 0) for (const node of nodes) powers[node] = 1;
    for (const host of group.hosts) {
      if (!nodes.has(host.node))
        throw new Error(
          `${where(host.source.line)}: host ${host.node} of group ${group.name} is not a farm node`,
        );
      powers[host.node] = host.power;
    }
    const rules = group.rules.flatMap((rule) => {
      if (rule.proto === 'arp') return []; // vmac_directed only
      if (rule.virtualAddr !== '*' && isIP(rule.virtualAddr) === 0)
        throw new Error(
          `${where(rule.source.line)}: rule virtual_addr ${rule.virtualAddr} must be * or an IP address`,
        );
      return [{ virtualAddr: rule.virtualAddr, port: rule.port, proto: rule.proto, filter: rule.filter }];
    });
    return { name: group.name, powers, rules };
  });
  if (vips.length > 0 && groups.length === 0)
    throw new Error(`module ${module}: a farm VIP needs a <loadbalancing_list> group`);
  return {
    localNode: self,
    peers,
    clusterId,
    key,
    lans,
    pulseMs: farm.pulseMs,
    mlostCount: farm.mlostCount,
    slostCount: farm.slostCount,
    groups,
    vips,
    virtualMac,
    directed,
    scriptControl: vip?.scriptcontrol === 'on',
  };
}
