// What to ask each agent's pre-flight for a module (its virtual IPs, the ports derived from its id,
// its replicated directories), and what to compare between the nodes' answers. Pure.
import { loadUserconfig } from '../../../agent/config/index.ts';
import { farmPortOf, heartbeatPortOf, replicationPortOf } from '../../../agent/config/ports.ts';
import type { NodePreflight, PreflightCheck } from '../../api/contract.ts';
import { userconfigFile } from './signature.ts';

export interface PreflightNeeds {
  vips: string[];
  tcpPorts: number[];
  udpPorts: number[];
  dirs: string[];
}

/** The resources a module needs on a node, from its userconfig.xml (empty when it does not load). */
export function preflightNeedsOf(userconfig: string, moduleId: number): PreflightNeeds {
  const config = loadUserconfig(userconfig, { file: userconfigFile, moduleId }).config;
  const needs: PreflightNeeds = { vips: [], tcpPorts: [], udpPorts: [], dirs: [] };
  if (!config) return needs;
  for (const vipInterface of config.vip?.interfaces ?? []) {
    for (const address of vipInterface.realAddresses) needs.vips.push(address.addr);
    for (const virtual of vipInterface.virtualInterfaces)
      for (const address of virtual.addresses) needs.vips.push(address.addr);
  }
  if (config.mode === 'mirror') {
    needs.udpPorts.push(config.heart?.portUdp ?? heartbeatPortOf(moduleId));
    if (config.rfs) needs.tcpPorts.push(replicationPortOf(moduleId));
  }
  if (config.mode === 'farm') needs.udpPorts.push(config.farm?.portUdp ?? farmPortOf(moduleId));
  for (const replicated of config.rfs?.replicated ?? []) needs.dirs.push(replicated.dir);
  needs.vips = [...new Set(needs.vips.filter((vip) => /^\d+\.\d+\.\d+\.\d+$/.test(vip)))];
  needs.dirs = [...new Set(needs.dirs)];
  return needs;
}

export function preflightQuery(needs: PreflightNeeds, module: string, nowMs: number): string {
  const query = new URLSearchParams();
  for (const vip of needs.vips) query.append('vip', vip);
  for (const port of needs.tcpPorts) query.append('port', String(port));
  for (const port of needs.udpPorts) query.append('udp', String(port));
  for (const dir of needs.dirs) query.append('dir', dir);
  query.set('module', module);
  query.set('now', String(Math.round(nowMs)));
  return query.toString();
}

/**
 * Checks across nodes: each replicated directory has the same owner everywhere it exists, and a
 * VIP that answers ARP is held by one of the nodes (the module running there), not by another
 * machine (an address conflict that would take the service's address away).
 */
export function acrossNodes(needs: PreflightNeeds, nodes: readonly NodePreflight[]): PreflightCheck[] {
  const checks: PreflightCheck[] = [];
  for (const vip of needs.vips) {
    const nodeOfMac = new Map<string, string>();
    for (const node of nodes) {
      const home = node.checks.find((check) => check.name === `interface for virtual IP ${vip}`);
      const mac = home?.facts?.mac;
      if (typeof mac === 'string' && mac !== '') nodeOfMac.set(mac.toLowerCase(), node.node);
    }
    const seen = nodes.flatMap((node) => {
      const free = node.checks.find((check) => check.name === `virtual IP ${vip} free`);
      const macs = free?.facts?.macs;
      return typeof macs === 'string' && macs !== ''
        ? macs.split(',').map((mac) => ({ from: node.node, mac: mac.toLowerCase() }))
        : [];
    });
    if (seen.length === 0) continue;
    const foreign = seen.filter((entry) => !nodeOfMac.has(entry.mac));
    checks.push({
      name: `virtual IP ${vip} is not held by another machine`,
      ok: foreign.length === 0,
      detail:
        foreign.length > 0
          ? `address conflict: ${[...new Set(foreign.map((entry) => entry.mac))].join(', ')} answers ARP for ${vip} (seen from ${[...new Set(foreign.map((entry) => entry.from))].join(', ')}) and is no interface of this cluster's nodes: free the address on that machine or choose another VIP`
          : `held by ${[...new Set(seen.map((entry) => `${nodeOfMac.get(entry.mac)} (${entry.mac})`))].join(', ')}: the module runs there`,
    });
  }
  for (const dir of needs.dirs) {
    const owners = nodes.flatMap((node) => {
      const check = node.checks.find((candidate) => candidate.name === `replicated directory ${dir}`);
      const owner = check?.ok ? /owner (\d+:\d+)/.exec(check.detail)?.[1] : undefined;
      return owner ? [{ node: node.node, owner }] : [];
    });
    if (owners.length < 2) continue;
    const distinct = new Set(owners.map((entry) => entry.owner));
    checks.push({
      name: `${dir} has the same owner on every node`,
      ok: distinct.size === 1,
      detail: owners.map((entry) => `${entry.node} ${entry.owner}`).join(', '),
    });
  }
  return checks;
}
