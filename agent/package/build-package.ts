// `npm run package:agent`: builds dist/hakit-agent-<version>-linux-x64.tar.gz (the Node runtime,
// hakitd and the CLI bundled from source, native addons, install.sh, uninstall.sh, the systemd
// unit, SHA256SUMS) and <tarball>.sha256 beside it. The same tree always gives the same bytes.
//
//   node --import tsx agent/package/build-package.ts [--version V] [--out-dir DIR] [--cache-dir DIR]
//
// --version (or HAKIT_PACKAGE_VERSION) overrides package.json's version in the bundles and names;
// tests use it to build an upgrade. Prints a JSON summary on stdout, progress on stderr.
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { bundleAgent } from './bundle-agent.ts';
import { sha256HexOfBytes, sha256HexOfFile, sha256SumLine } from './checksums.ts';
import type { FileChecksum } from './checksums.ts';
import { nativeAddons, prepareNativeAddons } from './native-addons.ts';
import type { NativeAddon } from './native-addons.ts';
import { ensureRuntimeTarball, extractRuntime, nodeRuntime } from './node-runtime.ts';
import {
  assertPackageVersion,
  assetFiles,
  checksumsEntry,
  packageFileEntries,
  packageFileName,
} from './package-layout.ts';
import type { AddonFile, PackageAssets } from './package-layout.ts';
import { writeTarGz } from './tar.ts';
import type { TarEntry } from './tar.ts';

const rootDir = resolve(import.meta.dirname, '..', '..');
const addonFilesMax = 10_000;

const usage = `usage: node --import tsx agent/package/build-package.ts [--version V] [--out-dir DIR] [--cache-dir DIR]
  --version V      version to build (default: package.json's, or $HAKIT_PACKAGE_VERSION)
  --out-dir DIR    where the tarball and its .sha256 go (default: dist)
  --cache-dir DIR  where the Node runtime tarball is cached (default: node_modules/.cache/hakit-runtime)`;

class UsageError extends Error {}

interface BuildOptions {
  version: string;
  outDir: string;
  cacheDir: string;
}

interface BuildSummary {
  file: string;
  checksumFile: string;
  version: string;
  nodeVersion: string;
  bytes: number;
  sha256: string;
  seconds: number;
}

function log(line: string): void {
  process.stderr.write(`package:agent: ${line}\n`);
}

function parseOptions(argv: readonly string[]): BuildOptions | undefined {
  const packageJson = JSON.parse(readFileSync(join(rootDir, 'package.json'), 'utf8')) as { version: string };
  const options: BuildOptions = {
    version: process.env.HAKIT_PACKAGE_VERSION ?? packageJson.version,
    outDir: join(rootDir, 'dist'),
    cacheDir: join(rootDir, 'node_modules', '.cache', 'hakit-runtime'),
  };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === '--help') return undefined;
    const value = argv[index + 1];
    if (!['--version', '--out-dir', '--cache-dir'].includes(arg))
      throw new UsageError(`unknown argument ${arg}`);
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    index += 1;
    if (arg === '--version') options.version = value;
    else if (arg === '--out-dir') options.outDir = resolve(value);
    else options.cacheDir = resolve(value);
  }
  assertPackageVersion(options.version);
  return options;
}

function readAssets(): PackageAssets {
  const assetsDir = join(rootDir, 'resources', 'agent');
  const read = (name: string) => readFileSync(join(assetsDir, name));
  return {
    installSh: read(assetFiles.installSh),
    uninstallSh: read(assetFiles.uninstallSh),
    hakitdUnit: read(assetFiles.hakitdUnit),
    hakitdService: read(assetFiles.hakitdService),
    hakitdSupervisor: read(assetFiles.hakitdSupervisor),
    cliWrapper: read(assetFiles.cliWrapper),
  };
}

/** Every file of each addon's node_modules folder (links refused: the package holds files only). */
function collectAddonFiles(nodeModulesDir: string, addons: readonly NativeAddon[]): AddonFile[] {
  const found: AddonFile[] = [];
  const walk = (dir: string, relative: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const relativePath = `${relative}/${name}`;
      const stat = lstatSync(path);
      if (stat.isDirectory()) walk(path, relativePath);
      else if (stat.isFile()) {
        found.push({
          path: relativePath,
          executable: (stat.mode & 0o111) !== 0,
          source: { file: path, sizeBytes: stat.size },
        });
        if (found.length > addonFilesMax)
          throw new Error(`native addons hold more than ${addonFilesMax} files: check native-addons.ts`);
      } else throw new Error(`${path}: native addon files must be regular files (no links)`);
    }
  };
  for (const addon of addons) {
    const dir = join(nodeModulesDir, addon.packageName);
    if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new Error(`native addon ${addon.packageName} was not prepared (${dir})`);
    log(`native addon ${addon.packageName}: ${addon.reason}`);
    walk(dir, addon.packageName);
  }
  return found;
}

async function checksumOf(entry: TarEntry): Promise<FileChecksum> {
  const source = entry.source!;
  const sha256Hex = 'bytes' in source ? sha256HexOfBytes(source.bytes) : await sha256HexOfFile(source.file);
  return { path: entry.path, sha256Hex };
}

async function buildPackage(options: BuildOptions): Promise<BuildSummary> {
  const startedMs = Date.now();
  const runtimeTarball = await ensureRuntimeTarball(options.cacheDir, log);
  const workDir = mkdtempSync(join(tmpdir(), 'hakit-package-'));
  try {
    const runtime = await extractRuntime(runtimeTarball, workDir);
    log(`bundling hakitd and hakit ${options.version}`);
    const bundles = await bundleAgent(rootDir, options.version, nativeAddons);
    const addonModulesDir = join(workDir, 'node_modules');
    await prepareNativeAddons(rootDir, addonModulesDir, log);
    const entries = packageFileEntries({
      version: options.version,
      runtime: {
        node: { file: runtime.node, sizeBytes: lstatSync(runtime.node).size },
        license: { file: runtime.license, sizeBytes: lstatSync(runtime.license).size },
      },
      hakitd: bundles.get('hakitd.cjs')!,
      hakitCli: bundles.get('hakit.cjs')!,
      assets: readAssets(),
      addonFiles: collectAddonFiles(addonModulesDir, nativeAddons),
    });
    const checksums = await Promise.all(entries.filter((entry) => entry.type === 'file').map(checksumOf));
    entries.push(checksumsEntry(options.version, checksums));
    mkdirSync(options.outDir, { recursive: true });
    const file = join(options.outDir, packageFileName(options.version));
    log(`writing ${file}`);
    await writeTarGz(entries, file);
    const sha256 = await sha256HexOfFile(file);
    const checksumFile = `${file}.sha256`;
    writeFileSync(`${checksumFile}.part`, sha256SumLine({ path: basename(file), sha256Hex: sha256 }));
    renameSync(`${checksumFile}.part`, checksumFile);
    return {
      file,
      checksumFile,
      version: options.version,
      nodeVersion: nodeRuntime.version,
      bytes: lstatSync(file).size,
      sha256,
      seconds: Math.round((Date.now() - startedMs) / 100) / 10,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const summary = await buildPackage(options);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`package:agent: ${error.message}\n${usage}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(
        `package:agent: failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
