// Module and cluster configuration for the console, through the agent's own model (one schema,
// one validator): cluster.xml from the stored nodes and lans, and the validator's problems as
// editor diagnostics. Also a line diff for "what would deploying change". Pure.
import { isIP } from 'node:net';
import { loadClusterXml, loadUserconfig } from '../../../agent/config/index.ts';
import type { ConfigProblem } from '../../../agent/config/index.ts';
import type { ClusterView, Diagnostic, ModuleFile, ModuleKind } from '../../api/contract.ts';
import { userconfigFile } from './signature.ts';

function xmlAttribute(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('"', '&quot;');
}

export function clusterXmlOf(cluster: ClusterView): string {
  const nameOf = new Map(cluster.nodes.map((node) => [node.id, node.name]));
  const lines = ['<?xml version="1.0"?>', '<cluster>', '<lans>'];
  for (const lan of cluster.lans) {
    lines.push(`<lan name="${xmlAttribute(lan.name)}">`);
    for (const entry of lan.addresses)
      lines.push(
        // cluster.xml writes IPv6 addresses in brackets; the store keeps them bare.
        `<node name="${xmlAttribute(nameOf.get(entry.nodeId) ?? '?')}" addr="${xmlAttribute(isIP(entry.addr) === 6 ? `[${entry.addr}]` : entry.addr)}"/>`,
      );
    lines.push('</lan>');
  }
  lines.push('</lans>', '</cluster>', '');
  return lines.join('\n');
}

export function diagnosticOf(problem: ConfigProblem): Diagnostic {
  return {
    severity: problem.severity === 'error' ? 'error' : problem.severity === 'warning' ? 'warning' : 'info',
    message: problem.message,
    hint: problem.hint ?? null,
    file: problem.file,
    line: problem.line,
    column: problem.column,
    endLine: problem.endLine,
    endColumn: problem.endColumn,
  };
}

export function clusterDiagnostics(xml: string): Diagnostic[] {
  return loadClusterXml(xml, { file: 'cluster.xml' }).problems.map(diagnosticOf);
}

export interface ModuleCheck {
  diagnostics: Diagnostic[];
  kind: ModuleKind | null;
  ok: boolean;
}

export function checkModule(
  name: string,
  userconfig: string,
  files: readonly ModuleFile[],
  clusterXml: string | null,
  moduleId: number | undefined,
): ModuleCheck {
  const cluster = clusterXml === null ? undefined : loadClusterXml(clusterXml).cluster;
  const loaded = loadUserconfig(userconfig, {
    file: userconfigFile,
    moduleName: name,
    cluster,
    packageFiles: [userconfigFile, ...files.map((file) => file.path)],
    moduleId,
  });
  const mode = loaded.config?.mode;
  return {
    diagnostics: loaded.problems.map(diagnosticOf),
    kind: mode === 'mirror' || mode === 'farm' || mode === 'light' ? mode : null,
    ok: loaded.ok,
  };
}

export const diffLinesMax = 4000;

/** Line diff (longest common subsequence), bounded: past diffLinesMax lines it compares whole texts. */
export function lineDiff(
  before: string,
  after: string,
): { kind: 'same' | 'added' | 'removed'; text: string }[] {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.length > diffLinesMax || b.length > diffLinesMax) {
    if (before === after) return a.map((text) => ({ kind: 'same', text }));
    return [
      ...a.map((text) => ({ kind: 'removed' as const, text })),
      ...b.map((text) => ({ kind: 'added' as const, text })),
    ];
  }
  const rows = a.length + 1;
  const cols = b.length + 1;
  const table = new Uint32Array(rows * cols);
  for (let i = a.length - 1; i >= 0; i -= 1)
    for (let j = b.length - 1; j >= 0; j -= 1)
      table[i * cols + j] =
        a[i] === b[j]
          ? (table[(i + 1) * cols + j + 1] ?? 0) + 1
          : Math.max(table[(i + 1) * cols + j] ?? 0, table[i * cols + j + 1] ?? 0);
  const out: { kind: 'same' | 'added' | 'removed'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ kind: 'same', text: a[i] ?? '' });
      i += 1;
      j += 1;
    } else if ((table[(i + 1) * cols + j] ?? 0) >= (table[i * cols + j + 1] ?? 0)) {
      out.push({ kind: 'removed', text: a[i] ?? '' });
      i += 1;
    } else {
      out.push({ kind: 'added', text: b[j] ?? '' });
      j += 1;
    }
  }
  while (i < a.length) out.push({ kind: 'removed', text: a[i++] ?? '' });
  while (j < b.length) out.push({ kind: 'added', text: b[j++] ?? '' });
  return out;
}

export type PushDecision =
  | { kind: 'deploy'; reason: string }
  | { kind: 'unchanged'; reason: string }
  | { kind: 'conflict'; reason: string };

/**
 * Whether pushing the console's configuration to a node may overwrite what the node has: only when
 * the node still runs what the console last pushed or pulled (same signature). Pure.
 */
export function decidePush(input: {
  node: string;
  module: string;
  local: string;
  onNode: string | null;
  recorded: string | null;
  force: boolean;
}): PushDecision {
  const short = (signature: string | null) => (signature === null ? 'none' : signature.slice(0, 12));
  if (input.onNode === input.local)
    return { kind: 'unchanged', reason: `${input.node} already runs this configuration` };
  if (input.force)
    return {
      kind: 'deploy',
      reason: `forced over ${input.node}'s configuration (signature ${short(input.onNode)})`,
    };
  if (input.onNode === null) return { kind: 'deploy', reason: `${input.module} is not on ${input.node} yet` };
  if (input.recorded === null)
    return {
      kind: 'conflict',
      reason: `${input.node} already has a module ${input.module} (signature ${short(input.onNode)}) that this console never pulled: pull it first, or force`,
    };
  if (input.onNode !== input.recorded)
    return {
      kind: 'conflict',
      reason: `${input.module} on ${input.node} changed since the last push or pull (signature ${short(input.onNode)}, expected ${short(input.recorded)}): pull it to see the change, or force`,
    };
  return { kind: 'deploy', reason: `${input.node} runs the last pushed configuration` };
}
