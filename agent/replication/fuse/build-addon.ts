// Builds the vendored FUSE addon from source with the node-gyp that ships with npm, into
// node_modules/.cache/hakit-fuse (outside git). Rebuilds only when a source file or the libfuse
// generation changed. Needs the Debian package libfuse3-dev (libfuse 3, preferred) or libfuse-dev
// (libfuse 2.9); without either it exits 1 with the reason, and nothing else in the agent breaks:
// the data path reports the binding as unavailable.
// Usage: node --import tsx agent/replication/fuse/build-addon.ts [--force] [--fuse2|--fuse3]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { addonBuildDirOf, addonFileName } from './addon-paths.ts';

const sourceDir = import.meta.dirname;
const repoDir = resolve(sourceDir, '..', '..', '..');
const sourceFiles = ['fuse-native.c', 'napi-macros.h', 'binding.gyp'] as const;
const buildTimeoutMs = 5 * 60_000;

function nodeGypScript(): string | undefined {
  const fromNpm = process.env['npm_config_node_gyp'];
  const candidates = [
    fromNpm,
    join(
      dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
    '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ];
  return candidates.find(
    (candidate): candidate is string => candidate !== undefined && existsSync(candidate),
  );
}

function sourceDigest(): string {
  const hash = createHash('sha256');
  for (const file of sourceFiles) hash.update(file).update(readFileSync(join(sourceDir, file)));
  hash.update(process.version);
  return hash.digest('hex');
}

/** The libfuse generations the addon builds against: 2 (libfuse-dev), 3 (libfuse3-dev). */
export type FuseApi = 2 | 3;
const pkgOfApi: Record<FuseApi, { pkg: string; debian: string }> = {
  2: { pkg: 'fuse', debian: 'libfuse-dev and fuse' },
  3: { pkg: 'fuse3', debian: 'libfuse3-dev' },
};

function hasPkg(pkg: string): boolean {
  return spawnSync('pkg-config', ['--exists', pkg], { encoding: 'utf8' }).status === 0;
}

/**
 * libfuse 3 when its headers are there (1 MiB requests: several times the replicated sequential
 * throughput of libfuse 2's 128 KiB, docs/replication.md), else libfuse 2.
 */
export function preferredFuseApi(): FuseApi {
  return hasPkg(pkgOfApi[3].pkg) || !hasPkg(pkgOfApi[2].pkg) ? 3 : 2;
}

/**
 * Builds when needed; returns the addon file, or throws with what is missing. Without `api`, the
 * preferred one into the directory the agent loads from; with it (benchmarks), into its own.
 */
export function buildFuseAddon(force = false, api?: FuseApi): string {
  const chosen = api ?? preferredFuseApi();
  const buildDir = api === undefined ? addonBuildDirOf(repoDir) : `${addonBuildDirOf(repoDir)}-api${api}`;
  const addonFile = join(buildDir, 'build', 'Release', addonFileName);
  const stampFile = join(buildDir, 'source.sha256');
  const digest = `${sourceDigest()} api${chosen}`;
  if (
    !force &&
    existsSync(addonFile) &&
    existsSync(stampFile) &&
    readFileSync(stampFile, 'utf8') === digest
  ) {
    return addonFile;
  }
  const { pkg, debian } = pkgOfApi[chosen];
  if (!hasPkg(pkg)) {
    throw new Error(`FUSE addon: pkg-config finds no "${pkg}" (install the Debian packages ${debian})`);
  }
  const gyp = nodeGypScript();
  if (gyp === undefined) throw new Error('FUSE addon: node-gyp not found (it ships with npm)');
  mkdirSync(buildDir, { recursive: true });
  for (const file of sourceFiles) copyFileSync(join(sourceDir, file), join(buildDir, file));
  const nodedir =
    process.env['npm_config_nodedir'] ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
  const args = [
    gyp,
    'rebuild',
    ...(nodedir === undefined ? [] : [`--nodedir=${nodedir}`]),
    '--',
    `-Dhakit_fuse_pkg=${pkg}`,
  ];
  const result = spawnSync(process.execPath, args, {
    cwd: buildDir,
    encoding: 'utf8',
    timeout: buildTimeoutMs,
  });
  if (result.status !== 0 || !existsSync(addonFile)) {
    const output = `${result.stdout}${result.stderr}`.split('\n').slice(-20).join('\n');
    throw new Error(
      `FUSE addon: node-gyp rebuild in ${buildDir} failed (exit ${result.status ?? result.signal}):\n${output}`,
    );
  }
  writeFileSync(stampFile, digest);
  return addonFile;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  try {
    const api = process.argv.includes('--fuse3') ? 3 : process.argv.includes('--fuse2') ? 2 : undefined;
    const file = buildFuseAddon(process.argv.includes('--force'), api);
    process.stdout.write(`FUSE addon ready: ${file}\n`);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
