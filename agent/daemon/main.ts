// `hakitd`: the node daemon. Runs in the foreground (systemd or the install's supervisor keeps
// it alive), serves the control socket, and stops cleanly on SIGTERM or SIGINT.
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:net';
import { hakitVersion } from '../version.ts';
import type { ControlRequest, ControlResponse } from './control-protocol.ts';
import { serveControl } from './control-server.ts';
import { nodePaths } from './paths.ts';
import { acquirePidLock, DaemonAlreadyRunningError } from './pid-lock.ts';

const usage = `usage: hakitd [--version]
Runs the hakit node daemon in the foreground until SIGTERM.`;

function log(message: string): void {
  process.stderr.write(`hakitd: ${message}\n`);
}

async function handle(request: ControlRequest): Promise<ControlResponse> {
  switch (request.verb) {
    case 'ping':
      return { exitCode: 0, text: 'pong', data: { pid: process.pid, version: hakitVersion } };
    default:
      return { exitCode: 2, text: '', error: `hakitd does not know the command '${request.verb}'` };
  }
}

async function run(): Promise<number> {
  const paths = nodePaths();
  for (const dir of [paths.safeVar, paths.moduleStateDir, paths.clusterDir])
    mkdirSync(dir, { recursive: true });
  const releasePidLock = acquirePidLock(paths.pidFile);
  let server: Server;
  try {
    server = await serveControl(paths.controlSocket, handle);
  } catch (error) {
    releasePidLock();
    throw error;
  }
  log(`version ${hakitVersion} started (pid ${process.pid}, control socket ${paths.controlSocket})`);
  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      log(`${signal} received: stopping`);
      server.close(() => {
        releasePidLock();
        resolve(0);
      });
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
