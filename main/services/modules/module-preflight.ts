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

/** Checks across nodes: each replicated directory has the same owner everywhere it exists. */
export function acrossNodes(needs: PreflightNeeds, nodes: readonly NodePreflight[]): PreflightCheck[] {
  const checks: PreflightCheck[] = [];
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
