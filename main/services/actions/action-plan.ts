// What an action will do, before it runs: the risks worth a confirmation (from the live state),
// the equivalent commands, and the order of the nodes. Pure.
import type { ActionName, ActionPlan, LiveCell, LiveNode } from '../../api/contract.ts';

export interface PlanNode {
  nodeId: number;
  node: string;
  cell: LiveCell | undefined;
  live: LiveNode | undefined;
}

/** The `hakit` words of an action. */
export function cliWords(action: ActionName): string[] {
  switch (action) {
    case 'failover-on':
      return ['failover', 'on'];
    case 'failover-off':
      return ['failover', 'off'];
    case 'boot-on':
      return ['boot', 'on'];
    case 'boot-off':
      return ['boot', 'off'];
    default:
      return [action];
  }
}

function quoteHosts(nodes: readonly string[]): string {
  return nodes.length === 1 ? (nodes[0] ?? '') : `"${nodes.join(',')}"`;
}

function stateText(cell: LiveCell | undefined): string {
  if (!cell || cell.state === null) return 'not configured';
  return `${cell.state} (${cell.readiness ?? '?'})`;
}

function isPrimary(cell: LiveCell | undefined): boolean {
  return cell?.state === 'PRIM' || cell?.state === 'ALONE';
}

function isUptodate(cell: LiveCell | undefined): boolean | null {
  if (!cell) return null;
  if (cell.badges.includes('not uptodate')) return false;
  if (cell.badges.includes('uptodate')) return true;
  return null;
}

export function planAction(
  module: string,
  action: ActionName,
  targets: readonly PlanNode[],
  all: readonly PlanNode[],
): ActionPlan {
  const risks: string[] = [];
  const others = (target: PlanNode) => all.filter((candidate) => candidate.nodeId !== target.nodeId);
  for (const target of targets) {
    const where = `${module} on ${target.node}`;
    if (target.live && target.live.status !== 'connected')
      risks.push(`${target.node} is ${target.live.status}: the action may not reach it`);
    if (!target.cell || target.cell.state === null) {
      if (action !== 'boot-on' && action !== 'boot-off')
        risks.push(`${where} is not configured: the agent will refuse`);
      continue;
    }
    const peerReady = others(target).some(
      (peer) =>
        peer.cell?.readiness === 'Ready' && (peer.cell.state === 'SECOND' || peer.cell.state === 'UP'),
    );
    switch (action) {
      case 'stop':
      case 'stopstart':
        if (isPrimary(target.cell))
          risks.push(
            peerReady
              ? `${where} is ${stateText(target.cell)}: the application moves to the other node (a failover)`
              : `${where} is ${stateText(target.cell)} and no other node is ready to take over: the service stops`,
          );
        else if (target.cell.state === 'UP' && !peerReady)
          risks.push(`${where} is the last ready node of the farm: the service stops`);
        break;
      case 'restart':
        if (isPrimary(target.cell) || target.cell.state === 'UP')
          risks.push(
            `${where} is ${stateText(target.cell)}: the application is briefly unavailable while it restarts`,
          );
        break;
      case 'prim': {
        const uptodate = isUptodate(target.cell);
        if (uptodate === false)
          risks.push(
            `${target.node} is not up to date: as primary it would serve stale data and the newer data on the other node would be overwritten at reintegration`,
          );
        const otherPrimary = others(target).find((peer) => isPrimary(peer.cell));
        if (otherPrimary)
          risks.push(`${otherPrimary.node} is already primary (${stateText(otherPrimary.cell)})`);
        break;
      }
      case 'primforce': {
        const uptodate = isUptodate(target.cell);
        risks.push(
          uptodate === false
            ? `${target.node} is not up to date: primforce makes it primary anyway, with its stale data; the newer data on the other node is overwritten when that node comes back as secondary`
            : `primforce makes ${target.node} primary without checking that it holds the latest data; the other node's changes since it last replicated are lost when it comes back as secondary`,
        );
        const otherPrimary = others(target).find((peer) => isPrimary(peer.cell));
        if (otherPrimary)
          risks.push(
            `${otherPrimary.node} is primary (${stateText(otherPrimary.cell)}): two primaries would mean two writers; stop it first`,
          );
        if (target.cell.state !== 'STOP' && target.cell.state !== 'WAIT')
          risks.push(
            `${where} is ${stateText(target.cell)}: primforce applies to a stopped or waiting module`,
          );
        break;
      }
      case 'swap':
        if (!others(target).some((peer) => peer.cell?.state === 'SECOND' && peer.cell.readiness === 'Ready'))
          risks.push('no node is SECOND (Ready): a swap cannot complete and the service may stop');
        else
          risks.push(
            `the application stops on the primary and starts on the secondary: a short interruption`,
          );
        break;
      case 'second':
        if (isPrimary(target.cell))
          risks.push(`${where} is primary: making it secondary moves the application away`);
        break;
      case 'failover-off':
        risks.push(
          `with failover off, ${module} will not move to another node if ${target.node}'s primary fails`,
        );
        break;
      default:
        break;
    }
  }
  // The original's global stop stops secondaries first, to avoid a needless failover.
  const order = [...targets].sort((a, b) => {
    if (action !== 'stop') return a.node.localeCompare(b.node);
    return Number(isPrimary(a.cell)) - Number(isPrimary(b.cell)) || a.node.localeCompare(b.node);
  });
  const words = cliWords(action).join(' ');
  const names = order.map((target) => target.node);
  const cli = [
    `hakit -H ${quoteHosts(names)} ${words} -m ${module}`,
    ...order.map((target) => `${target.node}# hakit ${words} -m ${module}`),
  ];
  return { risks: [...new Set(risks)], cli, nodeOrder: order.map((target) => target.nodeId) };
}
