// What a dynamic update (`hakit update`, `hakit config` of a running module) may change
// (reference 7.3, 7.5): a running module keeps its state, so only what can be swapped under it is
// taken: a farm's load-balancing groups (powers, rules). Anything else that differs between the
// running configuration and the new one is refused, by name, with the module left as it was.
// Pure: compares two runtime configurations.
import type { ModuleRuntimeConfig } from './module-runtime-config.ts';
import type { ModuleStateName, Readiness } from '../core/states.ts';

export interface UpdatePlan {
  /** What the update applies (readable names). */
  applied: string[];
  /** What differs but needs a stop (readable names); the update is refused when not empty. */
  refused: string[];
}

const labels: Record<string, string> = {
  'farm.groups': 'load-balancing groups (<loadbalancing_list>: powers, rules)',
  'farm.lans': 'farm lans (<farm><lan>, cluster.xml addresses)',
  'farm.peers': 'farm nodes (cluster.xml)',
  'farm.key': 'cluster key',
  'farm.clusterId': 'cluster key',
  'farm.vips': 'virtual addresses (<virtual_addr>)',
  'farm.virtualMac': 'virtual MAC',
  'farm.directed': 'vmac mode',
  'farm.scriptControl': '<vip scriptcontrol>',
  farm: '<farm>',
  mirror: 'mirror settings (heartbeats, virtual IPs, <rfs>, cluster.xml)',
  user: '<user> (timeouts, variables)',
  errd: '<errd>',
  checkers: '<check>',
  customCheckers: 'custom checkers',
  failover: '<failover> rules',
  encryptionKeySignature: 'module encryption key (conf/modulekey.dat)',
};

/** JSON with what JSON drops made visible: key bytes, regular expressions; functions left out. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner instanceof RegExp) return `/${inner.source}/${inner.flags}`;
    if (typeof inner === 'function') return undefined;
    return inner;
  });
}

function differingKeys(old: object, next: object): string[] {
  const oldRecord = old as Record<string, unknown>;
  const nextRecord = next as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(oldRecord), ...Object.keys(nextRecord)])].sort();
  return keys.filter((key) => canonical(oldRecord[key]) !== canonical(nextRecord[key]));
}

function label(key: string): string {
  return labels[key] ?? key;
}

export function dynamicUpdatePlan(old: ModuleRuntimeConfig, next: ModuleRuntimeConfig): UpdatePlan {
  const applied: string[] = [];
  const refused: string[] = [];
  for (const key of differingKeys(old, next)) {
    if (key !== 'farm') {
      refused.push(label(key));
      continue;
    }
    const oldFarm = old.farm ?? null;
    const nextFarm = next.farm ?? null;
    if (oldFarm === null || nextFarm === null) {
      refused.push(label('farm'));
      continue;
    }
    for (const farmKey of differingKeys(oldFarm, nextFarm)) {
      const name = `farm.${farmKey}`;
      if (farmKey === 'groups') applied.push(label(name));
      else refused.push(label(name));
    }
  }
  return { applied, refused: [...new Set(refused)] };
}

/** The reference allows an update only in a stable running state: UP (farm) or ALONE (mirror). */
export function updateRefusal(
  mode: string,
  view: { state: ModuleStateName; readiness: Readiness; busy: boolean },
): string | null {
  const wanted = mode === 'mirror' ? 'ALONE' : 'UP';
  if (view.state === wanted && view.readiness === 'Ready' && !view.busy) return null;
  return `a dynamic update runs only in ${wanted} (Ready) with no command in progress; the module is ${view.state} (${view.readiness})${view.busy ? ' with a command in progress' : ''}`;
}
