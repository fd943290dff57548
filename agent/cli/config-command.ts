// `hakit config check|show`: validate a module (userconfig.xml, module folder or .safe) and print
// its effective configuration. No daemon: everything runs in this process from the files given.
import { readFile, stat } from 'node:fs/promises';
import { loadClusterXml } from '../config/cluster-config.ts';
import { effectiveJson, renderEffectiveXml } from '../config/effective.ts';
import type { ClusterConfig, ModuleConfig } from '../config/model.ts';
import { PackageError } from '../config/module-package.ts';
import { loadModuleSource } from '../config/package-io.ts';
import { moduleIdMax } from '../config/ports.ts';
import { type ConfigProblem, fileProblem, formatProblem } from '../config/problems.ts';
import { loadUserconfig } from '../config/userconfig.ts';
import { type ClusterModule, validateClusterModules } from '../config/validate-cluster.ts';

export const configUsage = `usage: hakit config check PATH... [--cluster CLUSTER_XML] [--id N] [--json]
       hakit config show PATH [--cluster CLUSTER_XML] [--id N] [--json]
  PATH is a userconfig.xml, a module folder or a .safe package.
  check  prints file:line:col: error|warning: message lines; exit 0 without errors, 1 with errors.
         Several PATHs are also checked together (shared directories, VIPs, names).
  show   prints the effective configuration (macros expanded, defaults filled) as XML, or JSON
         with --json.
  --cluster  cluster.xml to check lan and node names against.
  --id       module id, for the ports derived from it (one PATH only).`;

export interface CommandOutput {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly environment: Readonly<Record<string, string | undefined>>;
}

interface Options {
  readonly paths: string[];
  readonly cluster: string | undefined;
  readonly json: boolean;
  readonly moduleId: number | undefined;
}

class UsageError extends Error {}

/** A cluster.xml is a few KiB; refuse anything that cannot be one before reading it. */
const clusterXmlBytesMax = 4 * 1024 * 1024;

function parseOptions(args: readonly string[]): Options {
  const paths: string[] = [];
  let cluster: string | undefined;
  let json = false;
  let moduleId: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const [name, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = (): string => {
      const next = inline ?? args[++i];
      if (next === undefined || next === '') throw new UsageError(`${name} needs a value`);
      return next;
    };
    if (name === '--json') json = true;
    else if (name === '--cluster') cluster = value();
    else if (name === '--id') {
      const text = value();
      const id = Number(text);
      if (!/^[0-9]+$/.test(text) || id < 1 || id > moduleIdMax)
        throw new UsageError(`--id must be an integer from 1 to ${moduleIdMax}`);
      moduleId = id;
    } else if (name.startsWith('-') && name !== '-') throw new UsageError(`unknown option ${name}`);
    else paths.push(arg);
  }
  if (paths.length === 0) throw new UsageError('no PATH given');
  if (moduleId !== undefined && paths.length > 1) throw new UsageError('--id applies to one PATH only');
  return { paths, cluster, json, moduleId };
}

function describeError(error: unknown): string {
  if (error instanceof PackageError) return error.message;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

interface LoadedModule {
  readonly name: string;
  readonly file: string;
  readonly config: ModuleConfig | undefined;
}

interface CheckRun {
  readonly problems: ConfigProblem[];
  readonly modules: LoadedModule[];
}

async function loadCluster(path: string, problems: ConfigProblem[]): Promise<ClusterConfig | undefined> {
  try {
    const info = await stat(path);
    if (info.size > clusterXmlBytesMax) {
      problems.push(
        fileProblem(path, 'cluster', `${info.size} bytes; a cluster.xml is at most ${clusterXmlBytesMax}`),
      );
      return undefined;
    }
    const loaded = loadClusterXml(await readFile(path, 'utf8'), { file: path });
    problems.push(...loaded.problems);
    return loaded.cluster;
  } catch (error) {
    problems.push(fileProblem(path, 'cluster', `cannot read cluster.xml: ${describeError(error)}`));
    return undefined;
  }
}

async function run(options: Options, output: CommandOutput): Promise<CheckRun> {
  const problems: ConfigProblem[] = [];
  const cluster = options.cluster === undefined ? undefined : await loadCluster(options.cluster, problems);
  const modules: LoadedModule[] = [];
  for (const path of options.paths) {
    let source: Awaited<ReturnType<typeof loadModuleSource>>;
    try {
      source = await loadModuleSource(path);
    } catch (error) {
      problems.push(fileProblem(path, 'package', `cannot load the module: ${describeError(error)}`));
      continue;
    }
    const loaded = loadUserconfig(source.userconfigText, {
      file: source.userconfigFile,
      environment: output.environment,
      ...(cluster === undefined ? {} : { cluster }),
      ...(source.moduleName === undefined ? {} : { moduleName: source.moduleName }),
      ...(source.packageFiles === undefined ? {} : { packageFiles: source.packageFiles }),
      ...(options.moduleId === undefined ? {} : { moduleId: options.moduleId }),
    });
    problems.push(...loaded.problems);
    modules.push({ name: source.moduleName ?? path, file: source.userconfigFile, config: loaded.config });
  }
  if (modules.length > 1) {
    const members: ClusterModule[] = [];
    for (const module of modules) {
      if (module.config !== undefined)
        members.push({ name: module.name, file: module.file, config: module.config });
    }
    problems.push(...validateClusterModules(members));
  }
  return { problems, modules };
}

function summary(problems: readonly ConfigProblem[]): { errors: number; warnings: number } {
  const errors = problems.filter((problem) => problem.severity === 'error').length;
  return { errors, warnings: problems.length - errors };
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

async function check(options: Options, output: CommandOutput): Promise<number> {
  const { problems, modules } = await run(options, output);
  const { errors, warnings } = summary(problems);
  if (options.json) {
    output.stdout(
      `${JSON.stringify({ ok: errors === 0, errors, warnings, modules: modules.map((m) => m.file), problems }, null, 2)}\n`,
    );
  } else {
    for (const problem of problems) output.stdout(`${formatProblem(problem)}\n`);
    output.stderr(
      `${plural(errors, 'error')}, ${plural(warnings, 'warning')} in ${plural(modules.length, 'module')}\n`,
    );
    if (options.cluster === undefined)
      output.stderr('note: no --cluster given: lan and node names were not checked\n');
  }
  return errors === 0 ? 0 : 1;
}

async function show(options: Options, output: CommandOutput): Promise<number> {
  if (options.paths.length !== 1) throw new UsageError('show takes one PATH');
  const { problems, modules } = await run(options, output);
  const { errors } = summary(problems);
  const config = modules[0]?.config;
  if (options.json) {
    output.stdout(
      `${JSON.stringify({ ok: errors === 0, module: modules[0]?.file, problems, effective: config === undefined ? null : effectiveJson(config) }, null, 2)}\n`,
    );
  } else {
    for (const problem of problems) output.stderr(`${formatProblem(problem)}\n`);
    if (config !== undefined) output.stdout(renderEffectiveXml(config));
  }
  return errors === 0 && config !== undefined ? 0 : 1;
}

/** `hakit config ...`; returns the exit code (2 for a usage error). */
export async function configCommand(args: readonly string[], output: CommandOutput): Promise<number> {
  const [verb, ...rest] = args;
  try {
    switch (verb) {
      case 'check':
        return await check(parseOptions(rest), output);
      case 'show':
        return await show(parseOptions(rest), output);
      case undefined:
      case 'help':
      case '--help':
        output.stdout(`${configUsage}\n`);
        return verb === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown config command '${verb}'`);
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.stderr(`hakit config: ${error.message}\n${configUsage}\n`);
    return 2;
  }
}
