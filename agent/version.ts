// The agent's version, compiled in from package.json by the bundler.
import packageJson from '../package.json' with { type: 'json' };

export const hakitVersion: string = packageJson.version;
