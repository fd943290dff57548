// The cluster-setup pre-flight: the agent's request checks, its probe plan, os-release, the TCP and
// UDP probes on loopback (real sockets), a whole run from this machine; the console's request body
// and its verdict (paths node x peer x lan, clock skew, OS family); the VIP probed by ARP in the
// module pre-flight and the console naming a holder that is not a node.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  canonicalAddress,
  type ClusterPreflightRequest,
  clusterPreflightRequestOf,
  judgeProbe,
  parseOsRelease,
  planClusterProbes,
  probeTcp,
  probeUdp,
  resolveName,
  runClusterPreflight,
} from '../../../agent/api/cluster-preflight.ts';
import { PreflightInputError, runPreflight } from '../../../agent/api/preflight.ts';
import type { ClusterView, NodePreflight } from '../../../main/api/contract.ts';
import {
  type AgentClusterReport,
  clusterPreflightBody,
  commonOsFamily,
  summarizeClusterPreflight,
} from '../../../main/services/cluster/cluster-preflight.ts';
import { clusterDiagnostics, clusterXmlOf } from '../../../main/services/modules/module-config.ts';
import { acrossNodes } from '../../../main/services/modules/module-preflight.ts';
import { TemplateLibrary } from '../../../main/services/modules/templates.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hakit-cpf-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const twoLans = {
  self: 'n1',
  nodes: [
    { name: 'n1', apiPort: 9453, addrs: { lan1: '10.0.0.1', lan2: 'fd00::1' } },
    { name: 'n2', apiPort: 9453, addrs: { lan1: '10.0.0.2', lan2: 'fd00::2' } },
    { name: 'n3', apiPort: 9454, addrs: { lan1: '10.0.0.3' } },
  ],
  tcp: [{ port: 5600, what: 'replication of web' }],
  udp: [{ port: 8888, what: 'heartbeats of web' }],
  now: 1000,
};

function refused(body: Record<string, unknown>, message: RegExp): void {
  assert.throws(
    () => clusterPreflightRequestOf(body),
    (error: Error) => {
      assert.ok(error instanceof PreflightInputError, String(error));
      assert.match(error.message, message);
      return true;
    },
  );
}

describe('agent: cluster pre-flight request and plan', () => {
  test('the body is checked: who asks, names, addresses, ports and the number of probes', () => {
    const request = clusterPreflightRequestOf(twoLans);
    assert.equal(request.callerTimeMs, 1000);
    assert.deepEqual(request.udp, [{ port: 8888, what: 'heartbeats of web' }]);
    refused({ ...twoLans, self: 'n9' }, /self n9 is not one of the nodes \(n1, n2, n3\)/);
    refused({ ...twoLans, self: '../x' }, /self must be the name/);
    refused({ ...twoLans, nodes: [...twoLans.nodes, { name: 'n1', apiPort: 1, addrs: {} }] }, /named twice/);
    refused(
      { ...twoLans, nodes: [{ name: 'n1', apiPort: 9453, addrs: { lan1: 'bad name!' } }] },
      /address of n1 on lan lan1 must be an IPv4 or IPv6 address or a DNS name, got bad name!/,
    );
    // As cluster.xml writes them: [IPv6] and DNS names are taken.
    const written = clusterPreflightRequestOf({
      ...twoLans,
      nodes: [
        { name: 'n1', apiPort: 9453, addrs: { lan1: '[fd00::1]' } },
        { name: 'n2', apiPort: 9453, addrs: { lan1: 'node2.example.test' } },
      ],
    });
    assert.deepEqual(
      written.nodes.map((entry) => entry.addrs.lan1),
      ['fd00::1', 'node2.example.test'],
    );
    refused({ ...twoLans, tcp: [{ port: 70000 }] }, /tcp\[0\]\.port 70000 is not a port/);
    refused({ ...twoLans, now: 'yesterday' }, /caller time/);
    const many = Array.from({ length: 16 }, (_, index) => ({ port: 7000 + index, what: '' }));
    const big = {
      self: 'n1',
      nodes: Array.from({ length: 32 }, (_, index) => ({
        name: `n${index + 1}`,
        apiPort: 9453,
        addrs: { a: `10.0.0.${index + 1}`, b: `10.0.1.${index + 1}` },
      })),
      tcp: many,
      udp: many,
    };
    refused(big, /2046 probes asked .* at most 512/);
  });

  test('each peer on each lan both nodes are on: the API port (listened), the TCP and UDP ports', () => {
    const probes = planClusterProbes(clusterPreflightRequestOf(twoLans));
    assert.deepEqual(
      probes.map((probe) => `${probe.peer} ${probe.lan} ${probe.protocol}/${probe.port} ${probe.listening}`),
      [
        'n2 lan1 tcp/9453 true',
        'n2 lan1 tcp/5600 false',
        'n2 lan1 udp/8888 false',
        'n2 lan2 tcp/9453 true',
        'n2 lan2 tcp/5600 false',
        'n2 lan2 udp/8888 false',
        'n3 lan1 tcp/9454 true',
        'n3 lan1 tcp/5600 false',
        'n3 lan1 udp/8888 false',
      ],
    );
    assert.equal(probes[3]?.addr, 'fd00::2');
    // n3 is not on lan2: from n3, the others are probed on lan1 only.
    const fromN3 = planClusterProbes(clusterPreflightRequestOf({ ...twoLans, self: 'n3' }));
    assert.deepEqual(
      [...new Set(fromN3.map((probe) => `${probe.peer} ${probe.lan}`))],
      ['n1 lan1', 'n2 lan1'],
    );
  });

  test('os-release: ID, ID_LIKE, version and name, quoted or not', () => {
    assert.deepEqual(
      parseOsRelease(
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n',
      ),
      { id: 'ubuntu', idLike: ['debian'], versionId: '22.04', prettyName: 'Ubuntu 22.04.4 LTS' },
    );
    assert.deepEqual(
      parseOsRelease('NAME=\'Rocky Linux\'\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n'),
      { id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], versionId: '9.3', prettyName: 'Rocky Linux' },
    );
    assert.deepEqual(commonOsFamily([['debian'], ['ubuntu', 'debian']]), ['debian']);
    assert.deepEqual(
      commonOsFamily([
        ['rocky', 'rhel', 'centos', 'fedora'],
        ['rhel', 'fedora'],
      ]),
      ['rhel', 'fedora'],
    );
    assert.deepEqual(commonOsFamily([['debian'], ['rhel', 'fedora']]), []);
  });

  test('verdicts: a refused API port means no agent there; a refused other port only proves the path', () => {
    const api = planClusterProbes(clusterPreflightRequestOf(twoLans))[0]!;
    const replication = planClusterProbes(clusterPreflightRequestOf(twoLans))[1]!;
    assert.deepEqual(judgeProbe(api, 'refused', 'ECONNREFUSED'), {
      ok: false,
      severity: 'error',
      detail:
        'TCP 10.0.0.2 port 9453 (agent API): the node answers but nothing listens there: is hakitd running on n2?',
    });
    assert.equal(judgeProbe(replication, 'refused', 'ECONNREFUSED').ok, true);
    assert.match(
      judgeProbe(replication, 'unreachable', 'no answer in 1500 ms').detail,
      /^TCP 10\.0\.0\.2 port 5600 \(replication of web\): unreachable: no answer in 1500 ms$/,
    );
    assert.equal(canonicalAddress('FD00:0:0::0001%eth0'), 'fd00::1');
  });
});

describe('agent: probes on loopback', () => {
  test('names: an address is itself; localhost comes from the hosts file', async () => {
    assert.deepEqual(await resolveName('10.0.0.1'), ['10.0.0.1']);
    const local = await resolveName('localhost');
    assert.ok(
      Array.isArray(local) && local.some((entry) => entry === '127.0.0.1' || entry === '::1'),
      String(local),
    );
  });

  test('TCP: a listener is open, a closed port is refused', async () => {
    const server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      assert.deepEqual(await probeTcp('127.0.0.1', port), { outcome: 'open', reason: 'connected' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    assert.deepEqual(await probeTcp('127.0.0.1', port), { outcome: 'refused', reason: 'ECONNREFUSED' });
  });

  test('UDP: a closed port answers ICMP port unreachable (refused); a silent listener is silent', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    try {
      assert.deepEqual(await probeUdp('127.0.0.1', port, 300), {
        outcome: 'silent',
        reason: 'no answer in 300 ms',
      });
    } finally {
      socket.close();
    }
    assert.deepEqual(await probeUdp('127.0.0.1', port, 1000), { outcome: 'refused', reason: 'ECONNREFUSED' });
  });

  test('a whole run from this machine: peers on two loopback "lans", its own address checked', async () => {
    const agent = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => agent.listen(0, '127.0.0.2', resolve));
    const apiPort = (agent.address() as AddressInfo).port;
    const request: ClusterPreflightRequest = {
      self: 'n1',
      nodes: [
        { name: 'n1', apiPort, addrs: { a: '127.0.0.1', b: '192.0.2.1', c: 'localhost' } },
        // On lan a the agent answers; on lan b (127.0.0.3) nothing listens on its port; on lan c
        // the name does not resolve.
        { name: 'n2', apiPort, addrs: { a: '127.0.0.2', b: '127.0.0.3', c: 'no-such-node.invalid' } },
      ],
      tcp: [],
      udp: [],
      callerTimeMs: Date.now() - 250,
    };
    try {
      // Names are resolved by an injected resolver: no DNS query leaves this machine.
      const asked: string[] = [];
      const report = await runClusterPreflight(request, {
        nowMs: () => Date.now(),
        resolveName: async (name) => {
          asked.push(name);
          return name === 'localhost' ? ['127.0.0.1'] : `cannot resolve ${name}: ENOTFOUND`;
        },
      });
      assert.deepEqual(asked.sort(), ['localhost', 'no-such-node.invalid'], 'each name resolved once');
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.probes.map((probe) => [probe.lan, probe.outcome, probe.ok]),
        [
          ['a', 'open', true],
          ['b', 'refused', false],
          ['c', 'error', false],
        ],
      );
      assert.match(
        report.probes[2]?.detail ?? '',
        /probe failed: cannot resolve no-such-node\.invalid: ENOTFOUND/,
      );
      assert.deepEqual(
        report.selfAddresses.map((entry) => [entry.lan, entry.ok]),
        [
          ['a', true],
          ['b', false],
          ['c', true],
        ],
      );
      assert.match(
        report.selfAddresses[1]?.detail ?? '',
        /192\.0\.2\.1 \(lan b\) is not an address of this node/,
      );
      assert.ok((report.skewMs ?? 0) >= 250 && (report.skewMs ?? 0) < 2000, String(report.skewMs));
      assert.ok(report.os === null || report.os.id.length > 0);
    } finally {
      agent.close();
    }
  });
});

describe('console: cluster pre-flight body and verdict', () => {
  const cluster: Pick<ClusterView, 'nodes' | 'lans'> = {
    nodes: [1, 2].map((id) => ({
      id,
      clusterId: 1,
      name: `n${id}`,
      address: `10.0.0.${id}`,
      sshPort: 22,
      sshUser: 'root',
      sshAuth: 'key' as const,
      hostKeyFingerprint: null,
      apiPort: 9453,
      apiFingerprint: 'x',
      hasApiToken: true,
      apiCertificateByCa: true,
      agentVersion: '1',
      installedMs: null,
    })),
    lans: [
      {
        id: 1,
        name: 'default',
        addresses: [
          { nodeId: 1, addr: '10.0.0.1' },
          { nodeId: 2, addr: '10.0.0.2' },
        ],
      },
      {
        id: 2,
        name: 'v6',
        addresses: [
          { nodeId: 1, addr: 'fd00::1' },
          { nodeId: 2, addr: 'fd00::2' },
        ],
      },
    ],
  };

  test("the body: every node's address per lan, the API ports, the ports of the cluster's modules", () => {
    const library = new TemplateLibrary(join(import.meta.dirname, '..', '..', '..', 'resources', 'modules'));
    const made = library.instantiate('generic-mirror', { VIRTUAL_IP: '10.0.0.50', REPLICATED_DIR: '/srv/d' });
    const body = clusterPreflightBody(
      cluster,
      [{ name: 'web', moduleId: 3, userconfig: made.userconfig }],
      'n2',
      5.4,
    );
    assert.deepEqual(body, {
      self: 'n2',
      nodes: [
        { name: 'n1', apiPort: 9453, addrs: { default: '10.0.0.1', v6: 'fd00::1' } },
        { name: 'n2', apiPort: 9453, addrs: { default: '10.0.0.2', v6: 'fd00::2' } },
      ],
      tcp: [{ port: 5608, what: 'replication of web' }],
      udp: [{ port: 8890, what: 'heartbeats of web' }],
      now: 5,
    });
    // What the console sends is what the agent accepts.
    assert.equal(clusterPreflightRequestOf({ ...body }).self, 'n2');
    // cluster.xml writes the IPv6 lan in brackets, as its validator wants.
    const xml = clusterXmlOf({ ...cluster, id: 1, siteId: 1, name: 'c', modules: [] });
    assert.match(xml, /<lan name="v6">\n<node name="n1" addr="\[fd00::1\]"\/>/);
    assert.deepEqual(clusterDiagnostics(xml), []);
  });

  const report = (
    skewMs: number,
    os: [string, string[]],
    cut: string | null,
    udpSilent = false,
  ): AgentClusterReport => ({
    skewMs,
    os: { id: os[0], idLike: os[1], versionId: '1', prettyName: `${os[0]} 1` },
    osError: null,
    arch: 'x64',
    selfAddresses: [{ lan: 'default', addr: 'a', ok: true, detail: 'ok' }],
    probes: ['default', 'v6'].flatMap((lan) => [
      {
        peer: '?',
        lan,
        addr: lan,
        protocol: 'tcp' as const,
        port: 9453,
        what: 'agent API',
        ok: lan !== cut,
        severity: 'error' as const,
        detail:
          lan === cut ? `TCP ${lan} port 9453 (agent API): unreachable: no answer in 1500 ms` : 'connected',
      },
      {
        peer: '?',
        lan,
        addr: lan,
        protocol: 'udp' as const,
        port: 8888,
        what: 'heartbeats',
        ok: !udpSilent,
        severity: 'warning' as const,
        detail: udpSilent ? 'UDP: no answer' : 'reached',
      },
    ]),
  });
  const answer = (id: number, value: AgentClusterReport | null, error: string | null = null) => ({
    nodeId: id,
    node: `n${id}`,
    report: value && {
      ...value,
      probes: value.probes.map((probe) => ({ ...probe, peer: id === 1 ? 'n2' : 'n1' })),
    },
    error,
  });

  test('all paths reached, clocks close, one family (a silent UDP port is a warning): ok', () => {
    const verdict = summarizeClusterPreflight(
      cluster,
      [
        answer(1, report(10, ['debian', []], null, true)),
        answer(2, report(-300, ['ubuntu', ['debian']], null)),
      ],
      7,
    );
    assert.equal(verdict.ok, true, JSON.stringify(verdict.checks));
    assert.deepEqual(
      verdict.paths.map((path) => `${path.from}->${path.to} ${path.lan} ${path.ok} ${path.warning}`),
      [
        'n1->n2 default true true',
        'n1->n2 v6 true true',
        'n2->n1 default true false',
        'n2->n1 v6 true false',
      ],
    );
    assert.match(
      verdict.checks.find((check) => check.name.startsWith('clocks'))?.detail ?? '',
      /^310 ms apart/,
    );
    assert.match(
      verdict.checks.find((check) => check.name.startsWith('same OS'))?.detail ?? '',
      /family debian/,
    );
  });

  test('a cut lan, clocks 3 s apart, two OS families, a node that does not answer: each said, not ok', () => {
    const verdict = summarizeClusterPreflight(
      cluster,
      [
        answer(1, report(0, ['debian', []], 'v6')),
        answer(2, report(3000, ['rocky', ['rhel', 'fedora']], 'v6')),
      ],
      7,
    );
    assert.equal(verdict.ok, false);
    const failed = verdict.checks.filter((check) => !check.ok).map((check) => check.name);
    assert.deepEqual(failed, [
      'every node reaches every other node on every lan and port',
      'clocks of the nodes within 2 s of each other',
      'same OS family on every node',
    ]);
    const v6 = verdict.paths.filter((path) => path.lan === 'v6');
    assert.ok(v6.every((path) => !path.ok && /unreachable/.test(path.detail)));
    assert.ok(verdict.paths.filter((path) => path.lan === 'default').every((path) => path.ok));
    const silent = summarizeClusterPreflight(
      cluster,
      [answer(1, report(0, ['debian', []], null)), answer(2, null, 'n2:9453: connect ECONNREFUSED')],
      7,
    );
    assert.equal(silent.checks[0]?.ok, false);
    assert.match(silent.checks[0]?.detail ?? '', /n2: n2:9453: connect ECONNREFUSED/);
    assert.match(
      silent.paths.find((path) => path.from === 'n2')?.detail ?? '',
      /not checked: n2 did not run/,
    );
  });
});

describe('module pre-flight: the VIP probed by ARP', () => {
  // A VIP in the network of one of this machine's interfaces; the ARP probe itself is injected so
  // no packet leaves the machine (the lab test sends real ones).
  const local = Object.entries(networkInterfaces())
    .flatMap(([name, entries]) => (entries ?? []).map((entry) => ({ name, ...entry })))
    .find((entry) => entry.family === 'IPv4' && !entry.internal && entry.netmask !== '255.255.255.255');
  const vip = local ? local.address.replace(/\.\d+$/, (last) => `.${(Number(last.slice(1)) % 250) + 2}`) : '';
  const request = {
    vips: [vip],
    tcpPorts: [],
    udpPorts: [],
    dirs: [],
    diskMb: 1,
    callerTimeMs: null,
    fuse: false,
    module: null,
  };
  const base = { safeVar: scratch, moduleState: null, nowMs: () => Date.now() };

  test(
    'an ARP reply names the holder by its MAC; no reply is free; arping failing falls back to ping',
    {
      skip: local ? undefined : 'no IPv4 interface with a network on this machine',
    },
    async () => {
      const asked: string[] = [];
      const taken = await runPreflight(request, {
        ...base,
        arpProbe: async (intf, addr) => {
          asked.push(`${intf} ${addr}`);
          return { status: 'taken', macs: ['02:00:00:00:00:99'], elapsedMs: 1 };
        },
        answers: async () => assert.fail('ping is not used when ARP works'),
      });
      assert.deepEqual(asked, [`${local?.name} ${vip}`]);
      const home = taken.checks.find((check) => check.name === `interface for virtual IP ${vip}`);
      assert.equal(home?.facts?.mac, local?.mac.toLowerCase());
      const held = taken.checks.find((check) => check.name === `virtual IP ${vip} free`);
      assert.equal(held?.ok, false);
      assert.match(held?.detail ?? '', /held on .* by MAC 02:00:00:00:00:99 \(ARP reply to arping -D/);
      assert.equal(held?.facts?.macs, '02:00:00:00:00:99');
      const free = await runPreflight(request, {
        ...base,
        arpProbe: async () => ({ status: 'free', probesSent: 2, elapsedMs: 700 }),
      });
      assert.match(
        free.checks.find((check) => check.name === `virtual IP ${vip} free`)?.detail ?? '',
        /no ARP answer .* 2 probes/,
      );
      const fallback = await runPreflight(request, {
        ...base,
        arpProbe: async () => {
          throw new Error('arping: socket: Operation not permitted');
        },
        answers: async () => true,
      });
      const pinged = fallback.checks.find((check) => check.name === `virtual IP ${vip} free`);
      assert.equal(pinged?.ok, false);
      assert.match(
        pinged?.detail ?? '',
        /could not run \(arping: socket: Operation not permitted\); ping: .* answers/,
      );
    },
  );

  test('the console: a holder that is a node of the cluster is the module there; another MAC is a conflict', () => {
    const node = (name: string, mac: string, holders: string | null): NodePreflight => ({
      nodeId: name === 'n1' ? 1 : 2,
      node: name,
      ok: true,
      checks: [
        {
          name: 'interface for virtual IP 10.0.0.50',
          ok: true,
          severity: 'error',
          detail: 'eth0',
          facts: { interface: 'eth0', mac },
        },
        {
          name: 'virtual IP 10.0.0.50 free',
          ok: holders === null,
          severity: 'warning',
          detail: '',
          ...(holders ? { facts: { macs: holders } } : {}),
        },
      ],
    });
    const needs = { vips: ['10.0.0.50'], tcpPorts: [], udpPorts: [], dirs: [] };
    const onNode = acrossNodes(needs, [
      node('n1', 'aa:00:00:00:00:01', 'aa:00:00:00:00:02'),
      node('n2', 'aa:00:00:00:00:02', null),
    ]);
    assert.deepEqual(onNode, [
      {
        name: 'virtual IP 10.0.0.50 is not held by another machine',
        ok: true,
        detail: 'held by n2 (aa:00:00:00:00:02): the module runs there',
      },
    ]);
    const conflict = acrossNodes(needs, [
      node('n1', 'aa:00:00:00:00:01', 'AA:00:00:00:00:03'),
      node('n2', 'aa:00:00:00:00:02', 'aa:00:00:00:00:03'),
    ]);
    assert.equal(conflict[0]?.ok, false);
    assert.match(
      conflict[0]?.detail ?? '',
      /^address conflict: aa:00:00:00:00:03 answers ARP for 10\.0\.0\.50 \(seen from n1, n2\)/,
    );
    assert.deepEqual(acrossNodes(needs, [node('n1', 'a', null), node('n2', 'b', null)]), []);
  });
});
