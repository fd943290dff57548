// The agent package on real lab nodes: build (reproducible, checksummed), prerequisites and
// tampering refused before anything changes, `hakit-lab install` over ssh on two nodes, the
// supervisor restarting a killed hakitd, idempotent re-install, upgrade, stop, uninstall.
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeRuntime } from '../../agent/package/node-runtime.ts';
import { packageBaseName, packageFileName } from '../../agent/package/package-layout.ts';
import { hakitVersion } from '../../agent/version.ts';
import { runCommand } from './command.ts';
import { labExec, labJson, labSkipReason, runLabCli, sshRun } from './harness.ts';
import type { NodeInstallReport } from './install.ts';
import type { LabNode } from './lab.ts';

const lab = 'tinst';
const skip = labSkipReason();
const repoDir = resolve(import.meta.dirname, '..', '..');
// Inside the repository, not /tmp: a lab node has a /tmp of its own but sees this folder.
const workDir = resolve(repoDir, 'node_modules', '.cache', 'hakit-install-test');
const upgradeVersion = `${hakitVersion}-upgrade.1`;
const nodeBin = '/opt/hakit/private/bin/node';
const restartLatencyMsMax = 3_000;
const buildTimeoutMs = 5 * 60_000;
const installTimeoutMs = 6 * 60_000;
const reproducibleAttemptsMax = 3;

interface BuildSummary {
  file: string;
  checksumFile: string;
  version: string;
  bytes: number;
  sha256: string;
  seconds: number;
}

interface Pong {
  pid: number;
  version: string;
}

const pingScript = `${workDir}/ping.cjs`;
const restartScript = `${workDir}/restart-latency.cjs`;

// Runs inside a node with the installed runtime: one ping over hakitd's control socket.
const pingSource = `
const socket = require('net').connect('/run/hakit/hakitd.sock');
let answer = '';
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 3000);
socket.on('connect', () => socket.end(JSON.stringify({ verb: 'ping', args: [], caller: 'install.test' })));
socket.on('data', (chunk) => { answer += chunk; });
socket.on('error', (error) => { console.log(JSON.stringify({ error: error.code })); process.exit(1); });
socket.on('end', () => { console.log(answer.trim()); process.exit(0); });
`;

// Runs inside a node: SIGKILL to hakitd, then the time until a new hakitd answers ping.
const restartSource = `
const fs = require('fs');
const net = require('net');
const oldPid = Number(fs.readFileSync('/run/hakit/hakitd.pid', 'utf8'));
const startedNs = process.hrtime.bigint();
process.kill(oldPid, 'SIGKILL');
const deadlineMs = Date.now() + 15000;
const attempt = () => {
  if (Date.now() > deadlineMs) { console.log(JSON.stringify({ oldPid, back: false })); process.exit(1); }
  const socket = net.connect('/run/hakit/hakitd.sock');
  let answer = '';
  socket.on('connect', () => socket.end(JSON.stringify({ verb: 'ping', args: [], caller: 'install.test' })));
  socket.on('data', (chunk) => { answer += chunk; });
  socket.on('error', () => setTimeout(attempt, 10));
  socket.on('end', () => {
    let pid = 0;
    try { pid = JSON.parse(answer).data.pid; } catch {}
    if (pid === 0 || pid === oldPid) { setTimeout(attempt, 10); return; }
    const latencyMs = Number(process.hrtime.bigint() - startedNs) / 1e6;
    console.log(JSON.stringify({ oldPid, newPid: pid, back: true, latencyMs: Math.round(latencyMs) }));
    process.exit(0);
  });
};
attempt();
`;

async function buildPackage(outDir: string, version?: string): Promise<BuildSummary> {
  const args = ['--import', 'tsx', 'agent/package/build-package.ts', '--out-dir', outDir];
  if (version) args.push('--version', version);
  const result = await runCommand(process.execPath, args, {
    timeoutMs: buildTimeoutMs,
    env: { ...process.env, HAKIT_PACKAGE_VERSION: undefined },
  });
  return JSON.parse(result.stdout) as BuildSummary;
}

/** The SHA256SUMS lines inside a package tarball. */
async function innerChecksums(packageFile: string, version = hakitVersion): Promise<string[]> {
  const result = await runCommand('tar', ['-xzOf', packageFile, `${packageBaseName(version)}/SHA256SUMS`], {
    timeoutMs: 60_000,
  });
  return result.stdout.trim().split('\n');
}

/** Runs a shell command in a node; returns the exit code and both outputs. */
async function sh(node: string, script: string) {
  return labExec(lab, node, ['sh', '-c', script]);
}

async function ping(node: string): Promise<Pong | undefined> {
  const result = await labExec(lab, node, [nodeBin, pingScript]);
  if (result.code !== 0) return undefined;
  const response = JSON.parse(result.stdout) as { exitCode: number; text: string; data: Pong };
  assert.equal(response.exitCode, 0);
  assert.equal(response.text, 'pong');
  return response.data;
}

async function hakitProcesses(node: string): Promise<string> {
  const result = await labExec(lab, node, ['pgrep', '-a', '-f', 'hakitd\\.cjs|hakitd-supervisor']);
  return result.stdout.trim();
}

async function install(
  packageFile: string,
  nodes: string[],
): Promise<{ code: number; reports: NodeInstallReport[]; stderr: string }> {
  process.env.HAKIT_AGENT_PACKAGE = packageFile;
  try {
    const result = await runLabCli(['install', '--name', lab, ...nodes], installTimeoutMs);
    const reports = result.stdout.trim() === '' ? [] : (JSON.parse(result.stdout) as NodeInstallReport[]);
    return { code: result.code, reports, stderr: result.stderr };
  } finally {
    delete process.env.HAKIT_AGENT_PACKAGE;
  }
}

/** Extracts a package into a folder of the work dir; returns the package's top folder. */
async function extract(packageFile: string, into: string, version = hakitVersion): Promise<string> {
  rmSync(into, { recursive: true, force: true });
  mkdirSync(into, { recursive: true });
  await runCommand('tar', ['-xzf', packageFile, '-C', into]);
  return `${into}/${packageBaseName(version)}`;
}

async function nothingInstalled(node: string): Promise<void> {
  const left = await sh(node, 'find /opt/hakit /var/hakit -mindepth 1');
  assert.equal(left.stdout, '', `nothing under /opt/hakit or /var/hakit on ${node}`);
  assert.equal(await hakitProcesses(node), '');
}

describe('agent package and install', { skip, timeout: 900_000 }, () => {
  let nodes: LabNode[] = [];
  let built: BuildSummary;
  let upgrade: BuildSummary;

  before(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    writeFileSync(pingScript, pingSource);
    writeFileSync(restartScript, restartSource);
    const report = await labJson<{ nodes: LabNode[] }>(['up', '--name', lab, '--nodes', '2']);
    nodes = report.nodes;
  });

  after(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the package builds byte-identically twice, and its checksums verify', async (t) => {
    // Both copies are built at once; when they differ only in the bundles, the sources changed
    // under the build (other work in the same tree) and the pair is built again, a bounded number
    // of times. Any other difference fails at once.
    let again: BuildSummary | undefined;
    for (let attempt = 1; attempt <= reproducibleAttemptsMax; attempt += 1) {
      [built, again] = await Promise.all([buildPackage(`${workDir}/a`), buildPackage(`${workDir}/b`)]);
      if (again.sha256 === built.sha256) break;
      const [sumsA, sumsB] = await Promise.all([innerChecksums(built.file), innerChecksums(again.file)]);
      const differing = sumsA.filter((line) => !sumsB.includes(line)).map((line) => line.slice(66));
      assert.ok(
        differing.length > 0 && differing.every((path) => path.endsWith('.cjs')),
        `two builds differ in: ${differing.join(', ') || 'the archive itself'}`,
      );
      t.diagnostic(
        `attempt ${attempt}: sources changed during the build (${differing.join(', ')}); building again`,
      );
    }
    assert.ok(again);
    assert.equal(built.file, `${workDir}/a/${packageFileName(hakitVersion)}`);
    assert.equal(again.sha256, built.sha256, 'two builds of the same tree are identical');
    assert.ok(readFileSync(built.file).equals(readFileSync(again.file)));
    // sha256sum resolves the listed name from the current folder: run it there.
    const checked = await runCommand('sh', [
      '-c',
      `cd '${workDir}/a' && sha256sum --check --strict '${packageFileName(hakitVersion)}.sha256'`,
    ]);
    assert.match(checked.stdout, /: OK$/m);
    const top = await extract(built.file, `${workDir}/extracted`);
    const inner = await runCommand('sh', ['-c', `cd '${top}' && sha256sum --check --strict SHA256SUMS`]);
    assert.match(inner.stdout, /files\/bin\/node: OK/);
    assert.match(inner.stdout, /files\/bin\/hakitd\.cjs: OK/);
    assert.match(inner.stdout, /install\.sh: OK/);
    upgrade = await buildPackage(`${workDir}/up`, upgradeVersion);
    assert.notEqual(upgrade.sha256, built.sha256);
    t.diagnostic(`package ${built.bytes} bytes, built in ${built.seconds} s (two builds side by side)`);
  });

  test('install.sh names every missing prerequisite, exactly, and changes nothing', async () => {
    const top = `${workDir}/extracted/${packageBaseName(hakitVersion)}`;
    const commands =
      'cat chmod cp cut date df du env find flock grep id ln mkdir mv readlink rm sed sleep sort tail tr wc';
    await sh(
      'n1',
      `mkdir -p /tmp/fakebin && for c in ${commands}; do ln -sf "$(command -v $c)" /tmp/fakebin/$c; done && ` +
        `printf '#!/bin/sh\\ncase $1 in -s) echo Linux ;; -m) echo aarch64 ;; esac\\n' >/tmp/fakebin/uname && chmod 755 /tmp/fakebin/uname`,
    );
    const asNobody = await sh(
      'n1',
      `PATH=/tmp/fakebin /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh '${top}/install.sh'`,
    );
    assert.equal(asNobody.code, 3, asNobody.stderr);
    assert.equal(
      asNobody.stderr,
      `install.sh: cannot install hakit ${hakitVersion} on this machine:\n` +
        '  - run install.sh as root (this is uid 65534)\n' +
        '  - this package is for Linux x86_64; this machine is Linux aarch64\n' +
        '  - command not found: sha256sum (package coreutils)\n' +
        '  - command not found: openssl (package openssl)\n' +
        '  - command not found: setsid (package util-linux)\n' +
        'Nothing was changed.\n',
    );
    await sh('n1', 'rm /tmp/fakebin/uname && ln -s "$(command -v uname)" /tmp/fakebin/uname');
    const asRoot = await sh('n1', `PATH=/tmp/fakebin /bin/sh '${top}/install.sh'`);
    assert.equal(asRoot.code, 3);
    assert.equal(
      asRoot.stderr,
      `install.sh: cannot install hakit ${hakitVersion} on this machine:\n` +
        '  - command not found: sha256sum (package coreutils)\n' +
        '  - command not found: openssl (package openssl)\n' +
        '  - command not found: setsid (package util-linux)\n' +
        'Nothing was changed.\n',
    );
    await sh('n1', 'rm -rf /tmp/fakebin');
    await nothingInstalled('n1');
  });

  test('a tampered package is refused before anything changes', async () => {
    const changed = await extract(built.file, `${workDir}/tamper-changed`);
    appendFileSync(`${changed}/files/bin/hakitd.cjs`, '\n// injected\n');
    const refusedChanged = await sh('n1', `sh '${changed}/install.sh' --no-path-link`);
    assert.equal(refusedChanged.code, 4, refusedChanged.stderr);
    assert.match(refusedChanged.stderr, /does not match its SHA256SUMS; nothing was changed/);
    assert.match(refusedChanged.stderr, /files\/bin\/hakitd\.cjs: FAILED/);

    const added = await extract(built.file, `${workDir}/tamper-added`);
    writeFileSync(`${added}/files/bin/extra.sh`, '#!/bin/sh\n');
    const refusedAdded = await sh('n2', `sh '${added}/install.sh' --no-path-link`);
    assert.equal(refusedAdded.code, 4, refusedAdded.stderr);
    assert.match(refusedAdded.stderr, /files not listed in SHA256SUMS: files\/bin\/extra\.sh/);

    // A tarball that does not match the .sha256 beside it never leaves the machine.
    mkdirSync(`${workDir}/tamper-tarball`, { recursive: true });
    const copy = `${workDir}/tamper-tarball/${packageFileName(hakitVersion)}`;
    copyFileSync(built.file, copy);
    copyFileSync(built.checksumFile, `${copy}.sha256`);
    appendFileSync(copy, 'x');
    const refusedTarball = await install(copy, ['n1', 'n2']);
    assert.equal(refusedTarball.code, 1);
    assert.match(refusedTarball.stderr, /does not match .*\.sha256/);

    await nothingInstalled('n1');
    await nothingInstalled('n2');
  });

  test('hakit-lab install puts the agent on two nodes; hakitd answers on both', async (t) => {
    const { code, reports, stderr } = await install(built.file, ['n1', 'n2']);
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      reports.map((report) => [report.node, report.ok, report.version]),
      [
        ['n1', true, hakitVersion],
        ['n2', true, hakitVersion],
      ],
    );
    for (const report of reports) assert.ok(report.seconds > 0 && report.seconds < 300);
    t.diagnostic(
      `install seconds: ${reports.map((report) => `${report.node} ${report.seconds}`).join(', ')}`,
    );
    for (const node of ['n1', 'n2']) {
      const pong = await ping(node);
      assert.ok(pong, `hakitd answers ping on ${node}`);
      assert.equal(pong.version, hakitVersion);
      const pidFile = await sh(node, 'cat /run/hakit/hakitd.pid');
      assert.equal(Number(pidFile.stdout), pong.pid);
      assert.equal(
        (await labExec(lab, node, ['/opt/hakit/hakit', 'version'])).stdout,
        `hakit ${hakitVersion}\n`,
      );
      assert.equal(
        (await labExec(lab, node, ['/opt/hakit/safekit', 'version'])).stdout,
        `hakit ${hakitVersion}\n`,
      );
      assert.equal((await labExec(lab, node, [nodeBin, '--version'])).stdout, `v${nodeRuntime.version}\n`);
      const layout = await sh(
        node,
        'for d in /opt/hakit/modules /opt/hakit/private/modules /var/hakit/modules /var/hakit/cluster /var/hakit/log; do ' +
          '[ -d "$d" ] || echo "missing $d"; done; readlink /opt/hakit/private/bin',
      );
      assert.match(
        layout.stdout,
        new RegExp(`^releases/${hakitVersion.replaceAll('.', '\\.')}-[0-9a-f]{12}\\n$`),
      );
      // Through the node's sshd, with its pinned host key, as an operator would look.
      const status = await sshRun(
        nodes.find((candidate) => candidate.name === node)!,
        '/opt/hakit/private/bin/hakitd-service status',
      );
      assert.match(
        status,
        new RegExp(
          `^hakitd running \\(pid ${pong.pid}, version ${hakitVersion.replaceAll('.', '\\.')}, hakitd-supervisor pid \\d+\\)`,
        ),
      );
    }
  });

  test('the supervisor restarts hakitd killed with SIGKILL, at once', async (t) => {
    const result = await labExec(lab, 'n1', [nodeBin, restartScript]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const restart = JSON.parse(result.stdout) as {
      oldPid: number;
      newPid: number;
      back: boolean;
      latencyMs: number;
    };
    assert.ok(restart.back);
    assert.notEqual(restart.newPid, restart.oldPid);
    assert.ok(restart.latencyMs < restartLatencyMsMax, `hakitd back after ${restart.latencyMs} ms`);
    t.diagnostic(
      `supervisor restart latency: ${restart.latencyMs} ms (SIGKILL to first pong of the new hakitd)`,
    );
    const log = await sh('n1', 'cat /var/hakit/log/hakitd.log');
    assert.match(
      log.stdout,
      new RegExp(
        `hakitd \\(pid ${restart.oldPid}\\) was killed by signal 9 after \\d+ s; restarting it in 0 s`,
      ),
    );
    assert.equal((await ping('n1'))?.pid, restart.newPid);
  });

  test('re-running install changes nothing and keeps modules and state', async () => {
    await sh(
      'n1',
      'mkdir -p /opt/hakit/modules/x /opt/hakit/private/modules/x && echo module >/opt/hakit/modules/x/keep.txt && ' +
        'echo applied >/opt/hakit/private/modules/x/applied.txt && echo state >/var/hakit/keep.txt',
    );
    const before = await ping('n1');
    const releasesBefore = (await sh('n1', 'ls /opt/hakit/private/releases')).stdout;
    const { code, reports, stderr } = await install(built.file, ['n1']);
    assert.equal(code, 0, stderr);
    assert.equal(reports[0]?.ok, true);
    assert.equal((await ping('n1'))?.pid, before?.pid, 'an identical package leaves hakitd running');
    assert.equal((await sh('n1', 'ls /opt/hakit/private/releases')).stdout, releasesBefore);
    const kept = await sh(
      'n1',
      'cat /opt/hakit/modules/x/keep.txt /opt/hakit/private/modules/x/applied.txt /var/hakit/keep.txt',
    );
    assert.equal(kept.stdout, 'module\napplied\nstate\n');
    // Without --no-path-link install.sh links /usr/local/bin/hakit: tried under a private
    // /usr/local/bin, since a lab node shares the machine's.
    const top = `${workDir}/extracted/${packageBaseName(hakitVersion)}`;
    const linked = await sh(
      'n1',
      `unshare --mount sh -c "mount -t tmpfs none /usr/local/bin && sh '${top}/install.sh' >/dev/null && ` +
        'readlink /usr/local/bin/hakit && /usr/local/bin/hakit version"',
    );
    assert.equal(linked.code, 0, linked.stderr);
    assert.equal(linked.stdout, `/opt/hakit/hakit\nhakit ${hakitVersion}\n`);
  });

  test('an upgrade replaces the program, restarts hakitd, and keeps modules and state', async () => {
    await sh(
      'n2',
      'mkdir -p /opt/hakit/modules/x && echo module >/opt/hakit/modules/x/keep.txt && echo state >/var/hakit/keep.txt',
    );
    const before = { n1: await ping('n1'), n2: await ping('n2') };
    const { code, reports, stderr } = await install(upgrade.file, ['n1', 'n2']);
    assert.equal(code, 0, stderr);
    assert.deepEqual(
      reports.map((report) => [report.node, report.ok, report.version]),
      [
        ['n1', true, upgradeVersion],
        ['n2', true, upgradeVersion],
      ],
    );
    for (const node of ['n1', 'n2'] as const) {
      const pong = await ping(node);
      assert.equal(pong?.version, upgradeVersion);
      assert.notEqual(pong?.pid, before[node]?.pid, `hakitd restarted on ${node}`);
      assert.equal(
        (await labExec(lab, node, ['/opt/hakit/safekit', 'version'])).stdout,
        `hakit ${upgradeVersion}\n`,
      );
      const releases = (await sh(node, 'ls -A /opt/hakit/private/releases')).stdout.trim().split('\n');
      assert.equal(releases.length, 1, `only the new release is left: ${releases.join(' ')}`);
      assert.ok(releases[0]?.startsWith(`${upgradeVersion}-`));
      assert.equal(
        (await sh(node, 'cat /opt/hakit/modules/x/keep.txt /var/hakit/keep.txt')).stdout,
        'module\nstate\n',
      );
    }
  });

  test('hakitd-service stop stops hakitd for good; start brings it back', async () => {
    const stopped = await labExec(lab, 'n1', ['/opt/hakit/private/bin/hakitd-service', 'stop']);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal(stopped.stdout, 'hakitd stopped\n');
    assert.equal(await ping('n1'), undefined);
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 3_000));
    assert.equal(await hakitProcesses('n1'), '', 'nothing restarted hakitd');
    assert.equal(await ping('n1'), undefined);
    const status = await labExec(lab, 'n1', ['/opt/hakit/private/bin/hakitd-service', 'status']);
    assert.equal(status.code, 3);
    assert.equal(status.stdout, 'hakitd stopped\n');
    const started = await labExec(lab, 'n1', ['/opt/hakit/private/bin/hakitd-service', 'start']);
    assert.equal(started.code, 0, started.stderr);
    assert.equal((await ping('n1'))?.version, upgradeVersion);
  });

  test('uninstall removes the program and keeps state; --purge removes everything', async () => {
    const removed = await labExec(lab, 'n2', ['/opt/hakit/private/bin/uninstall.sh']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await hakitProcesses('n2'), '');
    const gone = [
      '/opt/hakit/hakit',
      '/opt/hakit/safekit',
      '/opt/hakit/private/bin',
      '/opt/hakit/private/releases',
      '/run/hakit/hakitd.sock',
      '/run/hakit/hakitd.pid',
      '/run/hakit/hakitd-supervisor.pid',
    ];
    const kept = [
      '/opt/hakit/modules/x/keep.txt',
      '/opt/hakit/private/modules',
      '/var/hakit/keep.txt',
      '/var/hakit/cluster',
      '/var/hakit/log/hakitd.log',
    ];
    const check = await sh(
      'n2',
      `for p in ${gone.join(' ')}; do [ -e "$p" ] || [ -L "$p" ] && echo "left $p"; done; ` +
        `for p in ${kept.join(' ')}; do [ -e "$p" ] || echo "lost $p"; done; true`,
    );
    assert.equal(check.stdout, '');
    const top = `${workDir}/extracted/${packageBaseName(hakitVersion)}`;
    const purged = await sh('n2', `sh '${top}/uninstall.sh' --purge`);
    assert.equal(purged.code, 0, purged.stderr);
    await nothingInstalled('n2');
  });
});
