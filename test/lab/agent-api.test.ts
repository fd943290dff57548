// The agent installed on real lab nodes (issues 4 and 5): a light module's life on a node, the
// daemon killed and brought back by its supervisor, and the API seen from the lab's host: the
// health check, roles, API keys, the event stream, uploads, snapshots, distributed commands.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import yauzl from 'yauzl';
import { runCommand } from './command.ts';
import { labExec, labJson, labSkipReason, runLabCli } from './harness.ts';
import type { LabNode } from './lab.ts';

const lab = 'tapi';
const skip = labSkipReason();
const repoDir = resolve(import.meta.dirname, '..', '..');
// Inside the repository, not /tmp: lab nodes have their own /tmp but see this folder.
const workDir = resolve(repoDir, 'node_modules', '.cache', 'hakit-agent-api-test');
const hakit = '/opt/hakit/hakit';
const tag = `${Date.now() % 1_000_000}`;

interface Answer {
  status: number;
  body: string;
  json(): Record<string, unknown>;
}

let nodes: LabNode[] = [];
const fingerprints: Record<string, string> = {};

function node(name: string): LabNode {
  const found = nodes.find((candidate) => candidate.name === name);
  assert.ok(found, `lab node ${name}`);
  return found;
}

async function sh(name: string, script: string) {
  return labExec(lab, name, ['sh', '-c', script]);
}

async function cli(name: string, args: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh(name, `${hakit} ${args}`);
}

/** HTTPS to a node with its certificate pinned; token or cookie optional. */
function api(
  name: string,
  method: string,
  path: string,
  options: { token?: string; cookie?: string; body?: Buffer | string; contentType?: string } = {},
): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.cookie) headers.cookie = options.cookie;
    if (options.contentType) headers['content-type'] = options.contentType;
    const request = httpsRequest(
      {
        host: node(name).ip,
        port: 9453,
        method,
        path,
        headers,
        rejectUnauthorized: false,
        // No TLS session reuse: a resumed session presents no certificate to check the pin against.
        agent: false,
        timeout: 20_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolvePromise({
            status: response.statusCode ?? 0,
            body,
            json: () => JSON.parse(body) as Record<string, unknown>,
          });
        });
      },
    );
    request.on('socket', (socket) =>
      socket.once('secureConnect', () => {
        const presented = (socket as TLSSocket).getPeerCertificate().fingerprint256;
        if (presented !== fingerprints[name]) {
          request.destroy(
            new Error(`certificate of ${name} is ${presented}, not the pinned ${fingerprints[name]}`),
          );
        }
      }),
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

function health(name: string, module: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    httpRequest(
      { host: node(name).ip, port: 9010, path: `/var/modules/${module}/ready.txt`, timeout: 5000 },
      (response) => {
        response.resume();
        resolvePromise(response.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadlineMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

/** Every entry of a zip file with its content. */
function zipEntries(file: string): Promise<Map<string, Buffer>> {
  return new Promise((resolvePromise, reject) => {
    yauzl.open(file, { lazyEntries: true }, (openError, zip) => {
      if (openError || !zip) return reject(openError ?? new Error(`cannot open ${file}`));
      const entries = new Map<string, Buffer>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError || !stream)
            return reject(streamError ?? new Error(`cannot read ${entry.fileName}`));
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            entries.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolvePromise(entries));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

const moduleDir = `${workDir}/web`;
const userconfig = `<!DOCTYPE safe>
<safe>
<service mode="light" maxloop="3" loop_interval="24">
  <user logging="userlog" nicestoptimeout="5" forcestoptimeout="5"/>
  <errd polltimer="10">
    <proc name="sleep" argregex="^1000\\.${tag}$" atleast="1" action="restart" class="both"/>
  </errd>
</service>
</safe>
`;

function writeModule(): void {
  mkdirSync(`${moduleDir}/conf`, { recursive: true });
  mkdirSync(`${moduleDir}/bin`, { recursive: true });
  writeFileSync(`${moduleDir}/conf/userconfig.xml`, userconfig);
  const scripts: Record<string, string> = {
    start_both: `[ "$1" = force ] && exit 0\nsetsid sleep 1000.${tag} </dev/null >/dev/null 2>&1 &\n"$SAFE/safekit" printi "web started on $(hostname)"`,
    stop_both: `pkill -f '^sleep 1000\\.${tag}$'\nexit 0`,
  };
  for (const [name, body] of Object.entries(scripts)) {
    writeFileSync(`${moduleDir}/bin/${name}`, `#!/bin/sh\n${body}\n`);
    chmodSync(`${moduleDir}/bin/${name}`, 0o755);
  }
}

describe('agent on lab nodes', { skip, timeout: 600_000 }, () => {
  const tokens: Record<string, string> = {};
  const nodeToken = `hk_${randomBytes(32).toString('base64url')}`;

  before(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    writeModule();
    const built = await runCommand(
      process.execPath,
      ['--import', 'tsx', 'agent/package/build-package.ts', '--out-dir', workDir],
      {
        timeoutMs: 5 * 60_000,
      },
    );
    const packageFile = (JSON.parse(built.stdout) as { file: string }).file;
    const up = await labJson<{ nodes: LabNode[] }>(['up', '--name', lab, '--nodes', '2', '--client']);
    nodes = up.nodes;
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    try {
      const installed = await runLabCli(['install', '--name', lab, 'n1', 'n2'], 6 * 60_000);
      assert.equal(installed.code, 0, installed.stderr);
    } finally {
      delete process.env.HAKIT_AGENT_PACKAGE;
    }
    const clusterXml = `<?xml version="1.0"?>\n<cluster>\n<lans>\n<lan name="default">\n<node name="n1" addr="${node('n1').ip}"/>\n<node name="n2" addr="${node('n2').ip}"/>\n</lan>\n</lans>\n</cluster>\n`;
    writeFileSync(`${workDir}/cluster.xml`, clusterXml);
    for (const name of ['n1', 'n2']) {
      const level = await cli(name, 'level');
      assert.equal(level.code, 0, level.stderr);
      const fingerprint = /fingerprint: ([0-9A-F:]+)/.exec(level.stdout)?.[1];
      assert.ok(fingerprint, `fingerprint in: ${level.stdout}`);
      fingerprints[name] = fingerprint;
    }
    // n1 holds the cluster configuration and the node-to-node trust; -G pushes it to both.
    assert.equal((await cli('n1', `cluster config ${workDir}/cluster.xml`)).code, 0);
    for (const name of ['n1', 'n2'])
      assert.equal((await cli('n1', `cluster trust ${name} ${fingerprints[name]}`)).code, 0);
    assert.equal((await cli('n1', `cluster nodekey ${nodeToken}`)).code, 0);
    // n2 must already know the key for n1 to reach it: the console installer does this step.
    assert.equal((await cli('n2', `apikey import node-cluster Admin ${nodeToken}`)).code, 0);
    for (const role of ['Admin', 'Control', 'Monitor']) {
      const created = await cli('n1', `apikey create ${role} test-${role.toLowerCase()}`);
      assert.equal(created.code, 0, created.stderr);
      tokens[role] = created.stdout.trim();
    }
  });

  after(async () => {
    await runLabCli(['down', '--name', lab]);
    rmSync(workDir, { recursive: true, force: true });
  });

  test('-H "*" -G pushes the cluster configuration to both nodes', async () => {
    const pushed = await cli('n1', '-H "*" -G');
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    assert.match(pushed.stdout, /-+ Server=n1 -+\ncluster configuration and node trust applied/);
    assert.match(pushed.stdout, /-+ Server=n2 -+\ncluster configuration and node trust applied/);
    assert.match((await cli('n2', 'cluster confinfo')).stdout, /signature/);
  });

  test('a light module runs on a node: install, config, start, UP Ready; the health check follows', async () => {
    assert.equal(await health('n1', 'web'), 404);
    assert.equal((await cli('n1', `module install ${moduleDir}`)).code, 0);
    const configured = await cli('n1', 'config -m web');
    assert.equal(configured.code, 0, configured.stderr);
    assert.equal((await cli('n1', 'start -m web')).code, 0);
    assert.equal((await cli('n1', 'waitstart -m web -t 30')).code, 0);
    const lq = await cli('n1', 'state -m web -lq');
    assert.equal(lq.code, 2);
    assert.equal(await health('n1', 'web'), 200);
    assert.match((await cli('n1', 'log -m web -A')).stdout, /web started on n1/);
  });

  test('errd restarts the application killed on the node', async () => {
    await labJson(['fault', '--name', lab, 'kill', 'n1', `^sleep 1000\\.${tag}$`]);
    await eventually(
      async () => /Action restart called by errd/.test((await cli('n1', 'log -m web')).stdout),
      10_000,
      'errd restart',
    );
    await eventually(
      async () => (await cli('n1', 'state -m web')).stdout.includes('UP (Ready)'),
      10_000,
      'UP Ready',
    );
  });

  test('hakitd killed on the node: the supervisor restarts it and the module is recovered', async () => {
    await labJson(['fault', '--name', lab, 'kill', 'n1', 'hakitd\\.cjs']);
    await eventually(async () => (await cli('n1', 'state -m web -lq')).code === 2, 30_000, 'module UP again');
    await eventually(
      async () => (await cli('n1', 'state -m web')).stdout.includes('UP (Ready)'),
      30_000,
      'UP Ready',
    );
    assert.match((await cli('n1', 'log -m web -s 50')).stdout, /hakitd restarted while the module was UP/);
    const apps = await sh('n1', `pgrep -c -f '^sleep 1000\\.${tag}$'`);
    assert.equal(apps.stdout.trim(), '1', 'exactly one application instance');
  });

  test('without credentials everything but the health check is 401; each role gets 403 above it', async () => {
    assert.equal((await api('n1', 'GET', '/api/v1/modules')).status, 401);
    assert.equal((await api('n1', 'GET', '/api/v1/modules', { token: 'hk_wrong' })).status, 401);
    const cases: [string, string, string, Record<string, number>][] = [
      ['GET', '/api/v1/modules/web/state', '', { Monitor: 200, Control: 200, Admin: 200 }],
      ['POST', '/api/v1/modules/web/restart', '{}', { Monitor: 403, Control: 200, Admin: 200 }],
      ['GET', '/api/v1/apikeys', '', { Monitor: 403, Control: 403, Admin: 200 }],
      [
        'POST',
        '/api/v1/modules/web/settings/boot',
        '{"value":"off"}',
        { Monitor: 403, Control: 403, Admin: 200 },
      ],
      // Admin only (the node opens connections where the caller says); an empty body is then 400.
      ['POST', '/api/v1/preflight/cluster', '{}', { Monitor: 403, Control: 403, Admin: 400 }],
    ];
    for (const [method, path, body, expected] of cases) {
      for (const [role, status] of Object.entries(expected)) {
        const answer = await api('n1', method, path, {
          token: tokens[role],
          body,
          contentType: 'application/json',
        });
        assert.equal(answer.status, status, `${role} ${method} ${path}: ${answer.body}`);
        if (path.endsWith('/restart') && status === 200) {
          await eventually(
            async () => (await cli('n1', 'state -m web')).stdout.includes('UP (Ready)'),
            20_000,
            'UP Ready after restart',
          );
        }
      }
    }
  });

  test('a browser logs in with the reference form and gets a session cookie; bad passwords are throttled', async () => {
    assert.equal(
      (await cli('n1', 'webservercfg -passwd correct-horse -user operator -role Control')).code,
      0,
    );
    const login = await api('n1', 'POST', '/login', {
      body: 'httpd_username=operator&httpd_password=correct-horse&login=Login',
      contentType: 'application/x-www-form-urlencoded',
    });
    assert.equal(login.status, 200);
    const answerCookie = /sessionSK=[^;]+/.exec(login.body) ?? null;
    assert.equal(answerCookie, null, 'the session id is not in the body');
    const session = await new Promise<string>((resolvePromise, reject) => {
      const request = httpsRequest(
        {
          host: node('n1').ip,
          port: 9453,
          method: 'POST',
          path: '/login',
          rejectUnauthorized: false,
          headers: { 'content-type': 'application/json' },
        },
        (response) => {
          response.resume();
          const cookie = response.headers['set-cookie']?.[0] ?? '';
          resolvePromise(cookie.split(';')[0] ?? '');
        },
      );
      request.on('error', reject);
      request.end(JSON.stringify({ user: 'operator', password: 'correct-horse' }));
    });
    assert.match(session, /^sessionSK=/);
    assert.equal((await api('n1', 'GET', '/api/v1/modules', { cookie: session })).status, 200);
    assert.equal((await api('n1', 'GET', '/api/v1/apikeys', { cookie: session })).status, 403);
    let throttled = 0;
    for (let attempt = 0; attempt < 7; attempt += 1) {
      const wrong = await api('n1', 'POST', '/login', {
        body: '{"user":"operator","password":"nope"}',
        contentType: 'application/json',
      });
      if (wrong.status === 429) throttled += 1;
      else assert.equal(wrong.status, 401);
    }
    assert.ok(throttled >= 1, 'repeated failures are refused with 429');
  });

  test('an API key is shown once, works, is listed without its token and can be revoked', async () => {
    const created = await api('n1', 'POST', '/api/v1/apikeys', {
      token: tokens.Admin,
      body: '{"role":"Monitor","name":"dashboard"}',
      contentType: 'application/json',
    });
    assert.equal(created.status, 200);
    const token = String(created.json().token);
    assert.equal((await api('n1', 'GET', '/api/v1/level', { token })).status, 200);
    const listed = await api('n1', 'GET', '/api/v1/apikeys', { token: tokens.Admin });
    assert.ok(!listed.body.includes(token), 'tokens are never listed');
    assert.match(listed.body, /dashboard/);
    assert.equal(
      (await api('n1', 'DELETE', '/api/v1/apikeys/dashboard', { token: tokens.Admin })).status,
      200,
    );
    assert.equal((await api('n1', 'GET', '/api/v1/level', { token })).status, 401);
  });

  test('the event stream delivers a state change, and resumes from Last-Event-ID', async () => {
    const received: string[] = [];
    let lastId = '';
    const streamRequest = httpsRequest({
      host: node('n1').ip,
      port: 9453,
      path: '/api/v1/events?module=web&types=state',
      headers: { authorization: `Bearer ${tokens.Monitor}` },
      rejectUnauthorized: false,
    });
    const opened = new Promise<void>((resolvePromise) => {
      streamRequest.on('response', (response) => {
        assert.equal(response.statusCode, 200);
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          received.push(chunk);
          lastId = /id: (\d+)/g.exec(chunk)?.[1] ?? lastId;
        });
        resolvePromise();
      });
    });
    streamRequest.end();
    await opened;
    const stoppedAtMs = Date.now();
    assert.equal((await cli('n1', 'stop -m web')).code, 0);
    await eventually(async () => received.join('').includes('"state":"STOP"'), 10_000, 'a STOP event');
    const latencyMs = Date.now() - stoppedAtMs;
    streamRequest.destroy();
    assert.ok(
      latencyMs < 5000,
      `STOP event after ${latencyMs} ms (includes the stop scripts and the CLI start-up)`,
    );
    assert.ok(lastId !== '');
    assert.equal(await health('n1', 'web'), 404, 'the health check follows the stop');
    // Events after a known id come back on reconnect.
    const replay = await new Promise<string>((resolvePromise, reject) => {
      const request = httpsRequest(
        {
          host: node('n1').ip,
          port: 9453,
          path: '/api/v1/events?module=web',
          headers: { authorization: `Bearer ${tokens.Monitor}`, 'last-event-id': String(Number(lastId) - 3) },
          rejectUnauthorized: false,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
            if (text.includes(`id: ${lastId}`)) {
              request.destroy();
              resolvePromise(text);
            }
          });
        },
      );
      request.on('error', (error) => (error.message.includes('socket hang up') ? undefined : reject(error)));
      request.end();
    });
    assert.match(replay, new RegExp(`id: ${lastId}`));
  });

  test('a malformed or oversized upload is refused and the running configuration is unchanged', async () => {
    const before = await cli('n1', 'confinfo -m web');
    const garbage = await api('n1', 'PUT', '/api/v1/modules/web/package', {
      token: tokens.Admin,
      body: Buffer.from('this is not a zip file'),
      contentType: 'application/zip',
    });
    assert.equal(garbage.status, 400, garbage.body);
    const wrongType = await api('n1', 'PUT', '/api/v1/modules/web/package', {
      token: tokens.Admin,
      body: '{}',
      contentType: 'application/json',
    });
    assert.equal(wrongType.status, 415);
    const huge = await api('n1', 'PUT', '/api/v1/modules/web/package', {
      token: tokens.Admin,
      body: Buffer.alloc(65 * 1024 * 1024),
      contentType: 'application/zip',
    }).catch((error: Error) => ({ status: 413, body: error.message, json: () => ({}) }));
    assert.equal(huge.status, 413);
    // A real package whose configuration has an error: refused with its line, nothing replaced.
    const download = await new Promise<Buffer>((resolvePromise, reject) => {
      httpsRequest(
        {
          host: node('n1').ip,
          port: 9453,
          path: '/api/v1/modules/web/package',
          headers: { authorization: `Bearer ${tokens.Admin}` },
          rejectUnauthorized: false,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => resolvePromise(Buffer.concat(chunks)));
        },
      )
        .on('error', reject)
        .end();
    });
    assert.equal(download.subarray(0, 2).toString(), 'PK');
    const { readSafeBuffer, writeSafeBuffer } = await import('../../agent/config/package-io.ts');
    const { withUserconfig } = await import('../../agent/config/module-package.ts');
    const broken = await writeSafeBuffer(
      withUserconfig(await readSafeBuffer(download), userconfig.replace('maxloop="3"', 'maxloop="many"')),
    );
    const refused = await api('n1', 'PUT', '/api/v1/modules/web/package', {
      token: tokens.Admin,
      body: broken,
      contentType: 'application/zip',
    });
    assert.equal(refused.status, 400);
    assert.match(String(refused.json().detail), /userconfig\.xml:3:\d+: error: .*maxloop/);
    assert.equal((await cli('n1', 'confinfo -m web')).stdout, before.stdout, 'nothing replaced');
  });

  test('a snapshot holds the dumps and configurations; the anonymised one has no lab address or name', async () => {
    assert.equal((await cli('n1', 'start -m web')).code, 0);
    assert.equal((await cli('n1', 'waitstart -m web -t 30')).code, 0);
    const file = `${workDir}/snap.zip`;
    const made = await cli('n1', `snapshot -m web ${file}`);
    assert.equal(made.code, 0, made.stderr);
    const listing = [...(await zipEntries(file)).keys()].join('\n');
    assert.match(
      listing,
      /^snapshot_n1_web\/web\/config_\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\/module\/conf\/userconfig\.xml$/m,
    );
    assert.match(listing, /^snapshot_n1_web\/web\/config_[\d_]+\/module\/bin\/start_both$/m);
    for (const part of [
      'log.txt',
      'logverbose.txt',
      'csv/resource.csv',
      'csv/resourcelog.csv',
      'commandlog.txt',
      'heartplug',
      'var/cluster/cluster.xml',
    ]) {
      assert.match(
        listing,
        new RegExp(`^snapshot_n1_web/web/dump_[\\d_]+/${part.replace('.', '\\.')}$`, 'm'),
        part,
      );
    }
    // An address and a name in the log: the anonymised snapshot must hide them.
    assert.equal((await cli('n1', `printe -m web "peer n2 at ${node('n2').ip} is late"`)).code, 0);
    const anonymous = `${workDir}/anon.zip`;
    assert.equal((await cli('n1', `snapshot -m web --anonymize ${anonymous}`)).code, 0);
    const content = [...(await zipEntries(anonymous)).entries()]
      .map(([name, data]) => `${name}\n${data.toString('utf8')}`)
      .join('\n');
    assert.match(content, /log\.txt/);
    for (const secret of [node('n1').ip, node('n2').ip, 'n1', 'n2']) {
      assert.ok(
        !new RegExp(`(?<![A-Za-z0-9_.-])${secret.replaceAll('.', '\\.')}(?![A-Za-z0-9_-]|\\.\\d)`).test(
          content,
        ),
        `${secret} is not in the anonymised snapshot`,
      );
    }
    const catalogue = await sh('n1', `cat ${workDir}/anon-catalog.xml`);
    assert.match(catalogue.stdout, new RegExp(`value="${node('n2').ip.replaceAll('.', '\\.')}"`));
    assert.match(catalogue.stdout, /value="n2"/);
  });

  test('-H "*" runs a command on both nodes and reports a node that is down', async () => {
    const both = await cli('n1', '-H "*" module list');
    assert.equal(both.code, 0, both.stdout + both.stderr);
    assert.match(both.stdout, /-+ Server=n1 -+\nweb/);
    assert.match(both.stdout, /-+ Server=n2 -+/);
    assert.equal((await sh('n2', '/opt/hakit/private/bin/hakitd-service stop')).code, 0);
    const oneDown = await cli('n1', '-H "*" module list');
    assert.notEqual(oneDown.code, 0);
    assert.match(oneDown.stdout, /-+ Server=n2 -+\nerror: .*ECONNREFUSED/);
    assert.match(oneDown.stderr, /failed on n2/);
    assert.equal((await sh('n2', '/opt/hakit/private/bin/hakitd-service start')).code, 0);
  });

  test('-H n2 -E web installs and configures the module on n2 with the same id', async () => {
    const pushed = await cli('n1', '-H n2 -E web');
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    assert.match(pushed.stdout, /module web installed with id \d+ and configured/);
    assert.equal(
      (await cli('n2', 'module listid')).stdout.trim(),
      (await cli('n1', 'module listid')).stdout.trim(),
    );
    assert.match((await cli('n2', 'state -m web')).stdout, /web: STOP \(NotReady\)/);
  });

  test("/nodes/<node>/ proxies to another node with the caller's role", async () => {
    const proxied = await api('n1', 'GET', '/nodes/n2/api/v1/level', { token: tokens.Monitor });
    assert.equal(proxied.status, 200, proxied.body);
    assert.equal(proxied.json().node, 'n2');
    const denied = await api('n1', 'GET', '/nodes/n2/api/v1/apikeys', { token: tokens.Monitor });
    assert.equal(denied.status, 403, 'the proxy does not lift the caller above its role');
  });

  test('a certificate signed by a console CA can be installed, is checked first and served at once', async () => {
    const dir = `${workDir}/ca`;
    mkdirSync(dir, { recursive: true });
    const ssl = (args: string[]) => runCommand('openssl', args, { timeoutMs: 30_000 });
    await ssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=hakit test CA',
      '-keyout',
      `${dir}/ca.key`,
      '-out',
      `${dir}/ca.crt`,
    ]);
    await ssl([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=n1',
      '-keyout',
      `${dir}/n1.key`,
      '-out',
      `${dir}/n1.csr`,
    ]);
    writeFileSync(`${dir}/san.ext`, `subjectAltName=DNS:n1,IP:${node('n1').ip}\n`);
    await ssl([
      'x509',
      '-req',
      '-in',
      `${dir}/n1.csr`,
      '-CA',
      `${dir}/ca.crt`,
      '-CAkey',
      `${dir}/ca.key`,
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      `${dir}/san.ext`,
      '-out',
      `${dir}/n1.crt`,
    ]);
    const cert = readFileSync(`${dir}/n1.crt`, 'utf8');
    const key = readFileSync(`${dir}/n1.key`, 'utf8');
    const wrongKey = readFileSync(`${dir}/ca.key`, 'utf8');
    const refused = await api('n1', 'PUT', '/api/v1/tls', {
      token: tokens.Admin,
      body: JSON.stringify({ cert, key: wrongKey }),
      contentType: 'application/json',
    });
    assert.equal(refused.status, 400);
    assert.match(String(refused.json().detail), /key does not belong/);
    assert.equal(
      (
        await api('n1', 'PUT', '/api/v1/tls', {
          token: tokens.Control,
          body: '{}',
          contentType: 'application/json',
        })
      ).status,
      403,
    );
    const installed = await api('n1', 'PUT', '/api/v1/tls', {
      token: tokens.Admin,
      body: JSON.stringify({ cert, key }),
      contentType: 'application/json',
    });
    assert.equal(installed.status, 200, installed.body);
    const fingerprint = String(installed.json().fingerprint);
    assert.notEqual(fingerprint, fingerprints.n1);
    fingerprints.n1 = fingerprint;
    assert.equal(
      (await api('n1', 'GET', '/api/v1/level', { token: tokens.Monitor })).json().fingerprint,
      fingerprint,
    );
    assert.match((await cli('n1', 'level')).stdout, new RegExp(fingerprint));
  });
});
