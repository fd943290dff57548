// Pre-flight checks run by the agent on its own node, before a module is deployed: what the node
// needs for that module. The caller (the console) says what the module will use, the node says
// whether it has it: an interface in each virtual IP's network (and the VIP not already taken),
// free TCP and UDP ports (a VIP is probed with ARP duplicate address detection on its interface,
// so a holder that does not answer ping is seen too, and is named by its MAC), the replicated directories (with owner and mode, so the caller can
// compare nodes), free disk space, its clock against the caller's, and FUSE for replication.
// Every probe is bounded in time; none changes the node (a port is bound and released at once).
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants, existsSync, statSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { type ArpProbeSettings, probeIpv4, type ProbeResult } from '../net/arp-probe.ts';

export const preflightItemsMax = 32;
export const preflightSkewMsMax = 2000;
export const preflightDiskMbDefault = 100;
const probeTimeoutMs = 1500;

export interface PreflightRequest {
  vips: string[];
  tcpPorts: number[];
  udpPorts: number[];
  dirs: string[];
  /** Free space wanted in each replicated directory's file system and in the agent's data folder. */
  diskMb: number;
  /** The caller's clock (ms since the epoch) when it sent the request, or null. */
  callerTimeMs: number | null;
  /** Check FUSE (replication needs it): default when dirs are given. */
  fuse: boolean;
  /** The module the checks are for; when it runs here, its own VIPs and ports are expected busy. */
  module: string | null;
}

export interface PreflightItem {
  /** `vip`, `port`, `dir`, `disk`, `clock`, `fuse`. */
  kind: string;
  name: string;
  ok: boolean;
  /** `warning`: worth a look, does not block a deploy. */
  severity: 'error' | 'warning';
  detail: string;
  /** Facts the caller compares between nodes (a directory's owner, the clock difference). */
  facts?: Record<string, string | number>;
}

export interface PreflightReport {
  node: string;
  timeMs: number;
  ok: boolean;
  checks: PreflightItem[];
}

export interface PreflightContext {
  /** The agent's data folder (journals, logs): its file system needs room too. */
  safeVar: string;
  /** State of `request.module` on this node, or null when it is not configured here. */
  moduleState: string | null;
  nowMs: () => number;
  /** Whether the VIP answers ping (used when no interface is in its network); injectable for tests. */
  answers?: (addr: string) => Promise<boolean>;
  /** ARP duplicate address detection on an interface; injectable for tests (real: arping -D). */
  arpProbe?: (interfaceName: string, addr: string) => Promise<ProbeResult>;
}

/** Two ARP probes 200 ms apart, then 500 ms of listening: what `arping -D -c 2 -w 1` does, faster. */
export const vipArpProbe: ArpProbeSettings = { probes: 2, probeIntervalMs: 200, listenMs: 500 };

export class PreflightInputError extends Error {}

const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4ToNumber(addr: string): number | null {
  const match = ipv4Pattern.exec(addr);
  if (!match) return null;
  const parts = match.slice(1).map(Number);
  if (parts.some((part) => part > 255)) return null;
  return (((parts[0] ?? 0) << 24) | ((parts[1] ?? 0) << 16) | ((parts[2] ?? 0) << 8) | (parts[3] ?? 0)) >>> 0;
}

function many(query: URLSearchParams, name: string): string[] {
  const values = query.getAll(name).flatMap((value) => value.split(','));
  const kept = values.map((value) => value.trim()).filter((value) => value !== '');
  if (kept.length > preflightItemsMax) throw new PreflightInputError(`at most ${preflightItemsMax} ${name}`);
  return kept;
}

function portsOf(query: URLSearchParams, name: string): number[] {
  return many(query, name).map((value) => {
    if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535)
      throw new PreflightInputError(`${name} ${value} is not a port (1-65535)`);
    return Number(value);
  });
}

/** The request from the query string of `GET /api/v1/preflight`; throws PreflightInputError. */
export function preflightRequestOf(query: URLSearchParams): PreflightRequest {
  const vips = many(query, 'vip');
  for (const vip of vips)
    if (ipv4ToNumber(vip) === null) throw new PreflightInputError(`vip ${vip} is not an IPv4 address`);
  const dirs = many(query, 'dir');
  for (const dir of dirs)
    if (!dir.startsWith('/') || dir.length > 1024 || dir.includes('\0'))
      throw new PreflightInputError(`dir ${dir} is not an absolute path`);
  const diskText = query.get('diskMb');
  if (diskText !== null && !/^\d{1,9}$/.test(diskText))
    throw new PreflightInputError('diskMb must be a whole number of MiB');
  const nowText = query.get('now');
  if (nowText !== null && !/^\d{1,16}$/.test(nowText))
    throw new PreflightInputError('now must be the caller time in ms since the epoch');
  const fuseText = query.get('fuse');
  if (fuseText !== null && fuseText !== '0' && fuseText !== '1')
    throw new PreflightInputError('fuse must be 0 or 1');
  const module = query.get('module');
  if (module !== null && !/^[A-Za-z0-9_.-]{1,64}$/.test(module))
    throw new PreflightInputError('module is not a module name');
  return {
    vips,
    tcpPorts: portsOf(query, 'port'),
    udpPorts: portsOf(query, 'udp'),
    dirs,
    diskMb: diskText === null ? preflightDiskMbDefault : Number(diskText),
    callerTimeMs: nowText === null ? null : Number(nowText),
    fuse: fuseText === null ? dirs.length > 0 : fuseText === '1',
    module,
  };
}

function localAddresses(): {
  name: string;
  address: string;
  netmask: string;
  cidr: string | null;
  mac: string;
}[] {
  return Object.entries(networkInterfaces()).flatMap(([name, entries]) =>
    (entries ?? [])
      .filter((entry) => entry.family === 'IPv4' && !entry.internal)
      .map((entry) => ({
        name,
        address: entry.address,
        netmask: entry.netmask,
        cidr: entry.cidr,
        mac: entry.mac.toLowerCase(),
      })),
  );
}

/** Ping once with a short deadline: true when something answers on that address. */
export function pingAnswers(addr: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ping', ['-n', '-c', '1', '-W', '1', addr], { timeout: probeTimeoutMs + 500 }, (error) =>
      resolve(error === null),
    );
  });
}

async function checkVip(
  vip: string,
  context: PreflightContext,
  moduleRuns: boolean,
): Promise<PreflightItem[]> {
  const vipNumber = ipv4ToNumber(vip) ?? 0;
  const addresses = localAddresses();
  const items: PreflightItem[] = [];
  const held = addresses.find((entry) => entry.address === vip);
  const home = addresses.find((entry) => {
    const address = ipv4ToNumber(entry.address);
    const mask = ipv4ToNumber(entry.netmask);
    return (
      address !== null && mask !== null && entry.address !== vip && (address & mask) === (vipNumber & mask)
    );
  });
  items.push(
    home
      ? {
          kind: 'vip',
          name: `interface for virtual IP ${vip}`,
          ok: true,
          severity: 'error',
          detail: `${home.name} has ${home.cidr ?? home.address} in the same network`,
          facts: { interface: home.name, mac: home.mac },
        }
      : {
          kind: 'vip',
          name: `interface for virtual IP ${vip}`,
          ok: false,
          severity: 'error',
          detail: `no interface of this node has an address in the network of ${vip} (has: ${addresses.map((entry) => `${entry.name} ${entry.cidr ?? entry.address}`).join(', ') || 'none'})`,
        },
  );
  if (moduleRuns) {
    items.push({
      kind: 'vip',
      name: `virtual IP ${vip} free`,
      ok: true,
      severity: 'warning',
      detail: `not probed: the module runs here${held ? ` and holds it on ${held.name}` : ''}`,
    });
  } else if (held) {
    items.push({
      kind: 'vip',
      name: `virtual IP ${vip} free`,
      ok: false,
      severity: 'error',
      detail: `${vip} is already an address of this node (${held.name}) while the module does not run here`,
    });
  } else if (home) {
    items.push(await arpCheck(vip, home.name, context));
  } else {
    const answers = await (context.answers ?? pingAnswers)(vip);
    items.push({
      kind: 'vip',
      name: `virtual IP ${vip} free`,
      ok: !answers,
      // The module may run on the other node, which then holds its VIP: a warning, not a refusal.
      severity: 'warning',
      detail: answers
        ? `${vip} answers ping: another host holds it (the module on another node, or an address conflict)`
        : `${vip} does not answer ping`,
    });
  }
  return items;
}

/** The VIP probed by ARP duplicate address detection on the interface of its network. */
async function arpCheck(
  vip: string,
  interfaceName: string,
  context: PreflightContext,
): Promise<PreflightItem> {
  const name = `virtual IP ${vip} free`;
  const command = `arping -D -I ${interfaceName} ${vip}`;
  let result: ProbeResult;
  try {
    result = await (context.arpProbe ?? ((intf, addr) => probeIpv4(intf, addr, vipArpProbe)))(
      interfaceName,
      vip,
    );
  } catch (error) {
    // Without arping (or the right to send raw ARP) ping is all that is left.
    const answers = await (context.answers ?? pingAnswers)(vip);
    return {
      kind: 'vip',
      name,
      ok: !answers,
      severity: 'warning',
      detail: `${command} could not run (${(error as Error).message}); ping: ${answers ? `${vip} answers: another host holds it` : `${vip} does not answer`}`,
    };
  }
  if (result.status === 'free')
    return {
      kind: 'vip',
      name,
      ok: true,
      severity: 'warning',
      detail: `no ARP answer for ${vip} on ${interfaceName} (${command}, ${result.probesSent} probes)`,
    };
  return {
    kind: 'vip',
    name,
    ok: false,
    // The module may run on another node, which then holds its VIP: a warning here; the console
    // compares the MAC with the nodes' own and refuses a holder that is not one of them.
    severity: 'warning',
    detail: `${vip} is held on ${interfaceName}'s network by MAC ${result.macs.join(', ')} (ARP reply to ${command}): the module on another node, or an address conflict`,
    facts: { macs: result.macs.join(',') },
  };
}

function probeTcp(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    const timer = setTimeout(() => {
      server.close();
      resolve('no answer from the bind in time');
    }, probeTimeoutMs);
    server.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code === 'EADDRINUSE' ? 'in use by another program' : `${error.code ?? error.message}`);
    });
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => {
      clearTimeout(timer);
      server.close(() => resolve(null));
    });
  });
}

function probeUdp(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    const timer = setTimeout(() => {
      socket.close();
      resolve('no answer from the bind in time');
    }, probeTimeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.close();
      resolve(error.code === 'EADDRINUSE' ? 'in use by another program' : `${error.code ?? error.message}`);
    });
    socket.bind({ port, address: '0.0.0.0', exclusive: true }, () => {
      clearTimeout(timer);
      socket.close(() => resolve(null));
    });
  });
}

async function checkPort(protocol: 'tcp' | 'udp', port: number, moduleRuns: boolean): Promise<PreflightItem> {
  const name = `${protocol.toUpperCase()} port ${port} free`;
  if (moduleRuns)
    return { kind: 'port', name, ok: true, severity: 'warning', detail: 'not probed: the module runs here' };
  const problem = protocol === 'tcp' ? await probeTcp(port) : await probeUdp(port);
  return {
    kind: 'port',
    name,
    ok: problem === null,
    severity: 'error',
    detail: problem === null ? 'free' : problem,
  };
}

function checkDir(dir: string): PreflightItem {
  const name = `replicated directory ${dir}`;
  try {
    const info = statSync(dir);
    if (!info.isDirectory())
      return {
        kind: 'dir',
        name,
        ok: false,
        severity: 'error',
        detail: `${dir} exists but is not a directory`,
      };
    const mode = (info.mode & 0o7777).toString(8).padStart(4, '0');
    return {
      kind: 'dir',
      name,
      ok: true,
      severity: 'error',
      detail: `exists, owner ${info.uid}:${info.gid}, mode ${mode}`,
      facts: { uid: info.uid, gid: info.gid, mode },
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      kind: 'dir',
      name,
      ok: false,
      severity: 'error',
      detail:
        code === 'ENOENT'
          ? `${dir} does not exist on this node: create it (same owner on every node) before deploying`
          : `${dir} cannot be read: ${code ?? (error as Error).message}`,
    };
  }
}

/** The nearest existing folder of a path (the file system a missing directory would be made on). */
function existingAncestor(path: string): string {
  let current = path;
  while (!existsSync(current) && current !== '/') current = join(current, '..');
  return current;
}

function checkDisk(paths: readonly string[], diskMb: number): PreflightItem[] {
  const seen = new Map<string, string>();
  const items: PreflightItem[] = [];
  for (const path of paths) {
    const where = existingAncestor(path);
    try {
      const info = statfsSync(where);
      const freeMb = Math.floor((Number(info.bavail) * Number(info.bsize)) / (1024 * 1024));
      const device = `${info.type}:${info.blocks}:${info.bsize}`;
      if (seen.has(device)) continue;
      seen.set(device, path);
      items.push({
        kind: 'disk',
        name: `free space for ${path}`,
        ok: freeMb >= diskMb,
        severity: 'error',
        detail: `${freeMb} MiB free on the file system of ${where} (wanted ${diskMb} MiB)`,
        facts: { freeMb },
      });
    } catch (error) {
      items.push({
        kind: 'disk',
        name: `free space for ${path}`,
        ok: false,
        severity: 'error',
        detail: `statfs ${where}: ${(error as Error).message}`,
      });
    }
  }
  return items;
}

function checkClock(callerTimeMs: number, nowMs: number): PreflightItem {
  const skewMs = nowMs - callerTimeMs;
  return {
    kind: 'clock',
    name: 'clock against the caller',
    ok: Math.abs(skewMs) <= preflightSkewMsMax,
    severity: 'error',
    detail: `${skewMs >= 0 ? '+' : ''}${skewMs} ms (node - caller, includes the request's transit; limit ${preflightSkewMsMax} ms)`,
    facts: { skewMs },
  };
}

const fusermountCandidates = [
  '/usr/bin/fusermount3',
  '/usr/bin/fusermount',
  '/bin/fusermount3',
  '/bin/fusermount',
];

export function checkFuse(): PreflightItem {
  const name = 'FUSE for replication';
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch (error) {
    return {
      kind: 'fuse',
      name,
      ok: false,
      severity: 'error',
      detail: `/dev/fuse is not usable (${(error as NodeJS.ErrnoException).code ?? 'error'}): load the fuse module (modprobe fuse)`,
    };
  }
  const helper = fusermountCandidates.find((candidate) => existsSync(candidate));
  if (!helper)
    return {
      kind: 'fuse',
      name,
      ok: false,
      severity: 'error',
      detail: 'no fusermount: install the fuse3 (or fuse) package',
    };
  return { kind: 'fuse', name, ok: true, severity: 'error', detail: `/dev/fuse and ${helper}` };
}

export async function runPreflight(
  request: PreflightRequest,
  context: PreflightContext,
): Promise<PreflightReport> {
  // The clock is read first: the probes below (a ping waits up to a second) must not count.
  const receivedMs = context.nowMs();
  const moduleRuns = context.moduleState !== null && context.moduleState !== 'STOP';
  const checks: PreflightItem[] = [];
  for (const vip of request.vips) checks.push(...(await checkVip(vip, context, moduleRuns)));
  const ports = await Promise.all([
    ...request.tcpPorts.map((port) => checkPort('tcp', port, moduleRuns)),
    ...request.udpPorts.map((port) => checkPort('udp', port, moduleRuns)),
  ]);
  checks.push(...ports);
  for (const dir of request.dirs) checks.push(checkDir(dir));
  checks.push(...checkDisk([...request.dirs, context.safeVar], request.diskMb));
  if (request.callerTimeMs !== null) checks.push(checkClock(request.callerTimeMs, receivedMs));
  if (request.fuse) checks.push(checkFuse());
  return {
    node: hostname(),
    timeMs: context.nowMs(),
    ok: checks.every((check) => check.ok || check.severity === 'warning'),
    checks,
  };
}
