// Builds every bundle: the agent (hakitd, hakit), the console main process, the lab tool,
// the test runner (esbuild) and the renderer (Vite + Svelte).
// `--if-stale` skips the work when no source is newer than the last build, so `npm test`
// and `npm start` stay fast right after `npm ci` (whose `prepare` already built everything).
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const rootDir = dirname(fileURLToPath(import.meta.url));
const distDir = join(rootDir, 'dist');
const stampFile = join(distDir, '.build-stamp');

/** Executables: [entry, output, isBin]. Bins get a shebang and the run bit (npx runs them directly). */
const nodeBundles = [
  ['agent/cli/main.ts', 'agent/hakit.cjs', true],
  ['agent/daemon/main.ts', 'agent/hakitd.cjs', true],
  // The replication data path runs in its own child process, one per mirror module.
  ['agent/replication/child.ts', 'agent/replication-child.cjs', false],
  ['main/start.ts', 'main/start.cjs', false],
  ['main/electron/shell.ts', 'main/electron.cjs', false],
  ['main/electron/preload.ts', 'main/preload.cjs', false],
  ['test/lab/cli.ts', 'lab/hakit-lab.cjs', true],
  ['test/run.ts', 'test/run.cjs', false],
];

/** Native or heavy packages stay outside the bundles and load from node_modules. */
const externalPackages = [
  'ssh2',
  'cpu-features',
  'playwright-core',
  'esbuild',
  'typescript',
  'better-sqlite3',
  '@napi-rs/keyring',
  'electron',
  'ws',
];

const sourceDirs = ['agent', 'main', 'renderer', 'test', 'resources'];
const sourceFiles = ['build.mjs', 'package.json', 'package-lock.json'];

function newestMtimeMs(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    newest = Math.max(newest, newestMtimeMs(join(path, entry)));
  }
  return newest;
}

function isStale() {
  if (!existsSync(stampFile)) return true;
  const builtMs = statSync(stampFile).mtimeMs;
  const paths = [...sourceDirs, ...sourceFiles].map((p) => join(rootDir, p));
  return paths.some((p) => newestMtimeMs(p) > builtMs);
}

async function buildNode() {
  await Promise.all(
    nodeBundles.map(async ([entry, output, isBin]) => {
      const outfile = join(distDir, output);
      await esbuild.build({
        entryPoints: [join(rootDir, entry)],
        outfile,
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'cjs',
        sourcemap: 'linked',
        external: externalPackages,
        banner: isBin ? { js: '#!/usr/bin/env node' } : undefined,
        define: { 'import.meta.dirname': '__dirname' },
        logLevel: 'warning',
      });
      if (isBin) chmodSync(outfile, 0o755);
    }),
  );
}

async function buildRenderer() {
  const { build } = await import('vite');
  await build({ configFile: join(rootDir, 'renderer/vite.config.ts'), logLevel: 'warn' });
}

async function main() {
  const ifStale = process.argv.includes('--if-stale');
  if (ifStale && !isStale()) return;
  const startedMs = Date.now();
  mkdirSync(distDir, { recursive: true });
  await buildNode();
  await buildRenderer();
  writeFileSync(stampFile, `${new Date().toISOString()}\n`);
  process.stderr.write(`build: bundles written to dist/ in ${Date.now() - startedMs} ms\n`);
}

main().catch((error) => {
  process.stderr.write(`build failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
