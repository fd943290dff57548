// A module configuration's signature: SHA-256 over its files (path, executable bit, content),
// independent of zip details, directory entries and timestamps, so the console's copy and the
// package a node sends back compare equal exactly when their files are the same.
import { createHash } from 'node:crypto';
import { buildPackage, type ModulePackage, type RawEntry } from '../../../agent/config/module-package.ts';
import type { ModuleFile } from '../../api/contract.ts';

export const userconfigFile = 'conf/userconfig.xml';

export interface SignedFile {
  path: string;
  executable: boolean;
  data: Uint8Array;
}

export function signatureOf(files: readonly SignedFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  for (const file of sorted) {
    const contentHash = createHash('sha256').update(file.data).digest('hex');
    hash.update(`${file.path}\0${file.executable ? 'x' : '-'}\0${contentHash}\n`);
  }
  return hash.digest('hex');
}

/** The files of a stored module: userconfig.xml plus its other files. */
export function storedFiles(userconfig: string, files: readonly ModuleFile[]): SignedFile[] {
  const encoder = new TextEncoder();
  return [
    { path: userconfigFile, executable: false, data: encoder.encode(userconfig) },
    ...files
      .filter((file) => file.path !== userconfigFile)
      .map((file) => ({ path: file.path, executable: file.executable, data: encoder.encode(file.text) })),
  ];
}

export function storedSignature(userconfig: string, files: readonly ModuleFile[]): string {
  return signatureOf(storedFiles(userconfig, files));
}

/** Files of a package as a node holds it (links are signed by their target). */
export function packageSignedFiles(modulePackage: ModulePackage): SignedFile[] {
  const files: SignedFile[] = [];
  for (const entry of modulePackage.entries) {
    if (entry.kind === 'file')
      files.push({ path: entry.path, executable: (entry.mode & 0o111) !== 0, data: entry.data });
    else if (entry.kind === 'symlink')
      files.push({
        path: entry.path,
        executable: false,
        data: new TextEncoder().encode(`-> ${entry.target}`),
      });
  }
  return files;
}

/** Text files of a package for the store; binary content is refused with the file's name. */
export function packageModuleFiles(modulePackage: ModulePackage): {
  userconfig: string;
  files: ModuleFile[];
} {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let userconfig: string | null = null;
  const files: ModuleFile[] = [];
  for (const entry of modulePackage.entries) {
    if (entry.kind !== 'file') continue;
    let text: string;
    try {
      text = decoder.decode(entry.data);
    } catch {
      throw new Error(`${entry.path} is not UTF-8 text; the console stores text files only`);
    }
    if (entry.path === userconfigFile) userconfig = text;
    else files.push({ path: entry.path, text, executable: (entry.mode & 0o111) !== 0 });
  }
  if (userconfig === null) throw new Error(`the package has no ${userconfigFile}`);
  return { userconfig, files };
}

/** A module package (for upload) from the stored files. */
export function modulePackageOf(userconfig: string, files: readonly ModuleFile[]): ModulePackage {
  const raw: RawEntry[] = storedFiles(userconfig, files).map((file) => ({
    path: file.path,
    kind: 'file',
    data: file.data,
    mode: file.executable ? 0o755 : 0o644,
  }));
  return buildPackage(raw);
}
