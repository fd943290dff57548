// The cluster-setup pre-flight run by one agent: before the console pushes cluster.xml and the
// keys, each node checks from where it stands that it reaches every other node on every lan (TCP
// to the peer agent's API port, which must answer, and to the other TCP ports the cluster will
// use; a UDP datagram to each UDP port), that its own address on each lan is one of its
// interfaces, and says its OS family (/etc/os-release) and its clock. The console puts the nodes'
// answers side by side (clock skew, same OS family). Every probe is bounded in time and their
// number is bounded; nothing on the node changes.
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { isIP, Socket } from 'node:net';
import { arch, hostname, networkInterfaces, release } from 'node:os';
import { PreflightInputError } from './preflight.ts';

export const clusterNodesMax = 32;
export const clusterLansMax = 8;
export const clusterPortsMax = 16;
export const clusterProbesMax = 512;
export const probeConcurrencyMax = 32;
export const clusterProbeTimeoutMs = 1500;
const osReleaseFiles = ['/etc/os-release', '/usr/lib/os-release'];

export interface ClusterPreflightNode {
  name: string;
  /** The agent's HTTPS API port on that node: it must answer on every lan. */
  apiPort: number;
  /** Address per lan name (a node may be absent from a lan). */
  addrs: Record<string, string>;
}

export interface ClusterPortUse {
  port: number;
  /** What the cluster uses it for (`heartbeats of web`), shown with the result. */
  what: string;
}

export interface ClusterPreflightRequest {
  /** The node asked, as the description names it. */
  self: string;
  nodes: ClusterPreflightNode[];
  /** Other TCP ports the peers will listen on (replication): the path must work, a listener is not needed yet. */
  tcp: ClusterPortUse[];
  /** UDP ports the peers will receive on (heartbeats, farm membership). */
  udp: ClusterPortUse[];
  /** The caller's clock (ms since the epoch) when it sent the request, or null. */
  callerTimeMs: number | null;
}

/**
 * `open`: a TCP connection was accepted. `refused`: the peer answered that nothing listens (TCP
 * reset or ICMP port unreachable): the path works. `silent`: a UDP datagram got no answer (dropped
 * by a firewall, or taken by a listener that ignores it). `unreachable`: no answer in time or no
 * route. `error`: the probe could not be made.
 */
export type ProbeOutcome = 'open' | 'refused' | 'silent' | 'unreachable' | 'error';

export interface ClusterProbe {
  peer: string;
  lan: string;
  addr: string;
  protocol: 'tcp' | 'udp';
  port: number;
  what: string;
  /** A listener is needed (the peer agent's API), not only a working path. */
  listening: boolean;
}

export interface ClusterProbeResult extends ClusterProbe {
  outcome: ProbeOutcome;
  ok: boolean;
  /** `warning`: reported, does not block a push. */
  severity: 'error' | 'warning';
  detail: string;
  elapsedMs: number;
}

export interface OsInfo {
  id: string;
  idLike: string[];
  versionId: string;
  prettyName: string;
}

export interface ClusterPreflightReport {
  node: string;
  self: string;
  /** This node's clock when the request arrived (ms since the epoch). */
  timeMs: number;
  /** This node's clock minus the caller's, or null when the caller gave no time. */
  skewMs: number | null;
  os: OsInfo | null;
  /** Why os is null. */
  osError: string | null;
  arch: string;
  kernel: string;
  /** Each lan: is this node's address in the description one of its interfaces? */
  selfAddresses: { lan: string; addr: string; ok: boolean; detail: string }[];
  probes: ClusterProbeResult[];
  /** No blocking problem seen from this node (warnings allowed). */
  ok: boolean;
}

const namePattern = /^[A-Za-z0-9_.-]{1,64}$/;
const dnsNamePattern =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$/;
const lookupTimeoutMs = 2000;

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new PreflightInputError(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string, lengthMax: number): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new PreflightInputError(`${what} must be a list`);
  if (value.length > lengthMax) throw new PreflightInputError(`at most ${lengthMax} ${what}`);
  return value;
}

function portOf(value: unknown, what: string): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > 65535)
    throw new PreflightInputError(`${what} ${String(value)} is not a port (1-65535)`);
  return value as number;
}

function portUses(value: unknown, what: string): ClusterPortUse[] {
  const uses = list(value, `${what} ports`, clusterPortsMax).map((entry, index) => {
    const fields = record(entry, `${what}[${index}]`);
    const text = typeof fields.what === 'string' ? fields.what.slice(0, 120) : '';
    return { port: portOf(fields.port, `${what}[${index}].port`), what: text };
  });
  const seen = new Set<number>();
  return uses.filter((use) => !seen.has(use.port) && seen.add(use.port));
}

/** The request from the body of `POST /api/v1/preflight/cluster`; throws PreflightInputError. */
export function clusterPreflightRequestOf(body: Record<string, unknown>): ClusterPreflightRequest {
  if (typeof body.self !== 'string' || !namePattern.test(body.self))
    throw new PreflightInputError('self must be the name of the node asked');
  const lanNames = new Set<string>();
  const nodes = list(body.nodes, 'nodes', clusterNodesMax).map((entry, index): ClusterPreflightNode => {
    const fields = record(entry, `nodes[${index}]`);
    if (typeof fields.name !== 'string' || !namePattern.test(fields.name))
      throw new PreflightInputError(`nodes[${index}].name is not a node name`);
    const addrs: Record<string, string> = {};
    for (const [lan, addr] of Object.entries(record(fields.addrs, `nodes[${index}].addrs`))) {
      if (!namePattern.test(lan)) throw new PreflightInputError(`lan name ${lan} is not a name`);
      // As cluster.xml writes them: IPv4, [IPv6] (brackets optional here) or a DNS name.
      const bare = typeof addr === 'string' ? addr.replace(/^\[(.*)\]$/, '$1') : '';
      if (isIP(bare) === 0 && !dnsNamePattern.test(bare))
        throw new PreflightInputError(
          `address of ${fields.name} on lan ${lan} must be an IPv4 or IPv6 address or a DNS name, got ${String(addr)}`,
        );
      lanNames.add(lan);
      addrs[lan] = bare;
    }
    return { name: fields.name, apiPort: portOf(fields.apiPort, `nodes[${index}].apiPort`), addrs };
  });
  if (lanNames.size > clusterLansMax) throw new PreflightInputError(`at most ${clusterLansMax} lans`);
  const names = nodes.map((node) => node.name);
  if (new Set(names).size !== names.length) throw new PreflightInputError('a node is named twice');
  if (!names.includes(body.self))
    throw new PreflightInputError(`self ${body.self} is not one of the nodes (${names.join(', ')})`);
  if (
    body.now !== undefined &&
    body.now !== null &&
    (!Number.isInteger(body.now) || (body.now as number) < 0)
  )
    throw new PreflightInputError('now must be the caller time in ms since the epoch');
  const request: ClusterPreflightRequest = {
    self: body.self,
    nodes,
    tcp: portUses(body.tcp, 'tcp'),
    udp: portUses(body.udp, 'udp'),
    callerTimeMs: typeof body.now === 'number' ? body.now : null,
  };
  const count = planClusterProbes(request).length;
  if (count > clusterProbesMax)
    throw new PreflightInputError(
      `${count} probes asked (peers x lans x ports), at most ${clusterProbesMax}: give fewer ports`,
    );
  return request;
}

/** Every probe this node makes: each peer, on each lan both are on, each port. Pure. */
export function planClusterProbes(request: ClusterPreflightRequest): ClusterProbe[] {
  const self = request.nodes.find((node) => node.name === request.self);
  if (!self) return [];
  const probes: ClusterProbe[] = [];
  for (const peer of request.nodes) {
    if (peer.name === self.name) continue;
    for (const [lan, addr] of Object.entries(peer.addrs)) {
      if (self.addrs[lan] === undefined) continue;
      const base = { peer: peer.name, lan, addr };
      probes.push({
        ...base,
        protocol: 'tcp',
        port: peer.apiPort,
        what: 'agent API',
        listening: true,
      });
      for (const use of request.tcp)
        if (use.port !== peer.apiPort)
          probes.push({ ...base, protocol: 'tcp', port: use.port, what: use.what, listening: false });
      for (const use of request.udp)
        probes.push({ ...base, protocol: 'udp', port: use.port, what: use.what, listening: false });
    }
  }
  return probes;
}

/** Fields of an os-release file (shell-style KEY=value lines, values maybe quoted). Pure. */
export function parseOsRelease(text: string): OsInfo {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = (match[2] ?? '').trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1).replace(/\\(["$`\\])/g, '$1');
    fields.set(match[1] ?? '', value);
  }
  return {
    id: (fields.get('ID') ?? 'linux').toLowerCase(),
    idLike: (fields.get('ID_LIKE') ?? '')
      .toLowerCase()
      .split(/\s+/)
      .filter((word) => word !== ''),
    versionId: fields.get('VERSION_ID') ?? '',
    prettyName: fields.get('PRETTY_NAME') ?? fields.get('NAME') ?? 'Linux',
  };
}

function readOsInfo(): { os: OsInfo | null; osError: string | null } {
  const errors: string[] = [];
  for (const file of osReleaseFiles) {
    try {
      return { os: parseOsRelease(readFileSync(file, 'utf8')), osError: null };
    } catch (error) {
      errors.push(`${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  return { os: null, osError: `no os-release file (${errors.join('; ')})` };
}

/** The verdict on one probe's outcome. Pure. */
export function judgeProbe(
  probe: ClusterProbe,
  outcome: ProbeOutcome,
  reason: string,
): Pick<ClusterProbeResult, 'ok' | 'severity' | 'detail'> {
  const where = `${probe.protocol.toUpperCase()} ${probe.addr} port ${probe.port} (${probe.what})`;
  switch (outcome) {
    case 'open':
      return { ok: true, severity: 'error', detail: `${where}: connected` };
    case 'refused':
      return probe.listening
        ? {
            ok: false,
            severity: 'error',
            detail: `${where}: the node answers but nothing listens there: is hakitd running on ${probe.peer}?`,
          }
        : {
            ok: true,
            severity: 'error',
            detail: `${where}: reached (nothing listens there yet: ${probe.protocol === 'tcp' ? 'TCP reset' : 'ICMP port unreachable'})`,
          };
    case 'silent':
      return {
        ok: false,
        severity: 'warning',
        detail: `${where}: no answer in ${clusterProbeTimeoutMs} ms: a firewall drops UDP there, or a running module listens (heartbeats ignore the probe)`,
      };
    case 'unreachable':
      return { ok: false, severity: 'error', detail: `${where}: unreachable: ${reason}` };
    default:
      return { ok: false, severity: 'error', detail: `${where}: probe failed: ${reason}` };
  }
}

const unreachableCodes = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT']);

/** One TCP connection attempt, closed at once. */
export function probeTcp(
  addr: string,
  port: number,
  timeoutMs = clusterProbeTimeoutMs,
): Promise<{ outcome: ProbeOutcome; reason: string }> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let settled = false;
    const finish = (outcome: ProbeOutcome, reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, reason });
    };
    const timer = setTimeout(
      () => finish('unreachable', `no answer in ${timeoutMs} ms (packets dropped: firewall, cut link)`),
      timeoutMs,
    );
    socket.once('connect', () => finish('open', 'connected'));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      if (code === 'ECONNREFUSED') finish('refused', code);
      else finish(unreachableCodes.has(code) ? 'unreachable' : 'error', code);
    });
    socket.connect({ host: addr, port });
  });
}

/**
 * One datagram on a connected UDP socket: an ICMP port unreachable comes back as ECONNREFUSED
 * (the node was reached), silence is all a UDP probe can say otherwise.
 */
export function probeUdp(
  addr: string,
  port: number,
  timeoutMs = clusterProbeTimeoutMs,
): Promise<{ outcome: ProbeOutcome; reason: string }> {
  return new Promise((resolve) => {
    // A DNS name is resolved as the node would for heartbeats; IPv6 when that is what it gives.
    const socket = createSocket(isIP(addr) === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (outcome: ProbeOutcome, reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed by the error that settled it
      }
      resolve({ outcome, reason });
    };
    const timer = setTimeout(() => finish('silent', `no answer in ${timeoutMs} ms`), timeoutMs);
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ?? error.message;
      if (code === 'ECONNREFUSED') finish('refused', code);
      else finish(unreachableCodes.has(code) ? 'unreachable' : 'error', code);
    });
    // Answers are not expected; reading keeps the socket open to receive the ICMP error.
    socket.on('message', () => finish('open', 'answered'));
    socket.connect(port, addr, () => {
      socket.send(Buffer.from('hakit-preflight'), (error) => {
        if (error) finish('error', (error as NodeJS.ErrnoException).code ?? error.message);
      });
    });
  });
}

/** A DNS name's addresses as this node resolves them, or why not; bounded in time. */
export async function resolveName(name: string, timeoutMs = lookupTimeoutMs): Promise<string[] | string> {
  if (isIP(name) !== 0) return [name];
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      lookup(name, { all: true }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from the resolver in ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
    return found.length > 0 ? found.map((entry) => entry.address) : `${name} resolves to no address`;
  } catch (error) {
    return `cannot resolve ${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export interface ClusterPreflightContext {
  nowMs: () => number;
  probeTcp?: typeof probeTcp;
  probeUdp?: typeof probeUdp;
  /** Resolves a DNS name of the description; injectable for tests (real: the node's resolver). */
  resolveName?: (name: string) => Promise<string[] | string>;
  /** The node's interface addresses; injectable for tests. */
  localAddresses?: () => string[];
}

/** One spelling per address (IPv6 compressed, lower case, no zone), so they compare. */
export function canonicalAddress(addr: string): string {
  const bare = addr.replace(/%.*$/, '');
  if (isIP(bare) !== 6) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare.toLowerCase();
  }
}

function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((entries) =>
    (entries ?? []).map((entry) => entry.address),
  );
}

/** Runs `work` over `items` with at most `concurrency` at a time; results in item order. */
async function bounded<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>) {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

export async function runClusterPreflight(
  request: ClusterPreflightRequest,
  context: ClusterPreflightContext,
): Promise<ClusterPreflightReport> {
  // The clock is read first: the probes below take up to a few seconds.
  const receivedMs = context.nowMs();
  const local = new Set((context.localAddresses ?? interfaceAddresses)().map(canonicalAddress));
  const self = request.nodes.find((node) => node.name === request.self);
  // DNS names are resolved once each, as this node resolves them.
  const resolve = context.resolveName ?? resolveName;
  const names = new Map<string, Promise<string[] | string>>();
  const resolved = (addr: string) => {
    const known = names.get(addr) ?? (isIP(addr) !== 0 ? Promise.resolve([addr]) : resolve(addr));
    names.set(addr, known);
    return known;
  };
  const selfAddresses = await Promise.all(
    Object.entries(self?.addrs ?? {}).map(async ([lan, addr]) => {
      const addresses = await resolved(addr);
      const ok =
        typeof addresses !== 'string' && addresses.some((entry) => local.has(canonicalAddress(entry)));
      return {
        lan,
        addr,
        ok,
        detail: ok
          ? `${addr} is an address of this node`
          : typeof addresses === 'string'
            ? `${addresses} (lan ${lan})`
            : `${addr} (lan ${lan}) is not an address of this node: fix the address of ${request.self} in the cluster`,
      };
    }),
  );
  const tcp = context.probeTcp ?? probeTcp;
  const udp = context.probeUdp ?? probeUdp;
  const probes = await bounded(planClusterProbes(request), probeConcurrencyMax, async (probe) => {
    const startedMs = performance.now();
    const addresses = await resolved(probe.addr);
    const { outcome, reason } =
      typeof addresses === 'string'
        ? { outcome: 'error' as const, reason: addresses }
        : await (probe.protocol === 'tcp' ? tcp : udp)(addresses[0] ?? probe.addr, probe.port);
    return {
      ...probe,
      outcome,
      ...judgeProbe(probe, outcome, reason),
      elapsedMs: Math.round(performance.now() - startedMs),
    };
  });
  const { os, osError } = readOsInfo();
  return {
    node: hostname(),
    self: request.self,
    timeMs: receivedMs,
    skewMs: request.callerTimeMs === null ? null : receivedMs - request.callerTimeMs,
    os,
    osError,
    arch: arch(),
    kernel: release(),
    selfAddresses,
    probes,
    ok:
      selfAddresses.every((entry) => entry.ok) &&
      probes.every((probe) => probe.ok || probe.severity === 'warning'),
  };
}
