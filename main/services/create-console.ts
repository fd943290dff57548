// Builds the console services for either transport: the data folder, the store, the secrets (OS
// keychain, or the encrypted file), the SSH transport, templates and the agent package's folders.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { hakitVersion } from '../../agent/version.ts';
import { ConsoleServices } from './console-services.ts';
import { SshTransport } from './installer/ssh-transport.ts';
import { SecretStore } from './secrets/secret-store.ts';
import { SiteStore } from './store/site-store.ts';

export interface CreateConsoleOptions {
  transport: 'electron' | 'server';
  /** Where the store, the secrets file and the snapshots live. */
  dataDir?: string;
  resourcesDir: string;
  agentPackageDirs: string[];
  labCli: string | null;
  repoDir: string | null;
  log?: (message: string) => void;
  /** Use the encrypted file even where a keychain runs (tests, HAKIT_CONSOLE_SECRETS=file). */
  forceFileSecrets?: boolean;
}

export function defaultDataDir(): string {
  if (process.env.HAKIT_CONSOLE_DIR) return process.env.HAKIT_CONSOLE_DIR;
  const base = process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config');
  return join(base, 'hakit-console');
}

export async function createConsole(options: CreateConsoleOptions): Promise<ConsoleServices> {
  const dataDir = options.dataDir ?? defaultDataDir();
  const log = options.log ?? ((message: string) => process.stderr.write(`hakit console: ${message}\n`));
  const secrets = await SecretStore.open(join(dataDir, 'secrets.enc.json'), {
    forceFile: options.forceFileSecrets ?? process.env.HAKIT_CONSOLE_SECRETS === 'file',
  });
  const passphrase = process.env.HAKIT_CONSOLE_PASSPHRASE;
  if (passphrase) await secrets.unlock(passphrase);
  const store = new SiteStore(join(dataDir, 'console.db'));
  if (store.migration.backupFile)
    log(
      `store migrated from version ${store.migration.from} to ${store.migration.to}; backup ${store.migration.backupFile}`,
    );
  return new ConsoleServices({
    version: hakitVersion,
    transport: options.transport,
    dataDir,
    store,
    secrets,
    sshTransport: new SshTransport(),
    templatesDir: join(options.resourcesDir, 'modules'),
    agentPackageDirs: options.agentPackageDirs,
    labCli: options.labCli,
    repoDir: options.repoDir,
    log,
  });
}
