// Bundles hakitd and the hakit CLI for the package, from source, with the version the package
// carries (so a test can build an "upgrade" package from the same tree). Same esbuild settings as
// build.mjs, targeting the Node runtime the package ships. A bundle may leave external only Node
// built-ins and the listed native addons: anything else would be missing on a node.
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import type { NativeAddon } from './native-addons.ts';

export const agentBundles = [
  { entry: 'agent/daemon/main.ts', output: 'hakitd.cjs' },
  { entry: 'agent/cli/main.ts', output: 'hakit.cjs' },
] as const;

export type AgentBundleName = (typeof agentBundles)[number]['output'];

export class BundleError extends Error {
  override name = 'BundleError';
}

/** Whether a bundle may leave `importPath` to be resolved at run time on the node. */
export function isAllowedExternal(importPath: string, addons: readonly NativeAddon[]): boolean {
  if (importPath.startsWith('node:')) return true;
  if (builtinModules.includes(importPath.split('/')[0] ?? '')) return true;
  return addons.some(
    (addon) => importPath === addon.packageName || importPath.startsWith(`${addon.packageName}/`),
  );
}

/** Serves the repository's package.json with `version` replaced. */
function versionPlugin(rootDir: string, version: string): esbuild.Plugin {
  const packageJsonFile = join(rootDir, 'package.json');
  return {
    name: 'hakit-package-version',
    setup(build) {
      build.onLoad({ filter: /[\\/]package\.json$/ }, async (args) => {
        if (args.path !== packageJsonFile) return undefined;
        const json = JSON.parse(await readFile(args.path, 'utf8')) as Record<string, unknown>;
        return { contents: JSON.stringify({ ...json, version }), loader: 'json' };
      });
    },
  };
}

export async function bundleAgent(
  rootDir: string,
  version: string,
  addons: readonly NativeAddon[],
): Promise<Map<AgentBundleName, Uint8Array>> {
  const bundles = new Map<AgentBundleName, Uint8Array>();
  for (const { entry, output } of agentBundles) {
    let result: esbuild.BuildResult<{ write: false; metafile: true }>;
    try {
      result = await esbuild.build({
        absWorkingDir: rootDir,
        entryPoints: [join(rootDir, entry)],
        outfile: join(rootDir, 'dist', 'package-staging', output),
        write: false,
        metafile: true,
        bundle: true,
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        external: addons.map((addon) => addon.packageName),
        define: { 'import.meta.dirname': '__dirname' },
        plugins: [versionPlugin(rootDir, version)],
        logLevel: 'silent',
      });
    } catch (error) {
      throw new BundleError(`cannot bundle ${entry}: ${(error as Error).message}`);
    }
    const outputs = Object.values(result.metafile.outputs);
    const strays = outputs
      .flatMap((meta) => meta.imports)
      .filter((imported) => imported.external && !isAllowedExternal(imported.path, addons))
      .map((imported) => imported.path);
    if (strays.length > 0)
      throw new BundleError(
        `${entry} needs ${[...new Set(strays)].join(', ')} at run time: bundle it, or list it in ` +
          `agent/package/native-addons.ts`,
      );
    const file = result.outputFiles.find((candidate) => candidate.path.endsWith(output));
    if (!file) throw new BundleError(`esbuild produced no ${output} for ${entry}`);
    bundles.set(output, file.contents);
  }
  return bundles;
}
