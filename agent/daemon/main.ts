// `hakitd`: the node daemon. Runs in the foreground (systemd or the install's supervisor keeps
// it alive), serves the control socket, and stops cleanly on SIGTERM or SIGINT.
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:net';
import { hakitVersion } from '../version.ts';
import { join } from 'node:path';
import { arbitratorUsage, parseArbitratorArgs, runArbitrator } from '../arbitrator/run.ts';
import { ApiServer } from '../api/api-server.ts';
import { readApiSettings } from '../api/api-settings.ts';
import { Credentials, credentialsFile } from '../api/credentials.ts';
import { EventHub } from '../api/events.ts';
import { ensureNodeCertificate, tlsFiles } from '../api/tls.ts';
import { CommandAudit } from './command-audit.ts';
import { CommandHandler } from './command-handler.ts';
import { ModuleRegistry } from './module-registry.ts';
import { loadRuntimeConfig } from './runtime-config-loader.ts';
import { serveControl } from './control-server.ts';
import { nodePaths } from './paths.ts';
import { acquirePidLock, DaemonAlreadyRunningError } from './pid-lock.ts';

const usage = `usage: hakitd [--version]
Runs the hakit node daemon in the foreground until SIGTERM.
   or: ${arbitratorUsage}`;

function log(message: string): void {
  process.stderr.write(`hakitd: ${message}\n`);
}

async function run(): Promise<number> {
  const paths = nodePaths();
  for (const dir of [
    paths.safeVar,
    paths.moduleStateDir,
    paths.clusterDir,
    paths.modulesDir,
    paths.runtimeModulesDir,
  ]) {
    mkdirSync(dir, { recursive: true });
  }
  const releasePidLock = acquirePidLock(paths.pidFile);
  const events = new EventHub();
  const registry = new ModuleRegistry(
    paths,
    (module, id) => loadRuntimeConfig(paths, module, id),
    log,
    (event) => events.publish(event),
  );
  const audit = new CommandAudit(join(paths.safeVar, 'log', 'commands.log'));
  const handler = new CommandHandler(registry, paths, audit);
  let server: Server;
  try {
    await registry.openAll();
    server = await serveControl(paths.controlSocket, (request) =>
      audit.around(request, () => handler.handle(request)),
    );
  } catch (error) {
    await registry.closeAll();
    releasePidLock();
    throw error;
  }
  let api: ApiServer | null = null;
  try {
    const settings = readApiSettings(paths);
    const tls = tlsFiles(paths);
    await ensureNodeCertificate(tls);
    api = new ApiServer({
      paths,
      registry,
      handler,
      credentials: new Credentials(credentialsFile(paths)),
      events,
      tls,
      ...settings,
      log,
    });
    await api.listen();
    log(
      `API on https port ${settings.httpsPort}, http port ${settings.httpPort} (${settings.httpApi ? 'full API' : 'health check only'})`,
    );
  } catch (error) {
    // The modules matter more than the API: keep supervising them, and say loudly why the API is off.
    log(`API not started: ${(error as Error).message}`);
    api = null;
  }
  log(
    `version ${hakitVersion} started (pid ${process.pid}, control socket ${paths.controlSocket}, ` +
      `${registry.running().length} module(s))`,
  );
  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      log(`${signal} received: stopping`);
      server.close();
      void api?.close();
      // Modules keep running across a daemon restart: only their watchers stop here.
      registry.closeAll().then(
        () => {
          releasePidLock();
          resolve(0);
        },
        (error: unknown) => {
          log(`stopping modules' watchers failed: ${(error as Error).message}`);
          releasePidLock();
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--version')) {
    process.stdout.write(`hakitd ${hakitVersion}\n`);
    return 0;
  }
  if (argv.includes('--help')) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (argv[0] === '--arbitrator') {
    try {
      return await runArbitrator(nodePaths(), parseArbitratorArgs(argv), log);
    } catch (error) {
      log(`arbitrator cannot start: ${(error as Error).message}`);
      return 1;
    }
  }
  if (argv.length > 0) {
    process.stderr.write(`hakitd: unknown arguments: ${argv.join(' ')}\n${usage}\n`);
    return 2;
  }
  try {
    return await run();
  } catch (error) {
    if (error instanceof DaemonAlreadyRunningError) log(error.message);
    else log(`cannot start: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
