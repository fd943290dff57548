// The agent installer: over a RemoteTransport (SSH today), for one node: connect (host key pinned
// on first use, refused when changed), detect OS, architecture, init system and prerequisites,
// upload the package by SFTP with progress, verify its checksum on the node, run install.sh, set
// the API password and the console's API key and the cluster's node-to-node key, pin the node
// certificate's fingerprint (`hakit level`), and check that the API answers with that certificate.
// Re-running it is safe (install.sh keeps an intact release; keys are re-imported). A node that had
// no agent before and fails after install.sh ran is uninstalled again (rolled back). Every step
// reports progress; every failure says which step and why, with secrets redacted.
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import type { InstallNodeReport, InstallStep } from '../../api/contract.ts';
import { agentJson } from '../agents/pinned-https.ts';
import { errorMessage } from '../errors.ts';
import type { AgentPackage } from './agent-package.ts';
import {
  HostKeyChangedError,
  type RemoteAuth,
  type RemoteSession,
  type RemoteTransport,
} from './transport.ts';

export const connectTimeoutMs = 15_000;
export const commandTimeoutMs = 120_000;
export const installTimeoutMs = 240_000;
export const nodeInstallTimeoutMs = 5 * 60_000;
export const installConcurrencyMax = 8;
const errorLinesMax = 15;
const fingerprintWaitMs = 20_000;

export interface InstallTarget {
  nodeId: number;
  node: string;
  host: string;
  sshPort: number;
  user: string;
  auth: RemoteAuth;
  pinnedHostKey: string | null;
  apiPort: number;
}

/** Generated or stored by the caller; the installer only hands them to the node. */
export interface InstallSecrets {
  apiToken: string;
  adminPassword: string;
  nodeKey: string;
}

export interface InstallOptions {
  /** `/usr/local/bin/hakit` link (off on lab nodes, which share /usr/local/bin with the host). */
  pathLink: boolean;
}

export interface InstallHooks {
  progress(step: InstallStep, status: 'running' | 'done' | 'failed', progress: number, message: string): void;
  /** Called once the session is up, with the key to pin (first use) or the matching one. */
  hostKey(blobBase64: string, fingerprint: string, firstUse: boolean): void;
  redact(text: string): string;
}

export interface InstallOutcome extends InstallNodeReport {
  apiFingerprint: string | null;
}

export function newApiToken(): string {
  return `hk_${randomBytes(32).toString('base64url')}`;
}

export function newPassword(): string {
  return randomBytes(18).toString('base64url');
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-errorLinesMax).join('\n');
}

class StepError extends Error {
  constructor(
    readonly step: InstallStep,
    message: string,
  ) {
    super(message);
  }
}

interface Detected {
  os: string;
  arch: string;
  init: string;
  uid: number;
  distro: string;
  missing: string[];
  /** What the node lacks for some features only (the install goes on, the step says so). */
  warnings: string[];
  installedVersion: string | null;
}

export function parseDetect(text: string): Detected {
  const values = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at <= 0) continue;
    const key = line.slice(0, at).trim();
    values.set(key, [...(values.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  const one = (key: string) => values.get(key)?.[0] ?? '';
  return {
    os: one('os'),
    arch: one('arch'),
    init: one('init') || 'unknown',
    uid: Number(one('uid') || '-1'),
    distro: one('distro') || 'unknown',
    missing: values.get('missing') ?? [],
    warnings: values.get('warning') ?? [],
    installedVersion: one('installed') || null,
  };
}

const detectScript = [
  'echo "os=$(uname -s)"',
  'echo "arch=$(uname -m)"',
  'echo "init=$(cat /proc/1/comm 2>/dev/null || echo unknown)"',
  'echo "uid=$(id -u)"',
  '( . /etc/os-release 2>/dev/null; echo "distro=${PRETTY_NAME:-unknown}" )',
  'for c in sh tar gzip sha256sum mktemp flock sed grep; do command -v "$c" >/dev/null 2>&1 || echo "missing=$c"; done',
  // The agent package's FUSE binding is built on libfuse 3 (docs/replication.md).
  'fuse3=; for f in /lib/*/libfuse3.so.3 /usr/lib/*/libfuse3.so.3 /usr/lib64/libfuse3.so.3; do [ -e "$f" ] && fuse3=1; done',
  '[ -n "$fuse3" ] || echo "warning=libfuse3-3 is not installed: mirror modules with <rfs> cannot replicate here (apt-get install libfuse3-3)"',
  'if [ -x /opt/hakit/private/bin/node ]; then echo "installed=$(/opt/hakit/hakit version 2>/dev/null | sed "s/^hakit //")"; else echo installed=; fi',
].join('\n');

/** Runs as root: directly, or through sudo (password on stdin for password logins, -n for keys). */
function privileged(target: InstallTarget, script: string): { command: string; stdinPrefix: string } {
  const inner = `sh -c ${shellQuote(script)}`;
  if (target.user === 'root') return { command: inner, stdinPrefix: '' };
  if (target.auth.kind === 'password')
    return { command: `sudo -S -p '' ${inner}`, stdinPrefix: `${target.auth.password}\n` };
  return { command: `sudo -n ${inner}`, stdinPrefix: '' };
}

async function run(
  session: RemoteSession,
  target: InstallTarget,
  step: InstallStep,
  script: string,
  options: { stdin?: string; timeoutMs?: number; asRoot?: boolean } = {},
): Promise<string> {
  const asRoot = options.asRoot ?? true;
  const { command, stdinPrefix } = asRoot
    ? privileged(target, script)
    : { command: `sh -c ${shellQuote(script)}`, stdinPrefix: '' };
  const stdin = stdinPrefix + (options.stdin ?? '');
  const result = await session.exec(command, {
    stdin: stdin.length > 0 ? stdin : undefined,
    timeoutMs: options.timeoutMs ?? commandTimeoutMs,
  });
  if (result.code !== 0)
    throw new StepError(
      step,
      `exited ${result.code}: ${lastLines(`${result.stdout}\n${result.stderr}`) || '(no output)'}`,
    );
  return result.stdout;
}

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Installs (or re-installs) the agent on one node. Never throws: the outcome says what failed where. */
export async function installNode(
  transport: RemoteTransport,
  target: InstallTarget,
  agentPackage: AgentPackage,
  secrets: InstallSecrets,
  hooks: InstallHooks,
  options: InstallOptions,
): Promise<InstallOutcome> {
  const startedMs = Date.now();
  let step: InstallStep = 'connect';
  let session: RemoteSession | null = null;
  let detected: Detected | null = null;
  let installRan = false;
  let apiFingerprint: string | null = null;
  let version: string | null = null;
  const begin = (next: InstallStep, message: string) => {
    step = next;
    hooks.progress(next, 'running', 0, message);
  };
  const done = (message: string) => hooks.progress(step, 'done', 1, message);

  const work = async () => {
    begin('connect', `ssh ${target.user}@${target.host}:${target.sshPort}`);
    session = await transport.connect({
      host: target.host,
      port: target.sshPort,
      user: target.user,
      auth: target.auth,
      pinnedHostKey: target.pinnedHostKey,
      connectTimeoutMs,
    });
    const decision = session.hostKey.decision;
    hooks.hostKey(session.hostKey.blobBase64, decision.fingerprint, decision.kind === 'pin-first-use');
    done(
      `${decision.kind === 'pin-first-use' ? 'host key pinned on first use' : 'host key matches the pin'}: ${decision.fingerprint}`,
    );

    begin('detect', 'operating system, architecture, init system, prerequisites');
    detected = parseDetect(await run(session, target, 'detect', detectScript, { asRoot: false }));
    if (detected.os !== 'Linux')
      throw new StepError(
        'detect',
        `the agent runs on Linux; this node runs ${detected.os || 'an unknown system'}`,
      );
    if (detected.arch !== 'x86_64')
      throw new StepError('detect', `the agent package is for x86_64; this node is ${detected.arch}`);
    if (detected.missing.length > 0)
      throw new StepError('detect', `commands missing on the node: ${detected.missing.join(', ')}`);
    if (detected.uid !== 0) await run(session, target, 'detect', 'true');
    done(
      `${detected.distro}, ${detected.arch}, init ${detected.init}${detected.installedVersion ? `, agent ${detected.installedVersion} already there` : ''}${detected.warnings.map((warning) => `; ${warning}`).join('')}`,
    );

    begin('upload', `${basename(agentPackage.file)} by SFTP`);
    const remoteDir = (
      await run(session, target, 'upload', 'mktemp -d /tmp/hakit-install.XXXXXX', { asRoot: false })
    ).trim();
    if (!/^\/tmp\/hakit-install\.[A-Za-z0-9]+$/.test(remoteDir))
      throw new StepError('upload', `cannot make a temporary folder (got '${remoteDir}')`);
    const name = basename(agentPackage.file);
    const cleanup = `rm -rf ${shellQuote(remoteDir)}`;
    try {
      let lastReportMs = 0;
      await session.upload(agentPackage.file, `${remoteDir}/${name}`, (sent, total) => {
        const nowMs = Date.now();
        if (nowMs - lastReportMs < 100 && sent < total) return;
        lastReportMs = nowMs;
        hooks.progress(
          'upload',
          'running',
          total > 0 ? sent / total : 0,
          `${Math.round(sent / 1024)} of ${Math.round(total / 1024)} KiB`,
        );
      });
      await session.upload(agentPackage.checksumFile, `${remoteDir}/${name}.sha256`, () => undefined);
      done('uploaded');

      begin('verify', 'sha256sum on the node');
      await run(
        session,
        target,
        'verify',
        `cd ${shellQuote(remoteDir)} && sha256sum --check --strict --quiet ${shellQuote(`${name}.sha256`)}`,
        {
          asRoot: false,
        },
      );
      done(`sha256 ${agentPackage.sha256.slice(0, 16)}... matches`);

      begin('install', 'install.sh');
      installRan = true;
      await run(
        session,
        target,
        'install',
        `cd ${shellQuote(remoteDir)} && tar -xzf ${shellQuote(name)} && sh ${shellQuote(`./${agentPackage.topDir}/install.sh`)}${options.pathLink ? '' : ' --no-path-link'}`,
        { timeoutMs: installTimeoutMs },
      );
      version = (await run(session, target, 'install', '/opt/hakit/hakit version'))
        .trim()
        .replace(/^hakit /, '');
      if (version !== agentPackage.version)
        throw new StepError(
          'install',
          `the node runs agent ${version} after installing ${agentPackage.version}`,
        );
      done(`agent ${version} running`);
    } finally {
      await (session as RemoteSession).exec(cleanup, { timeoutMs: 30_000 }).catch(() => undefined);
    }

    begin('configure', 'API password, console key, node-to-node key');
    await run(
      session,
      target,
      'configure',
      [
        'set -eu',
        'IFS= read -r token',
        'IFS= read -r password',
        'IFS= read -r nodekey',
        '/opt/hakit/hakit webservercfg -passwd "$password" -user admin -role Admin >/dev/null',
        '/opt/hakit/hakit apikey import console Admin "$token" >/dev/null',
        '/opt/hakit/hakit apikey import node-cluster Admin "$nodekey" >/dev/null',
      ].join('\n'),
      { stdin: `${secrets.apiToken}\n${secrets.adminPassword}\n${secrets.nodeKey}\n` },
    );
    done('API password set (user admin); console API key and node-to-node key imported');

    begin('pin', 'node certificate fingerprint from hakit level');
    const deadlineMs = Date.now() + fingerprintWaitMs;
    while (apiFingerprint === null) {
      const level = await (session as RemoteSession).exec(
        privileged(target, '/opt/hakit/hakit level').command,
        {
          stdin: privileged(target, '').stdinPrefix || undefined,
          timeoutMs: 30_000,
        },
      );
      apiFingerprint = /fingerprint: ([0-9A-F:]{95})/.exec(level.stdout)?.[1] ?? null;
      if (apiFingerprint === null) {
        if (Date.now() > deadlineMs)
          throw new StepError(
            'pin',
            `hakit level shows no certificate fingerprint: ${lastLines(level.stdout + level.stderr)}`,
          );
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    done(apiFingerprint);

    begin('check', `GET https://${target.host}:${target.apiPort}/api/v1/level with the pinned certificate`);
    const level = await agentJson<{ version: string; node: string; fingerprint: string }>(
      { host: target.host, port: target.apiPort, fingerprint: apiFingerprint, token: secrets.apiToken },
      'GET',
      '/api/v1/level',
      undefined,
      15_000,
    ).catch((error: unknown) => {
      throw new StepError('check', errorMessage(error));
    });
    if (level.version !== agentPackage.version)
      throw new StepError(
        'check',
        `the API reports agent ${level.version}, expected ${agentPackage.version}`,
      );
    done(`API answers: ${level.node} runs agent ${level.version}`);
  };

  let error: string | null = null;
  let rolledBack = false;
  try {
    await withTimeout(work(), nodeInstallTimeoutMs, `install on ${target.node}`);
  } catch (caught) {
    const failedStep: InstallStep = caught instanceof StepError ? caught.step : step;
    step = failedStep;
    error = hooks.redact(caught instanceof HostKeyChangedError ? caught.message : errorMessage(caught));
    hooks.progress(failedStep, 'failed', 1, error);
    const openSession = session as RemoteSession | null;
    const hadAgent = (detected as Detected | null)?.installedVersion ?? null;
    if (installRan && hadAgent === null && openSession !== null) {
      // A fresh node that did not end up working is put back as it was.
      const undo = await openSession
        .exec(
          privileged(
            target,
            'if [ -x /opt/hakit/private/bin/uninstall.sh ]; then /opt/hakit/private/bin/uninstall.sh; fi',
          ).command,
          {
            stdin: privileged(target, '').stdinPrefix || undefined,
            timeoutMs: commandTimeoutMs,
          },
        )
        .catch(() => null);
      rolledBack = undo !== null && undo.code === 0;
    }
  } finally {
    (session as RemoteSession | null)?.close();
  }
  const found = detected as Detected | null;
  return {
    nodeId: target.nodeId,
    node: target.node,
    ok: error === null,
    failedStep: error === null ? null : step,
    error,
    version: error === null ? version : null,
    seconds: Math.round((Date.now() - startedMs) / 100) / 10,
    rolledBack,
    detected: found ? `${found.distro}, ${found.arch}, init ${found.init}` : null,
    apiFingerprint: error === null ? apiFingerprint : null,
  };
}

/** Runs `work` over `items` with at most `limit` at a time, keeping the order of results. */
export async function boundedParallel<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
