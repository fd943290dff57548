// Live state of the clusters the UI watches: one NodeStream per installed node, folded into a
// LiveMatrixState and flushed to the UI every `flushMs` (events are batched, not forwarded one by
// one: 100 events/s on 1000 cells stay one small message per flush). Log events are forwarded
// only for the modules someone follows, in bounded batches.
import type { ConsoleEvent, Id, LiveMatrix, LogEntryView } from '../../api/contract.ts';
import { NodeStream } from '../agents/event-stream.ts';
import type { AgentEndpoint } from '../agents/pinned-https.ts';
import { LiveMatrixState } from './live-matrix.ts';

export const flushMs = 50;
export const logBatchEntriesMax = 500;

export interface WatchedNode {
  nodeId: Id;
  node: string;
  /** null: the agent is not installed (or not pinned) yet. */
  endpoint: AgentEndpoint | null;
}

interface Watch {
  matrix: LiveMatrixState;
  streams: NodeStream[];
  followed: Set<string>;
  logs: { module: string; entry: LogEntryView }[];
  droppedLogs: number;
}

export class LiveService {
  private readonly watches = new Map<Id, Watch>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly emit: (event: ConsoleEvent) => void) {
    this.timer = setInterval(() => this.flush(), flushMs);
    this.timer.unref();
  }

  watch(clusterId: Id, nodes: WatchedNode[]): LiveMatrix {
    const existing = this.watches.get(clusterId);
    if (existing) return existing.matrix.whole();
    const matrix = new LiveMatrixState(clusterId);
    const watch: Watch = { matrix, streams: [], followed: new Set(), logs: [], droppedLogs: 0 };
    this.watches.set(clusterId, watch);
    for (const node of nodes) {
      const base = { nodeId: node.nodeId, node: node.node, agentVersion: null, clockSkewMs: null };
      if (node.endpoint === null) {
        matrix.setNode({
          ...base,
          status: 'not installed',
          detail: 'install the agent first',
          atMs: Date.now(),
        });
        continue;
      }
      matrix.setNode({ ...base, status: 'connecting', detail: '', atMs: Date.now() });
      const stream = new NodeStream(
        node.endpoint,
        {
          status: (status, detail, info) =>
            matrix.setNode({
              ...base,
              status,
              detail,
              agentVersion: info.version,
              clockSkewMs: info.clockSkewMs,
              atMs: Date.now(),
            }),
          fullState: (modules) => matrix.setFull(node.nodeId, modules),
          state: (update) => matrix.setCell(node.nodeId, update),
          log: (entry) => {
            if (!watch.followed.has(entry.module)) return;
            if (watch.logs.length >= logBatchEntriesMax) {
              watch.droppedLogs += 1;
              return;
            }
            watch.logs.push({
              module: entry.module,
              entry: {
                node: node.node,
                timeMs: entry.timeMs,
                level: entry.level,
                component: entry.component,
                message: entry.message,
              },
            });
          },
        },
        { withLogs: true },
      );
      watch.streams.push(stream);
      stream.start();
    }
    return matrix.whole();
  }

  matrix(clusterId: Id): LiveMatrix | null {
    return this.watches.get(clusterId)?.matrix.whole() ?? null;
  }

  unwatch(clusterId: Id): void {
    const watch = this.watches.get(clusterId);
    if (!watch) return;
    for (const stream of watch.streams) stream.close();
    this.watches.delete(clusterId);
  }

  follow(clusterId: Id, module: string, follow: boolean): void {
    const watch = this.watches.get(clusterId);
    if (!watch) return;
    if (follow) watch.followed.add(module);
    else watch.followed.delete(module);
  }

  flush(): void {
    for (const [clusterId, watch] of this.watches) {
      if (watch.matrix.hasChanges()) {
        const changes = watch.matrix.takeChanges();
        this.emit({ type: 'live', clusterId, ...changes });
      }
      if (watch.logs.length > 0) {
        const byModule = new Map<string, LogEntryView[]>();
        for (const { module, entry } of watch.logs) {
          const list = byModule.get(module) ?? [];
          list.push(entry);
          byModule.set(module, list);
        }
        watch.logs = [];
        if (watch.droppedLogs > 0) {
          const first = byModule.keys().next().value ?? '';
          byModule.get(first)?.push({
            node: 'console',
            timeMs: Date.now(),
            level: 'E',
            component: 'console',
            message: `${watch.droppedLogs} log messages not shown (more than ${logBatchEntriesMax} per ${flushMs} ms); reload the log to see them`,
          });
          watch.droppedLogs = 0;
        }
        for (const [module, entries] of byModule) this.emit({ type: 'log', clusterId, module, entries });
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const clusterId of [...this.watches.keys()]) this.unwatch(clusterId);
  }
}
