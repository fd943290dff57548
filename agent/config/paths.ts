// Replicated directory paths: POSIX (`/var/lib/pgsql/data`) or Windows (`c:\test1replicated`, the
// vendor's Windows modules). Compared in a normal form so duplicates and nesting are found however
// they are spelled (trailing slash, doubled separators, case on Windows).

export type PathStyle = 'posix' | 'windows' | 'relative';

export function pathStyle(path: string): PathStyle {
  if (path.startsWith('/')) return 'posix';
  if (/^[A-Za-z]:[\\/]/.test(path)) return 'windows';
  return 'relative';
}

export interface NormalizedPath {
  readonly style: PathStyle;
  /** Forward slashes, no `.` segments, no trailing slash except the root; lower case on Windows. */
  readonly key: string;
  /** The path walks up with `..` somewhere. */
  readonly hasParentSegment: boolean;
  readonly isRoot: boolean;
}

export function normalizePath(path: string): NormalizedPath {
  const style = pathStyle(path);
  const slashed = style === 'windows' ? path.replace(/\\/g, '/').toLowerCase() : path;
  const prefix = style === 'windows' ? slashed.slice(0, 2) : '';
  const body = style === 'windows' ? slashed.slice(2) : slashed;
  const segments = body.split('/').filter((segment) => segment !== '' && segment !== '.');
  const hasParentSegment = segments.includes('..');
  const absolute = style !== 'relative';
  const key = `${prefix}${absolute ? '/' : ''}${segments.join('/')}`;
  return { style, key, hasParentSegment, isRoot: absolute && segments.length === 0 };
}

/** True when `inner` is `outer` or lies below it (both normalised, same style). */
export function isSameOrInside(outer: NormalizedPath, inner: NormalizedPath): boolean {
  if (outer.style !== inner.style) return false;
  if (outer.key === inner.key) return true;
  const base = outer.key.endsWith('/') ? outer.key : `${outer.key}/`;
  return inner.key.startsWith(base);
}

/** A path relative to a replicated directory (`<notreplicated path>`, `<tocheck path>`). */
export function relativePathProblem(path: string): string | undefined {
  if (path.trim() === '') return 'is empty';
  if (pathStyle(path) !== 'relative' || path.startsWith('\\'))
    return 'must be relative to the replicated directory';
  if (normalizePath(path).hasParentSegment) return "must stay inside the replicated directory (no '..')";
  return undefined;
}
