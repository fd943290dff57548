// Distributed commands (reference 7.8): `hakit -H "*" CMD`, `-H "n1,n2" CMD`,
// `-H "https://10.0.0.1:9453,..." CMD`, plus `-H ... -G` (push the cluster configuration and
// the node-to-node trust) and `-H ... -E AM` (install and configure a module everywhere with the
// same id). Each node is reached through its API with the node-to-node key and its pinned
// certificate; output is grouped per server under a banner; any failure makes the exit non-zero.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NodeAnswer, requestNode } from '../api/node-client.ts';
import { apiHttpsPortDefault } from '../api/node-proxy.ts';
import { readTrust } from '../api/node-trust.ts';
import { readModuleFolder, writeSafeBuffer } from '../config/package-io.ts';
import { clusterFile, clusterKeyFile, readClusterForValidation } from '../daemon/cluster-files.ts';
import { nodePaths } from '../daemon/paths.ts';
import { readJsonFile } from '../daemon/durable-file.ts';
import { CliUsageError } from './module-commands.ts';

export const targetsMax = 64;
const commandTimeoutMs = 120_000;

export interface Target {
  /** How the user named it: a node name or the URL. */
  label: string;
  /** Key for the pinned fingerprint: the node name, or the host of a URL. */
  pinKey: string;
  host: string;
  port: number;
}

/** Resolves `*`, node names and URLs against this node's cluster.xml. */
export function resolveTargets(spec: string): Target[] {
  const paths = nodePaths();
  const cluster = readClusterForValidation(paths);
  const lan = cluster
    ? (cluster.lans.find((candidate) => candidate.name === cluster.commandLan) ?? cluster.lans[0])
    : undefined;
  const byName = (name: string): Target => {
    const node = lan?.nodes.find((candidate) => candidate.name === name);
    if (!node)
      throw new CliUsageError(
        `node ${name} is not in ${clusterFile(paths)}${cluster ? '' : ' (there is no cluster configuration)'}`,
      );
    return { label: name, pinKey: name, host: node.addr.host, port: apiHttpsPortDefault };
  };
  const items = spec
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  const targets: Target[] = [];
  for (const item of items) {
    if (item === '*') {
      if (!lan) throw new CliUsageError(`-H "*" needs a cluster configuration (${clusterFile(paths)})`);
      targets.push(...lan.nodes.map((node) => byName(node.name)));
    } else if (/^https?:\/\//.test(item)) {
      const url = new URL(item);
      if (url.protocol !== 'https:') throw new CliUsageError(`${item}: distributed commands use HTTPS`);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      targets.push({
        label: item,
        pinKey: host,
        host,
        port: url.port ? Number(url.port) : apiHttpsPortDefault,
      });
    } else targets.push(byName(item));
  }
  if (targets.length === 0) throw new CliUsageError('-H names no node');
  if (targets.length > targetsMax) throw new CliUsageError(`-H names more than ${targetsMax} nodes`);
  return targets;
}

interface Outcome {
  target: Target;
  ok: boolean;
  text: string;
}

async function call(
  target: Target,
  method: string,
  path: string,
  body: Buffer | undefined,
  contentType: string,
): Promise<NodeAnswer> {
  const trust = readTrust(nodePaths());
  const token = process.env.HAKIT_API_KEY ?? trust.token;
  if (!token)
    throw new Error(
      'no node-to-node key: install one with `hakit cluster nodekey TOKEN` or set HAKIT_API_KEY',
    );
  const fingerprint = trust.fingerprints[target.pinKey];
  if (!fingerprint) {
    throw new Error(
      `no pinned certificate for ${target.pinKey}: pin it with \`hakit cluster trust ${target.pinKey} FINGERPRINT\` (shown by \`hakit level\` on that node)`,
    );
  }
  const request: Parameters<typeof requestNode>[0] = {
    host: target.host,
    port: target.port,
    method,
    path,
    token,
    fingerprint,
    headers: { 'content-type': contentType },
    timeoutMs: commandTimeoutMs,
  };
  if (body !== undefined) request.body = body;
  return requestNode(request);
}

function describeFailure(answer: NodeAnswer): string {
  try {
    const parsed = JSON.parse(answer.body.toString('utf8')) as { error?: string; detail?: string | null };
    return `HTTP ${answer.status}: ${parsed.error ?? ''}${parsed.detail ? ` (${parsed.detail})` : ''}`;
  } catch {
    return `HTTP ${answer.status}`;
  }
}

async function runOn(target: Target, work: (target: Target) => Promise<Outcome>): Promise<Outcome> {
  try {
    return await work(target);
  } catch (error) {
    return { target, ok: false, text: `error: ${(error as Error).message}` };
  }
}

function report(outcomes: readonly Outcome[]): number {
  for (const outcome of outcomes) {
    process.stdout.write(`---------------- Server=${outcome.target.label} ----------------\n`);
    if (outcome.text.length > 0) process.stdout.write(`${outcome.text.replace(/\n$/, '')}\n`);
  }
  const failed = outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.target.label);
  if (failed.length > 0) process.stderr.write(`hakit: failed on ${failed.join(', ')}\n`);
  return failed.length > 0 ? 1 : 0;
}

/** Runs one hakit command on every target, in parallel. */
export async function runDistributed(spec: string, argv: readonly string[]): Promise<number> {
  if (argv.length === 0) throw new CliUsageError('-H HOSTS needs a command, -G or -E MODULE');
  const targets = resolveTargets(spec);
  if (argv[0] === '-G') return report(await Promise.all(targets.map((target) => runOn(target, pushCluster))));
  if (argv[0] === '-E') {
    const module = argv[1];
    if (!module) throw new CliUsageError('-H HOSTS -E MODULE');
    return report(await Promise.all(targets.map((target) => runOn(target, (t) => pushModule(t, module)))));
  }
  if (argv[0] === 'module' && argv[1] === 'genkey' && targets.length > 1)
    throw new CliUsageError(
      `module genkey on ${targets.length} nodes would give each its own key, and they would not replicate: ` +
        'run hakit module genkey -m AM on one node, then hakit -H HOSTS -E AM',
    );
  const outcomes = await Promise.all(
    targets.map((target) =>
      runOn(target, async (t) => {
        const answer = await call(
          t,
          'POST',
          '/api/v1/cli',
          Buffer.from(JSON.stringify({ argv })),
          'application/json',
        );
        if (answer.status !== 200) return { target: t, ok: false, text: describeFailure(answer) };
        const result = JSON.parse(answer.body.toString('utf8')) as {
          exitCode: number;
          stdout: string;
          stderr: string;
        };
        const text = [result.stdout, result.stderr].filter((part) => part.length > 0).join('\n');
        return {
          target: t,
          ok: result.exitCode === 0,
          text: result.exitCode === 0 ? text : `${text}\n(exit ${result.exitCode})`,
        };
      }),
    ),
  );
  return report(outcomes);
}

async function pushCluster(target: Target): Promise<Outcome> {
  const paths = nodePaths();
  const file = clusterFile(paths);
  if (!existsSync(file)) throw new Error(`no cluster configuration to push (${file})`);
  const keyFile = clusterKeyFile(paths);
  const clusterKey = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : null;
  const body = JSON.stringify({
    clusterXml: readFileSync(file, 'utf8'),
    trust: readTrust(paths),
    clusterKey,
  });
  const answer = await call(target, 'PUT', '/api/v1/cluster/config', Buffer.from(body), 'application/json');
  return answer.status === 200
    ? { target, ok: true, text: 'cluster configuration and node trust applied' }
    : { target, ok: false, text: describeFailure(answer) };
}

function isIds(value: unknown): value is Record<string, number> {
  return typeof value === 'object' && value !== null;
}

async function pushModule(target: Target, module: string): Promise<Outcome> {
  const paths = nodePaths();
  const folder = join(paths.modulesDir, module);
  if (!existsSync(folder)) throw new Error(`module ${module} is not installed here (${folder})`);
  const ids = readJsonFile(join(paths.safeVar, 'modules.json'), isIds);
  const id = ids.kind === 'ok' ? ids.value[module] : undefined;
  if (id === undefined) throw new Error(`module ${module} has no id here`);
  // Configure it there only if it is configured here, as the reference does.
  const apply = existsSync(join(paths.runtimeModulesDir, module, 'conf')) ? '1' : '0';
  const data = await writeSafeBuffer(await readModuleFolder(folder));
  const answer = await call(
    target,
    'PUT',
    `/api/v1/modules/${module}/package?id=${id}&apply=${apply}`,
    data,
    'application/zip',
  );
  return answer.status === 200
    ? {
        target,
        ok: true,
        text: `module ${module} installed with id ${id}${apply === '1' ? ' and configured' : ''}`,
      }
    : { target, ok: false, text: describeFailure(answer) };
}
