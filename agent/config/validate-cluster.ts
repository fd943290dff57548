// Checks across the modules of one cluster (reference §1, §4.6, §7.1): unique names and ids, no
// replicated directory or virtual IP shared by two modules, no UDP port used twice.
import type { ModuleConfig, SourceRef } from './model.ts';
import { isSameOrInside, type NormalizedPath, normalizePath } from './paths.ts';
import { farmPortOf, heartbeatPortOf, moduleIdMax } from './ports.ts';
import { type ConfigProblem, fileProblem, sortProblems } from './problems.ts';
import { allAddresses } from './validate-module.ts';

export interface ClusterModule {
  readonly name: string;
  /** Module id (same on every node); ports derive from it. */
  readonly id?: number;
  /** The module's userconfig.xml, for problem locations. */
  readonly file: string;
  readonly config: ModuleConfig;
}

function problemAt(module: ClusterModule, source: SourceRef, message: string, hint?: string): ConfigProblem {
  return {
    severity: 'error',
    code: 'cross-module',
    message,
    ...(hint === undefined ? {} : { hint }),
    file: module.file,
    line: source.line,
    column: source.column,
    endLine: source.line,
    endColumn: source.column,
    path: source.path,
  };
}

export function validateClusterModules(modules: readonly ClusterModule[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const names = new Map<string, ClusterModule>();
  const ids = new Map<number, ClusterModule>();
  for (const module of modules) {
    const sameName = names.get(module.name);
    if (sameName !== undefined) {
      problems.push(
        fileProblem(
          module.file,
          'cross-module',
          `module name ${module.name} is used twice (also ${sameName.file})`,
        ),
      );
    } else names.set(module.name, module);
    if (module.id === undefined) continue;
    if (!Number.isInteger(module.id) || module.id < 1 || module.id > moduleIdMax) {
      problems.push(
        fileProblem(
          module.file,
          'cross-module',
          `module ${module.name}: id ${module.id} is not an integer from 1 to ${moduleIdMax}`,
        ),
      );
      continue;
    }
    const sameId = ids.get(module.id);
    if (sameId !== undefined) {
      problems.push(
        fileProblem(
          module.file,
          'cross-module',
          `module ${module.name} has id ${module.id}, already used by module ${sameId.name}`,
        ),
      );
    } else ids.set(module.id, module);
  }

  const directories: { module: ClusterModule; dir: string; path: NormalizedPath; source: SourceRef }[] = [];
  for (const module of modules) {
    for (const replicated of module.config.rfs?.replicated ?? []) {
      const path = normalizePath(replicated.dir);
      if (replicated.dir === '' || path.style === 'relative') continue;
      for (const other of directories) {
        if (other.module === module) continue;
        const otherPath = other.path;
        if (isSameOrInside(otherPath, path) || isSameOrInside(path, otherPath)) {
          problems.push(
            problemAt(
              module,
              replicated.source,
              otherPath.key === path.key
                ? `replicated directory ${replicated.dir} is also replicated by module ${other.module.name}`
                : `replicated directory ${replicated.dir} overlaps ${other.dir} of module ${other.module.name}`,
              'two modules may not replicate the same files',
            ),
          );
        }
      }
      directories.push({ module, dir: replicated.dir, path, source: replicated.source });
    }
  }

  const addresses = new Map<string, { module: ClusterModule }>();
  for (const module of modules) {
    for (const address of allAddresses(module.config)) {
      if (address.addr === '') continue;
      const key = address.addr.toLowerCase();
      const other = addresses.get(key);
      if (other !== undefined && other.module !== module) {
        problems.push(
          problemAt(
            module,
            address.source,
            `virtual IP ${address.addr} is also used by module ${other.module.name}`,
            'each module needs its own VIP',
          ),
        );
      } else if (other === undefined) addresses.set(key, { module });
    }
  }

  const ports = new Map<number, { module: ClusterModule; what: string }>();
  const claim = (module: ClusterModule, port: number, what: string, source: SourceRef | undefined): void => {
    const other = ports.get(port);
    if (other !== undefined && other.module !== module) {
      const message = `UDP port ${port} (${what} of module ${module.name}) is also the ${other.what} of module ${other.module.name}`;
      problems.push(
        source === undefined
          ? fileProblem(module.file, 'cross-module', message)
          : problemAt(module, source, message),
      );
    } else if (other === undefined) ports.set(port, { module, what });
  };
  for (const module of modules) {
    const { heart, farm } = module.config;
    const id = module.id !== undefined && ids.get(module.id) === module ? module.id : undefined;
    if (heart !== undefined) {
      const port = heart.portUdp ?? (id === undefined ? undefined : heartbeatPortOf(id));
      if (port !== undefined) claim(module, port, 'heartbeat port', heart.source);
    }
    if (farm !== undefined) {
      const port = farm.portUdp ?? (id === undefined ? undefined : farmPortOf(id));
      if (port !== undefined) claim(module, port, 'farm port', farm.source);
    }
  }
  return sortProblems(problems);
}
