// Starts console server mode: the services and the HTTP + WebSocket server on 127.0.0.1.
import { join } from 'node:path';
import type { ConsoleServices } from '../services/console-services.ts';
import { createConsole } from '../services/create-console.ts';
import { ConsoleServer } from './console-server.ts';

export interface ServeOptions {
  /** Repository root (development tree) or the folder holding dist/ and resources/. */
  rootDir: string;
  port?: number;
  dataDir?: string;
  token?: string;
  forceFileSecrets?: boolean;
  log?: (message: string) => void;
}

export interface Serving {
  server: ConsoleServer;
  services: ConsoleServices;
  url: string;
  close(): Promise<void>;
}

export async function serveConsole(options: ServeOptions): Promise<Serving> {
  const log = options.log ?? ((message: string) => process.stderr.write(`hakit console: ${message}\n`));
  const services = await createConsole({
    transport: 'server',
    dataDir: options.dataDir,
    resourcesDir: join(options.rootDir, 'resources'),
    agentPackageDirs: [join(options.rootDir, 'dist'), join(options.rootDir, 'resources', 'agent-package')],
    labCli: join(options.rootDir, 'dist', 'lab', 'hakit-lab.cjs'),
    repoDir: options.rootDir,
    forceFileSecrets: options.forceFileSecrets,
    log,
  });
  const server = new ConsoleServer({
    services,
    rendererDir: join(options.rootDir, 'dist', 'renderer'),
    port: options.port ?? Number(process.env.HAKIT_CONSOLE_PORT ?? 0),
    token: options.token,
    log,
  });
  try {
    await server.listen();
  } catch (error) {
    services.close();
    throw new Error(`cannot listen on 127.0.0.1:${options.port ?? 0}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    server,
    services,
    url: server.url,
    async close() {
      await server.close();
      services.close();
    },
  };
}
