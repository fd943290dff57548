// A module package in memory: `conf/userconfig.xml`, `bin/*` scripts with their run bits, and
// whatever else the module ships (reference §11.1). Pure: building a package checks every path
// and size, so a package that exists in memory is safe to write anywhere. The zip and folder I/O
// is in package-io.ts.
import { assert } from './assert.ts';

export interface PackageLimits {
  readonly entriesMax: number;
  readonly entryBytesMax: number;
  readonly totalBytesMax: number;
  /** Size of a `.safe` file on disk (compressed). */
  readonly archiveBytesMax: number;
  readonly pathCharsMax: number;
  readonly depthMax: number;
}

/** The vendor's largest modules (hyperv, kvm) are well under 1 MiB; these bounds leave room. */
export const defaultPackageLimits: PackageLimits = {
  entriesMax: 2048,
  entryBytesMax: 16 * 1024 * 1024,
  totalBytesMax: 64 * 1024 * 1024,
  archiveBytesMax: 64 * 1024 * 1024,
  pathCharsMax: 1024,
  depthMax: 32,
};

export type PackageEntry =
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode: number }
  | { readonly kind: 'directory'; readonly path: string; readonly mode: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string };

export interface ModulePackage {
  /** Sorted by path, unique; paths are relative, `/`-separated, inside the module; every parent
   *  directory has its own entry. */
  readonly entries: readonly PackageEntry[];
}

export const userconfigPath = 'conf/userconfig.xml';
/** The module encryption key (`hakit module genkey`); the reference also names a `.p12` form. */
export const moduleKeyPath = 'conf/modulekey.dat';
/** Files holding secrets: mode 600 wherever the package comes from (a console or a zip may say 644). */
export const secretEntryPaths: ReadonlySet<string> = new Set([moduleKeyPath, 'conf/modulekey.p12']);

/** A package that cannot be accepted: a path escaping the module, a size over a limit, ... */
export class PackageError extends Error {
  override readonly name = 'PackageError';

  constructor(
    message: string,
    readonly entryPath?: string,
  ) {
    super(entryPath === undefined ? message : `${entryPath}: ${message}`);
  }
}

const fileTypeMask = 0o170000;
export const symlinkType = 0o120000;
export const directoryType = 0o040000;
export const regularType = 0o100000;

/**
 * Checks and normalises an entry path: `/` separators, no empty, `.` or `..` segment, not absolute,
 * no drive letter, no NUL. Backslashes count as separators (zips made on Windows).
 */
export function normalizeEntryPath(raw: string, limits: PackageLimits = defaultPackageLimits): string {
  if (raw.length > limits.pathCharsMax)
    throw new PackageError(`path longer than ${limits.pathCharsMax} characters`, raw.slice(0, 80));
  if (raw.includes('\0')) throw new PackageError('path contains a NUL character', raw);
  const slashed = raw.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed))
    throw new PackageError('absolute path: it would escape the module', raw);
  const segments = slashed.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) throw new PackageError("path with '..': it would escape the module", raw);
  if (segments.length === 0) throw new PackageError('empty path', raw);
  if (segments.length > limits.depthMax)
    throw new PackageError(`path deeper than ${limits.depthMax} directories`, raw);
  return segments.join('/');
}

/** A link may point inside the module only: relative, and never above the module root. */
export function checkSymlinkTarget(linkPath: string, target: string): void {
  if (target === '' || target.includes('\0'))
    throw new PackageError('symbolic link with an empty or invalid target', linkPath);
  const slashed = target.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) {
    throw new PackageError(`symbolic link to ${target} points outside the module`, linkPath);
  }
  const stack = linkPath.split('/').slice(0, -1);
  for (const segment of slashed.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (stack.length === 0)
        throw new PackageError(`symbolic link to ${target} points outside the module`, linkPath);
      stack.pop();
    } else stack.push(segment);
  }
}

/** Links may follow links (a chain of at most this many) and must still end inside the module. */
const linkHopsMax = 40;

/**
 * Resolves a link target the way the kernel would, following links of the package, and throws when
 * it leaves the module (a link to `.` followed by `..` escapes although each link looks harmless).
 */
function resolveInside(
  linkPath: string,
  target: string,
  byPath: ReadonlyMap<string, PackageEntry>,
  hops: number,
): string[] {
  if (hops > linkHopsMax) throw new PackageError('symbolic links loop or chain too deep', linkPath);
  const stack = linkPath.split('/').slice(0, -1);
  for (const segment of target.replace(/\\/g, '/').split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (stack.length === 0)
        throw new PackageError(`symbolic link to ${target} points outside the module`, linkPath);
      stack.pop();
      continue;
    }
    stack.push(segment);
    const entry = byPath.get(stack.join('/'));
    if (entry?.kind === 'symlink') {
      const resolved = resolveInside(entry.path, entry.target, byPath, hops + 1);
      stack.splice(0, stack.length, ...resolved);
    }
  }
  return stack;
}

/** The permission bits a file gets when its archive carries none: scripts in bin/ run. */
export function defaultMode(path: string, kind: 'file' | 'directory'): number {
  if (kind === 'directory') return 0o755;
  return path.startsWith('bin/') ? 0o755 : 0o644;
}

export interface RawEntry {
  readonly path: string;
  readonly kind: 'file' | 'directory' | 'symlink';
  readonly data?: Uint8Array;
  readonly target?: string;
  /** Unix mode bits when known (0 or undefined: unknown). */
  readonly mode?: number;
}

/**
 * Builds a checked package: normalised unique paths, limits, links inside the module and no
 * entry below a link (which would write through it). Throws PackageError.
 */
export function buildPackage(
  raw: readonly RawEntry[],
  limits: PackageLimits = defaultPackageLimits,
): ModulePackage {
  if (raw.length > limits.entriesMax)
    throw new PackageError(`too many entries: ${raw.length} (at most ${limits.entriesMax})`);
  const byPath = new Map<string, PackageEntry>();
  let totalBytes = 0;
  for (const entry of raw) {
    const path = normalizeEntryPath(entry.path, limits);
    if (byPath.has(path)) {
      const existing = byPath.get(path);
      // Zips may list a directory explicitly after its files' implied parents; that is fine.
      if (existing?.kind === 'directory' && entry.kind === 'directory') continue;
      throw new PackageError('entry appears twice', path);
    }
    const permissions = (entry.mode ?? 0) & 0o7777;
    if (entry.kind === 'file') {
      const data = entry.data ?? new Uint8Array();
      if (data.byteLength > limits.entryBytesMax) {
        throw new PackageError(
          `entry of ${data.byteLength} bytes is over the ${limits.entryBytesMax}-byte limit`,
          path,
        );
      }
      totalBytes += data.byteLength;
      if (totalBytes > limits.totalBytesMax) {
        throw new PackageError(`package content is over the ${limits.totalBytesMax}-byte limit`, path);
      }
      byPath.set(path, {
        kind: 'file',
        path,
        data,
        mode: secretEntryPaths.has(path)
          ? 0o600
          : permissions === 0
            ? defaultMode(path, 'file')
            : permissions,
      });
    } else if (entry.kind === 'directory') {
      byPath.set(path, {
        kind: 'directory',
        path,
        mode: permissions === 0 ? defaultMode(path, 'directory') : permissions,
      });
    } else {
      const target = entry.target ?? '';
      checkSymlinkTarget(path, target);
      byPath.set(path, { kind: 'symlink', path, target });
    }
  }
  for (const entry of byPath.values())
    if (entry.kind === 'symlink') resolveInside(entry.path, entry.target, byPath, 0);
  const links = [...byPath.values()].filter((entry) => entry.kind === 'symlink').map((entry) => entry.path);
  for (const path of byPath.keys()) {
    const below = links.find((link) => path.startsWith(`${link}/`));
    if (below !== undefined) throw new PackageError(`entry lies below the symbolic link ${below}`, path);
  }
  for (const entry of byPath.values()) {
    // A file used as a directory by another entry cannot be written.
    const parents = entry.path.split('/').slice(0, -1);
    for (let i = 1; i <= parents.length; i++) {
      const parent = byPath.get(parents.slice(0, i).join('/'));
      if (parent !== undefined && parent.kind === 'file')
        throw new PackageError(`${parent.path} is both a file and a directory`, entry.path);
    }
  }
  // One canonical form whatever the source: every parent directory is an entry (zips often omit them).
  for (const entry of [...byPath.values()]) {
    const parents = entry.path.split('/').slice(0, -1);
    for (let i = 1; i <= parents.length; i++) {
      const path = parents.slice(0, i).join('/');
      if (!byPath.has(path))
        byPath.set(path, { kind: 'directory', path, mode: defaultMode(path, 'directory') });
    }
  }
  if (byPath.size > limits.entriesMax)
    throw new PackageError(`too many entries: ${byPath.size} (at most ${limits.entriesMax})`);
  const entries = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { entries };
}

/** Mode bits for an archive entry: type and permissions. */
export function archiveMode(entry: PackageEntry): number {
  switch (entry.kind) {
    case 'file':
      return regularType | entry.mode;
    case 'directory':
      return directoryType | entry.mode;
    case 'symlink':
      return symlinkType | 0o777;
  }
}

export function entryKindOfMode(mode: number): 'file' | 'directory' | 'symlink' | undefined {
  switch (mode & fileTypeMask) {
    case symlinkType:
      return 'symlink';
    case directoryType:
      return 'directory';
    case regularType:
      return 'file';
    default:
      return undefined;
  }
}

/** When a zip wraps the module in one folder (`mymodule/conf/userconfig.xml`), drop that folder. */
export function unwrapSingleFolder(raw: readonly RawEntry[]): RawEntry[] {
  const normalized = raw.map((entry) => entry.path.replace(/\\/g, '/').replace(/^\.\//, ''));
  if (normalized.some((path) => path === userconfigPath)) return [...raw];
  const tops = new Set(normalized.map((path) => path.split('/')[0] ?? ''));
  if (tops.size !== 1) return [...raw];
  const [top] = [...tops];
  if (top === undefined || top === '' || !normalized.includes(`${top}/${userconfigPath}`)) return [...raw];
  return raw
    .map((entry, index) => ({ ...entry, path: (normalized[index] ?? '').slice(top.length + 1) }))
    .filter((entry) => entry.path !== '' && entry.path !== '/');
}

export function findEntry(modulePackage: ModulePackage, path: string): PackageEntry | undefined {
  return modulePackage.entries.find((entry) => entry.path === path);
}

/** The text of conf/userconfig.xml (UTF-8), or undefined when the package has none. */
export function packageUserconfig(modulePackage: ModulePackage): string | undefined {
  const entry = findEntry(modulePackage, userconfigPath);
  if (entry === undefined || entry.kind !== 'file') return undefined;
  return new TextDecoder('utf-8').decode(entry.data);
}

/** Paths of the regular files, for checking that handlers and checkers exist in bin/. */
export function packageFiles(modulePackage: ModulePackage): string[] {
  return modulePackage.entries.filter((entry) => entry.kind !== 'directory').map((entry) => entry.path);
}

/** The same package with a new conf/userconfig.xml. */
export function withUserconfig(modulePackage: ModulePackage, text: string): ModulePackage {
  const data = new TextEncoder().encode(text);
  const existing = findEntry(modulePackage, userconfigPath);
  const mode = existing?.kind === 'file' ? existing.mode : 0o644;
  const entries = modulePackage.entries.filter((entry) => entry.path !== userconfigPath);
  const raw: RawEntry[] = [...entries.map(toRaw), { path: userconfigPath, kind: 'file', data, mode }];
  const rebuilt = buildPackage(raw);
  assert(packageUserconfig(rebuilt) === text, 'the new userconfig.xml is in the package');
  return rebuilt;
}

export function toRaw(entry: PackageEntry): RawEntry {
  switch (entry.kind) {
    case 'file':
      return { path: entry.path, kind: 'file', data: entry.data, mode: entry.mode };
    case 'directory':
      return { path: entry.path, kind: 'directory', mode: entry.mode };
    case 'symlink':
      return { path: entry.path, kind: 'symlink', target: entry.target };
  }
}
