// The Debian packages hakit's tests, lab and tools rely on. Checked before any work that needs
// them: installed with apt when running as root on Debian, otherwise listed with the exact
// command that installs them, and the caller stops with a non-zero exit.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface SystemPackage {
  name: string;
  why: string;
}

export const labSystemPackages: readonly SystemPackage[] = [
  { name: 'iproute2', why: 'ip netns, veth and bridges for lab hosts' },
  { name: 'nftables', why: 'lab partitions and packet loss, farm filters' },
  { name: 'openssh-server', why: 'an sshd on every lab node' },
  { name: 'openssh-client', why: 'ssh-keygen for lab keys' },
  { name: 'iputils-ping', why: 'ping checker and lab reachability' },
  { name: 'iputils-arping', why: 'virtual IP conflict probe and gratuitous ARP' },
  { name: 'util-linux', why: 'unshare, nsenter, losetup for lab nodes' },
  { name: 'e2fsprogs', why: 'per-node lab disks (mkfs.ext4)' },
  { name: 'procps', why: 'pgrep and pkill for lab process faults' },
  { name: 'openssl', why: 'node certificates for the agent API' },
  { name: 'libndp-tools', why: 'repeated IPv6 neighbour advertisements when a virtual IP moves' },
];

export const allSystemPackages: readonly SystemPackage[] = [
  ...labSystemPackages,
  { name: 'fuse', why: 'FUSE mounts for real-time replication' },
  { name: 'libfuse3-dev', why: 'building the FUSE binding (libfuse 3, 1 MiB requests)' },
  { name: 'libfuse-dev', why: 'the libfuse 2.9 build of the FUSE binding (fallback, benchmark)' },
  { name: 'chromium', why: 'browser end-to-end tests of the console' },
  { name: 'sqlite3', why: 'the SQLite workload of the replication Jepsen-style check' },
];

export class MissingSystemPackagesError extends Error {
  override name = 'MissingSystemPackagesError';
}

/** Packages of `wanted` that dpkg does not report as installed. */
export function missingSystemPackages(wanted: readonly SystemPackage[]): SystemPackage[] {
  if (!existsSync('/usr/bin/dpkg-query')) return [...wanted];
  const result = spawnSync(
    'dpkg-query',
    ['-W', '-f=${Package} ${db:Status-Abbrev}\\n', ...wanted.map((p) => p.name)],
    {
      encoding: 'utf8',
    },
  );
  const installed = new Set(
    result.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, status]) => status === 'ii')
      .map(([name]) => name),
  );
  return wanted.filter((p) => !installed.has(p.name));
}

function isRootOnDebian(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/apt-get') && existsSync('/etc/debian_version');
}

function runApt(args: readonly string[]): void {
  const result = spawnSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 20 * 60_000,
  });
  if (result.status !== 0) {
    throw new MissingSystemPackagesError(
      `apt-get ${args.join(' ')} failed (exit ${result.status ?? result.signal})`,
    );
  }
}

/**
 * Makes sure the packages are installed. As root on Debian the missing ones are installed;
 * elsewhere an error lists them with the command to run.
 */
export async function ensureSystemPackages(wanted: readonly SystemPackage[], who: string): Promise<void> {
  const missing = missingSystemPackages(wanted);
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name);
  const listing = missing.map((p) => `  ${p.name}: ${p.why}`).join('\n');
  if (!isRootOnDebian()) {
    throw new MissingSystemPackagesError(
      `${who} needs these Debian packages, which are not installed:\n${listing}\n` +
        `Install them with:\n  sudo apt-get install -y --no-install-recommends ${names.join(' ')}`,
    );
  }
  process.stderr.write(`${who}: installing missing system packages: ${names.join(' ')}\n`);
  runApt(['update', '-q']);
  runApt(['install', '-y', '-q', '--no-install-recommends', ...names]);
  const stillMissing = missingSystemPackages(wanted);
  if (stillMissing.length > 0) {
    throw new MissingSystemPackagesError(
      `${who}: apt-get did not install ${stillMissing.map((p) => p.name).join(' ')}`,
    );
  }
}
