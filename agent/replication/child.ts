// Entry point of the replication child process (one per mirror module, forked by hakitd through
// process.ts). Talks to its parent over the IPC channel only: requests {id, method, args}, replies
// {id, ok, result | error}, and unsolicited {event}. It exits when the parent goes away, leaving
// its mounts dead (fenced): a dead daemon's node never takes writes it does not replicate.
import type { DataPathConfig, PeerControl, PrimaryStart, SecondaryStart } from './data-path.ts';
import { DataPath } from './data-path.ts';

export type ChildRequest =
  | { readonly id: number; readonly method: 'init'; readonly args: DataPathConfig }
  | { readonly id: number; readonly method: 'startPrimary'; readonly args: PrimaryStart }
  | { readonly id: number; readonly method: 'startSecondary'; readonly args: SecondaryStart }
  | { readonly id: number; readonly method: 'setPeer'; readonly args: PeerControl }
  | { readonly id: number; readonly method: 'stop'; readonly args: { readonly force: boolean } }
  | {
      readonly id: number;
      readonly method: 'status' | 'verify' | 'estimate' | 'fullSync';
      readonly args: Record<string, never>;
    };

let dataPath: DataPath | undefined;

function reply(message: object): void {
  if (process.connected) process.send?.(message);
}

async function handle(request: ChildRequest): Promise<unknown> {
  if (request.method === 'init') {
    if (dataPath !== undefined) throw new Error('already initialised');
    process.umask(0);
    dataPath = new DataPath(request.args);
    dataPath.on('event', (event: object) => reply({ event }));
    return dataPath.status();
  }
  if (dataPath === undefined) throw new Error('not initialised');
  switch (request.method) {
    case 'startPrimary':
      await dataPath.startPrimary(request.args);
      return dataPath.status();
    case 'startSecondary':
      await dataPath.startSecondary(request.args);
      return dataPath.status();
    case 'setPeer':
      await dataPath.setPeer(request.args);
      return dataPath.status();
    case 'stop':
      await dataPath.stop(request.args.force);
      return dataPath.status();
    case 'status':
      return dataPath.status();
    case 'verify':
      return dataPath.verify();
    case 'estimate':
      return dataPath.estimate();
    case 'fullSync':
      return dataPath.fullSync();
  }
}

process.on('message', (message: ChildRequest) => {
  handle(message).then(
    (result) => reply({ id: message.id, ok: true, result }),
    (error: unknown) => reply({ id: message.id, ok: false, error: (error as Error).message }),
  );
});

process.on('disconnect', () => {
  // The daemon died (a clean shutdown stops the data path first). Exit without unmounting: a
  // FUSE mount left without its server fails every access, where an unmounted directory would
  // take the application's writes unreplicated and unjournaled while the peer takes over. The
  // next start clears the dead mounts.
  process.exit(1);
});
