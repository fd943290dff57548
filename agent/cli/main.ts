// `hakit` (also installed as `safekit`): the node command line.
// Verbs arrive with the runtime issue; until then only what exists is offered.
import { hakitVersion } from '../version.ts';

const usage = `usage: hakit COMMAND
  version     print the agent version
  help        this text
Module commands (start, stop, state, ...) arrive with the agent runtime.`;

function main(argv: readonly string[]): number {
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
    default:
      process.stderr.write(`hakit: unknown command '${command}'\n${usage}\n`);
      return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
