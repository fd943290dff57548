// `hakitd`: the node daemon. The module supervisor arrives with the runtime issue; until then
// the daemon refuses to start rather than pretend to supervise anything.
import { hakitVersion } from '../version.ts';

function main(argv: readonly string[]): number {
  if (argv.includes('--version')) {
    process.stdout.write(`hakitd ${hakitVersion}\n`);
    return 0;
  }
  process.stderr.write(`hakitd ${hakitVersion}: the module supervisor is not built yet; nothing to run\n`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
