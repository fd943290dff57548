// Which role each hakit verb needs when it arrives over the API (reference 9.3): reading is
// Monitor, acting on modules is Control, changing configuration or the node is Admin.
import type { Role } from './credentials.ts';

const monitorVerbs = new Set([
  'state',
  'get',
  'log',
  'cmdlog',
  'ping',
  'waitstart',
  'waitstop',
  'waitstate',
  'confinfo',
  'checkloop',
  'level',
]);
const controlVerbs = new Set([
  'start',
  'stop',
  'restart',
  'stopstart',
  'forcestop',
  'shutdown',
  'prim',
  'second',
  'swap',
  'primforce',
  'set',
  'printi',
  'printe',
  'errd',
  'checker',
  'incloop',
  'resetloop',
  'snapshot',
  // vip traffic open|close (scriptcontrol): opens or closes a node's share, like start and stop.
  'vip',
]);

export function roleOfVerb(verb: string, args: readonly string[]): Role {
  if (monitorVerbs.has(verb)) return 'Monitor';
  if (controlVerbs.has(verb)) return 'Control';
  if (verb === 'module' && (args[0] === 'list' || args[0] === 'listid')) return 'Monitor';
  if (verb === 'cluster' && (args[0] === 'confinfo' || args[0] === 'state')) return 'Monitor';
  if (verb === 'boot' && args[0] === 'status') return 'Monitor';
  // Everything else (module install, config, cluster config, boot, failover, logsave...) is Admin.
  return 'Admin';
}
