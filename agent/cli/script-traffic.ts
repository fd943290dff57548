// `<vip scriptcontrol="on">`: the scripts of a farm module open and close this node's share of
// the traffic themselves. hakit's form is `hakit vip traffic open|close [-m AM]`; the reference's
// form `safekit -r saferpc_send vipd SETGROUPS all all all` (open) / `none none none` (close) is
// translated to it here, so module scripts written for the reference run unchanged. Inside a
// script -m may be left out: $SAFEMODULE names the module.
import { CliUsageError } from './module-commands.ts';

const setGroupsUsage =
  '-r saferpc_send vipd SETGROUPS all all all (open) | none none none (close) [-m AM]; or: vip traffic open|close -m AM';

/**
 * `-r HELPER ARGS...` (the arguments after `-r`) as the `vip traffic` command it stands for.
 * Only the reference's SETGROUPS call is known; anything else is refused with what is accepted.
 */
export function setGroupsCommand(argv: readonly string[]): string[] {
  const words: string[] = [];
  const moduleArgs: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === '-m') {
      const value = argv[index + 1];
      if (value === undefined || value.length === 0) throw new CliUsageError('-m needs a value');
      moduleArgs.push('-m', value);
      index += 1;
    } else words.push(arg);
  }
  const [helper, daemon, call, ...groups] = words;
  if (helper !== 'saferpc_send' || daemon !== 'vipd')
    throw new CliUsageError(
      `-r ${words.slice(0, 2).join(' ') || '(nothing)'}: not supported; hakit knows ${setGroupsUsage}`,
    );
  if (call !== 'SETGROUPS')
    throw new CliUsageError(`vipd ${call ?? '(no call)'}: not supported; hakit knows ${setGroupsUsage}`);
  const all = groups.length === 3 && groups.every((group) => group === 'all');
  const none = groups.length === 3 && groups.every((group) => group === 'none');
  if (!all && !none)
    throw new CliUsageError(`SETGROUPS ${groups.join(' ') || '(no groups)'}: use ${setGroupsUsage}`);
  return ['vip', 'traffic', all ? 'open' : 'close', ...moduleArgs];
}
