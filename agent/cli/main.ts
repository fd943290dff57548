// `hakit` (also installed as `safekit`): the node command line.
// Verbs arrive with the runtime issue; until then only what exists is offered.
import { hakitVersion } from '../version.ts';
import { configCommand } from './config-command.ts';

const usage = `usage: hakit COMMAND
  version     print the agent version
  help        this text
  config check PATH... [--cluster CLUSTER_XML] [--json]
              validate a module (userconfig.xml, module folder or .safe), no daemon needed
  config show PATH [--cluster CLUSTER_XML] [--json]
              print the effective configuration (macros expanded, defaults filled)
Module commands (start, stop, state, ...) arrive with the agent runtime.`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
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
    case 'config':
      return configCommand(rest, {
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
        environment: process.env,
      });
    default:
      process.stderr.write(`hakit: unknown command '${command}'\n${usage}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `hakit: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
