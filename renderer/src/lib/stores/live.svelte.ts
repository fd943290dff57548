// Live state of the cluster on screen: nodes, modules and cells, patched by `live` events (each
// cell is its own reactive entry, so one state change redraws one cell).
import type {
  ConsoleEvent,
  Id,
  LiveCell,
  LiveMatrix,
  LiveNode,
  LogEntryView,
} from '../../../../main/api/contract.ts';
import { bridge } from './console.svelte.ts';

export const followedEntriesMax = 5000;

export function cellKey(nodeId: Id, module: string): string {
  return `${nodeId}/${module}`;
}

class LiveStore {
  clusterId = $state<Id | null>(null);
  nodes = $state<Record<number, LiveNode>>({});
  nodeOrder = $state<Id[]>([]);
  modules = $state<string[]>([]);
  cells = $state<Record<string, LiveCell>>({});
  /** Console time of the last live event applied (tests read it from the page). */
  lastEventMs = $state(0);
  followed = $state<LogEntryView[]>([]);
  followedModule = $state<string | null>(null);

  constructor() {
    bridge.onEvent((event) => this.apply(event));
  }

  load(matrix: LiveMatrix): void {
    this.clusterId = matrix.clusterId;
    const nodes: Record<number, LiveNode> = {};
    for (const node of matrix.nodes) nodes[node.nodeId] = node;
    this.nodes = nodes;
    this.nodeOrder = matrix.nodes.map((node) => node.nodeId);
    this.modules = matrix.modules;
    const cells: Record<string, LiveCell> = {};
    for (const cell of matrix.cells) cells[cellKey(cell.nodeId, cell.module)] = cell;
    this.cells = cells;
  }

  apply(event: ConsoleEvent): void {
    if (event.type === 'log' && event.clusterId === this.clusterId && event.module === this.followedModule) {
      const next = [...this.followed, ...event.entries];
      this.followed = next.length > followedEntriesMax ? next.slice(-followedEntriesMax) : next;
      return;
    }
    if (event.type !== 'live' || event.clusterId !== this.clusterId) return;
    for (const node of event.nodes) {
      if (!(node.nodeId in this.nodes)) this.nodeOrder = [...this.nodeOrder, node.nodeId];
      this.nodes[node.nodeId] = node;
    }
    for (const cell of event.cells) this.cells[cellKey(cell.nodeId, cell.module)] = cell;
    if (event.modules.join('\u0000') !== this.modules.join('\u0000')) this.modules = event.modules;
    this.lastEventMs = Date.now();
  }
}

export const liveStore = new LiveStore();
