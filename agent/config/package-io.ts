// Module package I/O: `.safe` zip files (yauzl to read, yazl to write) and module folders. The
// only file-system code of agent/config; everything it reads goes through buildPackage, which
// enforces the limits and keeps every path inside the module.
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';
import { assert } from './assert.ts';
import {
  archiveMode,
  buildPackage,
  defaultPackageLimits,
  entryKindOfMode,
  type ModulePackage,
  normalizeEntryPath,
  PackageError,
  type PackageLimits,
  packageFiles,
  packageUserconfig,
  type RawEntry,
  secretEntryPaths,
  unwrapSingleFolder,
  userconfigPath,
} from './module-package.ts';

/** Fixed entry time so the same package always makes the same bytes. */
const packageEpoch = new Date(Date.UTC(2020, 0, 1, 0, 0, 0));
/** A link target is a path, not content. */
const linkTargetBytesMax = 4096;
/** Zip "version made by" host 3 = Unix: only then do the external attributes carry a mode. */
const unixHost = 3;
const utf8Flag = 0x800;

function readEntryData(
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  bytesMax: number,
  name: string,
): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error !== null) {
        reject(new PackageError(`cannot read entry: ${error.message}`, name));
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > bytesMax) {
          stream.destroy();
          reject(new PackageError(`entry is over the ${bytesMax}-byte limit once decompressed`, name));
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (streamError: Error) =>
        reject(new PackageError(`corrupt entry: ${streamError.message}`, name)),
      );
      stream.on('end', () => resolvePromise(Buffer.concat(chunks)));
    });
  });
}

function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileNameRaw;
  // Zips without the UTF-8 flag use CP437; for the ASCII names modules use both read the same.
  return (entry.generalPurposeBitFlag & utf8Flag) !== 0 ? raw.toString('utf8') : raw.toString('latin1');
}

/** Reads a `.safe` (zip) held in memory. Throws PackageError. */
export async function readSafeBuffer(
  buffer: Buffer,
  limits: PackageLimits = defaultPackageLimits,
): Promise<ModulePackage> {
  if (buffer.length > limits.archiveBytesMax) {
    throw new PackageError(
      `archive of ${buffer.length} bytes is over the ${limits.archiveBytesMax}-byte limit`,
    );
  }
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings off: entry names are checked by normalizeEntryPath with hakit's own messages.
    zip = await yauzl.fromBufferPromise(buffer, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    throw new PackageError(`not a zip file: ${(error as Error).message}`);
  }
  try {
    if (zip.entryCount > limits.entriesMax) {
      throw new PackageError(`too many entries: ${zip.entryCount} (at most ${limits.entriesMax})`);
    }
    const raw: RawEntry[] = [];
    let declaredBytes = 0;
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      normalizeEntryPath(name, limits); // fail before reading any data
      if (entry.isEncrypted()) throw new PackageError('encrypted entries are not supported', name);
      declaredBytes += entry.uncompressedSize;
      if (entry.uncompressedSize > limits.entryBytesMax) {
        throw new PackageError(
          `entry of ${entry.uncompressedSize} bytes is over the ${limits.entryBytesMax}-byte limit`,
          name,
        );
      }
      if (declaredBytes > limits.totalBytesMax) {
        throw new PackageError(`package content is over the ${limits.totalBytesMax}-byte limit`, name);
      }
      const mode = entry.versionMadeBy >> 8 === unixHost ? (entry.externalFileAttributes >>> 16) & 0xffff : 0;
      const kind =
        name.endsWith('/') || name.endsWith('\\') ? 'directory' : (entryKindOfMode(mode) ?? 'file');
      if (kind === 'directory') {
        raw.push({ path: name, kind, mode });
      } else if (kind === 'symlink') {
        const data = await readEntryData(zip, entry, linkTargetBytesMax, name);
        raw.push({ path: name, kind, target: data.toString('utf8') });
      } else {
        const data = await readEntryData(zip, entry, limits.entryBytesMax, name);
        raw.push({ path: name, kind: 'file', data: new Uint8Array(data), mode });
      }
    }
    const modulePackage = buildPackage(unwrapSingleFolder(raw), limits);
    if (packageUserconfig(modulePackage) === undefined) {
      throw new PackageError(`not a module: ${userconfigPath} is missing`);
    }
    return modulePackage;
  } catch (error) {
    if (error instanceof PackageError) throw error;
    throw new PackageError(`corrupt zip: ${(error as Error).message}`);
  } finally {
    zip.close();
  }
}

export async function readSafeFile(
  path: string,
  limits: PackageLimits = defaultPackageLimits,
): Promise<ModulePackage> {
  const info = await stat(path);
  if (info.size > limits.archiveBytesMax) {
    throw new PackageError(`archive of ${info.size} bytes is over the ${limits.archiveBytesMax}-byte limit`);
  }
  return readSafeBuffer(await readFile(path), limits);
}

/** Writes a package as a `.safe` zip, entries in path order, with Unix modes and fixed times. */
export function writeSafeBuffer(modulePackage: ModulePackage): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const zip = new yazl.ZipFile();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolvePromise(Buffer.concat(chunks)));
    for (const entry of modulePackage.entries) {
      const mode = archiveMode(entry);
      if (entry.kind === 'directory') zip.addEmptyDirectory(entry.path, { mtime: packageEpoch, mode });
      else if (entry.kind === 'symlink') {
        zip.addBuffer(Buffer.from(entry.target, 'utf8'), entry.path, {
          mtime: packageEpoch,
          mode,
          compress: false,
        });
      } else zip.addBuffer(Buffer.from(entry.data), entry.path, { mtime: packageEpoch, mode });
    }
    zip.end();
  });
}

/**
 * Writes atomically: a temporary file in the same directory, then a rename. A package holding a
 * secret (the module encryption key) is readable by its owner only.
 */
export async function writeSafeFile(modulePackage: ModulePackage, path: string): Promise<void> {
  const buffer = await writeSafeBuffer(modulePackage);
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const secret = modulePackage.entries.some((entry) => secretEntryPaths.has(entry.path));
  const mode = secret ? 0o600 : 0o644;
  await writeFile(temporary, buffer, { mode });
  await chmod(temporary, mode); // writeFile's mode applies only to a new file, through the umask
  await rename(temporary, path);
}

/** Reads a module folder (not following links; a link must point inside the folder). */
export async function readModuleFolder(
  folder: string,
  limits: PackageLimits = defaultPackageLimits,
): Promise<ModulePackage> {
  const raw: RawEntry[] = [];
  let totalBytes = 0;
  const visit = async (directory: string, depth: number): Promise<void> => {
    if (depth > limits.depthMax)
      throw new PackageError(`folders nested deeper than ${limits.depthMax}`, relative(folder, directory));
    const names = (await readdir(directory)).sort();
    for (const name of names) {
      const path = join(directory, name);
      const entryPath = relative(folder, path).split(sep).join('/');
      if (raw.length >= limits.entriesMax)
        throw new PackageError(`too many entries (at most ${limits.entriesMax})`);
      const info = await lstat(path);
      if (info.isSymbolicLink()) {
        raw.push({ path: entryPath, kind: 'symlink', target: await readlink(path) });
      } else if (info.isDirectory()) {
        raw.push({ path: entryPath, kind: 'directory', mode: info.mode & 0o7777 });
        await visit(path, depth + 1);
      } else if (info.isFile()) {
        if (info.size > limits.entryBytesMax) {
          throw new PackageError(
            `file of ${info.size} bytes is over the ${limits.entryBytesMax}-byte limit`,
            entryPath,
          );
        }
        totalBytes += info.size;
        if (totalBytes > limits.totalBytesMax)
          throw new PackageError(`module content is over the ${limits.totalBytesMax}-byte limit`, entryPath);
        raw.push({
          path: entryPath,
          kind: 'file',
          data: new Uint8Array(await readFile(path)),
          mode: info.mode & 0o7777,
        });
      } else {
        throw new PackageError('not a regular file, directory or link (device, socket or pipe)', entryPath);
      }
    }
  };
  await visit(folder, 0);
  const modulePackage = buildPackage(raw, limits);
  if (packageUserconfig(modulePackage) === undefined) {
    throw new PackageError(`not a module folder: ${userconfigPath} is missing`);
  }
  return modulePackage;
}

/**
 * Writes a package into `folder`, which must not exist yet (a module is installed whole, never
 * merged into another one). Links are created last, so no file is ever written through one.
 */
export async function writeModuleFolder(modulePackage: ModulePackage, folder: string): Promise<void> {
  const root = resolve(folder);
  const exists = await stat(root).then(
    () => true,
    () => false,
  );
  if (exists) throw new PackageError(`${folder} already exists`);
  const parent = dirname(root);
  const staging = await mkdtemp(join(parent, `.${basename(root)}.`));
  try {
    const inside = (path: string): string => {
      const target = resolve(staging, ...path.split('/'));
      assert(target.startsWith(`${staging}${sep}`), `entry ${path} stays inside the module folder`);
      return target;
    };
    for (const entry of modulePackage.entries) {
      if (entry.kind === 'directory') await mkdir(inside(entry.path), { recursive: true, mode: 0o755 });
    }
    for (const entry of modulePackage.entries) {
      if (entry.kind !== 'file') continue;
      const target = inside(entry.path);
      await mkdir(dirname(target), { recursive: true, mode: 0o755 });
      await writeFile(target, entry.data, { mode: entry.mode });
      await chmod(target, entry.mode); // writeFile's mode is filtered by the umask
    }
    for (const entry of modulePackage.entries) {
      if (entry.kind === 'directory') await chmod(inside(entry.path), entry.mode);
    }
    for (const entry of modulePackage.entries) {
      if (entry.kind !== 'symlink') continue;
      const target = inside(entry.path);
      await mkdir(dirname(target), { recursive: true, mode: 0o755 });
      await symlink(entry.target, target);
    }
    await rename(staging, root);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

export type ModuleSourceKind = 'userconfig' | 'folder' | 'safe';

export interface ModuleSource {
  readonly kind: ModuleSourceKind;
  /** The path given. */
  readonly path: string;
  /** Name of the userconfig.xml for problems: a path, or `pkg.safe!/conf/userconfig.xml`. */
  readonly userconfigFile: string;
  readonly userconfigText: string;
  /** The module name: the folder or package name (without .safe). */
  readonly moduleName: string | undefined;
  readonly package: ModulePackage | undefined;
  readonly packageFiles: readonly string[] | undefined;
}

/** Size bound for a lone userconfig.xml read from disk (the XML parser bounds it again). */
const userconfigBytesMax = 4 * 1024 * 1024;

/** Loads what `hakit config check PATH` accepts: a userconfig.xml, a module folder or a `.safe`. */
export async function loadModuleSource(
  path: string,
  limits: PackageLimits = defaultPackageLimits,
): Promise<ModuleSource> {
  const info = await stat(path);
  if (info.isDirectory()) {
    const modulePackage = await readModuleFolder(path, limits);
    return {
      kind: 'folder',
      path,
      userconfigFile: join(path, ...userconfigPath.split('/')),
      userconfigText: packageUserconfig(modulePackage) ?? '',
      moduleName: basename(resolve(path)),
      package: modulePackage,
      packageFiles: packageFiles(modulePackage),
    };
  }
  if (/\.(safe|zip)$/i.test(path)) {
    const modulePackage = await readSafeFile(path, limits);
    return {
      kind: 'safe',
      path,
      userconfigFile: `${path}!/${userconfigPath}`,
      userconfigText: packageUserconfig(modulePackage) ?? '',
      moduleName: basename(path).replace(/\.(safe|zip)$/i, ''),
      package: modulePackage,
      packageFiles: packageFiles(modulePackage),
    };
  }
  if (info.size > userconfigBytesMax)
    throw new PackageError(
      `${path} is ${info.size} bytes; a userconfig.xml is at most ${userconfigBytesMax}`,
    );
  // A conf/userconfig.xml inside a module folder still knows its module and scripts.
  const parent = dirname(resolve(path));
  const inModule = basename(parent) === 'conf';
  let files: string[] | undefined;
  if (inModule) {
    const binFolder = join(dirname(parent), 'bin');
    files = await readdir(binFolder).then(
      (names) => names.map((name) => `bin/${name}`),
      () => undefined,
    );
  }
  return {
    kind: 'userconfig',
    path,
    userconfigFile: path,
    userconfigText: await readFile(path, 'utf8'),
    moduleName: inModule ? basename(dirname(parent)) : undefined,
    package: undefined,
    packageFiles: files,
  };
}
