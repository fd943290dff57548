// `hakit VERB ...` for everything the daemon carries out (module control, state, resources,
// logs, maintenance toggles, maxloop), following the reference's grammar (section 7):
// `-m AM` (or $SAFEMODULE inside scripts), `-i IDENTITY` for actions counted by maxloop.
import { userInfo } from 'node:os';
import {
  type ControlRequest,
  type ControlResponse,
  controlMessageBytesMax,
  moduleActionVerbs,
} from '../daemon/control-protocol.ts';
import { nodePaths } from '../daemon/paths.ts';
import { DaemonUnreachableError, sendControl } from './control-client.ts';

/** Verbs the daemon answers; `hakit help` lists them. */
export const daemonVerbs: readonly string[] = [
  ...moduleActionVerbs,
  'shutdown',
  'waitstart',
  'waitstop',
  'waitstate',
  'state',
  'get',
  'set',
  'log',
  'logsave',
  'logview',
  'cmdlog',
  'snapshot',
  'printi',
  'printe',
  'errd',
  'checker',
  'boot',
  'failover',
  'incloop',
  'resetloop',
  'checkloop',
  'rfsverify',
  'rfsdiff',
  'update',
  'vip',
  'ping',
];

const waitingVerbs: ReadonlySet<string> = new Set(['waitstart', 'waitstop', 'waitstate']);
const requestTimeoutMs = 60_000;
/** Exit code when no daemon answers (distinct from every state code of `state -lq`). */
export const exitDaemonDown = 10;

export const moduleCommandsUsage = `Module commands (the daemon must run; -m is optional inside module scripts):
  start|stop|restart|stopstart|forcestop -m AM [-i IDENTITY]
  prim [fullsync]|second [fullsync]|swap [nosync]|primforce -m AM   (mirror modules)
  shutdown                                  stop every module
  waitstart|waitstop -m AM [-t SECONDS]     wait until started / stopped
  waitstate -m AM STOP|WAIT|ALONE|UP|PRIM|SECOND [-t SECONDS]
  state [-m AM] [-v|-lq]                    -lq exit code: STOP 0, WAIT 1, ALONE/UP 2, PRIM 3, SECOND 4
  get -m AM -r RESOURCE
  set -m AM -r RESOURCE -v VALUE [-i IDENTITY]
  log -m AM [-s N] [-A]                     last N messages (300); -A with verbose ones
  logview -m AM [-A]                        follow the module log until interrupted
  logsave -m AM [-A] /absolute/file.txt     save the whole log to a file
  cmdlog [-s N]                             the node's command audit log
  printi|printe -m AM "message"             write to the module log
  snapshot -m AM [--anonymize] /abs/file.zip  support snapshot (last 3 configurations and dumps)
  errd on|off|enable CLASS|disable CLASS|list -m AM
  checker on|off -m AM;  boot on|off|status -m AM;  failover on|off -m AM
  incloop -m AM -i IDENTITY;  resetloop -m AM;  checkloop -m AM
  rfsverify -m AM                           on the primary: compare the replicated trees of both nodes
  rfsdiff -m AM                             on the primary: estimate what the next reintegration sends
  update -m AM                              re-read the applied configuration and cluster.xml, apply what
                                            can change while running, run the update script (UP or ALONE only)
  vip traffic open|close -m AM              farm modules with <vip scriptcontrol="on">: open or close this
                                            node's share of the traffic (from the module's scripts)
  -r saferpc_send vipd SETGROUPS all all all|none none none   the reference's form of vip traffic open|close`;

export class CliUsageError extends Error {}

export interface ParsedCommand {
  verb: string;
  module?: string;
  identity?: string;
  args: string[];
}

/** Pulls -m and -i out of the arguments; everything else goes to the verb. */
export function parseModuleCommand(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCommand {
  const [verb, ...rest] = argv;
  if (!verb) throw new CliUsageError('no command given');
  const args: string[] = [];
  let module = env.SAFEMODULE && env.SAFEMODULE.length > 0 ? env.SAFEMODULE : undefined;
  let identity: string | undefined;
  for (let index = 0; index < rest.length; index += 1) {
    const arg = rest[index] ?? '';
    if (arg === '-m' || arg === '-i') {
      const value = rest[index + 1];
      if (value === undefined || value.length === 0) throw new CliUsageError(`${arg} needs a value`);
      if (arg === '-m') module = value;
      else identity = value;
      index += 1;
    } else args.push(arg);
  }
  const parsed: ParsedCommand = { verb, args };
  if (module !== undefined) parsed.module = module;
  if (identity !== undefined) parsed.identity = identity;
  return parsed;
}

function callerName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

export async function runModuleCommand(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const parsed = parseModuleCommand(argv, env);
  const request: ControlRequest = { ...parsed, caller: callerName() };
  if (JSON.stringify(request).length > controlMessageBytesMax) throw new CliUsageError('arguments too long');
  const paths = nodePaths(env);
  if (parsed.verb === 'logview') return followLog(paths.controlSocket, request);
  try {
    const response = await sendControl(
      paths.controlSocket,
      request,
      waitingVerbs.has(parsed.verb) ? 0 : requestTimeoutMs,
    );
    if (response.text.length > 0) process.stdout.write(`${response.text}\n`);
    if (response.error) process.stderr.write(`hakit: ${response.error}\n`);
    return response.exitCode;
  } catch (error) {
    if (error instanceof DaemonUnreachableError) {
      process.stderr.write(
        `hakit: ${error.message}; start it with: /opt/hakit/private/bin/hakitd-service start\n`,
      );
      return exitDaemonDown;
    }
    throw error;
  }
}

const logviewPollMs = 500;

/** `logview`: prints the log, then every new message, until interrupted. */
async function followLog(socketPath: string, request: ControlRequest): Promise<number> {
  let lastLine = '';
  for (;;) {
    let response: ControlResponse;
    try {
      response = await sendControl(
        socketPath,
        { ...request, verb: 'log', args: [...request.args, '-s', '300'] },
        requestTimeoutMs,
      );
    } catch (error) {
      process.stderr.write(`hakit: ${(error as Error).message}\n`);
      return exitDaemonDown;
    }
    if (response.exitCode !== 0) {
      process.stderr.write(`hakit: ${response.error ?? 'log failed'}\n`);
      return response.exitCode;
    }
    const lines = response.text.split('\n').filter((line) => line.length > 0);
    const seen = lines.lastIndexOf(lastLine);
    const fresh = seen >= 0 ? lines.slice(seen + 1) : lines;
    if (fresh.length > 0) {
      process.stdout.write(`${fresh.join('\n')}\n`);
      lastLine = fresh.at(-1) ?? lastLine;
    }
    await new Promise((resolve) => setTimeout(resolve, logviewPollMs));
  }
}
