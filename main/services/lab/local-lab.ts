// "Try it on a local lab": the first five minutes. As root on Linux, from a development tree (the
// lab tool is not shipped in the packaged app): create a two-node lab with hakit-lab, put it in a
// site of its own, install the agents over SSH through the real installer, push cluster.xml, create
// a sample module from a template, deploy it, start it and open the live view. Every step is
// reported; a failed step says what and why, and stops the flow.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConsoleEvent, Id, LabStep, Task } from '../../api/contract.ts';
import { ConsoleError, errorMessage } from '../errors.ts';
import { findAgentPackage } from '../installer/agent-package.ts';
import type { ConsoleServices } from '../console-services.ts';

export const labName = process.env.HAKIT_CONSOLE_LAB_NAME ?? 'console';
export const labSiteName = process.env.HAKIT_CONSOLE_LAB_SITE ?? 'local-lab';
const labUpTimeoutMs = 5 * 60_000;
const packageBuildTimeoutMs = 5 * 60_000;
const outputBytesMax = 1024 * 1024;
const stateWaitMs = 90_000;
const taskWaitMs = 150_000;

interface LabReport {
  nodes: {
    name: string;
    ip: string;
    ssh: { host: string; port: number; user: string; keyFile: string };
    hostPublicKey: string;
  }[];
}

function runNode(
  args: string[],
  cwd: string | undefined,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout = (stdout + chunk.toString()).slice(-outputBytesMax);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-outputBytesMax);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: error.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

export class LocalLab {
  private running = false;

  constructor(
    private readonly services: ConsoleServices,
    private readonly options: {
      labCli: string | null;
      repoDir: string | null;
      emit: (event: ConsoleEvent) => void;
    },
  ) {}

  availability(): { available: boolean; reason: string } {
    if (process.platform !== 'linux')
      return { available: false, reason: 'the lab uses Linux namespaces: it runs on Linux only' };
    if (process.getuid?.() !== 0)
      return {
        available: false,
        reason:
          'the lab creates network namespaces, bridges and loop devices, which needs root: start the console as root to try it',
      };
    if (this.options.labCli === null || !existsSync(this.options.labCli))
      return {
        available: false,
        reason: 'the lab tool (hakit-lab) comes with the development tree, not with the packaged console',
      };
    return { available: true, reason: `creates lab "${labName}" with two nodes on this machine` };
  }

  /** Waits for an action's task to end (bounded); a failed action fails the stage. */
  private async awaitTask(task: Task): Promise<Task> {
    const deadlineMs = Date.now() + taskWaitMs;
    for (;;) {
      const current = (await this.services.listTasks()).find((candidate) => candidate.id === task.id);
      if (current?.status === 'done') return current;
      if (current?.status === 'failed') throw new Error(`${current.title}: ${current.result}`);
      if (Date.now() > deadlineMs) throw new Error(`${task.title}: no result after ${taskWaitMs / 1000} s`);
      await new Promise((done) => setTimeout(done, 200));
    }
  }

  private step(step: string, status: LabStep['status'], detail: string): void {
    this.options.emit({ type: 'lab', step: { step, status, detail } });
  }

  private async stage<T>(name: string, work: () => Promise<T>, describe: (value: T) => string): Promise<T> {
    this.step(name, 'running', '');
    try {
      const value = await work();
      this.step(name, 'done', describe(value));
      return value;
    } catch (error) {
      this.step(name, 'failed', errorMessage(error));
      throw error;
    }
  }

  async run(): Promise<{ siteId: Id; clusterId: Id }> {
    const availability = this.availability();
    if (!availability.available) throw new ConsoleError('refused', availability.reason);
    if (this.running) throw new ConsoleError('conflict', 'the local lab is already being set up');
    this.running = true;
    try {
      return await this.flow();
    } finally {
      this.running = false;
    }
  }

  private async flow(): Promise<{ siteId: Id; clusterId: Id }> {
    const services = this.services;
    const labCli = this.options.labCli as string;
    const report = await this.stage(
      'create a two-node lab',
      async () => {
        await runNode([labCli, 'down', '--name', labName], undefined, labUpTimeoutMs);
        const up = await runNode(
          [labCli, 'up', '--name', labName, '--nodes', '2'],
          undefined,
          labUpTimeoutMs,
        );
        if (up.code !== 0)
          throw new Error(`hakit-lab up exited ${up.code}: ${up.stderr.trim().slice(-2000)}`);
        return JSON.parse(up.stdout) as LabReport;
      },
      (value) => value.nodes.map((node) => `${node.name} ${node.ip}`).join(', '),
    );
    await this.stage(
      'find the agent package',
      async () => {
        if (findAgentPackage(services.agentPackageDirs()).file) return 'found';
        if (this.options.repoDir === null)
          throw new Error('no agent package and no source tree to build one');
        const built = await runNode(
          [
            '--import',
            'tsx',
            'agent/package/build-package.ts',
            '--out-dir',
            join(this.options.repoDir, 'dist'),
          ],
          this.options.repoDir,
          packageBuildTimeoutMs,
        );
        if (built.code !== 0)
          throw new Error(`building the agent package failed: ${built.stderr.trim().slice(-2000)}`);
        return 'built';
      },
      (how) => `agent package ${how}`,
    );
    const { siteId, clusterId, nodeIds } = await this.stage(
      'describe the site',
      async () => {
        const old = (await services.listSites({})).find((site) => site.name === labSiteName);
        if (old) await services.deleteSite({ siteId: old.id });
        const site = await services.createSite({
          name: labSiteName,
          notes: `Two lab nodes made by hakit-lab (lab "${labName}")`,
        });
        const cluster = await services.createCluster({ siteId: site.id, name: 'lab' });
        const ids: Id[] = [];
        for (const node of report.nodes) {
          const added = await services.addNode({
            clusterId: cluster.id,
            node: {
              name: node.name,
              address: node.ip,
              sshPort: node.ssh.port,
              sshUser: node.ssh.user,
              auth: { kind: 'key', privateKey: readFileSync(node.ssh.keyFile, 'utf8') },
            },
          });
          // The lab reported each node's host key: pin it rather than trusting the first use.
          services.store.pinHostKey(added.id, node.hostPublicKey.split(' ')[1] ?? null);
          ids.push(added.id);
        }
        return { siteId: site.id, clusterId: cluster.id, nodeIds: ids };
      },
      () => `site ${labSiteName}, cluster lab, nodes ${report.nodes.map((node) => node.name).join(', ')}`,
    );
    await this.stage(
      'install the agents over SSH',
      async () => {
        const run = await services.installNodes({ clusterId, nodeIds, pathLink: false });
        const failed = run.nodes.filter((node) => !node.ok);
        if (failed.length > 0)
          throw new Error(
            failed.map((node) => `${node.node} at ${node.failedStep}: ${node.error}`).join('; '),
          );
        return run;
      },
      (run) => run.nodes.map((node) => `${node.node}: agent ${node.version} in ${node.seconds} s`).join(', '),
    );
    await this.stage(
      'push cluster.xml and the node trust',
      async () => {
        const results = await services.pushCluster({ clusterId });
        const failed = results.filter((result) => !result.ok);
        if (failed.length > 0)
          throw new Error(failed.map((result) => `${result.node}: ${result.detail}`).join('; '));
        return results;
      },
      (results) => `same signature on ${results.length} nodes`,
    );
    const moduleName = 'demo';
    const created = await this.stage(
      'create a sample mirror module',
      async () => {
        // A mirror module with a virtual IP in the lab's network and a fast heartbeat profile, so
        // a failover shows within seconds. No replicated directory: the sample runs anywhere.
        const first = report.nodes[0];
        if (!first) throw new Error('the lab reported no node');
        const vip = first.ip.replace(/\.\d+$/, '.50');
        return services.createModule({
          clusterId,
          name: moduleName,
          template: 'mirror-vip',
          values: { VIRTUAL_IP: vip, HEART_PULSE: '200ms', HEART_TIMEOUT: '2000ms' },
        });
      },
      (module) =>
        `module ${module.name} (${module.kind}, template ${module.template}, id ${module.moduleId})`,
    );
    await this.stage(
      'pre-flight on the nodes',
      async () => {
        const preflight = await services.modulePreflight({ moduleDbId: created.id });
        if (!preflight.ok)
          throw new Error(
            preflight.nodes
              .flatMap((node) =>
                node.checks
                  .filter((check) => !check.ok && check.severity === 'error')
                  .map((check) => `${node.node}: ${check.name}: ${check.detail}`),
              )
              .join('; ') || 'a check across nodes failed',
          );
        return preflight;
      },
      (preflight) =>
        `${preflight.nodes.reduce((count, node) => count + node.checks.filter((check) => check.ok).length, 0)} checks passed on ${preflight.nodes.length} nodes`,
    );
    await this.stage(
      'deploy it',
      async () => {
        const results = await services.deployModule({ moduleDbId: created.id, force: false });
        const failed = results.filter(
          (result) => result.outcome !== 'deployed' && result.outcome !== 'unchanged',
        );
        if (failed.length > 0)
          throw new Error(
            failed.map((result) => `${result.node}: ${result.outcome}: ${result.detail}`).join('; '),
          );
        return results;
      },
      (results) => results.map((result) => `${result.node}: ${result.outcome}`).join(', '),
    );
    const [primaryId, secondaryId] = nodeIds;
    if (primaryId === undefined || secondaryId === undefined)
      throw new Error('the lab has fewer than two nodes');
    await this.stage(
      'start it: primary on n1, secondary on n2',
      async () => {
        await services.watchCluster({ clusterId });
        await this.awaitTask(
          await services.runAction({ clusterId, module: moduleName, action: 'prim', nodeIds: [primaryId] }),
        );
        await this.awaitTask(
          await services.runAction({
            clusterId,
            module: moduleName,
            action: 'second',
            nodeIds: [secondaryId],
          }),
        );
        return 'prim and second asked';
      },
      (text) => text,
    );
    await this.stage(
      'wait for PRIM and SECOND in the live view',
      async () => {
        const deadlineMs = Date.now() + stateWaitMs;
        for (;;) {
          const cells = (services.live.matrix(clusterId)?.cells ?? []).filter(
            (cell) => cell.module === moduleName,
          );
          const stateOf = (nodeId: Id) => cells.find((cell) => cell.nodeId === nodeId);
          const primary = stateOf(primaryId);
          const secondary = stateOf(secondaryId);
          if (
            primary?.state === 'PRIM' &&
            primary.readiness === 'Ready' &&
            secondary?.state === 'SECOND' &&
            secondary.readiness === 'Ready'
          )
            return 'PRIM (Ready) on n1, SECOND (Ready) on n2';
          if (Date.now() > deadlineMs)
            throw new Error(
              `after ${stateWaitMs / 1000} s: n1 ${primary?.state ?? '?'} (${primary?.readiness ?? '?'}), n2 ${secondary?.state ?? '?'} (${secondary?.readiness ?? '?'})`,
            );
          await new Promise((done) => setTimeout(done, 250));
        }
      },
      (text) => text,
    );
    return { siteId, clusterId };
  }
}
