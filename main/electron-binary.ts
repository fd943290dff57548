// Where Electron's binary is, without requiring the electron package (requiring it starts a
// download when the binary is missing). Used by `npm start` and by the Electron launch test.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export function electronBinary(rootDir: string): {
  path: string | null;
  packageDir: string | null;
  reason: string;
} {
  const require = createRequire(join(rootDir, 'package.json'));
  let packageDir: string;
  try {
    packageDir = dirname(require.resolve('electron/package.json'));
  } catch {
    return { path: null, packageDir: null, reason: 'the electron package is not installed' };
  }
  // Read what electron's index.js reads, without requiring it: requiring it starts a download.
  const pathFile = join(packageDir, 'path.txt');
  const executable = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : null;
  const distDir = process.env.ELECTRON_OVERRIDE_DIST_PATH ?? join(packageDir, 'dist');
  if (executable === null && !process.env.ELECTRON_OVERRIDE_DIST_PATH)
    return {
      path: null,
      packageDir,
      reason: "Electron's binary is not downloaded (no path.txt in the electron package)",
    };
  const path = join(distDir, executable ?? 'electron');
  if (!existsSync(path)) return { path: null, packageDir, reason: `Electron's binary is missing (${path})` };
  return { path, packageDir, reason: 'present' };
}
