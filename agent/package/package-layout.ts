// What the agent package holds and where: a pure function from the build's inputs to tar
// entries, so the layout is one readable list (install.sh relies on it).
//
//   hakit-agent-<version>-linux-x64/
//     install.sh  uninstall.sh  VERSION  SHA256SUMS (every other file)
//     files/hakit                 the CLI wrapper, installed as /opt/hakit/hakit and /opt/hakit/safekit
//     files/bin/                  one release, installed as /opt/hakit/private/bin (= $SAFEBIN)
//       node  node.LICENSE        the Node runtime
//       hakitd.cjs  hakit.cjs     the bundled daemon and CLI
//       hakitd-service  hakitd-supervisor  hakitd.service  uninstall.sh  VERSION
//       node_modules/<addon>/     native addons (the replication data path: see native-addons.ts)
import { sha256SumsText } from './checksums.ts';
import type { FileChecksum } from './checksums.ts';
import type { TarEntry, TarSource } from './tar.ts';

export const packageArch = 'linux-x64';
export const checksumsFileName = 'SHA256SUMS';
const versionPattern = /^[0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const versionLengthMax = 64;

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Versions end up in file names and shell words: semver characters only. */
export function assertPackageVersion(version: string): string {
  if (version.length > versionLengthMax || !versionPattern.test(version))
    throw new LayoutError(`version '${version}' is not a semantic version such as 1.2.3 or 1.2.3-rc.1`);
  return version;
}

/** `hakit-agent-<version>-linux-x64`: the tarball's name without `.tar.gz` and its top folder. */
export function packageBaseName(version: string): string {
  return `hakit-agent-${assertPackageVersion(version)}-${packageArch}`;
}

export function packageFileName(version: string): string {
  return `${packageBaseName(version)}.tar.gz`;
}

/** The install-time assets, read from resources/agent/. */
export interface PackageAssets {
  installSh: Uint8Array;
  uninstallSh: Uint8Array;
  /** The systemd unit. */
  hakitdUnit: Uint8Array;
  /** `hakitd-service start|stop|status|restart`. */
  hakitdService: Uint8Array;
  hakitdSupervisor: Uint8Array;
  /** The sh wrapper installed as /opt/hakit/hakit and /opt/hakit/safekit. */
  cliWrapper: Uint8Array;
}

export const assetFiles: Record<keyof PackageAssets, string> = {
  installSh: 'install.sh',
  uninstallSh: 'uninstall.sh',
  hakitdUnit: 'hakitd.service',
  hakitdService: 'hakitd-service',
  hakitdSupervisor: 'hakitd-supervisor',
  cliWrapper: 'hakit-wrapper.sh',
};

export interface AddonFile {
  /** Path under node_modules/, e.g. `@cocalc/fuse-native/index.js`. */
  path: string;
  executable: boolean;
  source: TarSource;
}

export interface PackageInputs {
  version: string;
  runtime: { node: TarSource; license: TarSource };
  hakitd: Uint8Array;
  hakitCli: Uint8Array;
  assets: PackageAssets;
  addonFiles: readonly AddonFile[];
}

function file(path: string, executable: boolean, source: TarSource): TarEntry {
  return { path, type: 'file', executable, source };
}

function bytes(data: Uint8Array | string): TarSource {
  return { bytes: typeof data === 'string' ? Buffer.from(data, 'utf8') : data };
}

/** Every file of the package but SHA256SUMS, plus the directories that hold them. */
export function packageFileEntries(inputs: PackageInputs): TarEntry[] {
  const top = packageBaseName(inputs.version);
  const bin = `${top}/files/bin`;
  const versionText = `${inputs.version}\n`;
  const files: TarEntry[] = [
    file(`${top}/install.sh`, true, bytes(inputs.assets.installSh)),
    file(`${top}/uninstall.sh`, true, bytes(inputs.assets.uninstallSh)),
    file(`${top}/VERSION`, false, bytes(versionText)),
    file(`${top}/files/hakit`, true, bytes(inputs.assets.cliWrapper)),
    file(`${bin}/node`, true, inputs.runtime.node),
    file(`${bin}/node.LICENSE`, false, inputs.runtime.license),
    file(`${bin}/hakitd.cjs`, false, bytes(inputs.hakitd)),
    file(`${bin}/hakit.cjs`, false, bytes(inputs.hakitCli)),
    file(`${bin}/hakitd-service`, true, bytes(inputs.assets.hakitdService)),
    file(`${bin}/hakitd-supervisor`, true, bytes(inputs.assets.hakitdSupervisor)),
    file(`${bin}/hakitd.service`, false, bytes(inputs.assets.hakitdUnit)),
    file(`${bin}/uninstall.sh`, true, bytes(inputs.assets.uninstallSh)),
    file(`${bin}/VERSION`, false, bytes(versionText)),
    ...inputs.addonFiles.map((addon) =>
      file(`${bin}/node_modules/${addon.path}`, addon.executable, addon.source),
    ),
  ];
  const directories = new Set<string>();
  for (const entry of files) {
    const segments = entry.path.split('/');
    for (let length = 1; length < segments.length; length += 1)
      directories.add(segments.slice(0, length).join('/'));
  }
  return [
    ...[...directories].map((path): TarEntry => ({ path, type: 'directory', executable: true })),
    ...files,
  ];
}

/** The SHA256SUMS entry: paths relative to the package's top folder. */
export function checksumsEntry(version: string, checksums: readonly FileChecksum[]): TarEntry {
  const top = `${packageBaseName(version)}/`;
  const relative = checksums.map((checksum) => {
    if (!checksum.path.startsWith(top))
      throw new LayoutError(`${checksum.path} is outside the package folder ${top}`);
    return { ...checksum, path: checksum.path.slice(top.length) };
  });
  return file(`${top}${checksumsFileName}`, false, bytes(sha256SumsText(relative)));
}
