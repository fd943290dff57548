// `hakitd --arbitrator [--port N] [--lease DURATION] [--bind ADDRESS]`: runs the lease arbitrator
// in the foreground. The cluster key is the cluster's (`$SAFEVAR/cluster/cluster.key`); port and
// lease come from the flags, else from the <arbitrator> of `$SAFEVAR/cluster/cluster.xml` when
// this host has one, else the defaults (4810, 4 s). Nodes asking for a longer lease than this
// arbitrator's are refused by the core's own bound (see docs/mirror.md).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseDuration } from '../config/duration.ts';
import { leaseTimingFor } from '../core/arbitrator-lease.ts';
import { clusterKeyFile, readClusterForValidation } from '../daemon/cluster-files.ts';
import type { NodePaths } from '../daemon/paths.ts';
import { clusterIdOf, loadClusterKey } from '../heartbeat/cluster-key.ts';
import { ArbitratorServer } from './server.ts';

export const arbitratorUsage = `hakitd --arbitrator [--port N] [--lease DURATION] [--bind ADDRESS]
Runs the lease arbitrator of the cluster's mirror modules on this (third) host.`;

export interface ArbitratorOptions {
  port: number | undefined;
  leaseMs: number | undefined;
  bindAddress: string;
}

export function parseArbitratorArgs(argv: readonly string[]): ArbitratorOptions {
  const options: ArbitratorOptions = { port: undefined, leaseMs: undefined, bindAddress: '::' };
  for (let index = 0; index < argv.length; index += 1) {
    const flag = argv[index];
    if (flag === '--arbitrator') continue;
    const value = argv[index + 1];
    if (value === undefined) throw new Error(`${flag}: missing value\n${arbitratorUsage}`);
    index += 1;
    switch (flag) {
      case '--port': {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 1 || port > 65_535)
          throw new Error(`--port ${value}: not a port`);
        options.port = port;
        break;
      }
      case '--lease': {
        const parsed = parseDuration(value, '--lease', { unit: 'ms', zeroAllowed: false });
        if (!parsed.ok) throw new Error(parsed.message);
        options.leaseMs = parsed.value;
        break;
      }
      case '--bind':
        options.bindAddress = value;
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${arbitratorUsage}`);
    }
  }
  return options;
}

export async function runArbitrator(
  paths: NodePaths,
  options: ArbitratorOptions,
  log: (message: string) => void,
): Promise<number> {
  const key = loadClusterKey(clusterKeyFile(paths));
  const configured = readClusterForValidation(paths)?.arbitrator;
  const timing = leaseTimingFor(options.leaseMs ?? configured?.leaseMs ?? 4000);
  const stateDir = join(paths.safeVar, 'arbitrator');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const server = new ArbitratorServer(
    {
      key,
      clusterId: clusterIdOf(key),
      bindAddress: options.bindAddress,
      port: options.port ?? configured?.portUdp ?? 4810,
      timing,
      stateFile: join(stateDir, 'state.json'),
    },
    log,
  );
  await server.listen();
  return new Promise((resolve) => {
    const shutdown = (signal: string) => {
      log(`${signal} received: stopping (counters ${JSON.stringify(server.counters)})`);
      void server.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}
