// The lab: several real hosts on one machine. Each node is a set of Linux namespaces (net,
// mount, pid, uts, ipc) with its own address on a bridge, its own disks and hakit
// directories, its own sshd. Everything is named from the lab name (see names.ts), so `down`
// finds and removes a lab's leftovers even after a crash that lost the state file.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { ensureSystemPackages, labSystemPackages } from '../system-packages.ts';
import {
  addressPlan,
  hostNumberOfNode,
  ipv4RangesOverlap,
  nodeIp,
  nodeIp6,
  subnetIndexMax,
} from './addresses.ts';
import { LabError, runCommand } from './command.ts';
import {
  assertLabName,
  assertNodeName,
  bridgeName,
  hostLinkName,
  labDir,
  labsRootDir,
  netnsPrefix,
  nftTableName,
  nodeCountMax,
  nodeDir,
  nodeLinkName,
  nodeNetns,
  switchNetns,
  switchPortName,
} from './names.ts';
import { nodeInitScript } from './node-init.ts';

export interface LabSsh {
  host: string;
  port: number;
  user: string;
  keyFile: string;
}

export interface LabNode {
  name: string;
  ip: string;
  ip6: string;
  ssh: LabSsh;
  /** The node's sshd host key in OpenSSH public-key format, for pinning. */
  hostPublicKey: string;
}

export interface LabFaults {
  /** Directional cuts: packets from `from` to `to` are dropped. */
  cuts: { from: string; to: string }[];
  lossPercent: Record<string, number>;
  linksDown: string[];
  disksFull: { node: string; path: string; disk: string }[];
}

export interface LabState {
  lab: string;
  subnet: string;
  subnet6: string;
  hostIp: string;
  hostIp6: string;
  knownHostsFile: string;
  createdAt: string;
  nodes: LabNode[];
  faults: LabFaults;
}

export interface LabUpOptions {
  lab: string;
  nodeCount: number;
  witness: boolean;
  client: boolean;
}

const sysDiskBytes = 4 * 1024 ** 3;
const srvDiskBytes = 16 * 1024 ** 3;
const nodeReadyTimeoutMs = 20_000;
const lockWaitMsMax = 60_000;

function stateFile(lab: string): string {
  return join(labDir(lab), 'lab.json');
}

export function readLabState(lab: string): LabState {
  assertLabName(lab);
  const file = stateFile(lab);
  if (!existsSync(file))
    throw new LabError(`lab '${lab}' is not up (no ${file}); start it with: npx hakit-lab up`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  } catch (error) {
    throw new LabError(`lab '${lab}': cannot read ${file}: ${(error as Error).message}`);
  }
}

export function writeLabState(state: LabState): void {
  const file = stateFile(state.lab);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  // rename is atomic: a reader never sees half a state file.
  renameSync(`${file}.tmp`, file);
}

export function findLabNode(state: LabState, node: string): LabNode {
  assertNodeName(node);
  const found = state.nodes.find((candidate) => candidate.name === node);
  if (!found) {
    const names = state.nodes.map((candidate) => candidate.name).join(', ');
    throw new LabError(`lab '${state.lab}' has no node '${node}' (nodes: ${names})`);
  }
  return found;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Serialises every command that changes labs: subnet allocation and fault state must not race. */
export async function withLabsLock<T>(work: () => Promise<T>): Promise<T> {
  mkdirSync(labsRootDir(), { recursive: true, mode: 0o700 });
  const lockFile = join(labsRootDir(), '.lock');
  const startedMs = Date.now();
  for (;;) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holderPid = Number(readFileSync(lockFile, 'utf8').trim());
      if (!Number.isInteger(holderPid) || holderPid <= 0 || !isProcessAlive(holderPid)) {
        rmSync(lockFile, { force: true });
        continue;
      }
      if (Date.now() - startedMs > lockWaitMsMax) {
        throw new LabError(
          `another hakit-lab command (pid ${holderPid}) holds ${lockFile} for over ${lockWaitMsMax} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  try {
    return await work();
  } finally {
    rmSync(lockFile, { force: true });
  }
}

async function listNetns(): Promise<string[]> {
  const result = await runCommand('ip', ['netns', 'list']);
  return result.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.length > 0);
}

export async function netnsPids(netns: string): Promise<number[]> {
  const result = await runCommand('ip', ['netns', 'pids', netns], { allowFailure: true });
  return result.stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** The host PID of the node's init (PID 1 inside the node's PID namespace). */
export async function nodeInitPid(lab: string, node: string): Promise<number> {
  const netns = nodeNetns(lab, node);
  for (const pid of await netnsPids(netns)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const nsPids = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nsPids.length >= 2 && nsPids[nsPids.length - 1] === '1') return pid;
  }
  throw new LabError(`node ${node} of lab '${lab}' is not running (no init process in ${netns})`);
}

async function usedSubnetIndexes(): Promise<Set<number>> {
  const used = new Set<number>();
  if (!existsSync(labsRootDir())) return used;
  for (const entry of readdirSync(labsRootDir())) {
    const file = join(labsRootDir(), entry, 'lab.json');
    if (!existsSync(file)) continue;
    try {
      const state = JSON.parse(readFileSync(file, 'utf8')) as LabState;
      used.add(Number(state.subnet.split('.')[2]));
    } catch {
      // A damaged state file of another lab: its subnet stays unknown, the route check below still guards.
    }
  }
  const routes = JSON.parse(
    (await runCommand('ip', ['-4', '-j', 'route', 'show', 'table', 'all'])).stdout,
  ) as {
    dst?: string;
  }[];
  for (let index = 0; index <= subnetIndexMax; index += 1) {
    const subnet = addressPlan(index).subnet;
    for (const route of routes) {
      if (!route.dst || route.dst === 'default' || !/^\d/.test(route.dst)) continue;
      const dst = route.dst.includes('/') ? route.dst : `${route.dst}/32`;
      if (ipv4RangesOverlap(subnet, dst)) used.add(index);
    }
  }
  return used;
}

async function createSparseExt4(file: string, bytes: number, label: string): Promise<void> {
  const fd = openSync(file, 'w', 0o600);
  closeSync(fd);
  await runCommand('truncate', ['-s', String(bytes), file]);
  await runCommand('mkfs.ext4', [
    '-q',
    '-F',
    '-m',
    '0',
    '-L',
    label,
    '-E',
    'lazy_itable_init=1,lazy_journal_init=1',
    file,
  ]);
}

function sshdConfig(ip: string, ip6: string, dir: string, authorizedKeysFile: string): string {
  return [
    'Port 22',
    `ListenAddress ${ip}`,
    `ListenAddress ${ip6}`,
    `HostKey ${join(dir, 'ssh', 'ssh_host_ed25519_key')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorizedKeysFile}`,
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'UseDNS no',
    'PrintMotd no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp internal-sftp',
    'MaxStartups 64:30:128',
    '',
  ].join('\n');
}

export function nftBaseRuleset(subnet: string, subnet6: string): string {
  // Sets hold the peers this node may not talk to (partitions); loss chains hold at most one
  // random-drop rule; the guard keeps every packet inside the lab.
  return `table inet ${nftTableName} {
  set cut_in4 { type ipv4_addr; }
  set cut_out4 { type ipv4_addr; }
  set cut_in6 { type ipv6_addr; }
  set cut_out6 { type ipv6_addr; }
  chain loss_in { }
  chain loss_out { }
  chain input {
    type filter hook input priority -200; policy accept;
    iifname "${nodeLinkName}" ip saddr @cut_in4 drop
    iifname "${nodeLinkName}" ip6 saddr @cut_in6 drop
    iifname "${nodeLinkName}" jump loss_in
  }
  chain output {
    type filter hook output priority -200; policy accept;
    oifname "${nodeLinkName}" ip daddr @cut_out4 drop
    oifname "${nodeLinkName}" ip6 daddr @cut_out6 drop
    oifname "${nodeLinkName}" jump loss_out
    oifname != "lo" ip daddr != { ${subnet}, 224.0.0.0/4, 255.255.255.255 } drop
    oifname != "lo" ip6 daddr != { ${subnet6}, fe80::/10, ff00::/8 } drop
  }
}
`;
}

async function waitForTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (Date.now() < deadlineMs) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port, timeout: 1000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (connected) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function tailOf(file: string, lineCount: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trim().split('\n').slice(-lineCount).join('\n');
}

async function startNode(state: LabState, node: LabNode, initScriptFile: string): Promise<void> {
  const lab = state.lab;
  const dir = nodeDir(lab, node.name);
  const netns = nodeNetns(lab, node.name);
  mkdirSync(join(dir, 'ssh'), { recursive: true, mode: 0o700 });

  await runCommand('ip', ['netns', 'add', netns]);
  await runCommand('ip', [
    'link',
    'add',
    switchPortName(node.name),
    'netns',
    switchNetns(lab),
    'type',
    'veth',
    'peer',
    'name',
    nodeLinkName,
    'netns',
    netns,
  ]);
  await runCommand('ip', [
    '-n',
    switchNetns(lab),
    'link',
    'set',
    switchPortName(node.name),
    'master',
    bridgeName,
    'up',
  ]);
  await runCommand('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await runCommand('ip', ['-n', netns, 'addr', 'add', `${node.ip}/24`, 'dev', nodeLinkName]);
  await runCommand('ip', ['-n', netns, '-6', 'addr', 'add', `${node.ip6}/64`, 'dev', nodeLinkName, 'nodad']);
  await runCommand('ip', ['-n', netns, 'link', 'set', nodeLinkName, 'up']);
  await runCommand('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], {
    input: nftBaseRuleset(state.subnet, state.subnet6),
  });

  await createSparseExt4(join(dir, 'sys.img'), sysDiskBytes, `hlab-${node.name}-sys`);
  await createSparseExt4(join(dir, 'srv.img'), srvDiskBytes, `hlab-${node.name}-srv`);
  const hostKeyFile = join(dir, 'ssh', 'ssh_host_ed25519_key');
  await runCommand('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    `${node.name}.${lab}`,
    '-f',
    hostKeyFile,
  ]);
  node.hostPublicKey = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  writeFileSync(
    join(dir, 'ssh', 'sshd_config'),
    sshdConfig(node.ip, node.ip6, dir, join(labDir(lab), 'authorized_keys')),
    { mode: 0o600 },
  );

  const logFd = openSync(join(dir, 'init.log'), 'a', 0o600);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      'unshare',
      '--mount',
      '--uts',
      '--ipc',
      '--pid',
      '--fork',
      '--mount-proc',
      '--propagation',
      'private',
      '--',
      '/bin/bash',
      initScriptFile,
    ],
    {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/root',
        LANG: 'C.UTF-8',
        HLAB_NODE: node.name,
        HLAB_NODE_DIR: dir,
        HLAB_HOSTS_FILE: join(labDir(lab), 'hosts'),
        HLAB_KEEP_DIRS: keptHostDirs().join(' '),
      },
    },
  );
  child.unref();
  closeSync(logFd);
  const readyFile = join(dir, 'ready');
  const deadlineMs = Date.now() + nodeReadyTimeoutMs;
  while (!existsSync(readyFile)) {
    if (Date.now() > deadlineMs || child.exitCode !== null) {
      throw new LabError(`node ${node.name} did not start:\n${tailOf(join(dir, 'init.log'), 10)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const remainingMs = Math.max(1000, deadlineMs - Date.now());
  if (!(await waitForTcp(node.ip, 22, remainingMs))) {
    throw new LabError(
      `sshd of node ${node.name} is not listening on ${node.ip}:22:\n${tailOf(join(dir, 'sshd.log'), 10)}`,
    );
  }
}

/**
 * Host folders under /tmp that stay visible in the nodes, whose /tmp is private: the repository
 * (tests run its code inside nodes) when it is checked out under /tmp, as a CI clone may be.
 */
function keptHostDirs(): string[] {
  const repoDir = resolve(import.meta.dirname, '..', '..');
  const kept = repoDir.startsWith('/tmp/') ? [repoDir] : [];
  for (const dir of kept) {
    if (/\s/.test(dir))
      throw new LabError(`cannot keep ${dir} visible in lab nodes: its path has white space`);
  }
  return kept;
}

function plannedNodeNames(options: LabUpOptions): string[] {
  if (!Number.isInteger(options.nodeCount) || options.nodeCount < 1 || options.nodeCount > nodeCountMax) {
    throw new LabError(`--nodes must be a whole number from 1 to ${nodeCountMax}, got ${options.nodeCount}`);
  }
  const names = Array.from({ length: options.nodeCount }, (_, index) => `n${index + 1}`);
  if (options.witness) names.push('w');
  if (options.client) names.push('c');
  return names;
}

export async function labUp(options: LabUpOptions): Promise<LabState> {
  const lab = assertLabName(options.lab);
  const names = plannedNodeNames(options);
  await ensureSystemPackages(labSystemPackages, 'hakit-lab');
  return withLabsLock(async () => {
    if (existsSync(stateFile(lab))) {
      throw new LabError(
        `lab '${lab}' is already up; use it, or remove it first with: npx hakit-lab down --name ${lab}`,
      );
    }
    // A crashed earlier run may have left pieces behind under the same names.
    await removeLab(lab);
    const used = await usedSubnetIndexes();
    let subnetIndex = -1;
    for (let index = 0; index <= subnetIndexMax; index += 1) {
      if (!used.has(index)) {
        subnetIndex = index;
        break;
      }
    }
    if (subnetIndex < 0) throw new LabError('no free lab subnet left in 10.231.0.0/16; remove a lab first');
    const plan = addressPlan(subnetIndex);
    const dir = labDir(lab);
    mkdirSync(join(dir, 'nodes'), { recursive: true, mode: 0o700 });
    const keyFile = join(dir, 'id_ed25519');
    const state: LabState = {
      lab,
      subnet: plan.subnet,
      subnet6: plan.subnet6,
      hostIp: plan.hostIp,
      hostIp6: plan.hostIp6,
      knownHostsFile: join(dir, 'known_hosts'),
      createdAt: new Date().toISOString(),
      nodes: names.map((name) => {
        const hostNumber = hostNumberOfNode(name);
        const ip = nodeIp(subnetIndex, hostNumber);
        return {
          name,
          ip,
          ip6: nodeIp6(subnetIndex, hostNumber),
          ssh: { host: ip, port: 22, user: 'root', keyFile },
          hostPublicKey: '',
        };
      }),
      faults: { cuts: [], lossPercent: {}, linksDown: [], disksFull: [] },
    };
    try {
      await runCommand('ssh-keygen', [
        '-q',
        '-t',
        'ed25519',
        '-N',
        '',
        '-C',
        `hakit-lab-${lab}`,
        '-f',
        keyFile,
      ]);
      writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`), { mode: 0o600 });
      const hostsLines = ['127.0.0.1 localhost', '::1 localhost ip6-localhost ip6-loopback'];
      for (const node of state.nodes) hostsLines.push(`${node.ip} ${node.name}`, `${node.ip6} ${node.name}`);
      hostsLines.push(`${plan.hostIp} host`, `${plan.hostIp6} host`);
      writeFileSync(join(dir, 'hosts'), `${hostsLines.join('\n')}\n`, { mode: 0o644 });
      const initScriptFile = join(dir, 'node-init.sh');
      writeFileSync(initScriptFile, nodeInitScript, { mode: 0o700 });

      const sw = switchNetns(lab);
      await runCommand('ip', ['netns', 'add', sw]);
      await runCommand('ip', ['-n', sw, 'link', 'set', 'lo', 'up']);
      await runCommand('ip', ['-n', sw, 'link', 'add', bridgeName, 'type', 'bridge']);
      await runCommand('ip', ['-n', sw, 'link', 'set', bridgeName, 'up']);
      const hostLink = hostLinkName(lab);
      await runCommand('ip', [
        'link',
        'add',
        hostLink,
        'type',
        'veth',
        'peer',
        'name',
        'p-host',
        'netns',
        sw,
      ]);
      await runCommand('ip', ['-n', sw, 'link', 'set', 'p-host', 'master', bridgeName, 'up']);
      await runCommand('ip', ['addr', 'add', `${plan.hostIp}/24`, 'dev', hostLink]);
      await runCommand('ip', ['-6', 'addr', 'add', `${plan.hostIp6}/64`, 'dev', hostLink, 'nodad']);
      await runCommand('ip', ['link', 'set', hostLink, 'up']);

      for (const node of state.nodes) await startNode(state, node, initScriptFile);
      writeFileSync(
        state.knownHostsFile,
        state.nodes.map((node) => `${node.ip},${node.ip6},${node.name} ${node.hostPublicKey}\n`).join(''),
        { mode: 0o644 },
      );
      writeLabState(state);
      return state;
    } catch (error) {
      await removeLab(lab).catch(() => undefined);
      throw error;
    }
  });
}

async function killNetnsProcesses(netns: string): Promise<number> {
  // Killing a node's init ends its whole PID namespace; killing by net namespace also catches
  // anything that entered the node through `exec` while it was being removed.
  let killed = 0;
  for (let round = 0; round < 50; round += 1) {
    const pids = await netnsPids(netns);
    if (pids.length === 0) return killed;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed += 1;
      } catch {
        // Already gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new LabError(`processes in ${netns} survive SIGKILL: ${(await netnsPids(netns)).join(', ')}`);
}

async function detachLabLoopDevices(lab: string): Promise<void> {
  const result = await runCommand('losetup', ['-l', '-n', '-O', 'NAME,BACK-FILE'], { allowFailure: true });
  for (const line of result.stdout.split('\n')) {
    const [device, backFile] = line.trim().split(/\s+/);
    if (device && backFile?.startsWith(`${labDir(lab)}/`)) {
      await runCommand('losetup', ['-d', device], { allowFailure: true });
    }
  }
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of mounts) await runCommand('umount', ['-l', mountPoint], { allowFailure: true });
}

export interface LabRemoval {
  lab: string;
  namespaces: string[];
  processesKilled: number;
  hostLinkRemoved: boolean;
  dirRemoved: boolean;
}

/** Removes every namespace, link, process, loop device and file of a lab. Idempotent. */
export async function removeLab(lab: string): Promise<LabRemoval> {
  assertLabName(lab);
  const removal: LabRemoval = {
    lab,
    namespaces: [],
    processesKilled: 0,
    hostLinkRemoved: false,
    dirRemoved: false,
  };
  const namespaces = (await listNetns()).filter((name) => name.startsWith(netnsPrefix(lab)));
  // Nodes first, the switch last, so no node is briefly connected to a half-removed bridge.
  namespaces.sort((a, b) => Number(a === switchNetns(lab)) - Number(b === switchNetns(lab)));
  for (const netns of namespaces) {
    removal.processesKilled += await killNetnsProcesses(netns);
    await runCommand('ip', ['netns', 'del', netns]);
    removal.namespaces.push(netns);
  }
  const hostLink = hostLinkName(lab);
  const links = await runCommand('ip', ['-j', 'link', 'show'], { allowFailure: true });
  if ((JSON.parse(links.stdout || '[]') as { ifname: string }[]).some((link) => link.ifname === hostLink)) {
    await runCommand('ip', ['link', 'del', hostLink]);
    removal.hostLinkRemoved = true;
  }
  const dir = labDir(lab);
  await detachLabLoopDevices(lab);
  if (existsSync(dir)) {
    await unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    removal.dirRemoved = true;
  }
  return removal;
}

export async function labDown(lab: string): Promise<LabRemoval> {
  return withLabsLock(() => removeLab(lab));
}

export interface LabNodeStatus {
  name: string;
  ip: string;
  ip6: string;
  running: boolean;
  initPid: number | null;
  sshListening: boolean;
}

export async function labStatus(
  lab: string,
): Promise<{ lab: string; subnet: string; nodes: LabNodeStatus[]; faults: LabFaults }> {
  const state = readLabState(lab);
  const nodes: LabNodeStatus[] = [];
  for (const node of state.nodes) {
    // A node whose init is gone is reported as not running rather than failing the whole status.
    const initPid = await nodeInitPid(lab, node.name).catch(() => null);
    const sshListening = initPid !== null && (await waitForTcp(node.ip, 22, 500));
    nodes.push({
      name: node.name,
      ip: node.ip,
      ip6: node.ip6,
      running: initPid !== null,
      initPid,
      sshListening,
    });
  }
  return { lab, subnet: state.subnet, nodes, faults: state.faults };
}

/** Arguments for nsenter that put a command into all of a node's namespaces. */
export async function nodeEnterArgs(lab: string, node: string): Promise<string[]> {
  const pid = await nodeInitPid(lab, node);
  return ['--target', String(pid), '--mount', '--uts', '--ipc', '--net', '--pid', '--wd=/'];
}

/** Runs a command inside a node and captures its output (for tests and fault commands). */
export async function execInNode(
  lab: string,
  node: string,
  command: readonly string[],
  options: { input?: string; timeoutMs?: number; allowFailure?: boolean } = {},
) {
  if (command.length === 0) throw new LabError('exec: no command given');
  findLabNode(readLabState(lab), node);
  const enter = await nodeEnterArgs(lab, node);
  return runCommand('nsenter', [...enter, '--', ...command], options);
}
