// Reads an applied module (`$SAFE/private/modules/AM/conf/userconfig.xml`) through the shared
// configuration model and turns it into what the supervisor runs. A configuration with errors
// is refused with every problem listed: nothing half-applied.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckerSpec } from '../checkers/checker-scheduler.ts';
import type { CustomCheckerSpec } from '../checkers/custom-checkers.ts';
import type { ErrdWatchConfig } from '../checkers/errd-monitor.ts';
import type { Checker, ModuleConfig } from '../config/model.ts';
import { formatProblem } from '../config/problems.ts';
import { moduleKeyPath } from '../config/module-package.ts';
import { loadUserconfig } from '../config/userconfig.ts';
import type { ActivityClass } from '../core/job.ts';
import { compileFailover } from '../core/rule-compiler.ts';
import type { MirrorRuntime, ModuleRuntimeConfig } from './module-runtime-config.ts';
import { networkInterfaces } from 'node:os';
import { heartbeatEndpoints } from '../heartbeat/endpoints.ts';
import { replicationRuntimeOf } from './mirror-replication.ts';
import { clusterIdOf, loadClusterKey } from '../heartbeat/cluster-key.ts';
import type { VipSpec } from '../net/vip.ts';
import { clusterFile, clusterKeyFile, readClusterForValidation } from './cluster-files.ts';
import type { NodePaths } from './paths.ts';
import { farmRuntimeOf, type FarmRuntime } from './farm-runtime.ts';
import { moduleKeySignature, readModuleKeyFile } from './module-key.ts';

export class ModuleConfigError extends Error {
  override name = 'ModuleConfigError';
}

const hourMs = 3600_000;

function whenClass(when: string): ActivityClass {
  return when === 'pre' || when === 'prim' || when === 'both' || when === 'second' ? when : 'both';
}

function compileRegex(pattern: string | undefined, where: string): RegExp | null {
  if (pattern === undefined || pattern.length === 0) return null;
  try {
    return new RegExp(pattern);
  } catch (error) {
    throw new ModuleConfigError(`${where}: bad regular expression '${pattern}': ${(error as Error).message}`);
  }
}

function checkerSpecs(checkers: readonly Checker[]): {
  periodic: CheckerSpec[];
  custom: CustomCheckerSpec[];
} {
  const periodic: CheckerSpec[] = [];
  const custom: CustomCheckerSpec[] = [];
  for (const checker of checkers) {
    switch (checker.type) {
      case 'tcp':
        // One resource per checker: with several <to>, the first target decides (the reference
        // documents one <to> per tcp checker).
        for (const target of checker.targets.slice(0, 1)) {
          periodic.push({
            kind: 'tcp',
            ident: checker.ident,
            when: whenClass(checker.when),
            host: target.addr,
            port: target.port,
            intervalMs: target.intervalSec * 1000,
            timeoutMs: target.timeoutSec * 1000,
          });
        }
        break;
      case 'ping':
        for (const target of checker.targets.slice(0, 1)) {
          periodic.push({
            kind: 'ping',
            ident: checker.ident,
            when: whenClass(checker.when),
            host: target.addr,
            intervalMs: target.intervalSec * 1000,
            timeoutMs: target.timeoutSec * 1000,
          });
        }
        break;
      case 'intf':
        for (const localAddress of checker.localAddrs.slice(0, 1)) {
          periodic.push({
            kind: 'intf',
            ident: checker.ident,
            when: whenClass(checker.when),
            localAddress,
            intervalMs: 10_000,
          });
        }
        break;
      case 'custom':
        custom.push({
          ident: checker.ident,
          when: whenClass(checker.when),
          exec: checker.exec,
          args: checker.arg === undefined ? [] : checker.arg.split(/\s+/).filter((part) => part.length > 0),
        });
        break;
      case 'module': {
        // No <to>: the module on this node, checked every 10 s (the reference's defaults).
        const target = checker.targets[0] ?? { addr: undefined, intervalSec: 10, timeoutSec: 5, port: 9453 };
        if (target.addr !== undefined) {
          // Another node: through its API over HTTPS (its pinned certificate, the node key).
          periodic.push({
            kind: 'module',
            ident: checker.ident,
            when: 'pre',
            module: checker.module,
            intervalMs: target.intervalSec * 1000,
            remote: {
              host: target.addr,
              port: target.port === 9010 ? 9453 : target.port,
              timeoutMs: target.timeoutSec * 1000,
            },
          });
          break;
        }
        periodic.push({
          kind: 'module',
          ident: checker.ident,
          when: 'pre',
          module: checker.module,
          intervalMs: target.intervalSec * 1000,
        });
        break;
      }
      default:
        // ip and splitbrain checkers come with the virtual IP and mirror work.
        break;
    }
  }
  return { periodic, custom };
}

function splitBrainOf(checkers: readonly Checker[]): MirrorRuntime['splitBrain'] {
  for (const checker of checkers) {
    if (checker.type === 'splitbrain')
      return { resource: checker.resource, witnesses: [...checker.witnesses] };
  }
  return null;
}

export function runtimeConfigOf(
  name: string,
  id: number,
  config: ModuleConfig,
  mirror: MirrorRuntime | null = null,
): ModuleRuntimeConfig {
  const { periodic, custom } = checkerSpecs(config.checkers);
  const failover = compileFailover(config.checkers, config.failover);
  const errd = config.errd;
  return {
    name,
    id,
    mode: config.mode,
    boot: config.service.boot,
    bootDelayMs: config.service.bootDelaySec * 1000,
    maxloop: config.service.maxloop,
    loopIntervalMs: config.service.loopIntervalHours * hourMs,
    user: config.user
      ? {
          nicestopTimeoutMs: config.user.nicestoptimeoutSec * 1000,
          forcestopTimeoutMs: config.user.forcestoptimeoutSec * 1000,
          logging: config.user.logging,
          userlogBytesMax: config.user.userlogsizeKB * 1024,
          vars: Object.fromEntries(config.user.vars.map((variable) => [variable.name, variable.value])),
        }
      : null,
    errd: errd
      ? {
          pollTimerMs: errd.polltimerSec * 1000,
          watches: errd.processes.map((process): ErrdWatchConfig => ({
            name: process.name,
            nameRegex: compileRegex(process.nameregex, `errd process ${process.name} nameregex`),
            argRegex: compileRegex(process.argregex, `errd process ${process.name} argregex`),
            atLeast: process.atleast,
            atMax: process.atmax,
            watchClass: process.class,
            action: process.action,
            startAfter: process.startAfter ?? 0,
            isService: process.service,
          })),
        }
      : null,
    checkers: periodic,
    customCheckers: custom,
    failover: {
      periodMs: config.failover?.periodMs ?? 5000,
      handleTimeMs: config.failover?.handleTimeMs ?? 15_000,
      rules: failover.rules,
    },
    mirror,
  };
}

function localAddresses(): Set<string> {
  const addresses = new Set<string>();
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.add(entry.address);
  }
  return addresses;
}

/** The peer, heartbeats and virtual IPs of a mirror module, from its config and cluster.xml. */
export function mirrorRuntimeOf(
  paths: NodePaths,
  module: string,
  id: number,
  config: ModuleConfig,
): MirrorRuntime {
  const cluster = readClusterForValidation(paths);
  if (!cluster)
    throw new ModuleConfigError(
      `mirror module ${module}: no valid cluster configuration (${clusterFile(paths)})`,
    );
  if (!config.heart || config.heart.heartbeats.length === 0) {
    throw new ModuleConfigError(`mirror module ${module}: <heart> has no <heartbeat>`);
  }
  const local = localAddresses();
  const firstLan = cluster.lans.find((lan) => lan.name === config.heart?.heartbeats[0]?.lan);
  const me = firstLan?.nodes.find(
    (node) => local.has(node.addr.host) || (node.laddr && local.has(node.laddr.host)),
  );
  if (!firstLan || !me) {
    throw new ModuleConfigError(
      `mirror module ${module}: none of this node's addresses is in lan ${config.heart.heartbeats[0]?.lan} of cluster.xml`,
    );
  }
  const peer = firstLan.nodes.find((node) => node.name !== me.name);
  if (!peer) throw new ModuleConfigError(`mirror module ${module}: lan ${firstLan.name} has no second node`);
  const keyFile = clusterKeyFile(paths);
  if (!existsSync(keyFile)) {
    throw new ModuleConfigError(
      `mirror module ${module}: no cluster key (${keyFile}); run hakit cluster genkey, then hakit -H "*" -G`,
    );
  }
  const key = loadClusterKey(keyFile);
  const vips: VipSpec[] = (config.vip?.interfaces ?? []).flatMap((vipInterface) =>
    vipInterface.realAddresses.map((address) => {
      const spec: VipSpec = {
        address: address.addr,
        where: address.where === 'one_side' ? 'one_side' : 'one_side_alias',
        tcpreset: config.vip?.tcpreset === 'on',
      };
      return {
        ...spec,
        ...(vipInterface.name ? { interfaceName: vipInterface.name } : {}),
        ...(address.netmask ? { netmask: address.netmask } : {}),
      };
    }),
  );
  return {
    localNode: me.name,
    peerNode: peer.name,
    clusterId: clusterIdOf(key),
    key,
    lans: heartbeatEndpoints(config.heart, cluster, id, me.name, peer.name),
    vips,
    defaultPrimary: config.service.defaultPrimary,
    failover: config.service.failover,
    arbitrator:
      cluster.arbitrator === undefined
        ? null
        : {
            host: cluster.arbitrator.addr.host,
            portUdp: cluster.arbitrator.portUdp,
            leaseMs: cluster.arbitrator.leaseMs,
          },
    splitBrain: splitBrainOf(config.checkers),
    replication: config.rfs !== undefined,
    ...(config.rfs === undefined
      ? {}
      : {
          rfs: replicationRuntimeOf(
            config.rfs,
            module,
            me.name,
            id,
            heartbeatEndpoints(config.heart, cluster, id, me.name, peer.name),
            paths.safeVar,
            keyFile,
            moduleKeyFileOf(paths, module),
          ),
        }),
  };
}

/**
 * Module encryption: on when the applied module has `conf/modulekey.dat` (the cluster key's
 * format, mode 600); its replication stream then runs in TLS (docs/replication.md).
 */
export function moduleKeyFileOf(paths: NodePaths, module: string): string | undefined {
  const file = join(paths.runtimeModulesDir, module, ...moduleKeyPath.split('/'));
  return existsSync(file) ? file : undefined;
}

export function userconfigFile(paths: NodePaths, module: string): string {
  return join(paths.runtimeModulesDir, module, 'conf', 'userconfig.xml');
}

/** Loads and checks an applied module; throws ModuleConfigError listing every error. */
export function loadRuntimeConfig(paths: NodePaths, module: string, id: number): ModuleRuntimeConfig {
  const config = loadModuleRuntime(paths, module, id);
  const keyFile = moduleKeyFileOf(paths, module);
  if (keyFile === undefined) return config;
  try {
    return { ...config, encryptionKeySignature: moduleKeySignature(readModuleKeyFile(keyFile, module)) };
  } catch (error) {
    throw new ModuleConfigError(`module ${module}: ${(error as Error).message}`);
  }
}

function loadModuleRuntime(paths: NodePaths, module: string, id: number): ModuleRuntimeConfig {
  const file = userconfigFile(paths, module);
  if (!existsSync(file))
    throw new ModuleConfigError(`module ${module} is not configured: ${file} is missing`);
  const loaded = loadUserconfig(readFileSync(file, 'utf8'), {
    file,
    environment: process.env,
    moduleName: module,
  });
  if (!loaded.ok || loaded.config === undefined) {
    const errors = loaded.problems.filter((problem) => problem.severity === 'error').map(formatProblem);
    throw new ModuleConfigError(`module ${module} has configuration errors:\n${errors.join('\n')}`);
  }
  if (loaded.config.mode === 'mirror') {
    return runtimeConfigOf(module, id, loaded.config, mirrorRuntimeOf(paths, module, id, loaded.config));
  }
  if (loaded.config.mode === 'farm' && loaded.config.farm !== undefined) {
    return {
      ...runtimeConfigOf(module, id, loaded.config),
      farm: farmRuntimeFor(paths, module, id, loaded.config),
    };
  }
  return runtimeConfigOf(module, id, loaded.config);
}

/** A farm module's nodes, key and groups from cluster.xml and its config; null without <farm> lans. */
function farmRuntimeFor(
  paths: NodePaths,
  module: string,
  id: number,
  config: ModuleConfig,
): FarmRuntime | null {
  const cluster = readClusterForValidation(paths);
  if (!cluster)
    throw new ModuleConfigError(
      `farm module ${module}: no valid cluster configuration (${clusterFile(paths)})`,
    );
  const keyFile = clusterKeyFile(paths);
  if (!existsSync(keyFile)) {
    throw new ModuleConfigError(
      `farm module ${module}: no cluster key (${keyFile}); run hakit cluster genkey, then hakit -H "*" -G`,
    );
  }
  const key = loadClusterKey(keyFile);
  try {
    return farmRuntimeOf(module, id, config, cluster, localAddresses(), key, clusterIdOf(key));
  } catch (error) {
    throw new ModuleConfigError((error as Error).message);
  }
}
