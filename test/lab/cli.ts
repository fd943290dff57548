// `npx hakit-lab`: the command every multi-node test, benchmark and the demo use.
// Reports are JSON on stdout; errors are one clear message on stderr and a non-zero exit.
import { spawn } from 'node:child_process';
import { MissingSystemPackagesError } from '../system-packages.ts';
import { LabError } from './command.ts';
import * as faults from './faults.ts';
import { labInstall } from './install.ts';
import { findLabNode, labDown, labStatus, labUp, nodeEnterArgs, readLabState } from './lab.ts';
import { assertLabName, labNameDefault } from './names.ts';

const usage = `usage: hakit-lab COMMAND [--name LAB] ...
  up --nodes N [--witness] [--client]   create nodes n1..nN (+ w, c); prints the lab as JSON
  status                                nodes, addresses and active faults as JSON
  exec NODE -- CMD [ARGS...]            run a command inside a node (exit code passed through)
  fault partition A B [--oneway] [--ip 4|6]
                                        drop packets between A and B (A to B only with --oneway;
                                        only their IPv4 or only their IPv6 addresses with --ip)
  fault heal [A B]                      lift the partition A-B, or every fault of the lab
  fault loss NODE PERCENT               drop PERCENT % of the node's packets each way (0 lifts it)
  fault link NODE down|up               unplug or replug the node's cable
  fault kill NODE PATTERN [--signal S]  signal processes whose command line matches (default KILL)
  fault freeze|thaw NODE PATTERN        SIGSTOP / SIGCONT matching processes
  fault disk-full|disk-free NODE PATH   fill or free the node disk holding PATH
  install NODE...                       install the agent package over ssh (JSON report per node)
  down                                  remove everything of the lab (idempotent)
A and B may also be 'host', the machine running hakit-lab. Default LAB is '${labNameDefault}'.`;

class UsageError extends Error {}

interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
  rest: string[];
}

const flagsWithValue = new Set(['--name', '--nodes', '--signal', '--ip']);

function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  let rest: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === '--') {
      rest = argv.slice(index + 1);
      break;
    }
    if (arg.startsWith('--')) {
      const [key, inline] = arg.split('=', 2) as [string, string | undefined];
      if (flagsWithValue.has(key)) {
        const value = inline ?? argv[index + 1];
        if (value === undefined) throw new UsageError(`${key} needs a value`);
        if (inline === undefined) index += 1;
        flags.set(key, value);
      } else {
        if (inline !== undefined) throw new UsageError(`${key} takes no value`);
        flags.set(key, true);
      }
      continue;
    }
    positional.push(arg);
  }
  return { positional, flags, rest };
}

function checkFlags(args: ParsedArgs, allowed: readonly string[]): void {
  for (const key of args.flags.keys()) {
    if (!allowed.includes(key)) throw new UsageError(`unknown option ${key} here`);
  }
}

function checkCount(args: ParsedArgs, count: number, what: string): void {
  if (args.positional.length !== count) throw new UsageError(`expected: ${what}`);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function execCommand(lab: string, node: string, command: string[]): Promise<number> {
  if (command.length === 0) throw new UsageError('exec: give the command after --, e.g. exec n1 -- hostname');
  findLabNode(readLabState(lab), node);
  const enter = await nodeEnterArgs(lab, node);
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [...enter, '--', ...command], { stdio: 'inherit' });
    child.on('error', (error) => reject(new LabError(`exec: cannot start nsenter: ${error.message}`)));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
}

async function runFault(lab: string, args: ParsedArgs): Promise<faults.FaultResult> {
  const [, kind, ...rest] = args.positional;
  const signal = args.flags.get('--signal');
  switch (kind) {
    case 'partition': {
      checkFlags(args, ['--name', '--oneway', '--ip']);
      checkCount(args, 4, 'fault partition A B [--oneway] [--ip 4|6]');
      const ip = args.flags.get('--ip') ?? 'both';
      if (ip !== 'both' && ip !== '4' && ip !== '6')
        throw new UsageError(`partition: --ip takes 4 or 6, got '${String(ip)}'`);
      return faults.partition(
        lab,
        faults.assertFaultNode(rest[0]!),
        faults.assertFaultNode(rest[1]!),
        args.flags.has('--oneway'),
        ip,
      );
    }
    case 'heal':
      checkFlags(args, ['--name']);
      if (args.positional.length !== 2 && args.positional.length !== 4)
        throw new UsageError('expected: fault heal [A B]');
      return faults.heal(lab, rest[0], rest[1]);
    case 'loss': {
      checkFlags(args, ['--name']);
      checkCount(args, 4, 'fault loss NODE PERCENT');
      const percentText = rest[1]!;
      if (!/^\d+$/.test(percentText))
        throw new UsageError(`loss: PERCENT must be a whole number, got '${percentText}'`);
      return faults.loss(lab, rest[0]!, Number(percentText));
    }
    case 'link':
      checkFlags(args, ['--name']);
      checkCount(args, 4, 'fault link NODE down|up');
      return faults.link(lab, rest[0]!, rest[1]!);
    case 'kill':
      checkFlags(args, ['--name', '--signal']);
      checkCount(args, 4, 'fault kill NODE PATTERN [--signal SIG]');
      return faults.kill(lab, rest[0]!, rest[1]!, typeof signal === 'string' ? signal : 'KILL');
    case 'freeze':
    case 'thaw':
      checkFlags(args, ['--name']);
      checkCount(args, 4, `fault ${kind} NODE PATTERN`);
      return kind === 'freeze'
        ? faults.freeze(lab, rest[0]!, rest[1]!)
        : faults.thaw(lab, rest[0]!, rest[1]!);
    case 'disk-full':
    case 'disk-free':
      checkFlags(args, ['--name']);
      checkCount(args, 4, `fault ${kind} NODE PATH`);
      return kind === 'disk-full'
        ? faults.diskFull(lab, rest[0]!, rest[1]!)
        : faults.diskFree(lab, rest[0]!, rest[1]!);
    default:
      throw new UsageError(`unknown fault '${kind ?? ''}'`);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const command = args.positional[0];
  if (command === undefined || command === 'help' || args.flags.has('--help')) {
    process.stdout.write(`${usage}\n`);
    return command === undefined ? 2 : 0;
  }
  const nameFlag = args.flags.get('--name');
  if (nameFlag === true) throw new UsageError('--name needs a value');
  const lab = assertLabName(nameFlag ?? labNameDefault);
  if (process.getuid?.() !== 0)
    throw new LabError('hakit-lab creates namespaces, links and mounts: run it as root');
  switch (command) {
    case 'up': {
      checkFlags(args, ['--name', '--nodes', '--witness', '--client']);
      checkCount(args, 1, 'up --nodes N [--witness] [--client] [--name LAB]');
      const nodesText = args.flags.get('--nodes');
      if (typeof nodesText !== 'string' || !/^\d+$/.test(nodesText))
        throw new UsageError('up: --nodes N is required (a whole number)');
      const state = await labUp({
        lab,
        nodeCount: Number(nodesText),
        witness: args.flags.has('--witness'),
        client: args.flags.has('--client'),
      });
      printJson({
        lab: state.lab,
        subnet: state.subnet,
        subnet6: state.subnet6,
        hostIp: state.hostIp,
        knownHostsFile: state.knownHostsFile,
        nodes: state.nodes,
      });
      return 0;
    }
    case 'status':
      checkFlags(args, ['--name']);
      checkCount(args, 1, 'status [--name LAB]');
      printJson(await labStatus(lab));
      return 0;
    case 'down':
      checkFlags(args, ['--name']);
      checkCount(args, 1, 'down [--name LAB]');
      printJson(await labDown(lab));
      return 0;
    case 'exec':
      checkFlags(args, ['--name']);
      checkCount(args, 2, 'exec [--name LAB] NODE -- CMD [ARGS...]');
      return execCommand(lab, args.positional[1]!, args.rest);
    case 'fault':
      printJson(await runFault(lab, args));
      return 0;
    case 'install': {
      checkFlags(args, ['--name']);
      if (args.positional.length < 2) throw new UsageError('expected: install [--name LAB] NODE...');
      const reports = await labInstall(lab, args.positional.slice(1));
      printJson(reports);
      for (const report of reports.filter((candidate) => !candidate.ok))
        process.stderr.write(`hakit-lab: install on ${report.node} failed: ${report.error ?? ''}\n`);
      return reports.every((report) => report.ok) ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`hakit-lab: ${error.message}\n\n${usage}\n`);
      process.exitCode = 2;
    } else if (error instanceof LabError || error instanceof MissingSystemPackagesError) {
      process.stderr.write(`hakit-lab: ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `hakit-lab: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
