// Where the built FUSE addon lives. Source checkouts build it into node_modules/.cache (ignored by
// git, see build-addon.ts); an agent package ships it beside the bundle; HAKIT_FUSE_ADDON overrides.
import { dirname, join, resolve } from 'node:path';

export const addonFileName = 'hakit_fuse.node';
export const addonCacheRelative = join('node_modules', '.cache', 'hakit-fuse');

/** Levels walked up from this file looking for node_modules: covers the source tree and dist/. */
const parentLevelsMax = 6;

export function addonBuildDirOf(repoDir: string): string {
  return join(repoDir, addonCacheRelative);
}

export function addonFileCandidates(): string[] {
  const candidates: string[] = [];
  const fromEnv = process.env['HAKIT_FUSE_ADDON'];
  if (fromEnv !== undefined && fromEnv !== '') candidates.push(resolve(fromEnv));
  const here = import.meta.dirname ?? process.cwd();
  candidates.push(join(here, addonFileName));
  let dir = here;
  for (let level = 0; level < parentLevelsMax; level += 1) {
    candidates.push(join(addonBuildDirOf(dir), 'build', 'Release', addonFileName));
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  candidates.push(join(addonBuildDirOf(process.cwd()), 'build', 'Release', addonFileName));
  return [...new Set(candidates)];
}
