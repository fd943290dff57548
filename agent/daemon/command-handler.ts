// The daemon's side of every `hakit` command that acts on modules. The CLI sends verbs over the
// control socket; the HTTP API will call the same function, so the two stay one to one.
import type { Origin } from '../core/farm-automaton.ts';
import { validateResourceAssignment } from '../core/resources.ts';
import { formatState, type ModuleStateName, moduleStateNames, stateExitCode } from '../core/states.ts';
import { hakitVersion } from '../version.ts';
import { type ControlRequest, type ControlResponse, moduleActionVerbs } from './control-protocol.ts';
import { formatLogEntry } from './module-log.ts';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandAudit } from './command-audit.ts';
import { ModuleAdmin, ModuleAdminError } from './module-admin.ts';
import { createSnapshot } from '../api/snapshot.ts';
import type { ModuleRegistry } from './module-registry.ts';
import type { NodePaths } from './paths.ts';
import {
  applyClusterFile,
  checkClusterFile,
  clusterConfinfo,
  deleteClusterKey,
  generateClusterKey,
} from './cluster-files.ts';
import { PackageError } from '../config/module-package.ts';
import type { ModuleStatus, ModuleSupervisor, UserSettings } from './module-supervisor.ts';

export const waitMsMax = 24 * 3600_000;
const waitMsDefault = 3600_000;
const logLinesMax = 100_000;

function ok(text: string, data?: unknown): ControlResponse {
  return { exitCode: 0, text, data };
}

function fail(error: string, exitCode = 1): ControlResponse {
  return { exitCode, text: '', error };
}

function usage(error: string): ControlResponse {
  return fail(error, 2);
}

/** `-X value` options of a verb's arguments; flags without value map to ''. */
function options(
  args: readonly string[],
  withValue: readonly string[],
): { values: Map<string, string>; rest: string[] } {
  const values = new Map<string, string>();
  const rest: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? '';
    if (withValue.includes(arg)) {
      const value = args[index + 1];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      values.set(arg, value);
      index += 1;
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      values.set(arg, '');
    } else rest.push(arg);
  }
  return { values, rest };
}

class UsageError extends Error {}

function statusLine(status: ModuleStatus): string {
  const detail = status.detail.length > 0 ? ` ${status.detail.join(', ')}` : '';
  return `${status.module}: ${formatState(status.state, status.readiness)}${detail}`;
}

function verboseStatus(status: ModuleStatus): string {
  const lines = [statusLine(status), `Mode: ${status.mode}`, 'Resources:'];
  for (const name of Object.keys(status.resources).sort()) {
    const resource = status.resources[name];
    if (!resource) continue;
    lines.push(`  ${name.padEnd(32)} ${resource.value.padEnd(8)} (set by ${resource.setBy})`);
  }
  return lines.join('\n');
}

function isStable(status: ModuleStatus): boolean {
  return status.readiness !== 'Transient' && !status.busy;
}

function waitFor(
  supervisor: ModuleSupervisor,
  done: (status: ModuleStatus) => boolean,
  timeoutMs: number,
): Promise<ModuleStatus | null> {
  return new Promise((resolve) => {
    const check = (): boolean => {
      const status = supervisor.status();
      if (!done(status)) return false;
      clearTimeout(timer);
      unsubscribe();
      resolve(status);
      return true;
    };
    const timer = setTimeout(() => {
      unsubscribe();
      resolve(null);
    }, timeoutMs);
    const unsubscribe = supervisor.onChange(() => {
      check();
    });
    check();
  });
}

const controlVerbs: ReadonlySet<string> = new Set(moduleActionVerbs);
/** `prim fullsync`, `second fullsync`, `swap nosync` (reference 7.3). */
const commandOptionWords: ReadonlySet<string> = new Set(['fullsync', 'nosync']);

export class CommandHandler {
  private readonly admin: ModuleAdmin;

  constructor(
    private readonly registry: ModuleRegistry,
    private readonly paths: NodePaths,
    private readonly audit: CommandAudit,
  ) {
    this.admin = new ModuleAdmin(paths, registry);
  }

  private module(request: ControlRequest): ModuleSupervisor {
    if (!request.module) throw new UsageError(`${request.verb}: give the module with -m AM`);
    const supervisor = this.registry.get(request.module);
    if (!supervisor) {
      const known = this.registry.running().map((entry) => entry.name);
      throw new CommandError(
        `module ${request.module} is not configured on this node${known.length ? ` (configured: ${known.join(', ')})` : ''}`,
      );
    }
    return supervisor;
  }

  async handle(request: ControlRequest): Promise<ControlResponse> {
    try {
      return await this.dispatch(request);
    } catch (error) {
      if (error instanceof UsageError) return usage(`${request.verb}: ${error.message}`);
      if (
        error instanceof CommandError ||
        error instanceof ModuleAdminError ||
        error instanceof PackageError
      ) {
        return fail(error.message);
      }
      throw error;
    }
  }

  private origin(request: ControlRequest): Origin {
    return { kind: 'caller', who: request.identity ?? request.caller };
  }

  private async dispatch(request: ControlRequest): Promise<ControlResponse> {
    const { verb, args } = request;
    if (controlVerbs.has(verb)) {
      const supervisor = this.module(request);
      const unknown = request.args.filter((arg) => !commandOptionWords.has(arg));
      if (unknown.length > 0)
        throw new UsageError(`unexpected ${unknown.join(' ')} (only fullsync or nosync)`);
      const commandOptions = Object.fromEntries(request.args.map((arg) => [arg, true]));
      const outcome = await supervisor.command(
        verb,
        this.origin(request),
        request.identity,
        request.args.length > 0 ? commandOptions : undefined,
      );
      return outcome.accepted
        ? ok(`${supervisor.name}: ${outcome.message}`)
        : fail(`${supervisor.name}: ${outcome.message}`);
    }
    switch (verb) {
      case 'ping':
        return ok('pong', { pid: process.pid, version: hakitVersion });
      case 'shutdown': {
        const lines: string[] = [];
        for (const supervisor of this.registry.running()) {
          const outcome = await supervisor.command('stop', this.origin(request));
          lines.push(`${supervisor.name}: ${outcome.message}`);
        }
        return ok(lines.join('\n'));
      }
      case 'state':
        return this.state(request);
      case 'waitstart':
      case 'waitstop':
      case 'waitstate':
        return this.wait(request);
      case 'get': {
        const { values } = options(args, ['-r']);
        const resource = values.get('-r');
        if (!resource) throw new UsageError('give the resource with -r, e.g. get -r state.local');
        const found = this.module(request).status().resources[resource];
        return found
          ? ok(found.value, found)
          : fail(`resource ${resource} does not exist in module ${request.module}`);
      }
      case 'set': {
        const { values } = options(args, ['-r', '-v']);
        const resource = values.get('-r');
        const value = values.get('-v');
        if (!resource || value === undefined) throw new UsageError('set -r RESOURCE -v VALUE [-i IDENTITY]');
        const problem = validateResourceAssignment(resource, value);
        if (problem) throw new UsageError(problem);
        await this.module(request).setResourceFromCli(resource, value, request.identity ?? request.caller);
        return ok('');
      }
      case 'log': {
        const { values } = options(args, ['-s']);
        const count = Number(values.get('-s') ?? '300');
        if (!Number.isInteger(count) || count < 1 || count > logLinesMax) {
          throw new UsageError(`-s takes a whole number from 1 to ${logLinesMax}`);
        }
        const entries = this.module(request).logTail(count, values.has('-A'));
        return ok(entries.map(formatLogEntry).join('\n'), entries);
      }
      case 'logsave': {
        const { values, rest } = options(args, []);
        const [file] = rest;
        if (!file || !file.startsWith('/')) throw new UsageError('logsave -m AM [-A] /absolute/file.txt');
        const entries = this.module(request).logTail(logLinesMax, values.has('-A'));
        writeFileSync(file, `${entries.map(formatLogEntry).join('\n')}\n`, { mode: 0o640 });
        return ok(`${entries.length} messages saved to ${file}`);
      }
      case 'cmdlog': {
        const { values } = options(args, ['-s']);
        const count = Number(values.get('-s') ?? '100');
        if (!Number.isInteger(count) || count < 1 || count > logLinesMax)
          throw new UsageError(`-s takes 1 to ${logLinesMax}`);
        const lines = this.audit
          .tail(count)
          .map(
            (entry) =>
              `| ${new Date(entry.timeMs).toISOString()} | ${entry.module ?? '-'} | ${entry.caller} | ${entry.phase} ${entry.phase === 'START' ? [entry.verb, ...entry.args].join(' ') : entry.exitCode}`,
          );
        return ok(lines.join('\n'));
      }
      case 'printi':
      case 'printe': {
        const message = args.join(' ').trim();
        if (message.length === 0) throw new UsageError(`${verb} "message"`);
        this.module(request).printMessage(verb === 'printe' ? 'E' : 'I', message);
        return ok('');
      }
      case 'errd':
        return this.errd(request);
      case 'checker':
      case 'boot':
      case 'failover':
        return this.toggle(request);
      case 'incloop': {
        if (!request.identity) throw new UsageError('incloop -m AM -i IDENTITY');
        const exceeded = await this.module(request).incloop(request.identity);
        return exceeded ? { exitCode: 1, text: 'maxloop reached' } : ok('');
      }
      case 'resetloop':
        await this.module(request).resetloop();
        return ok('');
      case 'rfsverify':
      case 'rfsdiff':
        try {
          return ok(
            await this.module(request).replicationReport(verb === 'rfsverify' ? 'verify' : 'estimate'),
          );
        } catch (error) {
          return fail(`${verb}: ${(error as Error).message}`);
        }
      case 'module':
        return this.moduleAdmin(request);
      case 'update': {
        if (args.length > 0) throw new UsageError(`unexpected ${args.join(' ')} (update -m AM)`);
        const supervisor = this.module(request);
        try {
          const outcome = await this.registry.update(supervisor.name, request.identity ?? request.caller);
          return outcome.accepted
            ? ok(`${supervisor.name}: ${outcome.message}`)
            : fail(`${supervisor.name}: ${outcome.message}`);
        } catch (error) {
          return fail(`${supervisor.name}: update refused: ${(error as Error).message}`);
        }
      }
      case 'vip': {
        const [subject, action, ...extra] = args;
        if (subject !== 'traffic' || (action !== 'open' && action !== 'close') || extra.length > 0)
          throw new UsageError('vip traffic open|close -m AM');
        const supervisor = this.module(request);
        const outcome = await supervisor.scriptTraffic(action === 'open', request.identity ?? request.caller);
        return outcome.accepted
          ? ok(`${supervisor.name}: ${outcome.message}`)
          : fail(`${supervisor.name}: ${outcome.message}`);
      }
      case 'snapshot': {
        const { values, rest } = options(args, []);
        const [file] = rest;
        if (!file || !file.startsWith('/') || !file.endsWith('.zip')) {
          throw new UsageError('snapshot -m AM [--anonymize] /absolute/file.zip');
        }
        const module = this.moduleName(request);
        if (!this.registry.installed().includes(module))
          throw new CommandError(`module ${module} is not installed`);
        const snapshot = await createSnapshot(this.paths, this.registry, module, {
          anonymize: values.has('--anonymize'),
        });
        writeFileSync(file, snapshot.zip, { mode: 0o600 });
        const lines = [`snapshot of ${module} written to ${file} (${snapshot.zip.length} bytes)`];
        if (snapshot.catalogue) {
          const catalogueFile = file.replace(/\.zip$/, '-catalog.xml');
          writeFileSync(catalogueFile, snapshot.catalogue, { mode: 0o600 });
          lines.push(`catalogue (keep it here, do not send it): ${catalogueFile}`);
        }
        return ok(lines.join('\n'));
      }
      case 'config':
        return ok(await this.admin.apply(this.moduleName(request)));
      case 'deconfig':
        return ok(await this.admin.deconfig(this.moduleName(request)));
      case 'confcheck':
        return ok(await this.admin.confcheck(this.moduleName(request)));
      case 'confinfo':
        return ok(this.admin.confinfo(this.moduleName(request)));
      case 'cluster':
        return this.cluster(request);
      case 'checkloop':
        return this.module(request).checkloop()
          ? { exitCode: 1, text: 'maxloop reached' }
          : ok('below maxloop');
      default:
        return usage(`unknown command '${verb}'`);
    }
  }

  private moduleName(request: ControlRequest): string {
    if (!request.module) throw new UsageError(`${request.verb}: give the module with -m AM`);
    return request.module;
  }

  private async moduleAdmin(request: ControlRequest): Promise<ControlResponse> {
    const [action, ...rest] = request.args;
    switch (action) {
      case 'install': {
        const { values, rest: files } = options(rest, ['-M']);
        const [source] = files;
        if (!source) throw new UsageError('module install [-m AM] [-M ID] [-r] /path/AM.safe|/path/folder');
        const installOptions: { module?: string; id?: number; reinstall: boolean } = {
          reinstall: values.has('-r'),
        };
        if (request.module) installOptions.module = request.module;
        if (values.has('-M')) installOptions.id = Number(values.get('-M'));
        return ok(await this.admin.install(source, installOptions));
      }
      case 'uninstall':
        return ok(await this.admin.uninstall(this.moduleName(request)));
      case 'list':
        return ok(this.admin.list().join('\n'), this.admin.list());
      case 'listid':
        return ok(this.admin.listIds().join('\n'));
      case 'package': {
        const [file] = rest;
        if (!file) throw new UsageError('module package -m AM /path/new.safe');
        return ok(await this.admin.packageTo(this.moduleName(request), file));
      }
      case 'genkey':
      case 'delkey': {
        if (rest.length > 0) throw new UsageError(`unexpected ${rest.join(' ')} (module ${action} -m AM)`);
        const module = this.moduleName(request);
        return ok(action === 'genkey' ? this.admin.genkey(module) : this.admin.delkey(module));
      }
      default:
        throw new UsageError('module install|uninstall|list|listid|package|genkey|delkey');
    }
  }

  private cluster(request: ControlRequest): ControlResponse {
    const [action, file] = request.args;
    switch (action) {
      case 'config':
        if (!file) throw new UsageError('cluster config /path/cluster.xml');
        return ok(applyClusterFile(this.paths, file));
      case 'confinfo':
        return ok(clusterConfinfo(this.paths));
      case 'confcheck': {
        if (!file) throw new UsageError('cluster confcheck /path/cluster.xml');
        const checked = checkClusterFile(file);
        return checked.ok ? ok(checked.text) : fail(checked.text);
      }
      case 'genkey':
        return ok(generateClusterKey(this.paths));
      case 'delkey':
        return ok(deleteClusterKey(this.paths));
      case 'state':
        return ok(
          this.registry
            .running()
            .map((supervisor) => {
              const status = supervisor.status();
              return `${status.module} ${status.mode} id=${this.registry.ids()[status.module] ?? '?'} ${formatState(status.state, status.readiness)}`;
            })
            .join('\n') || 'no module configured',
        );
      default:
        throw new UsageError('cluster config FILE|confcheck FILE|confinfo|state|genkey|delkey');
    }
  }

  private state(request: ControlRequest): ControlResponse {
    const { values } = options(request.args, []);
    if (!request.module) {
      const statuses = this.registry.running().map((supervisor) => supervisor.status());
      if (values.has('-lq')) throw new UsageError('-lq needs one module: state -m AM -lq');
      return ok(statuses.map(statusLine).join('\n') || 'no module configured', statuses);
    }
    const status = this.module(request).status();
    if (values.has('-lq'))
      return {
        exitCode: stateExitCode[status.state],
        text: formatState(status.state, status.readiness),
        data: status,
      };
    return ok(values.has('-v') ? verboseStatus(status) : statusLine(status), status);
  }

  private async wait(request: ControlRequest): Promise<ControlResponse> {
    const { values, rest } = options(request.args, ['-t']);
    const timeoutMs = values.has('-t') ? Number(values.get('-t')) * 1000 : waitMsDefault;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > waitMsMax) {
      throw new UsageError(`-t takes seconds from 1 to ${waitMsMax / 1000}`);
    }
    const supervisor = this.module(request);
    let done: (status: ModuleStatus) => boolean;
    let goal: string;
    if (request.verb === 'waitstart') {
      goal = 'a started state';
      done = (status) => isStable(status) && status.state !== 'STOP';
    } else if (request.verb === 'waitstop') {
      goal = 'STOP';
      done = (status) => status.state === 'STOP';
    } else {
      const wanted = rest[0]?.toUpperCase();
      if (!wanted || !moduleStateNames.includes(wanted as ModuleStateName)) {
        throw new UsageError(`waitstate -m AM ${moduleStateNames.join('|')}`);
      }
      goal = wanted;
      done = (status) => status.state === wanted && isStable(status);
    }
    const reached = await waitFor(supervisor, done, timeoutMs);
    if (!reached)
      return fail(
        `${supervisor.name}: ${goal} not reached within ${timeoutMs / 1000} s (now ${supervisor.describe()})`,
      );
    const exitCode = request.verb === 'waitstart' && reached.readiness !== 'Ready' ? 1 : 0;
    return { exitCode, text: statusLine(reached), data: reached };
  }

  private async errd(request: ControlRequest): Promise<ControlResponse> {
    const [action, watchClass] = request.args;
    const supervisor = this.module(request);
    switch (action) {
      case 'on':
      case 'resume':
        await supervisor.setSetting('errd', 'on');
        return ok('errd on');
      case 'off':
      case 'suspend':
        await supervisor.setSetting('errd', 'off');
        return ok('errd off');
      case 'enable':
      case 'disable':
        if (!watchClass) throw new UsageError(`errd ${action} CLASS`);
        await supervisor.setCustomClass(watchClass, action === 'enable');
        return ok(`errd class ${watchClass} ${action}d`);
      case 'list':
        return ok(JSON.stringify(supervisor.status().resources, null, 2));
      default:
        throw new UsageError('errd on|off|enable CLASS|disable CLASS|list');
    }
  }

  private async toggle(request: ControlRequest): Promise<ControlResponse> {
    const key = request.verb as keyof UserSettings;
    const [value] = request.args;
    const supervisor = this.module(request);
    if (value === 'status') return ok(`${supervisor.name}: ${key} ${supervisor.status().settings[key]}`);
    if (value !== 'on' && value !== 'off')
      throw new UsageError(`${key} on|off${key === 'boot' ? '|status' : ''}`);
    await supervisor.setSetting(key, value);
    if (key === 'boot' && value === 'on') {
      // A module cannot start at boot unless hakitd does: make sure the daemon's service is enabled.
      const enabled = await enableDaemonAtBoot(this.paths);
      return ok(`${supervisor.name}: boot on\n${enabled}`);
    }
    return ok(`${supervisor.name}: ${key} ${value}`);
  }
}

class CommandError extends Error {}

function enableDaemonAtBoot(paths: NodePaths): Promise<string> {
  const service = join(paths.safeBin, 'hakitd-service');
  if (!existsSync(service))
    return Promise.resolve(`(${service} not installed: hakitd's own start at boot is not managed here)`);
  return new Promise((resolve) => {
    execFile(service, ['enable'], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve(
        error
          ? `hakitd-service enable failed: ${(stderr || error.message).trim()}`
          : stdout.trim() || 'hakitd enabled at boot',
      );
    });
  });
}
