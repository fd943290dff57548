// The console's side of the cluster-setup pre-flight: what to ask each node's agent
// (`POST /api/v1/preflight/cluster`: the nodes with their address on each lan, the agents' API
// ports, the ports the cluster's modules will use), and how to put the answers together (a table
// node x peer x lan, the clocks against each other, one OS family, each node's own addresses).
// Pure: the I/O is in console-services.
import type {
  ClusterPathCheck,
  ClusterPreflight,
  ClusterPreflightNode,
  ClusterView,
  Id,
  PreflightCheck,
} from '../../api/contract.ts';
import { preflightNeedsOf } from '../modules/module-preflight.ts';

/** Clocks of the nodes further apart than this refuse the push (logs and leases compare them). */
export const clusterSkewMsMax = 2000;

export interface ClusterPreflightBody {
  self: string;
  nodes: { name: string; apiPort: number; addrs: Record<string, string> }[];
  tcp: { port: number; what: string }[];
  udp: { port: number; what: string }[];
  now: number;
}

export interface ClusterModuleInput {
  name: string;
  moduleId: number;
  userconfig: string;
}

/** The body each node is sent (only `self` and `now` differ between nodes). */
export function clusterPreflightBody(
  cluster: Pick<ClusterView, 'nodes' | 'lans'>,
  modules: readonly ClusterModuleInput[],
  self: string,
  nowMs: number,
): ClusterPreflightBody {
  const tcp = new Map<number, string[]>();
  const udp = new Map<number, string[]>();
  const note = (into: Map<number, string[]>, port: number, what: string) =>
    into.set(port, [...(into.get(port) ?? []), what]);
  for (const module of modules) {
    const needs = preflightNeedsOf(module.userconfig, module.moduleId);
    for (const port of needs.tcpPorts) note(tcp, port, `replication of ${module.name}`);
    for (const port of needs.udpPorts) note(udp, port, `heartbeats of ${module.name}`);
  }
  const uses = (from: Map<number, string[]>) =>
    [...from]
      .sort(([a], [b]) => a - b)
      .slice(0, 16)
      .map(([port, whats]) => ({ port, what: whats.join(', ').slice(0, 120) }));
  return {
    self,
    nodes: cluster.nodes.map((node) => ({
      name: node.name,
      apiPort: node.apiPort,
      addrs: Object.fromEntries(
        cluster.lans.flatMap((lan) =>
          lan.addresses
            .filter((entry) => entry.nodeId === node.id)
            // cluster.xml writes IPv6 in brackets; the agent takes the bare address.
            .map((entry) => [lan.name, entry.addr.replace(/^\[(.*)\]$/, '$1')] as const),
        ),
      ),
    })),
    tcp: uses(tcp),
    udp: uses(udp),
    now: Math.round(nowMs),
  };
}

/** What an agent answers (`ClusterPreflightReport` of agent/api/cluster-preflight.ts). */
export interface AgentClusterReport {
  skewMs: number | null;
  os: { id: string; idLike: string[]; versionId: string; prettyName: string } | null;
  osError: string | null;
  arch: string;
  selfAddresses: { lan: string; addr: string; ok: boolean; detail: string }[];
  probes: {
    peer: string;
    lan: string;
    addr: string;
    protocol: 'tcp' | 'udp';
    port: number;
    what: string;
    ok: boolean;
    severity: 'error' | 'warning';
    detail: string;
  }[];
}

export interface NodeAnswer {
  nodeId: Id;
  node: string;
  report: AgentClusterReport | null;
  /** Why there is no report. */
  error: string | null;
}

function pathsOf(
  cluster: Pick<ClusterView, 'nodes' | 'lans'>,
  answers: readonly NodeAnswer[],
): ClusterPathCheck[] {
  const paths: ClusterPathCheck[] = [];
  const addrOf = (nodeId: Id, lan: ClusterView['lans'][number]) =>
    lan.addresses.find((entry) => entry.nodeId === nodeId)?.addr;
  for (const from of cluster.nodes) {
    const answer = answers.find((candidate) => candidate.nodeId === from.id);
    for (const to of cluster.nodes) {
      if (to.id === from.id) continue;
      for (const lan of cluster.lans) {
        const addr = addrOf(to.id, lan);
        if (addr === undefined || addrOf(from.id, lan) === undefined) continue;
        const base = { from: from.name, to: to.name, lan: lan.name, addr };
        if (!answer?.report) {
          paths.push({
            ...base,
            ok: false,
            warning: false,
            detail: `not checked: ${from.name} did not run the pre-flight (${answer?.error ?? 'no answer'})`,
            probes: [],
          });
          continue;
        }
        const probes = answer.report.probes
          .filter((probe) => probe.peer === to.name && probe.lan === lan.name)
          .map(({ protocol, port, what, ok, severity, detail }) => ({
            protocol,
            port,
            what,
            ok,
            severity,
            detail,
          }));
        const blocking = probes.filter((probe) => !probe.ok && probe.severity === 'error');
        const warnings = probes.filter((probe) => !probe.ok && probe.severity === 'warning');
        paths.push({
          ...base,
          ok: probes.length > 0 && blocking.length === 0,
          warning: blocking.length === 0 && warnings.length > 0,
          detail:
            probes.length === 0
              ? `${from.name} made no probe of ${to.name} on ${lan.name}`
              : blocking.length > 0
                ? blocking.map((probe) => probe.detail).join('; ')
                : warnings.length > 0
                  ? `reached; ${warnings.map((probe) => probe.detail).join('; ')}`
                  : `ok (${probes.map((probe) => `${probe.protocol.toUpperCase()} ${probe.port}`).join(', ')})`,
          probes,
        });
      }
    }
  }
  return paths;
}

/** Names shared by every node's os-release ID and ID_LIKE: empty when they differ in family. */
export function commonOsFamily(families: readonly (readonly string[])[]): string[] {
  if (families.length === 0) return [];
  return (families[0] ?? []).filter((name) => families.every((family) => family.includes(name)));
}

/** The verdict of the cluster pre-flight from the nodes' answers. Pure. */
export function summarizeClusterPreflight(
  cluster: Pick<ClusterView, 'nodes' | 'lans'>,
  answers: readonly NodeAnswer[],
  atMs: number,
): ClusterPreflight {
  const nodes: ClusterPreflightNode[] = answers.map((answer) => ({
    nodeId: answer.nodeId,
    node: answer.node,
    answered: answer.report !== null,
    error: answer.report ? null : answer.error,
    os: answer.report?.os
      ? `${answer.report.os.prettyName}`
      : answer.report
        ? `unknown (${answer.report.osError ?? 'no os-release'})`
        : null,
    osFamily: answer.report?.os ? [answer.report.os.id, ...answer.report.os.idLike] : [],
    arch: answer.report?.arch ?? null,
    clockSkewMs: answer.report?.skewMs ?? null,
    selfAddresses: answer.report?.selfAddresses ?? [],
  }));
  const paths = pathsOf(cluster, answers);
  const checks: PreflightCheck[] = [];
  const silent = nodes.filter((node) => !node.answered);
  checks.push({
    name: 'every agent runs the cluster pre-flight',
    ok: silent.length === 0 && nodes.length > 0,
    detail:
      nodes.length === 0
        ? 'no node has an agent installed by this console'
        : silent.map((node) => `${node.node}: ${node.error ?? 'no answer'}`).join('; ') ||
          `${nodes.length} node(s) answered`,
  });
  const wrongSelf = nodes.flatMap((node) =>
    node.selfAddresses.filter((entry) => !entry.ok).map((entry) => `${node.node}: ${entry.detail}`),
  );
  checks.push({
    name: "each node's address on each lan is its own",
    ok: wrongSelf.length === 0,
    detail: wrongSelf.join('; ') || 'yes',
  });
  const broken = paths.filter((path) => !path.ok);
  const lans = cluster.lans.map((lan) => lan.name);
  checks.push({
    name: 'every node reaches every other node on every lan and port',
    ok: broken.length === 0 && paths.length > 0,
    detail:
      paths.length === 0
        ? 'no path to check: a cluster needs two nodes on a lan'
        : broken.length === 0
          ? `${paths.length} paths ok over ${lans.length} lan(s)`
          : `${broken.length} of ${paths.length} paths fail: ${broken
              .slice(0, 8)
              .map((path) => `${path.from} -> ${path.to} on ${path.lan}: ${path.detail}`)
              .join('; ')}${broken.length > 8 ? '; ...' : ''}`,
  });
  const skews = nodes.filter((node) => node.clockSkewMs !== null);
  const spreadMs =
    skews.length > 0
      ? Math.max(...skews.map((node) => node.clockSkewMs ?? 0)) -
        Math.min(...skews.map((node) => node.clockSkewMs ?? 0))
      : 0;
  checks.push({
    name: `clocks of the nodes within ${clusterSkewMsMax / 1000} s of each other`,
    ok: spreadMs <= clusterSkewMsMax && skews.length === nodes.length,
    detail: `${spreadMs} ms apart; against the console: ${
      nodes
        .map(
          (node) =>
            `${node.node} ${node.clockSkewMs === null ? 'unknown' : `${node.clockSkewMs >= 0 ? '+' : ''}${node.clockSkewMs} ms`}`,
        )
        .join(', ') || 'none'
    } (includes the request's transit)`,
  });
  const known = nodes.filter((node) => node.osFamily.length > 0);
  const family = commonOsFamily(known.map((node) => node.osFamily));
  checks.push({
    name: 'same OS family on every node',
    ok: known.length === nodes.length && family.length > 0,
    detail: `${nodes.map((node) => `${node.node}: ${node.os ?? 'unknown'}${node.arch ? ` ${node.arch}` : ''}`).join(', ')}${
      family.length > 0 ? ` (family ${family.join('/')})` : ' (no common family: scripts and packages differ)'
    }`,
  });
  return { ok: checks.every((check) => check.ok), lans, nodes, paths, checks, atMs };
}
