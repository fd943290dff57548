// The agent package the installer pushes: found beside the console (packaged app: resources/agent;
// development tree: dist/), or named by HAKIT_AGENT_PACKAGE; checked against its .sha256 before
// anything leaves this machine.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseSha256Sums, sha256HexOfFile } from '../../../agent/package/checksums.ts';
import { ConsoleError } from '../errors.ts';

const packageNamePattern = /^(hakit-agent-([0-9A-Za-z.+-]+)-linux-x64)\.tar\.gz$/;

export interface AgentPackage {
  file: string;
  checksumFile: string;
  version: string;
  /** Top folder inside the tarball. */
  topDir: string;
  sha256: string;
}

/** The newest-looking package in the folders searched, or null with the folders named. */
export function findAgentPackage(searchDirs: readonly string[]): { file: string | null; searched: string[] } {
  const fromEnv = process.env.HAKIT_AGENT_PACKAGE;
  if (fromEnv) return { file: existsSync(fromEnv) ? fromEnv : null, searched: [fromEnv] };
  for (const dir of searchDirs) {
    if (!existsSync(dir)) continue;
    const names = readdirSync(dir)
      .filter((name) => packageNamePattern.test(name))
      .sort();
    const last = names.at(-1);
    if (last !== undefined) return { file: join(dir, last), searched: [...searchDirs] };
  }
  return { file: null, searched: [...searchDirs] };
}

export async function checkAgentPackage(file: string): Promise<AgentPackage> {
  const name = basename(file);
  const match = packageNamePattern.exec(name);
  if (!match)
    throw new ConsoleError(
      'bad-input',
      `${file} is not named like an agent package (hakit-agent-V-linux-x64.tar.gz)`,
    );
  if (!existsSync(file)) throw new ConsoleError('not-found', `no agent package at ${file}`);
  const checksumFile = `${file}.sha256`;
  if (!existsSync(checksumFile))
    throw new ConsoleError('not-found', `${checksumFile} is missing beside the package`);
  let expected: string | undefined;
  try {
    const lines = parseSha256Sums(readFileSync(checksumFile, 'utf8'));
    expected = lines.length === 1 && lines[0]?.path === name ? lines[0].sha256Hex : undefined;
  } catch (error) {
    throw new ConsoleError('refused', `${checksumFile}: ${(error as Error).message}`);
  }
  if (expected === undefined)
    throw new ConsoleError('refused', `${checksumFile} should hold exactly one line, for ${name}`);
  const actual = await sha256HexOfFile(file);
  if (actual !== expected)
    throw new ConsoleError(
      'refused',
      `${file} does not match ${checksumFile} (sha256 ${actual}, expected ${expected})`,
    );
  return { file, checksumFile, version: match[2] ?? '', topDir: match[1] ?? '', sha256: actual };
}
