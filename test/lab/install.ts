// `hakit-lab install [--name LAB] NODE...`: puts the agent package on lab nodes the way the
// console's installer will: over each node's sshd (ssh2, host key checked against the one the lab
// pinned), SFTP upload of the tarball and its .sha256, then `install.sh` run there. Nodes are
// installed in parallel; each gets a report, and one failing does not stop the others.
// The package is dist/hakit-agent-<version>-linux-x64.tar.gz, or the file $HAKIT_AGENT_PACKAGE.
import { existsSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Client } from 'ssh2';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { parseSha256Sums, sha256HexOfFile } from '../../agent/package/checksums.ts';
import { hakitVersion } from '../../agent/version.ts';
import { LabError } from './command.ts';
import { findLabNode, readLabState } from './lab.ts';
import type { LabNode } from './lab.ts';

export interface NodeInstallReport {
  node: string;
  ok: boolean;
  /** What `/opt/hakit/hakit version` prints on the node after the install ('' when it failed). */
  version: string;
  seconds: number;
  error?: string;
}

const repoDir = resolve(import.meta.dirname, '..', '..');
const packageNamePattern = /^(hakit-agent-[0-9A-Za-z.+-]+-linux-x64)\.tar\.gz$/;
const connectTimeoutMs = 15_000;
const nodeInstallTimeoutMs = 5 * 60_000;
const remoteOutputBytesMax = 1024 * 1024;
const errorLinesMax = 15;

export function defaultPackageFile(): string {
  return (
    process.env.HAKIT_AGENT_PACKAGE ??
    resolve(repoDir, 'dist', `hakit-agent-${hakitVersion}-linux-x64.tar.gz`)
  );
}

/** Checks the tarball against the .sha256 beside it before anything leaves this machine. */
export async function checkPackageFile(packageFile: string): Promise<{ topDir: string }> {
  const name = basename(packageFile);
  const match = packageNamePattern.exec(name);
  if (!match)
    throw new LabError(`${packageFile} is not named like an agent package (hakit-agent-V-linux-x64.tar.gz)`);
  if (!existsSync(packageFile))
    throw new LabError(`no agent package at ${packageFile}: build it with npm run package:agent`);
  const checksumFile = `${packageFile}.sha256`;
  if (!existsSync(checksumFile)) throw new LabError(`${checksumFile} is missing: rebuild the package`);
  let expected: string | undefined;
  try {
    const lines = parseSha256Sums(readFileSync(checksumFile, 'utf8'));
    expected = lines.length === 1 && lines[0]?.path === name ? lines[0].sha256Hex : undefined;
  } catch (error) {
    throw new LabError(`${checksumFile}: ${(error as Error).message}`);
  }
  if (expected === undefined) throw new LabError(`${checksumFile} should hold exactly one line, for ${name}`);
  const actual = await sha256HexOfFile(packageFile);
  if (actual !== expected)
    throw new LabError(
      `${packageFile} does not match ${checksumFile} (sha256 ${actual}, expected ${expected})`,
    );
  return { topDir: match[1]! };
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function connect(node: LabNode): Promise<Client> {
  const expectedKey = Buffer.from(node.hostPublicKey.split(' ')[1] ?? '', 'base64');
  return new Promise((resolvePromise, reject) => {
    const client = new Client();
    client
      .on('ready', () => resolvePromise(client))
      .on('error', (error) =>
        reject(new LabError(`ssh to ${node.name} (${node.ssh.host}): ${error.message}`)),
      )
      .connect({
        host: node.ssh.host,
        port: node.ssh.port,
        username: node.ssh.user,
        privateKey: readFileSync(node.ssh.keyFile),
        readyTimeout: connectTimeoutMs,
        hostVerifier: (key: Buffer) => key.equals(expectedKey),
      });
  });
}

interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
}

function remoteExec(client: Client, command: string): Promise<RemoteResult> {
  return new Promise((resolvePromise, reject) => {
    client.exec(command, (error: Error | undefined, stream: ClientChannel) => {
      if (error) {
        reject(new LabError(`cannot run a command over ssh: ${error.message}`));
        return;
      }
      let stdout = '';
      let stderr = '';
      let code = 255;
      const keep = (text: string, chunk: Buffer) =>
        (text + chunk.toString('utf8')).slice(-remoteOutputBytesMax);
      stream.on('data', (chunk: Buffer) => {
        stdout = keep(stdout, chunk);
      });
      stream.stderr.on('data', (chunk: Buffer) => {
        stderr = keep(stderr, chunk);
      });
      stream.on('exit', (exitCode: number | null, signal?: string) => {
        code = exitCode ?? (signal ? 128 : 255);
      });
      stream.on('close', () => resolvePromise({ code, stdout, stderr }));
    });
  });
}

function openSftp(client: Client): Promise<SFTPWrapper> {
  return new Promise((resolvePromise, reject) => {
    client.sftp((error, sftp) =>
      error ? reject(new LabError(`cannot open SFTP: ${error.message}`)) : resolvePromise(sftp),
    );
  });
}

function upload(sftp: SFTPWrapper, localFile: string, remoteFile: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    sftp.fastPut(localFile, remoteFile, (error) =>
      error
        ? reject(new LabError(`SFTP upload of ${localFile} to ${remoteFile}: ${error.message}`))
        : resolvePromise(),
    );
  });
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-errorLinesMax).join('\n');
}

interface Connection {
  client?: Client;
}

async function installOnNode(
  node: LabNode,
  packageFile: string,
  topDir: string,
  connection: Connection,
): Promise<string> {
  const client = await connect(node);
  connection.client = client;
  try {
    const made = await remoteExec(client, 'mktemp -d /tmp/hakit-install.XXXXXX');
    const remoteDir = made.stdout.trim();
    if (made.code !== 0 || !/^\/tmp\/hakit-install\.[A-Za-z0-9]+$/.test(remoteDir))
      throw new LabError(`cannot make a temporary folder: ${lastLines(made.stderr || made.stdout)}`);
    const name = basename(packageFile);
    const sftp = await openSftp(client);
    try {
      await upload(sftp, packageFile, `${remoteDir}/${name}`);
      await upload(sftp, `${packageFile}.sha256`, `${remoteDir}/${name}.sha256`);
    } finally {
      sftp.end();
    }
    // The transfer is checked again on the node; the folder goes whatever happens.
    const script = [
      'set -eu',
      `dir=${shellQuote(remoteDir)}`,
      `trap 'cd / && rm -rf "$dir"' EXIT`,
      'cd "$dir"',
      `sha256sum --check --strict --quiet ${shellQuote(`${name}.sha256`)}`,
      `tar -xzf ${shellQuote(name)}`,
      `sh ${shellQuote(`./${topDir}/install.sh`)} --no-path-link`,
    ].join('\n');
    const installed = await remoteExec(client, `sh -c ${shellQuote(script)}`);
    if (installed.code !== 0)
      throw new LabError(
        `install.sh exited ${installed.code}:\n${lastLines(`${installed.stdout}\n${installed.stderr}`)}`,
      );
    const version = await remoteExec(client, '/opt/hakit/hakit version');
    const printed = /^hakit (\S+)$/.exec(version.stdout.trim())?.[1];
    if (version.code !== 0 || printed === undefined)
      throw new LabError(
        `installed, but /opt/hakit/hakit version fails (exit ${version.code}): ${lastLines(version.stderr || version.stdout)}`,
      );
    return printed;
  } finally {
    client.end();
  }
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new LabError(`${what} did not finish within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export async function labInstall(
  lab: string,
  nodeNames: readonly string[],
  packageFile = defaultPackageFile(),
): Promise<NodeInstallReport[]> {
  if (nodeNames.length === 0) throw new LabError('install: name at least one node');
  if (new Set(nodeNames).size !== nodeNames.length) throw new LabError('install: a node is named twice');
  const state = readLabState(lab);
  const nodes = nodeNames.map((name) => findLabNode(state, name));
  const { topDir } = await checkPackageFile(packageFile);
  return Promise.all(
    nodes.map(async (node): Promise<NodeInstallReport> => {
      const startedMs = Date.now();
      const connection: Connection = {};
      const seconds = () => Math.round((Date.now() - startedMs) / 100) / 10;
      try {
        const version = await withTimeout(
          installOnNode(node, packageFile, topDir, connection),
          nodeInstallTimeoutMs,
          `install on ${node.name}`,
        );
        return { node: node.name, ok: true, version, seconds: seconds() };
      } catch (error) {
        // After a timeout the session may still be open: close it so this process can end.
        connection.client?.end();
        return {
          node: node.name,
          ok: false,
          version: '',
          seconds: seconds(),
          error: (error as Error).message,
        };
      }
    }),
  );
}
