// `hakit` (also installed as `safekit`): the node command line. Local commands run here;
// module commands go to the node's hakitd over its control socket.
import { resolve } from 'node:path';
import { nodePaths } from '../daemon/paths.ts';
import { hakitVersion } from '../version.ts';
import { apikey, clusterTrust, fingerprintLine, webservercfg } from './api-admin-commands.ts';
import { configCommand } from './config-command.ts';
import { runDistributed } from './distributed.ts';
import { CliUsageError, daemonVerbs, moduleCommandsUsage, runModuleCommand } from './module-commands.ts';
import { setGroupsCommand } from './script-traffic.ts';

const usage = `usage: hakit COMMAND [-m AM] [options]
  version                     print the agent version
  level                       version of this node's agent and whether its daemon runs
  -p                          print SAFE, SAFEBIN, SAFEVAR and the control socket
  help                        this text
  config check PATH... [--cluster CLUSTER_XML] [--json]
                              validate a module (userconfig.xml, module folder or .safe), no daemon needed
  config show PATH [--cluster CLUSTER_XML] [--json]
                              print the effective configuration (macros expanded, defaults filled)
Module administration (the daemon must run):
  module install [-m AM] [-M ID] [-r] /path/AM.safe|/path/folder
  module uninstall -m AM;  module list;  module listid;  module package -m AM /path/new.safe
  module genkey|delkey -m AM  make or remove the module encryption key (replication in TLS);
                              taken into account at the next config -m AM; give the other node
                              the same key with -H "*" -E AM
  config -m AM                apply the edited module (modules/AM) to its runtime copy
  deconfig -m AM;  confcheck -m AM;  confinfo -m AM
  cluster config|confcheck /path/cluster.xml;  cluster confinfo;  cluster state;  cluster genkey|delkey
API access (local, as root):
  webservercfg -passwd PASSWORD [-user USER] [-role Admin|Control|Monitor]
  apikey create Admin|Control|Monitor NAME | list | delete NAME | import NAME ROLE TOKEN
  cluster trust NODE FINGERPRINT;  cluster nodekey TOKEN     node-to-node trust for -H and proxying
Distributed (through the nodes' APIs):
  -H "*"|"n1,n2"|"https://host:9453,..." COMMAND...;  -H HOSTS -G;  -H HOSTS -E AM
${moduleCommandsUsage}`;

/** Paths sent to the daemon are made absolute here: the daemon does not share our cwd. */
function absolutePaths(argv: readonly string[]): string[] {
  const [verb, action, ...rest] = argv;
  if (verb === 'module' && (action === 'install' || action === 'package')) {
    const takesValue = new Set(['-m', '-M', '-i']);
    return [
      verb,
      action,
      ...rest.map((arg, index) =>
        arg.startsWith('-') || takesValue.has(rest[index - 1] ?? '') ? arg : resolve(arg),
      ),
    ];
  }
  if ((verb === 'snapshot' || verb === 'logsave') && argv.length > 1) {
    const last = argv.at(-1) ?? '';
    return last.startsWith('-') ? [...argv] : [...argv.slice(0, -1), resolve(last)];
  }
  if (verb === 'cluster' && (action === 'config' || action === 'confcheck') && rest[0] !== undefined) {
    return [verb, action, resolve(rest[0]), ...rest.slice(1)];
  }
  return [...argv];
}

const daemonAdminVerbs: ReadonlySet<string> = new Set([
  'module',
  'deconfig',
  'confcheck',
  'confinfo',
  'cluster',
]);

async function main(argv: readonly string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'version':
    case '--version':
      process.stdout.write(`hakit ${hakitVersion}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(`${usage}\n`);
      return command === undefined ? 2 : 0;
    case '-p': {
      const paths = nodePaths();
      process.stdout.write(
        `SAFE=${paths.safe}\nSAFEBIN=${paths.safeBin}\nSAFEVAR=${paths.safeVar}\n` +
          `HAKIT_RUN=${paths.run}\nCONTROL_SOCKET=${paths.controlSocket}\n`,
      );
      return 0;
    }
    case 'level': {
      process.stdout.write(`hakit ${hakitVersion} (Linux ${process.arch}, Node ${process.versions.node})\n`);
      process.stdout.write(`${fingerprintLine()}\n`);
      return (await runModuleCommand(['ping'])) === 0 ? 0 : 1;
    }
    case 'config':
      // `config check|show PATH` runs here without a daemon; `config -m AM` applies on the node.
      if (argv[1] === 'check' || argv[1] === 'show') {
        return configCommand(argv.slice(1), {
          stdout: (text) => process.stdout.write(text),
          stderr: (text) => process.stderr.write(text),
          environment: process.env,
        });
      }
      return runModuleCommand(argv);
    case '-H': {
      const hosts = argv[1];
      if (hosts === undefined)
        throw new CliUsageError('-H HOSTS COMMAND: HOSTS is *, node names or https URLs, comma-separated');
      return runDistributed(hosts, argv.slice(2));
    }
    case '-r':
      // The reference runs helpers with -r; its scripts use one: vipd SETGROUPS (scriptcontrol).
      return runModuleCommand(setGroupsCommand(argv.slice(1)));
    case 'webservercfg':
      return webservercfg(argv.slice(1));
    case 'apikey':
      return apikey(argv.slice(1));
    case 'cluster':
      if (argv[1] === 'trust' || argv[1] === 'nodekey') return clusterTrust(argv.slice(1));
      return runModuleCommand(absolutePaths(argv));
    default:
      if (daemonVerbs.includes(command) || daemonAdminVerbs.has(command))
        return runModuleCommand(absolutePaths(argv));
      process.stderr.write(`hakit: unknown command '${command}'\n${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CliUsageError) {
      process.stderr.write(`hakit: ${error.message}\n${usage}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`hakit: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
