// `npm start`: the console's main job. Until the console lands it says what exists.
import packageJson from '../package.json' with { type: 'json' };

const lines = [
  `hakit ${packageJson.version}`,
  '',
  'The desktop console is not built yet. What exists now:',
  '  npx hakit-lab up --nodes 2     real multi-host lab of Linux namespaces (root)',
  '  npx hakit-lab --help           the lab commands (exec, fault, status, down)',
  '  npx hakit version              the node command line',
  '  npm test                       every suite, ending with "N passed, N failed"',
];
process.stdout.write(`${lines.join('\n')}\n`);
