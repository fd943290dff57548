// Where hakit lives on a node. Compatible with published modules: $SAFE, $SAFEBIN, $SAFEVAR.
// HAKIT_SAFE / HAKIT_SAFEVAR / HAKIT_RUN move everything (tests on the host use this).
import { join } from 'node:path';

export interface NodePaths {
  /** Install root: the CLI, the runtime copy of modules, binaries. */
  safe: string;
  /** Helper binaries and the bundled Node runtime. */
  safeBin: string;
  /** Variable data: module state, logs, cluster configuration. */
  safeVar: string;
  /** Runtime files: the daemon's control socket and pid file. */
  run: string;
  /** Editable module folders. */
  modulesDir: string;
  /** Applied runtime copies of modules, with the effective configuration. */
  runtimeModulesDir: string;
  /** Per-module state and logs. */
  moduleStateDir: string;
  clusterDir: string;
  controlSocket: string;
  pidFile: string;
}

export function nodePaths(env: NodeJS.ProcessEnv = process.env): NodePaths {
  const safe = env.HAKIT_SAFE ?? '/opt/hakit';
  const safeVar = env.HAKIT_SAFEVAR ?? '/var/hakit';
  const run = env.HAKIT_RUN ?? '/run/hakit';
  return {
    safe,
    safeBin: join(safe, 'private', 'bin'),
    safeVar,
    run,
    modulesDir: join(safe, 'modules'),
    runtimeModulesDir: join(safe, 'private', 'modules'),
    moduleStateDir: join(safeVar, 'modules'),
    clusterDir: join(safeVar, 'cluster'),
    controlSocket: join(run, 'hakitd.sock'),
    pidFile: join(run, 'hakitd.pid'),
  };
}
