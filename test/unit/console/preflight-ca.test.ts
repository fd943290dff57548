// The agent's pre-flight checks on this machine (real sockets, folders, statfs), the script-log
// files, what the console asks the pre-flight for a module, primforce's risks, and the console CA
// (pure JavaScript, no openssl command: the certificate's properties, and a real TLS server serving
// an issued certificate to the pinned HTTPS client).
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  PreflightInputError,
  preflightRequestOf,
  runPreflight,
  type PreflightRequest,
} from '../../../agent/api/preflight.ts';
import { listScriptLogs, readScriptLog } from '../../../agent/api/script-logs.ts';
import type { LiveCell } from '../../../main/api/contract.ts';
import { planAction, type PlanNode } from '../../../main/services/actions/action-plan.ts';
import { caFingerprint, createCa, issueNodeCertificate } from '../../../main/services/agents/console-ca.ts';
import { agentJson } from '../../../main/services/agents/pinned-https.ts';
import { acrossNodes, preflightNeedsOf } from '../../../main/services/modules/module-preflight.ts';
import { TemplateLibrary } from '../../../main/services/modules/templates.ts';

const scratch = mkdtempSync(join(tmpdir(), 'hakit-c8-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const request = (overrides: Partial<PreflightRequest>): PreflightRequest => ({
  vips: [],
  tcpPorts: [],
  udpPorts: [],
  dirs: [],
  diskMb: 1,
  callerTimeMs: null,
  fuse: false,
  module: null,
  ...overrides,
});
const context = { safeVar: scratch, moduleState: null, nowMs: () => Date.now(), answers: async () => false };

describe('agent pre-flight', () => {
  test('the query string is checked: bad addresses, ports and paths are refused with what is wrong', () => {
    const ok = preflightRequestOf(new URLSearchParams('vip=10.0.0.5&port=80,443&udp=8888&dir=/srv/a&now=5'));
    assert.deepEqual(ok.vips, ['10.0.0.5']);
    assert.deepEqual(ok.tcpPorts, [80, 443]);
    assert.equal(ok.fuse, true, 'replicated dirs need FUSE');
    assert.equal(ok.callerTimeMs, 5);
    for (const [query, message] of [
      ['vip=10.0.0.300', /not an IPv4/],
      ['port=70000', /not a port/],
      ['dir=relative/path', /absolute/],
      ['now=yesterday', /caller time/],
      [`vip=${Array.from({ length: 33 }, (_, index) => `10.0.0.${index}`).join(',')}`, /at most 32/],
    ] as const)
      assert.throws(
        () => preflightRequestOf(new URLSearchParams(query)),
        (error: Error) => {
          assert.ok(error instanceof PreflightInputError);
          assert.match(error.message, message);
          return true;
        },
      );
  });

  test('a port in use is reported, a free one is free; a running module skips its own ports', async () => {
    const busy: Server = createTcpServer();
    await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const report = await runPreflight(request({ tcpPorts: [port] }), context);
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.checks.find((check) => check.kind === 'port'),
        {
          kind: 'port',
          name: `TCP port ${port} free`,
          ok: false,
          severity: 'error',
          detail: 'in use by another program',
        },
      );
      const running = await runPreflight(request({ tcpPorts: [port], module: 'web' }), {
        ...context,
        moduleState: 'PRIM',
      });
      assert.equal(running.ok, true, JSON.stringify(running.checks));
    } finally {
      busy.close();
    }
    const free = await runPreflight(request({ tcpPorts: [port], udpPorts: [port] }), context);
    assert.ok(
      free.checks.filter((check) => check.kind === 'port').every((check) => check.ok),
      JSON.stringify(free.checks),
    );
  });

  test('replicated directories: missing, a file, or present with owner and mode; disk space per file system', async () => {
    const present = join(scratch, 'data');
    mkdirSync(present, { mode: 0o750 });
    const file = join(scratch, 'file');
    writeFileSync(file, 'x');
    const report = await runPreflight(
      request({ dirs: [present, join(scratch, 'missing'), file], diskMb: 1 }),
      context,
    );
    const byName = (name: string) =>
      report.checks.find((check) => check.name === `replicated directory ${name}`);
    assert.match(byName(present)?.detail ?? '', /^exists, owner \d+:\d+, mode 0750$/);
    assert.match(byName(join(scratch, 'missing'))?.detail ?? '', /does not exist on this node/);
    assert.match(byName(file)?.detail ?? '', /not a directory/);
    const disk = report.checks.filter((check) => check.kind === 'disk');
    assert.equal(disk.length, 1, 'one file system: one check');
    assert.ok(disk[0]?.ok, disk[0]?.detail);
    const huge = await runPreflight(request({ dirs: [present], diskMb: 999_999_999 }), context);
    assert.equal(huge.checks.find((check) => check.kind === 'disk')?.ok, false);
  });

  test('the clock against the caller, read when the request arrives', async () => {
    const clock = (report: { checks: { kind: string; ok: boolean; detail: string }[] }) =>
      report.checks.find((check) => check.kind === 'clock');
    const near = await runPreflight(request({ callerTimeMs: Date.now() - 100 }), context);
    assert.equal(clock(near)?.ok, true, clock(near)?.detail);
    const far = await runPreflight(request({ callerTimeMs: Date.now() - 60_000 }), context);
    assert.equal(clock(far)?.ok, false);
    assert.match(clock(far)?.detail ?? '', /^\+6\d{4} ms/);
  });

  test('a virtual IP needs an interface in its network; an address of this node is not free', async () => {
    const report = await runPreflight(request({ vips: ['198.51.100.77'] }), context);
    const home = report.checks.find((check) => check.name === 'interface for virtual IP 198.51.100.77');
    assert.equal(home?.ok, false);
    assert.match(
      home?.detail ?? '',
      /no interface of this node has an address in the network of 198\.51\.100\.77/,
    );
    const answering = await runPreflight(request({ vips: ['198.51.100.77'] }), {
      ...context,
      answers: async () => true,
    });
    const free = answering.checks.find((check) => check.name === 'virtual IP 198.51.100.77 free');
    assert.equal(free?.ok, false);
    assert.equal(free?.severity, 'warning', 'the peer may hold it while the module runs there');
  });
});

describe('script logs on the agent', () => {
  test('listed newest first by run, read from the end when long, unknown names refused', () => {
    const dir = join(scratch, 'module-var');
    mkdirSync(dir);
    writeFileSync(join(dir, 'userlog_2026-01-02T030405_start_prim.ulog'), 'old run\n');
    utimesSync(join(dir, 'userlog_2026-01-02T030405_start_prim.ulog'), new Date(1000), new Date(1000));
    writeFileSync(join(dir, 'userlog_2026-01-02T030500_stop_prim.ulog'), `${'x'.repeat(100)}END\n`);
    writeFileSync(join(dir, 'other.txt'), 'not a script log');
    const files = listScriptLogs(dir);
    assert.deepEqual(
      files.map((file) => file.script),
      ['stop_prim', 'start_prim'],
    );
    assert.equal(files[1]?.startedMs, new Date(2026, 0, 2, 3, 4, 5).getTime());
    const tail = readScriptLog(dir, 'userlog_2026-01-02T030500_stop_prim.ulog', 10);
    assert.deepEqual(tail && { truncated: tail.truncated, text: tail.text, bytes: tail.bytes }, {
      truncated: true,
      text: 'xxxxxxEND\n',
      bytes: 104,
    });
    assert.equal(readScriptLog(dir, '../../etc/passwd'), null);
    assert.equal(readScriptLog(dir, 'userlog_2026-01-02T030500_gone.ulog'), null);
    assert.deepEqual(listScriptLogs(join(scratch, 'nowhere')), []);
  });
});

describe('console side of the pre-flight and mirror actions', () => {
  const library = new TemplateLibrary(join(import.meta.dirname, '..', '..', '..', 'resources', 'modules'));

  test('what a mirror module needs: its VIP, the heartbeat and replication ports of its id, its directories', () => {
    const made = library.instantiate('generic-mirror', { VIRTUAL_IP: '10.1.0.50', REPLICATED_DIR: '/srv/d' });
    assert.deepEqual(preflightNeedsOf(made.userconfig, 3), {
      vips: ['10.1.0.50'],
      tcpPorts: [5608],
      udpPorts: [8890],
      dirs: ['/srv/d'],
    });
    const vipOnly = library.instantiate('mirror-vip', { VIRTUAL_IP: '10.1.0.51' });
    assert.deepEqual(preflightNeedsOf(vipOnly.userconfig, 1), {
      vips: ['10.1.0.51'],
      tcpPorts: [],
      udpPorts: [8888],
      dirs: [],
    });
  });

  test('owners of a replicated directory are compared between nodes', () => {
    const node = (name: string, owner: string) => ({
      nodeId: name === 'n1' ? 1 : 2,
      node: name,
      ok: true,
      checks: [
        {
          name: 'replicated directory /srv/d',
          ok: true,
          severity: 'error' as const,
          detail: `exists, owner ${owner}, mode 0755`,
        },
      ],
    });
    const needs = { vips: [], tcpPorts: [], udpPorts: [], dirs: ['/srv/d'] };
    assert.equal(acrossNodes(needs, [node('n1', '0:0'), node('n2', '0:0')])[0]?.ok, true);
    const differ = acrossNodes(needs, [node('n1', '0:0'), node('n2', '1000:1000')])[0];
    assert.equal(differ?.ok, false);
    assert.equal(differ?.detail, 'n1 0:0, n2 1000:1000');
  });

  test('primforce: the risks of forcing a primary, and its CLI equivalents', () => {
    const cell = (nodeId: number, state: LiveCell['state'], badges: string[]): LiveCell => ({
      nodeId,
      module: 'web',
      state,
      readiness: 'NotReady',
      badges,
      atMs: 0,
    });
    const nodes: PlanNode[] = [
      { nodeId: 1, node: 'n1', cell: cell(1, 'WAIT', ['not uptodate']), live: undefined },
      { nodeId: 2, node: 'n2', cell: cell(2, 'STOP', ['uptodate']), live: undefined },
    ];
    const plan = planAction('web', 'primforce', [nodes[0]!], nodes);
    assert.match(plan.risks[0] ?? '', /n1 is not up to date: primforce makes it primary anyway/);
    assert.deepEqual(plan.cli, ['hakit -H n1 primforce -m web', 'n1# hakit primforce -m web']);
    const withPrimary: PlanNode[] = [
      nodes[0]!,
      { ...nodes[1]!, cell: { ...cell(2, 'ALONE', []), readiness: 'Ready' } },
    ];
    assert.ok(
      planAction('web', 'primforce', [withPrimary[0]!], withPrimary).risks.some((risk) =>
        /n2 is primary .*two writers/.test(risk),
      ),
    );
  });
});

describe('console CA', () => {
  test('CA and node certificates are made without the openssl command, with the properties the agents need', async () => {
    const savedPath = process.env.PATH;
    // Nothing can be run from PATH: issuing must not need an external command.
    process.env.PATH = join(scratch, 'no-commands-here');
    let ca: Awaited<ReturnType<typeof createCa>>;
    let issued: Awaited<ReturnType<typeof issueNodeCertificate>>;
    try {
      ca = await createCa('unit test CA');
      issued = await issueNodeCertificate(ca, { name: 'node one', address: '10.1.2.3' });
    } finally {
      process.env.PATH = savedPath;
    }
    const caCert = new X509Certificate(ca.certPem);
    assert.equal(caCert.ca, true);
    assert.match(caCert.subject, /^O=hakit console\nCN=unit test CA [0-9a-f]{8}$/);
    assert.equal(caCert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(caCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const caDays = (Date.parse(caCert.validTo) - Date.parse(caCert.validFrom)) / 86_400_000;
    assert.ok(Math.abs(caDays - 3650) <= 1, `CA valid ${caDays} days`);
    assert.ok(caCert.checkPrivateKey(createPrivateKey(ca.keyPem)));
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8, as openssl wrote it');

    const cert = new X509Certificate(issued.certPem);
    assert.equal(cert.ca, false);
    assert.equal(cert.subject, 'O=hakit\nCN=node one');
    assert.equal(cert.issuer, caCert.subject);
    assert.ok(cert.checkIssued(caCert) && cert.verify(caCert.publicKey));
    assert.equal(cert.subjectAltName, 'DNS:node-one, IP Address:10.1.2.3');
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth, clientAuth');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    assert.ok(Math.abs(days - 825) <= 1, `node certificate valid ${days} days`);
    assert.ok(cert.checkPrivateKey(createPrivateKey(issued.keyPem)));
    assert.equal(issued.fingerprint, cert.fingerprint256);
    assert.match(cert.serialNumber, /^[0-7][0-9A-F]{31}$/, 'a positive 128-bit serial');
    // A DNS name as the address goes in as a DNS name.
    const byName = new X509Certificate(
      (await issueNodeCertificate(ca, { name: 'n2', address: 'n2.example.test' })).certPem,
    );
    assert.equal(byName.subjectAltName, 'DNS:n2, DNS:n2.example.test');
    // A CA key kept in SEC1 form (\`EC PRIVATE KEY\`) signs too.
    const sec1 = createPrivateKey(ca.keyPem).export({ format: 'pem', type: 'sec1' }).toString();
    const fromSec1 = await issueNodeCertificate(
      { certPem: ca.certPem, keyPem: sec1 },
      { name: 'n3', address: '10.1.2.4' },
    );
    assert.ok(new X509Certificate(fromSec1.certPem).verify(caCert.publicKey));
  });

  test('issues a node certificate that the pinned client accepts through the CA, for that node only', async () => {
    const ca = await createCa('unit test CA');
    assert.match(caFingerprint(ca), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const issued = await issueNodeCertificate(ca, { name: 'n1', address: '127.0.0.1' });
    const server = createHttpsServer({ cert: issued.certPem, key: issued.keyPem }, (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const wrongPin = '00:'.repeat(31) + '00';
    try {
      // The CA pinned: a certificate it issued for this address passes without its fingerprint.
      assert.deepEqual(
        await agentJson(
          { host: '127.0.0.1', port, fingerprint: wrongPin, token: 't', ca: ca.certPem },
          'GET',
          '/',
          undefined,
        ),
        { ok: true },
      );
      // The fingerprint pinned (no CA): it must match exactly.
      assert.deepEqual(
        await agentJson(
          { host: '127.0.0.1', port, fingerprint: issued.fingerprint, token: 't' },
          'GET',
          '/',
          undefined,
        ),
        { ok: true },
      );
      await assert.rejects(
        agentJson({ host: '127.0.0.1', port, fingerprint: wrongPin, token: 't' }, 'GET', '/', undefined),
        /not the pinned/,
      );
      // Another CA: refused.
      const other = await createCa('another CA');
      await assert.rejects(
        agentJson(
          { host: '127.0.0.1', port, fingerprint: wrongPin, token: 't', ca: other.certPem },
          'GET',
          '/',
          undefined,
        ),
        /not the pinned/,
      );
    } finally {
      server.close();
    }
    // A certificate issued for another node's address does not pass for this one.
    const forOther = await issueNodeCertificate(ca, { name: 'n2', address: '127.0.0.2' });
    const otherServer = createHttpsServer(
      { cert: forOther.certPem, key: forOther.keyPem },
      (_request, response) => response.end('{}'),
    );
    await new Promise<void>((resolve) => otherServer.listen(0, '127.0.0.1', resolve));
    try {
      await assert.rejects(
        agentJson(
          {
            host: '127.0.0.1',
            port: (otherServer.address() as AddressInfo).port,
            fingerprint: wrongPin,
            token: 't',
            ca: ca.certPem,
          },
          'GET',
          '/',
          undefined,
        ),
        /not the pinned/,
      );
    } finally {
      otherServer.close();
    }
  });
});
