// Faults a test can inject into a running lab, each undone by its counterpart or by `heal`.
// Partitions and loss are nftables rules inside the nodes' network namespaces; link faults
// take the node's bridge port down (a pulled cable); process faults run inside the node's PID
// namespace; disk-full fills the node's own disk image.
import { readFileSync } from 'node:fs';
import { LabError, runCommand } from './command.ts';
import {
  execInNode,
  findLabNode,
  type LabState,
  netnsPids,
  readLabState,
  withLabsLock,
  writeLabState,
} from './lab.ts';
import { assertNodeName, nftTableName, nodeNetns, switchNetns, switchPortName } from './names.ts';

/** `host` stands for the machine running hakit-lab, so a node can be cut off from the console. */
export const hostPseudoNode = 'host';

interface Endpoint {
  name: string;
  ip: string;
  ip6: string;
  isHost: boolean;
}

function endpoint(state: LabState, name: string): Endpoint {
  if (name === hostPseudoNode) return { name, ip: state.hostIp, ip6: state.hostIp6, isHost: true };
  const node = findLabNode(state, name);
  return { name, ip: node.ip, ip6: node.ip6, isHost: false };
}

async function nft(state: LabState, node: string, args: readonly string[]): Promise<void> {
  await runCommand('ip', ['netns', 'exec', nodeNetns(state.lab, node), 'nft', ...args]);
}

/** Which addresses a partition cuts: both families, or only IPv4 or only IPv6 (one "lan" each). */
export type IpFamilies = 'both' | '4' | '6';

async function setElement(
  state: LabState,
  node: Endpoint,
  set: 'cut_in' | 'cut_out',
  peer: Endpoint,
  action: 'add' | 'delete',
  families: IpFamilies = 'both',
): Promise<void> {
  if (node.isHost) return;
  for (const [suffix, address] of [
    ['4', peer.ip],
    ['6', peer.ip6],
  ] as const) {
    // Lifting a cut always clears both families, so heal undoes a one-family partition too.
    if (action === 'add' && families !== 'both' && families !== suffix) continue;
    const args = [action, 'element', 'inet', nftTableName, `${set}${suffix}`, `{ ${address} }`];
    if (action === 'add') await nft(state, node.name, args);
    else
      await runCommand('ip', ['netns', 'exec', nodeNetns(state.lab, node.name), 'nft', ...args], {
        allowFailure: true,
      });
  }
}

/** Drops packets from `from` to `to`, at both ends where they are lab nodes. */
async function cut(
  state: LabState,
  from: Endpoint,
  to: Endpoint,
  action: 'add' | 'delete',
  families: IpFamilies = 'both',
): Promise<void> {
  if (from.isHost && to.isHost) throw new LabError('partition: at least one side must be a lab node');
  await setElement(state, from, 'cut_out', to, action, families);
  await setElement(state, to, 'cut_in', from, action, families);
  const others = state.faults.cuts.filter((c) => !(c.from === from.name && c.to === to.name));
  state.faults.cuts = action === 'add' ? [...others, { from: from.name, to: to.name }] : others;
}

export interface FaultResult {
  lab: string;
  fault: string;
  [key: string]: unknown;
}

async function mutate(lab: string, work: (state: LabState) => Promise<FaultResult>): Promise<FaultResult> {
  return withLabsLock(async () => {
    const state = readLabState(lab);
    try {
      return await work(state);
    } finally {
      writeLabState(state);
    }
  });
}

export function partition(
  lab: string,
  a: string,
  b: string,
  oneway: boolean,
  families: IpFamilies = 'both',
): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    if (a === b) throw new LabError(`partition: '${a}' twice; name two different nodes`);
    const endA = endpoint(state, a);
    const endB = endpoint(state, b);
    await cut(state, endA, endB, 'add', families);
    if (!oneway) await cut(state, endB, endA, 'add', families);
    return { lab, fault: 'partition', between: [a, b], oneway, ip: families };
  });
}

async function setLoss(state: LabState, node: string, percent: number): Promise<void> {
  // numgen yields 0..99, so 100 % is a plain drop rule.
  const rule = percent >= 100 ? ['drop'] : ['numgen', 'random', 'mod', '100', '<', String(percent), 'drop'];
  for (const chain of ['loss_in', 'loss_out']) {
    await nft(state, node, ['flush', 'chain', 'inet', nftTableName, chain]);
    if (percent > 0) await nft(state, node, ['add', 'rule', 'inet', nftTableName, chain, ...rule]);
  }
  if (percent > 0) state.faults.lossPercent[node] = percent;
  else delete state.faults.lossPercent[node];
}

export function loss(lab: string, node: string, percent: number): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    findLabNode(state, node);
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
      throw new LabError(`loss: PERCENT must be a whole number from 0 to 100, got '${percent}'`);
    }
    await setLoss(state, node, percent);
    return { lab, fault: 'loss', node, percent };
  });
}

async function setLink(state: LabState, node: string, up: boolean): Promise<void> {
  await runCommand('ip', [
    '-n',
    switchNetns(state.lab),
    'link',
    'set',
    switchPortName(node),
    up ? 'up' : 'down',
  ]);
  const others = state.faults.linksDown.filter((name) => name !== node);
  state.faults.linksDown = up ? others : [...others, node];
}

export function link(lab: string, node: string, direction: string): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    findLabNode(state, node);
    if (direction !== 'up' && direction !== 'down')
      throw new LabError(`link: say 'up' or 'down', got '${direction}'`);
    await setLink(state, node, direction === 'up');
    return { lab, fault: 'link', node, state: direction };
  });
}

const signalPattern = /^(SIG)?[A-Z0-9]+$|^[0-9]+$/;

/** Node-local PIDs (inside the node's PID namespace) of processes whose command line matches. */
async function matchingPids(lab: string, node: string, pattern: string): Promise<number[]> {
  const result = await execInNode(lab, node, ['pgrep', '-f', '--', pattern], { allowFailure: true });
  if (result.code > 1) throw new LabError(`pgrep on ${node} failed: ${result.stderr.trim()}`);
  // PID 1 is the node itself: killing it is taking the node down, which is `down`'s job.
  return result.stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 1);
}

async function signalProcesses(lab: string, node: string, pattern: string, signal: string, fault: string) {
  if (!signalPattern.test(signal))
    throw new LabError(`${fault}: bad signal '${signal}' (use e.g. TERM, KILL, 9)`);
  if (pattern.length === 0) throw new LabError(`${fault}: PATTERN is empty`);
  const pids = await matchingPids(lab, node, pattern);
  if (pids.length === 0) throw new LabError(`${fault}: no process on ${node} matches '${pattern}'`);
  const result = await execInNode(
    lab,
    node,
    ['kill', '-s', signal.replace(/^SIG/, ''), ...pids.map(String)],
    {
      allowFailure: true,
    },
  );
  // A process may exit between pgrep and kill; that is not an error as long as one got the signal.
  if (result.code !== 0 && result.stderr.split('\n').filter((line) => line.trim()).length >= pids.length) {
    throw new LabError(`${fault}: kill on ${node} failed: ${result.stderr.trim()}`);
  }
  return { lab, fault, node, pattern, signal: signal.replace(/^SIG/, ''), pids };
}

export function kill(lab: string, node: string, pattern: string, signal = 'KILL'): Promise<FaultResult> {
  findLabNode(readLabState(lab), node);
  return signalProcesses(lab, node, pattern, signal, 'kill');
}

export function freeze(lab: string, node: string, pattern: string): Promise<FaultResult> {
  findLabNode(readLabState(lab), node);
  return signalProcesses(lab, node, pattern, 'STOP', 'freeze');
}

export function thaw(lab: string, node: string, pattern: string): Promise<FaultResult> {
  findLabNode(readLabState(lab), node);
  return signalProcesses(lab, node, pattern, 'CONT', 'thaw');
}

/** Sends SIGCONT to every stopped process of a node (heal's way to undo all freezes). */
async function thawAll(lab: string, node: string): Promise<number> {
  let thawed = 0;
  for (const pid of await netnsPids(nodeNetns(lab, node))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // The state letter follows the command name, which is in parentheses and may hold spaces.
    const processState = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (processState !== 'T') continue;
    process.kill(pid, 'SIGCONT');
    thawed += 1;
  }
  return thawed;
}

const fillDirName = '.hakit-lab-fill';

/** Which of the node's disks holds PATH (`sys` or `srv`), found from inside the node. */
async function diskOfPath(lab: string, node: string, path: string): Promise<string> {
  if (!path.startsWith('/')) throw new LabError(`disk-full: PATH must be absolute, got '${path}'`);
  const result = await execInNode(lab, node, ['findmnt', '-n', '-o', 'SOURCE,TARGET', '-T', path], {
    allowFailure: true,
  });
  if (result.code !== 0) throw new LabError(`disk-full: ${path} does not exist on ${node}`);
  // A bind mount shows as /dev/loopN[/subdir].
  const source = (result.stdout.trim().split(/\s+/)[0] ?? '').replace(/\[.*\]$/, '');
  const loop = await runCommand('losetup', ['-n', '-O', 'BACK-FILE', source], { allowFailure: true });
  const backFile = loop.stdout.trim();
  const disk = /\/nodes\/[a-z0-9]+\/(sys|srv)\.img$/.exec(backFile)?.[1];
  if (!disk || !backFile.includes(`/nodes/${node}/`)) {
    throw new LabError(
      `disk-full: ${path} on ${node} is not on the node's own disks, so filling it would fill the host; ` +
        'use a path under /srv, /opt/hakit, /var/hakit, /etc/hakit, /run/hakit or /tmp',
    );
  }
  return disk;
}

export function diskFull(lab: string, node: string, path: string): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    findLabNode(state, node);
    const disk = await diskOfPath(lab, node, path);
    if (state.faults.disksFull.some((entry) => entry.node === node && entry.disk === disk)) {
      return { lab, fault: 'disk-full', node, path, disk, alreadyFull: true };
    }
    // fallocate reserves blocks without writing them, so filling is instant and the sparse image
    // on the host grows only by metadata. Halving the chunk mops up what a big request cannot get.
    const script = `set -u
dir="$(findmnt -n -o TARGET -T "$1")/${fillDirName}"
mkdir -p "$dir"
i=0
free=$(( $(stat -f -c '%f*%S' "$dir") ))
chunk=$free
while [ "$chunk" -ge 4096 ]; do
  if fallocate -l "$chunk" "$dir/fill.$i" 2>/dev/null; then i=$((i+1)); else rm -f "$dir/fill.$i"; chunk=$((chunk/2)); fi
done
while : ; do head -c 4096 /dev/zero >> "$dir/fill.tail" 2>/dev/null || break; done
sync -f "$dir"
echo "$dir $free"`;
    const result = await execInNode(lab, node, ['bash', '-c', script, 'fill', path], { timeoutMs: 60_000 });
    const [fillDir, freeBytes] = result.stdout.trim().split(' ');
    state.faults.disksFull.push({ node, path: fillDir ?? path, disk });
    return { lab, fault: 'disk-full', node, path, disk, filledBytes: Number(freeBytes) };
  });
}

async function removeFill(lab: string, node: string, fillDir: string): Promise<void> {
  await execInNode(lab, node, ['rm', '-rf', '--', fillDir]);
}

export function diskFree(lab: string, node: string, path: string): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    findLabNode(state, node);
    const disk = await diskOfPath(lab, node, path);
    const entries = state.faults.disksFull.filter((entry) => entry.node === node && entry.disk === disk);
    for (const entry of entries) await removeFill(lab, node, entry.path);
    state.faults.disksFull = state.faults.disksFull.filter((entry) => !entries.includes(entry));
    return { lab, fault: 'disk-free', node, path, disk, freed: entries.length > 0 };
  });
}

/** `heal A B` lifts the partition between A and B; `heal` alone undoes every fault of the lab. */
export function heal(lab: string, a?: string, b?: string): Promise<FaultResult> {
  return mutate(lab, async (state) => {
    if ((a === undefined) !== (b === undefined))
      throw new LabError('heal: name two nodes, or none to heal everything');
    if (a !== undefined && b !== undefined) {
      const endA = endpoint(state, a);
      const endB = endpoint(state, b);
      await cut(state, endA, endB, 'delete');
      await cut(state, endB, endA, 'delete');
      return { lab, fault: 'heal', between: [a, b] };
    }
    for (const node of state.nodes) {
      for (const set of ['cut_in4', 'cut_out4', 'cut_in6', 'cut_out6']) {
        await nft(state, node.name, ['flush', 'set', 'inet', nftTableName, set]);
      }
    }
    state.faults.cuts = [];
    for (const node of Object.keys(state.faults.lossPercent)) await setLoss(state, node, 0);
    for (const node of [...state.faults.linksDown]) await setLink(state, node, true);
    for (const entry of state.faults.disksFull) await removeFill(lab, entry.node, entry.path);
    state.faults.disksFull = [];
    let thawed = 0;
    for (const node of state.nodes) thawed += await thawAll(lab, node.name);
    return { lab, fault: 'heal', all: true, thawed };
  });
}

export function assertFaultNode(name: string): string {
  return name === hostPseudoNode ? name : assertNodeName(name);
}
