// The nodes x modules matrix of one cluster, as data: what each agent last reported, folded into
// cells with the original's colours and badges. Pure: the live service feeds it and flushes its
// changes to the UI in batches.
import type { LiveCell, LiveMatrix, LiveNode, ModuleState, Readiness } from '../../api/contract.ts';
import type { AgentModuleState } from '../agents/event-stream.ts';

const moduleStates: ReadonlySet<string> = new Set(['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP']);
const readinessValues: ReadonlySet<string> = new Set(['NotReady', 'Transient', 'Ready']);
export const badgesMax = 4;

export type CellColour = 'green' | 'orange' | 'red' | 'grey';

/** The original's colours: Ready green, Transient orange, NotReady red, not configured grey. */
export function cellColour(
  cell: Pick<LiveCell, 'state' | 'readiness'> | undefined,
  nodeReachable: boolean,
): CellColour {
  if (!nodeReachable) return 'red';
  if (!cell || cell.state === null || cell.readiness === null) return 'grey';
  if (cell.readiness === 'Ready') return 'green';
  if (cell.readiness === 'Transient') return 'orange';
  return 'red';
}

/** Badges from what the agent reports: detail lines (a rule that fired), mirror flags, farm share. */
export function badgesOf(update: AgentModuleState): string[] {
  const badges: string[] = [];
  const extra = update.extra;
  if (typeof extra.uptodate === 'boolean') badges.push(extra.uptodate ? 'uptodate' : 'not uptodate');
  if (extra.degraded === true) badges.push('degraded');
  if (typeof extra.reintegrationPercent === 'number')
    badges.push(`reintegration ${Math.round(extra.reintegrationPercent)}%`);
  if (typeof extra.sharePercent === 'number') badges.push(`${Math.round(extra.sharePercent)}%`);
  for (const line of update.detail) if (badges.length < badgesMax) badges.push(line.slice(0, 80));
  return badges.slice(0, badgesMax);
}

export function cellOf(nodeId: number, update: AgentModuleState): LiveCell {
  const state =
    update.state !== null && moduleStates.has(update.state) ? (update.state as ModuleState) : null;
  const readiness =
    update.readiness !== null && readinessValues.has(update.readiness)
      ? (update.readiness as Readiness)
      : null;
  return {
    nodeId,
    module: update.module,
    state: update.configured ? state : null,
    readiness: update.configured ? readiness : null,
    badges: update.configured ? badgesOf(update) : ['not configured'],
    atMs: update.atMs,
  };
}

export const cellKey = (nodeId: number, module: string): string => `${nodeId}\u0000${module}`;

export class LiveMatrixState {
  readonly nodes = new Map<number, LiveNode>();
  readonly cells = new Map<string, LiveCell>();
  private readonly changedNodes = new Set<number>();
  private readonly changedCells = new Set<string>();
  private readonly removedCells = new Set<string>();
  private moduleSetChanged = false;

  constructor(readonly clusterId: number) {}

  setNode(node: LiveNode): void {
    this.nodes.set(node.nodeId, node);
    this.changedNodes.add(node.nodeId);
  }

  /** The whole list from one node: cells of modules it no longer has go away. */
  setFull(nodeId: number, modules: AgentModuleState[]): void {
    const present = new Set(modules.map((module) => module.module));
    for (const [key, cell] of this.cells) {
      if (cell.nodeId === nodeId && !present.has(cell.module)) {
        this.cells.delete(key);
        this.removedCells.add(key);
        this.moduleSetChanged = true;
      }
    }
    for (const module of modules) this.setCell(nodeId, module);
  }

  setCell(nodeId: number, update: AgentModuleState): void {
    const key = cellKey(nodeId, update.module);
    const known = this.modules();
    this.cells.set(key, cellOf(nodeId, update));
    this.changedCells.add(key);
    this.removedCells.delete(key);
    if (!known.includes(update.module)) this.moduleSetChanged = true;
  }

  modules(): string[] {
    return [...new Set([...this.cells.values()].map((cell) => cell.module))].sort();
  }

  hasChanges(): boolean {
    return this.changedNodes.size > 0 || this.changedCells.size > 0 || this.moduleSetChanged;
  }

  /** The changes since the last call; removed cells come back as not configured. */
  takeChanges(): { nodes: LiveNode[]; cells: LiveCell[]; modules: string[] } {
    const nodes = [...this.changedNodes].flatMap((id) => {
      const node = this.nodes.get(id);
      return node ? [node] : [];
    });
    const cells = [...this.changedCells].flatMap((key) => {
      const cell = this.cells.get(key);
      return cell ? [cell] : [];
    });
    for (const key of this.removedCells) {
      const [nodeId, module] = key.split('\u0000');
      cells.push({
        nodeId: Number(nodeId),
        module: module ?? '',
        state: null,
        readiness: null,
        badges: ['not configured'],
        atMs: Date.now(),
      });
    }
    this.changedNodes.clear();
    this.changedCells.clear();
    this.removedCells.clear();
    this.moduleSetChanged = false;
    return { nodes, cells, modules: this.modules() };
  }

  whole(): LiveMatrix {
    return {
      clusterId: this.clusterId,
      nodes: [...this.nodes.values()],
      modules: this.modules(),
      cells: [...this.cells.values()],
    };
  }
}
