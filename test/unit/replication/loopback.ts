// What the replication tests over loopback share: a data path's configuration under a scratch
// directory (one data dir and one state dir per side, one cluster key), a free-looking port, an
// event wait with a deadline, and the primary's interceptor called as the FUSE thread would.
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type {
  DataPathConfig,
  DataPathEvent,
  PrimaryStart,
  SecondaryStart,
} from '../../../agent/replication/data-path.ts';
import { makePathFilter } from '../../../agent/replication/filter.ts';
import type { FuseAddon } from '../../../agent/replication/fuse/addon.ts';
import { Interceptor } from '../../../agent/replication/interceptor.ts';
import type { Replicator } from '../../../agent/replication/replicator.ts';

export interface LoopbackOptions {
  readonly moduleName?: string;
  readonly asyncMode?: 'second' | 'none';
  readonly acl?: boolean;
  readonly locktimeoutMs?: number;
  readonly sendtimeoutMs?: number;
  readonly noMounts?: boolean;
  /** `reiallowedbw`: the reintegration's bandwidth cap (0: none). */
  readonly reintegrationBytesPerSec?: number;
}

export const clusterKeyName = 'cluster.key';

/** A random port in 20000-39999: tests of different files may run at once. */
export function loopbackPort(): number {
  return 20_000 + Math.floor(Math.random() * 20_000);
}

/** Writes the cluster key both sides read (mode 0600, as the data path demands). */
export function writeClusterKey(root: string): void {
  writeFileSync(join(root, clusterKeyName), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
}

/** Side `side` under `root`: data in data-<side>, state in state-<side>; no mounts by default. */
export function loopbackConfig(
  root: string,
  side: string,
  port: number,
  options: LoopbackOptions = {},
): DataPathConfig {
  return {
    moduleName: options.moduleName ?? 'am',
    nodeName: side,
    stateDir: join(root, `state-${side}`),
    clusterKeyFile: join(root, clusterKeyName),
    dirs: [{ dir: join(root, `data-${side}`), exclusions: [] }],
    port,
    asyncMode: options.asyncMode ?? 'none',
    acl: options.acl ?? false,
    locktimeoutMs: options.locktimeoutMs ?? 10_000,
    sendtimeoutMs: options.sendtimeoutMs ?? 2_000,
    reiallowedbwBytesPerSec: options.reintegrationBytesPerSec ?? 0,
    noMounts: options.noMounts ?? true,
  };
}

/** The first `name` event of a data path (or of a replication process), within `timeoutMs`. */
export function waitEvent(source: EventEmitter, name: string, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      source.off('event', listener);
      reject(new Error(`no ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (event: DataPathEvent) => {
      if (event.event !== name) return;
      clearTimeout(timer);
      source.off('event', listener);
      resolvePromise();
    };
    source.on('event', listener);
  });
}

/**
 * Starts the secondary (listening on 127.0.0.1), then the primary, and waits for the first
 * reintegration to end; returns what the primary's start returned. Either side may be an
 * in-process DataPath or a ReplicationProcess.
 */
export async function startPair<Started>(
  primary: EventEmitter & { startPrimary(start: PrimaryStart): Promise<Started> },
  secondary: { startSecondary(start: SecondaryStart): Promise<unknown> },
  timeoutMs = 30_000,
): Promise<Started> {
  await secondary.startSecondary({ listenHost: '127.0.0.1' });
  const synced = waitEvent(primary, 'secondary-up-to-date', timeoutMs);
  const started = await primary.startPrimary({ peerHost: '127.0.0.1', fullSync: false });
  await synced;
  return started;
}

/** The interceptor of replicated dir 0 over `realDir`, called directly (no mount). */
export function directInterceptor(
  realDir: string,
  replicator: Replicator | undefined,
  addon: FuseAddon,
  warn: (message: string) => void,
): Interceptor {
  return new Interceptor({
    index: 0,
    realDir,
    replicator,
    filter: makePathFilter([]),
    addon,
    acl: false,
    warn,
  });
}
