// `npm start`: the desktop console. Electron when its binary is present; when it is not, Electron's
// own download is tried once (per data folder, so a machine without internet is not retried at
// every start); otherwise console server mode on 127.0.0.1, whose URL (with its access token) is
// printed for a browser. `--server` (or HAKIT_CONSOLE_SERVER=1) goes straight to server mode.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { electronBinary } from './electron-binary.ts';
import { defaultDataDir } from './services/create-console.ts';
import { serveConsole } from './server/serve.ts';

// Bundled to dist/main/start.cjs: the tree's root is two folders up.
const rootDir = resolve(import.meta.dirname, '..', '..');
const downloadTimeoutMs = 120_000;

/** Electron's own installer, once per data folder; true when the binary is there afterwards. */
function tryElectronDownloadOnce(packageDir: string, dataDir: string): boolean {
  const marker = join(dataDir, 'electron-download-tried');
  if (existsSync(marker) || process.env.HAKIT_CONSOLE_NO_DOWNLOAD === '1') return false;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  process.stderr.write('hakit console: Electron is not downloaded; trying its own download once...\n');
  const result = spawnSync(process.execPath, [join(packageDir, 'install.js')], {
    cwd: packageDir,
    stdio: 'inherit',
    timeout: downloadTimeoutMs,
  });
  if (result.status !== 0)
    process.stderr.write('hakit console: the Electron download failed; using console server mode\n');
  return electronBinary(rootDir).path !== null;
}

async function serverMode(): Promise<void> {
  const serving = await serveConsole({ rootDir });
  process.stdout.write(
    [
      'hakit console (server mode): open this address in a browser on this machine:',
      '',
      `  ${serving.url}`,
      '',
      'The address holds the access token; anyone with it can use the console. Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  const stop = (signal: string) => {
    process.stderr.write(`hakit console: ${signal}, stopping\n`);
    serving.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

function electronMode(binary: string): void {
  const child = spawn(binary, [join(rootDir, 'dist', 'main', 'electron.cjs')], { stdio: 'inherit' });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => child.kill(signal));
}

async function main(argv: readonly string[]): Promise<void> {
  const serverOnly = argv.includes('--server') || process.env.HAKIT_CONSOLE_SERVER === '1';
  if (!serverOnly) {
    let electron = electronBinary(rootDir);
    if (
      electron.path === null &&
      electron.packageDir !== null &&
      tryElectronDownloadOnce(electron.packageDir, defaultDataDir())
    )
      electron = electronBinary(rootDir);
    if (electron.path !== null) {
      electronMode(electron.path);
      return;
    }
    process.stderr.write(`hakit console: ${electron.reason}; starting console server mode\n`);
  }
  await serverMode();
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`hakit console: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
