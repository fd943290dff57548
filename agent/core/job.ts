// A transition is a list of steps: scripts to run in order, state changes, checker classes to
// switch, waits for the failover rules to allow going on. The automata build these lists; this
// module walks them. Pure: it returns the actions for the daemon to carry out, and advances
// again when the daemon reports that the script it asked for has finished.
import type { ModuleStateName, Readiness } from './states.ts';

/** Checker and errd classes (reference 4.10, 4.11): when a checker or process watch is active. */
export type ActivityClass = 'pre' | 'prim' | 'both' | 'second' | 'sec';

export type LogLevel = 'U' | 'E' | 'C' | 'S' | 'I' | 'D';

export type ScriptStage = 'start' | 'stop' | 'force' | 'other';

export type Step =
  | { kind: 'script'; script: string; args: string[]; stage: ScriptStage }
  | { kind: 'state'; state: ModuleStateName; readiness: Readiness }
  | { kind: 'classes'; active: ActivityClass[] }
  | { kind: 'log'; level: LogLevel; message: string }
  /** Holds the job until no `wait` rule is true (reference M2, M3). */
  | { kind: 'awaitWaitClear' };

export type CoreAction =
  | { type: 'runScript'; script: string; args: string[]; stage: ScriptStage }
  | { type: 'killScript' }
  | { type: 'log'; level: LogLevel; component: string; message: string }
  | { type: 'state'; state: ModuleStateName; readiness: Readiness }
  | { type: 'classes'; active: ActivityClass[] }
  | { type: 'persist' };

export interface Job {
  verb: string;
  steps: Step[];
  /** Index of the step being carried out. */
  index: number;
  /** Set while the script of steps[index] runs. */
  scriptRunning: boolean;
}

export type WaitStatus = { status: 'clear' } | { status: 'pending' } | { status: 'blocked'; rule: string };

export interface JobHost {
  state: ModuleStateName;
  readiness: Readiness;
  activeClasses: ActivityClass[];
  waitStatus: WaitStatus;
  /** The failover rule holding the module in WAIT, shown as a detailed state. */
  blockingRule: string | null;
}

export const stepsMax = 64;

export function newJob(verb: string, steps: Step[]): Job {
  if (steps.length > stepsMax) throw new Error(`job ${verb}: ${steps.length} steps exceed ${stepsMax}`);
  return { verb, steps, index: 0, scriptRunning: false };
}

export interface AdvanceResult<H extends JobHost> {
  host: H;
  job: Job | null;
  actions: CoreAction[];
}

/**
 * Carries out steps until one needs the outside world (a script to finish, the wait rules to
 * clear) or the job ends. Returns job null when it has ended.
 */
export function advanceJob<H extends JobHost>(hostIn: H, jobIn: Job, component: string): AdvanceResult<H> {
  let host = hostIn;
  const job: Job = { ...jobIn };
  const actions: CoreAction[] = [];
  for (let guard = 0; guard <= stepsMax; guard += 1) {
    const step = job.steps[job.index];
    if (step === undefined) return { host, job: null, actions };
    switch (step.kind) {
      case 'script':
        if (job.scriptRunning) return { host, job, actions };
        actions.push({ type: 'log', level: 'S', component, message: `Script ${step.script}` });
        actions.push({ type: 'runScript', script: step.script, args: step.args, stage: step.stage });
        job.scriptRunning = true;
        return { host, job, actions };
      case 'state':
        if (host.state !== step.state || host.readiness !== step.readiness) {
          host = { ...host, state: step.state, readiness: step.readiness };
          actions.push({ type: 'state', state: step.state, readiness: step.readiness });
          actions.push({
            type: 'log',
            level: 'E',
            component,
            message: `Local state ${step.state} ${step.readiness}`,
          });
          actions.push({ type: 'persist' });
        }
        break;
      case 'classes':
        host = { ...host, activeClasses: step.active };
        actions.push({ type: 'classes', active: step.active });
        break;
      case 'log':
        actions.push({ type: 'log', level: step.level, component, message: step.message });
        break;
      case 'awaitWaitClear': {
        const wait = host.waitStatus;
        if (wait.status === 'pending') return { host, job, actions };
        if (wait.status === 'blocked') {
          if (host.blockingRule !== wait.rule || host.readiness !== 'NotReady') {
            host = { ...host, blockingRule: wait.rule, readiness: 'NotReady' };
            actions.push({
              type: 'log',
              level: 'E',
              component,
              message: `Action wait from failover rule ${wait.rule}`,
            });
            actions.push({ type: 'state', state: host.state, readiness: 'NotReady' });
            actions.push({
              type: 'log',
              level: 'E',
              component,
              message: `Local state ${host.state} NotReady`,
            });
            actions.push({ type: 'persist' });
          }
          return { host, job, actions };
        }
        if (host.blockingRule !== null) {
          actions.push({
            type: 'log',
            level: 'E',
            component,
            message: 'Action wakeup from failover rule Implicit_wakeup',
          });
          host = { ...host, blockingRule: null };
        }
        break;
      }
    }
    job.index += 1;
  }
  throw new Error(`job ${job.verb} did not settle within ${stepsMax} steps`);
}

/** The daemon reports that the running script of the job has finished. */
export function scriptFinished(job: Job, script: string): Job {
  const step = job.steps[job.index];
  if (step?.kind !== 'script' || step.script !== script || !job.scriptRunning) {
    throw new Error(`script ${script} finished but job ${job.verb} was not running it`);
  }
  return { ...job, index: job.index + 1, scriptRunning: false };
}

export function currentScriptStage(job: Job): ScriptStage | null {
  const step = job.steps[job.index];
  return step?.kind === 'script' && job.scriptRunning ? step.stage : null;
}
