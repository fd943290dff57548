// The modules of this node: which are installed (with their ids, identical on every node),
// which are applied (a runtime copy exists), and the running supervisor of each applied one.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeJsonDurably } from './durable-file.ts';
import type { ModuleRuntimeConfig } from './module-runtime-config.ts';
import { type ModuleEvent, ModuleSupervisor, type UpdateOutcome } from './module-supervisor.ts';
import { isReadyState, remoteModuleReady } from './remote-module.ts';
import type { NodePaths } from './paths.ts';

export const modulesMax = 32;
export const moduleIdMax = 255;
const moduleNamePattern = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

export function moduleNameProblem(name: string): string | null {
  return moduleNamePattern.test(name)
    ? null
    : `bad module name '${name}': 1 to 32 letters, digits or _, starting with a letter`;
}

type ModuleIds = Record<string, number>;

function isModuleIds(value: unknown): value is ModuleIds {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value).every((id) => Number.isInteger(id) && id >= 1 && id <= moduleIdMax)
  );
}

/** Builds a module's runtime configuration from its applied files; throws a readable error. */
export type RuntimeConfigLoader = (module: string, id: number) => ModuleRuntimeConfig;

export class ModuleRegistry {
  private readonly supervisors = new Map<string, ModuleSupervisor>();
  private readonly idsFile: string;

  constructor(
    private readonly paths: NodePaths,
    private readonly loadConfig: RuntimeConfigLoader,
    private readonly log: (message: string) => void,
    private readonly onEvent: (event: ModuleEvent) => void = () => undefined,
  ) {
    this.idsFile = join(paths.safeVar, 'modules.json');
  }

  ids(): ModuleIds {
    const read = readJsonFile(this.idsFile, isModuleIds);
    if (read.kind === 'corrupt')
      throw new Error(`${this.idsFile} is damaged (${read.reason}); restore it or reinstall`);
    return read.kind === 'ok' ? read.value : {};
  }

  /** Records a module id; the lowest free one unless `wantedId` is given. */
  assignId(module: string, wantedId?: number): number {
    const ids = this.ids();
    if (wantedId === undefined && ids[module] !== undefined) return ids[module];
    const taken = new Set(
      Object.entries(ids)
        .filter(([name]) => name !== module)
        .map(([, id]) => id),
    );
    if (wantedId !== undefined) {
      if (!Number.isInteger(wantedId) || wantedId < 1 || wantedId > moduleIdMax) {
        throw new Error(`module id ${wantedId} out of range 1..${moduleIdMax}`);
      }
      if (taken.has(wantedId)) throw new Error(`module id ${wantedId} is already used on this node`);
      ids[module] = wantedId;
    } else {
      if (Object.keys(ids).length >= modulesMax) throw new Error(`a node runs at most ${modulesMax} modules`);
      let id = 1;
      while (taken.has(id)) id += 1;
      ids[module] = id;
    }
    writeJsonDurably(this.idsFile, ids);
    return ids[module];
  }

  releaseId(module: string): void {
    const ids = this.ids();
    delete ids[module];
    writeJsonDurably(this.idsFile, ids);
  }

  installed(): string[] {
    if (!existsSync(this.paths.modulesDir)) return [];
    return readdirSync(this.paths.modulesDir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && moduleNameProblem(entry.name) === null)
      .map((entry) => entry.name)
      .sort();
  }

  applied(): string[] {
    if (!existsSync(this.paths.runtimeModulesDir)) return [];
    return readdirSync(this.paths.runtimeModulesDir, { withFileTypes: true })
      .filter(
        (entry) => entry.isDirectory() && existsSync(join(this.paths.runtimeModulesDir, entry.name, 'conf')),
      )
      .map((entry) => entry.name)
      .sort();
  }

  get(module: string): ModuleSupervisor | undefined {
    return this.supervisors.get(module);
  }

  running(): ModuleSupervisor[] {
    return [...this.supervisors.values()];
  }

  /** Starts a supervisor for every applied module (daemon start). */
  async openAll(): Promise<void> {
    for (const module of this.applied()) {
      try {
        await this.open(module);
      } catch (error) {
        this.log(`module ${module} not loaded: ${(error as Error).message}`);
      }
    }
  }

  async open(module: string): Promise<ModuleSupervisor> {
    const existing = this.supervisors.get(module);
    if (existing) return existing;
    const id = this.ids()[module];
    if (id === undefined)
      throw new Error(`module ${module} has no id; install it with: hakit module install -m ${module}`);
    // Monotonic: the mirror automaton's deadlines must not jump with the wall clock.
    const monotonicNowMs = () => Math.floor(performance.timeOrigin + performance.now());
    const supervisor = new ModuleSupervisor(
      this.loadConfig(module, id),
      this.paths,
      monotonicNowMs,
      this.onEvent,
    );
    supervisor.moduleReady = async (spec) => {
      if (spec.remote) return remoteModuleReady(this.paths, spec.module, spec.remote);
      const status = this.supervisors.get(spec.module)?.status();
      if (!status) return { up: false, detail: `module ${spec.module} is not configured on this node` };
      return {
        up: isReadyState(status.state, status.readiness),
        detail: `module ${spec.module} is ${status.state} (${status.readiness})`,
        readyGeneration: status.readyGeneration,
      };
    };
    this.supervisors.set(module, supervisor);
    try {
      await supervisor.open();
    } catch (error) {
      this.supervisors.delete(module);
      await supervisor.close();
      throw error;
    }
    return supervisor;
  }

  /**
   * A dynamic update of a running module: its applied configuration and cluster.xml read again
   * and handed to its supervisor, which takes what may change while running or refuses.
   */
  async update(module: string, by: string): Promise<UpdateOutcome> {
    const supervisor = this.supervisors.get(module);
    if (!supervisor) throw new Error(`module ${module} is not configured on this node`);
    const id = this.ids()[module];
    if (id === undefined) throw new Error(`module ${module} has no id`);
    return supervisor.update(this.loadConfig(module, id), by);
  }

  /** Reloads a module after `config`: it must be stopped (checked by the caller). */
  async reload(module: string): Promise<ModuleSupervisor> {
    await this.close(module);
    return this.open(module);
  }

  async close(module: string): Promise<void> {
    const supervisor = this.supervisors.get(module);
    if (!supervisor) return;
    this.supervisors.delete(module);
    await supervisor.close();
  }

  async closeAll(): Promise<void> {
    for (const module of [...this.supervisors.keys()]) await this.close(module);
  }
}
