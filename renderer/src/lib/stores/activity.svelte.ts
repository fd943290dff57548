// Background work the user follows: action tasks, install runs (per node, per step), snapshot
// gathering and the local lab's steps. Fed by console events.
import type { ConsoleEvent, InstallRun, InstallStep, LabStep, Task } from '../../../../main/api/contract.ts';
import { installSteps } from '../../../../main/api/contract.ts';
import { bridge } from './console.svelte.ts';

export interface StepState {
  status: 'pending' | 'running' | 'done' | 'failed';
  progress: number;
  message: string;
}

export interface NodeInstallState {
  node: string;
  steps: Record<InstallStep, StepState>;
  log: string[];
}

const tasksMax = 200;
const installLogLinesMax = 200;

function freshNode(name: string): NodeInstallState {
  const steps = {} as Record<InstallStep, StepState>;
  for (const step of installSteps) steps[step] = { status: 'pending', progress: 0, message: '' };
  return { node: name, steps, log: [] };
}

class ActivityStore {
  tasks = $state<Task[]>([]);
  /** Install progress of the current run, by node id. */
  install = $state<Record<number, NodeInstallState>>({});
  lastRun = $state<InstallRun | null>(null);
  snapshot = $state<Record<string, { status: string; progress: number }>>({});
  lab = $state<LabStep[]>([]);

  constructor() {
    bridge.onEvent((event) => this.apply(event));
  }

  resetInstall(nodes: { id: number; name: string }[]): void {
    const fresh: Record<number, NodeInstallState> = {};
    for (const node of nodes) fresh[node.id] = freshNode(node.name);
    this.install = fresh;
    this.lastRun = null;
  }

  apply(event: ConsoleEvent): void {
    if (event.type === 'task') {
      const index = this.tasks.findIndex((task) => task.id === event.task.id);
      if (index >= 0) this.tasks[index] = event.task;
      else this.tasks = [event.task, ...this.tasks].slice(0, tasksMax);
    } else if (event.type === 'install') {
      // A run started elsewhere (the local lab's flow): its nodes appear as their events come.
      if (!this.install[event.nodeId]) this.install[event.nodeId] = freshNode(event.node);
      const node = this.install[event.nodeId];
      if (!node) return;
      node.steps[event.step] = { status: event.status, progress: event.progress, message: event.message };
      if (event.status !== 'running' || event.progress === 0)
        node.log = [
          ...node.log,
          `${event.step}: ${event.status}${event.message ? ` — ${event.message}` : ''}`,
        ].slice(-installLogLinesMax);
    } else if (event.type === 'installDone') {
      this.lastRun = event.run;
    } else if (event.type === 'snapshot') {
      this.snapshot[event.node] = { status: event.status, progress: event.progress };
    } else if (event.type === 'lab') {
      const index = this.lab.findIndex((step) => step.step === event.step.step);
      if (index >= 0) this.lab[index] = event.step;
      else this.lab = [...this.lab, event.step];
    }
  }
}

export const activity = new ActivityStore();
