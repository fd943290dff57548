// The console services against real lab nodes (their sshd, the real agent package, real agents):
// the SSH installer (fresh node to running agent in parallel with per-step progress, idempotent
// re-run, changed host key refused, unreachable node reported, a failed fresh install rolled back),
// cluster.xml pushed with signatures compared, a module deployed with conflict detection, actions
// with their CLI equivalent, live state over the pinned event streams, logs and snapshots.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ConsoleEvent, InstallRun } from '../../main/api/contract.ts';
import type { ConsoleServices } from '../../main/services/console-services.ts';
import { createConsole } from '../../main/services/create-console.ts';
import { agentJson, agentRequest } from '../../main/services/agents/pinned-https.ts';
import { modulePackageOf } from '../../main/services/modules/signature.ts';
import { writeSafeBuffer } from '../../agent/config/package-io.ts';
import { labExec, labJson } from '../lab/harness.ts';
import type { LabNode } from '../lab/lab.ts';
import {
  buildAgentPackage,
  consoleLabSkipReason,
  eventually,
  labDown,
  labUp,
  repoDir,
  workDirFor,
} from './console-lab.ts';

const lab = 'tcsvc';
const skip = consoleLabSkipReason();

describe('console services on lab nodes', { skip, timeout: 900_000 }, () => {
  let workDir = '';
  let nodes: LabNode[] = [];
  let services: ConsoleServices;
  let clusterId = 0;
  const ids: Record<string, number> = {};
  const events: ConsoleEvent[] = [];

  const node = (name: string): LabNode => {
    const found = nodes.find((candidate) => candidate.name === name);
    assert.ok(found, name);
    return found;
  };

  before(async () => {
    workDir = workDirFor('services');
    const [packageFile, up] = await Promise.all([buildAgentPackage(workDir), labUp(lab, 3)]);
    nodes = up;
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    services = await createConsole({
      transport: 'server',
      dataDir: join(workDir, 'console'),
      resourcesDir: join(repoDir, 'resources'),
      agentPackageDirs: [],
      labCli: null,
      repoDir: null,
      forceFileSecrets: true,
      log: () => undefined,
    });
    await services.unlockSecrets({ passphrase: 'e2e master passphrase' });
    services.onEvent((event) => events.push(event));
    const site = await services.createSite({ name: 'lab-site', notes: '' });
    clusterId = (await services.createCluster({ siteId: site.id, name: 'c1' })).id;
    for (const name of ['n1', 'n2', 'n3']) {
      const added = await services.addNode({
        clusterId,
        node: {
          name,
          address: node(name).ip,
          sshPort: 22,
          sshUser: 'root',
          auth: { kind: 'key', privateKey: readFileSync(node(name).ssh.keyFile, 'utf8') },
        },
      });
      ids[name] = added.id;
    }
  });

  after(async () => {
    services?.close();
    delete process.env.HAKIT_AGENT_PACKAGE;
    await labDown(lab);
    rmSync(workDir, { recursive: true, force: true });
  });

  let firstRun: InstallRun;

  test('installs the agent on two fresh nodes in parallel, every step reported, host key and certificate pinned', async () => {
    const startedMs = Date.now();
    firstRun = await services.installNodes({ clusterId, nodeIds: [ids.n1!, ids.n2!], pathLink: false });
    const seconds = (Date.now() - startedMs) / 1000;
    assert.equal(firstRun.ok, true, JSON.stringify(firstRun.nodes));
    for (const report of firstRun.nodes) {
      assert.equal(report.ok, true);
      assert.match(report.detected ?? '', /x86_64/);
      process.stdout.write(
        `install on ${report.node}: ${report.seconds} s (both in parallel: ${seconds.toFixed(1)} s)\n`,
      );
    }
    const installEvents = events.filter((event) => event.type === 'install');
    for (const step of ['connect', 'detect', 'upload', 'verify', 'install', 'configure', 'pin', 'check'])
      for (const name of ['n1', 'n2'])
        assert.ok(
          installEvents.some(
            (event) =>
              event.type === 'install' &&
              event.node === name &&
              event.step === step &&
              event.status === 'done',
          ),
          `${name} ${step} done`,
        );
    assert.ok(
      installEvents.some(
        (event) =>
          event.type === 'install' && event.step === 'upload' && event.progress > 0 && event.progress < 1,
      ),
      'upload progress between 0 and 1 is reported',
    );
    const cluster = await services.getCluster({ clusterId });
    for (const name of ['n1', 'n2']) {
      const view = cluster.nodes.find((candidate) => candidate.name === name);
      assert.match(view?.hostKeyFingerprint ?? '', /^SHA256:/);
      assert.match(view?.apiFingerprint ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      const level = await agentJson<{ node: string }>(
        await services.endpointOf(services.store.nodeRow(ids[name]!)),
        'GET',
        '/api/v1/level',
        undefined,
      );
      assert.equal(level.node, name);
    }
    // No secret travelled into the report or the audit log.
    const token = await services.secrets.get(services.store.nodeRow(ids.n1!).api_token_secret ?? '');
    assert.ok(token && !JSON.stringify(await services.auditLog({ limit: 100 })).includes(token));
    assert.ok(!JSON.stringify(events).includes(token));
  });

  test('a re-run is idempotent: same release, hakitd not restarted, still answering', async () => {
    const hakitdPid = "pgrep -f '[h]akitd[.]cjs' | sort | head -1";
    const pidBefore = (await labExec(lab, 'n1', ['sh', '-c', hakitdPid])).stdout.trim();
    assert.match(pidBefore, /^\d+$/);
    const run = await services.installNodes({ clusterId, nodeIds: [ids.n1!], pathLink: false });
    assert.equal(run.ok, true, JSON.stringify(run.nodes));
    const pidAfter = (await labExec(lab, 'n1', ['sh', '-c', hakitdPid])).stdout.trim();
    assert.equal(pidAfter, pidBefore, 'hakitd kept running');
    const releases = (
      await labExec(lab, 'n1', ['sh', '-c', 'ls /opt/hakit/private/releases | grep -v "^\\." | wc -l'])
    ).stdout.trim();
    assert.equal(releases, '1');
  });

  test('a changed host key is refused before anything is sent', async () => {
    const row = services.store.nodeRow(ids.n2!);
    const pinned = row.host_key;
    // Pin another host's key for n2: n2 now presents a key that differs from the pin.
    services.store.pinHostKey(ids.n2!, node('n1').hostPublicKey.split(' ')[1] ?? null);
    try {
      const run = await services.installNodes({ clusterId, nodeIds: [ids.n2!], pathLink: false });
      const report = run.nodes[0];
      assert.equal(report?.ok, false);
      assert.equal(report?.failedStep, 'connect');
      assert.match(
        report?.error ?? '',
        /host key of .* changed: it presents SHA256:\S+, the pinned key is SHA256:\S+\. Refused/,
      );
    } finally {
      services.store.pinHostKey(ids.n2!, pinned);
    }
  });

  test('an unreachable node is reported with its step and reason while the others install', async () => {
    const unreachable = await services.addNode({
      clusterId,
      node: {
        name: 'ghost',
        address: node('n1').ip,
        sshPort: 2,
        sshUser: 'root',
        auth: { kind: 'key', privateKey: readFileSync(node('n1').ssh.keyFile, 'utf8') },
      },
    });
    const run = await services.installNodes({
      clusterId,
      nodeIds: [unreachable.id, ids.n2!],
      pathLink: false,
    });
    const ghost = run.nodes.find((report) => report.node === 'ghost');
    assert.equal(ghost?.ok, false);
    assert.equal(ghost?.failedStep, 'connect');
    assert.match(ghost?.error ?? '', /ssh to root@\S+:2: .*(ECONNREFUSED|refused)/);
    assert.equal(run.nodes.find((report) => report.node === 'n2')?.ok, true);
    assert.equal(run.ok, false);
    await services.removeNode({ nodeId: unreachable.id });
  });

  test('a fresh node whose install fails after install.sh ran is rolled back', async () => {
    // n3's API is looked for on a port nothing listens on: the check step fails.
    services.store.db.prepare('UPDATE nodes SET api_port = 9 WHERE id = ?').run(ids.n3!);
    const run = await services.installNodes({ clusterId, nodeIds: [ids.n3!], pathLink: false });
    const report = run.nodes[0];
    assert.equal(report?.ok, false);
    assert.equal(report?.failedStep, 'check');
    assert.equal(report?.rolledBack, true, report?.error ?? '');
    const left = await labExec(lab, 'n3', [
      'sh',
      '-c',
      "ls /opt/hakit/private/bin 2>&1; pgrep -f '[h]akitd[.]cjs' || echo none",
    ]);
    assert.match(left.stdout, /No such file or directory/);
    assert.match(left.stdout, /none/);
    assert.equal(
      services.store.nodeRow(ids.n3!).api_fingerprint,
      null,
      'nothing pinned for a failed install',
    );
    await services.removeNode({ nodeId: ids.n3! });
    const history = await services.installRuns({ clusterId });
    assert.ok(history.length >= 5);
  });

  test('cluster.xml and the node trust are pushed to both nodes with the same signature', async () => {
    const results = await services.pushCluster({ clusterId });
    assert.equal(results.length, 2);
    for (const result of results) assert.equal(result.ok, true, result.detail);
    assert.equal(new Set(results.map((result) => result.signature)).size, 1);
    const checks = await services.preflight({ clusterId });
    for (const check of checks) assert.equal(check.ok, true, `${check.name}: ${check.detail}`);
  });

  test('cluster pre-flight by the agents: two lans (IPv4, IPv6); the IPv6 lan cut with nftables is unreachable and blocks the push', async () => {
    const v6 = await services.setLan({
      clusterId,
      name: 'v6',
      addresses: [
        { nodeId: ids.n1!, addr: node('n1').ip6 },
        { nodeId: ids.n2!, addr: node('n2').ip6 },
      ],
    });
    try {
      const { xml } = await services.clusterXml({ clusterId });
      assert.match(xml, new RegExp(`<node name="n1" addr="\\[${node('n1').ip6}\\]"/>`), xml);
      const clear = await services.clusterPreflight({ clusterId });
      assert.equal(clear.ok, true, JSON.stringify(clear.checks));
      assert.deepEqual(clear.lans, ['default', 'v6']);
      assert.deepEqual(
        clear.paths.map((path) => `${path.from}->${path.to} ${path.lan} ${path.ok}`),
        ['n1->n2 default true', 'n1->n2 v6 true', 'n2->n1 default true', 'n2->n1 v6 true'],
      );
      for (const entry of clear.nodes) {
        assert.ok(entry.osFamily.includes('debian'), JSON.stringify(entry));
        assert.ok(Math.abs(entry.clockSkewMs ?? 99_999) < 2000, JSON.stringify(entry));
        assert.deepEqual(
          entry.selfAddresses.map((self) => self.ok),
          [true, true],
        );
      }
      const cutMs = Date.now();
      await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2', '--ip', '6']);
      try {
        const cut = await services.clusterPreflight({ clusterId });
        process.stdout.write(`cluster pre-flight with the IPv6 lan cut: ${Date.now() - cutMs} ms\n`);
        assert.equal(cut.ok, false);
        for (const path of cut.paths) {
          if (path.lan === 'default') assert.equal(path.ok, true, JSON.stringify(path));
          else {
            assert.equal(path.ok, false, JSON.stringify(path));
            assert.match(path.detail, /TCP \S+ port 9453 \(agent API\): unreachable: no answer in 1500 ms/);
          }
        }
        const reach = cut.checks.find((check) => check.name.startsWith('every node reaches'));
        assert.match(reach?.detail ?? '', /^2 of 4 paths fail: n1 -> n2 on v6: /);
        const refused = await services.pushCluster({ clusterId });
        assert.deepEqual(
          refused.map((result) => result.ok),
          [false, false],
        );
        assert.match(
          refused[0]?.detail ?? '',
          /^refused by the cluster pre-flight, nothing pushed: every node reaches/,
        );
        const onNode = await labExec(lab, 'n1', ['cat', '/etc/hakit/cluster.xml']);
        assert.doesNotMatch(onNode.stdout, /name="v6"/, 'the refused push changed nothing');
        // The user's override: pushed although the IPv6 lan is cut.
        const forced = await services.pushCluster({ clusterId, skipPreflight: true });
        assert.ok(
          forced.every((result) => result.ok),
          JSON.stringify(forced),
        );
      } finally {
        await labJson(['fault', '--name', lab, 'heal', 'n1', 'n2']);
      }
    } finally {
      await services.removeLan({ lanId: v6.id });
    }
    const back = await services.pushCluster({ clusterId });
    assert.ok(
      back.every((result) => result.ok),
      JSON.stringify(back),
    );
  });

  test('module pre-flight: a VIP held by a machine outside the cluster is found by ARP and named by its MAC', async () => {
    const vip = node('n1').ip.replace(/\.\d+$/, '.61');
    const module = await services.createModule({
      clusterId,
      name: 'vipcheck',
      template: 'mirror-vip',
      values: { VIRTUAL_IP: vip },
    });
    const n3Mac = (await labExec(lab, 'n3', ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
    assert.match(n3Mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    try {
      const free = await services.modulePreflight({ moduleDbId: module.id });
      assert.ok(free.ok, JSON.stringify(free));
      const added = await labExec(lab, 'n3', ['ip', 'addr', 'add', `${vip}/24`, 'dev', 'eth0']);
      assert.equal(added.code, 0, added.stderr);
      const held = await services.modulePreflight({ moduleDbId: module.id });
      assert.equal(held.ok, false);
      for (const entry of held.nodes) {
        const check = entry.checks.find((candidate) => candidate.name === `virtual IP ${vip} free`);
        assert.equal(check?.ok, false, JSON.stringify(entry.checks));
        assert.match(
          check?.detail ?? '',
          new RegExp(`held on eth0's network by MAC ${n3Mac} \\(ARP reply to arping -D`),
        );
      }
      assert.match(held.across[0]?.detail ?? '', new RegExp(`^address conflict: ${n3Mac} answers ARP for `));
      const refused = await services.deployModule({ moduleDbId: module.id, force: false });
      assert.deepEqual(
        refused.map((result) => result.outcome),
        ['refused', 'refused'],
      );
      assert.match(refused[0]?.detail ?? '', /address conflict/);
    } finally {
      await labExec(lab, 'n3', ['ip', 'addr', 'del', `${vip}/24`, 'dev', 'eth0']);
      await services.deleteModule({ moduleDbId: module.id });
    }
  });

  let moduleDbId = 0;

  test('a module from a template deploys to both nodes; a change made on a node is detected, not overwritten', async () => {
    const module = await services.createModule({
      clusterId,
      name: 'web',
      template: 'generic-light',
      values: {},
    });
    moduleDbId = module.id;
    const deployed = await services.deployModule({ moduleDbId, force: false });
    assert.deepEqual(
      deployed.map((result) => result.outcome),
      ['deployed', 'deployed'],
      JSON.stringify(deployed),
    );
    const again = await services.deployModule({ moduleDbId, force: false });
    assert.deepEqual(
      again.map((result) => result.outcome),
      ['unchanged', 'unchanged'],
    );
    // Someone changes web on n1 behind the console's back (through the agent's own API).
    const endpoint = await services.endpointOf(services.store.nodeRow(ids.n1!));
    const changed = await writeSafeBuffer(
      modulePackageOf(module.userconfig.replace('maxloop="3"', 'maxloop="4"'), module.files),
    );
    const put = await agentRequest(endpoint, 'PUT', `/api/v1/modules/web/package?id=${module.moduleId}`, {
      body: changed,
      contentType: 'application/zip',
      timeoutMs: 60_000,
    });
    assert.equal(put.status, 200, put.body.toString());
    await services.saveModule({
      moduleDbId,
      userconfig: module.userconfig.replace('loop_interval="24"', 'loop_interval="12"'),
      files: module.files,
    });
    const conflicted = await services.deployModule({ moduleDbId, force: false });
    const n1 = conflicted.find((result) => result.node === 'n1');
    assert.equal(n1?.outcome, 'conflict');
    assert.match(n1?.detail ?? '', /changed since the last push or pull/);
    assert.equal(conflicted.find((result) => result.node === 'n2')?.outcome, 'deployed');
    const diff = (await services.diffModule({ moduleDbId })).find((entry) => entry.node === 'n1');
    assert.ok(diff?.lines.some((line) => line.kind === 'removed' && line.text.includes('maxloop="4"')));
    // Pull n1's version into the console, then deploy: both nodes get the merged result.
    const pulled = await services.pullModule({ moduleDbId, nodeId: ids.n1! });
    assert.equal(pulled.changed, true);
    assert.match((await services.getModule({ moduleDbId })).userconfig, /maxloop="4"/);
    const final = await services.deployModule({ moduleDbId, force: false });
    assert.deepEqual(final.map((result) => result.outcome).sort(), ['deployed', 'unchanged']);
  });

  test('actions run as tasks with their CLI equivalent; the live matrix follows changes made on the nodes', async () => {
    const matrix = await services.watchCluster({ clusterId });
    assert.equal(matrix.nodes.length, 2);
    await eventually(
      () =>
        ['n1', 'n2'].every(
          (name) =>
            services.live.matrix(clusterId)?.nodes.find((entry) => entry.node === name)?.status ===
            'connected',
        ),
      15_000,
      'both nodes connected',
    );
    const cellOf = (name: string) =>
      services.live
        .matrix(clusterId)
        ?.cells.find((cell) => cell.nodeId === ids[name] && cell.module === 'web');
    await eventually(() => cellOf('n1')?.state === 'STOP', 10_000, 'web STOP on n1');
    const plan = await services.planAction({
      clusterId,
      module: 'web',
      action: 'start',
      nodeIds: [ids.n1!, ids.n2!],
    });
    assert.deepEqual(plan.cli, [
      'hakit -H "n1,n2" start -m web',
      'n1# hakit start -m web',
      'n2# hakit start -m web',
    ]);
    const task = await services.runAction({
      clusterId,
      module: 'web',
      action: 'start',
      nodeIds: [ids.n1!, ids.n2!],
    });
    await eventually(
      () =>
        events.some(
          (event) => event.type === 'task' && event.task.id === task.id && event.task.status === 'done',
        ),
      30_000,
      'start task done',
    );
    const taskResult = () => {
      const last = events.filter((event) => event.type === 'task' && event.task.id === task.id).at(-1);
      return last?.type === 'task' ? last.task.result : '';
    };
    await eventually(
      () =>
        cellOf('n1')?.state === 'UP' &&
        cellOf('n1')?.readiness === 'Ready' &&
        cellOf('n2')?.readiness === 'Ready',
      30_000,
      () =>
        `UP Ready on both (task: ${taskResult()}; cells: ${JSON.stringify([cellOf('n1'), cellOf('n2')])})`,
    );
    // A change made on the node reaches the console's matrix within a second of the agent's event.
    const stopped = await labExec(lab, 'n2', ['/opt/hakit/hakit', 'stop', '-m', 'web']);
    assert.equal(stopped.code, 0, stopped.stderr);
    await eventually(() => cellOf('n2')?.state === 'STOP', 5_000, 'STOP on n2 in the matrix');
    const liveEvent = events.find(
      (event) =>
        event.type === 'live' && event.cells.some((cell) => cell.nodeId === ids.n2 && cell.state === 'STOP'),
    );
    assert.ok(liveEvent);
    const stopCell =
      liveEvent.type === 'live'
        ? liveEvent.cells.find((cell) => cell.nodeId === ids.n2 && cell.state === 'STOP')
        : undefined;
    const audit = await services.auditLog({ limit: 50 });
    assert.ok(
      audit.some((entry) => entry.action === 'start' && entry.cli === 'hakit -H "n1,n2" start -m web'),
    );
    assert.ok(stopCell);
  });

  test('the agent killed on a node shows it unreachable, then connected again after its supervisor restarts it', async () => {
    await labJson(['fault', '--name', lab, 'kill', 'n1', 'hakitd\\.cjs']);
    const statusOf = () =>
      services.live.matrix(clusterId)?.nodes.find((entry) => entry.node === 'n1')?.status;
    await eventually(() => statusOf() === 'unreachable', 10_000, 'n1 unreachable');
    await eventually(() => statusOf() === 'connected', 40_000, 'n1 connected again');
  });

  test('logs of both nodes merge into one timeline; a snapshot gathers both nodes and opens offline', async () => {
    const log = await services.moduleLog({
      clusterId,
      module: 'web',
      nodeIds: [],
      lines: 200,
      verbose: true,
    });
    assert.ok(
      log.some(
        (entry) => entry.node === 'n1' && /start_both: starting the application on n1/.test(entry.message),
      ),
    );
    assert.ok(log.some((entry) => entry.node === 'n2'));
    for (let index = 1; index < log.length; index += 1)
      assert.ok((log[index]?.timeMs ?? 0) >= (log[index - 1]?.timeMs ?? 0));
    const snapshot = await services.gatherSnapshot({ clusterId, module: 'web' });
    assert.deepEqual(snapshot.nodes.sort(), ['n1', 'n2']);
    const opened = await services.openSnapshot({ snapshotId: snapshot.id });
    assert.equal(opened.module, 'web');
    assert.deepEqual([...opened.nodes].sort(), ['n1', 'n2']);
    assert.ok(opened.entries.some((entry) => entry.node === 'n2' && /stop/i.test(entry.message)));
    assert.ok(opened.files.some((file) => /^n1: snapshot_n1_web\/web\/dump_/.test(file)));
    const file = readFileSync(snapshot.file);
    const fromFile = await services.openSnapshot({
      fileName: 'copy.zip',
      contentBase64: file.toString('base64'),
    });
    assert.equal(fromFile.entries.length, opened.entries.length);
  });
});
