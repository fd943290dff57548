// Native addons the agent bundles load at run time. esbuild cannot inline a compiled `.node`
// file, so each addon listed here stays external to hakitd.cjs / hakit.cjs and is copied whole
// from node_modules/<name>/ into the package, next to the bundles
// (/opt/hakit/private/bin/node_modules/<name>/), where `require('<name>')` finds it.
//
// The replication data path is the one native part: `@hakit/replication` is generated here by
// `prepareNativeAddons` (not installed by npm) and holds the vendored FUSE binding
// (agent/replication/fuse, built from source) beside the bundled replication child process, which
// hakitd forks once per mirror module (agent/replication/process.ts finds it there) and which
// loads the binding from its own folder (agent/replication/fuse/addon-paths.ts). Any other package
// a bundle leaves external makes the build fail, so a missing entry is caught at packaging time
// rather than on a node.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { addonFileName } from '../replication/fuse/addon-paths.ts';
import { buildFuseAddon } from '../replication/fuse/build-addon.ts';

export interface NativeAddon {
  /** The npm package name, as the agent code imports it. */
  packageName: string;
  /** Why the agent needs it (shown in the build log). */
  reason: string;
}

export const replicationAddonName = '@hakit/replication';
export const replicationChildFile = 'replication-child.cjs';

export const nativeAddons: readonly NativeAddon[] = [
  {
    packageName: replicationAddonName,
    reason:
      'FUSE binding (libfuse 3; nodes need libfuse3-3) and the replication child process of mirror modules with <rfs>',
  },
];

/**
 * Generates <nodeModulesDir>/@hakit/replication: builds the FUSE addon (a no-op when up to date;
 * throws when libfuse3-dev and libfuse-dev are both missing: a package that cannot replicate is
 * not shipped) and bundles
 * the replication child. Called by build-package.ts before the addons are collected, with a
 * node_modules folder of the build's own work directory, so two builds at once (parallel lab
 * runs) never remove each other's files.
 */
export async function prepareNativeAddons(
  rootDir: string,
  nodeModulesDir: string,
  log: (line: string) => void,
): Promise<void> {
  const dir = join(nodeModulesDir, ...replicationAddonName.split('/'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`building the FUSE addon into ${dir}`);
  copyFileSync(buildFuseAddon(), join(dir, addonFileName));
  await esbuild.build({
    absWorkingDir: rootDir,
    entryPoints: [join(rootDir, 'agent', 'replication', 'child.ts')],
    outfile: join(dir, replicationChildFile),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    define: { 'import.meta.dirname': '__dirname', 'import.meta.filename': '__filename' },
    logLevel: 'silent',
  });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: replicationAddonName, private: true, main: replicationChildFile }, null, 2)}\n`,
  );
}
