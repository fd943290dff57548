// The farm automaton (reference 3.1), which light modules use too: STOP -> WAIT -> UP and back,
// restart inside UP, stopstart, wait and wakeup, maxloop. Pure: (core, event, time) -> (core,
// actions). Script order and arguments follow reference 6.4; `force` comes first on the forced
// stop calls.
import {
  type ActivityClass,
  type AdvanceResult,
  advanceJob,
  type CoreAction,
  type Job,
  type JobHost,
  newJob,
  type ScriptStage,
  scriptFinished,
  type Step,
  type WaitStatus,
} from './job.ts';
import {
  countAction,
  initialMaxloop,
  type MaxloopSettings,
  type MaxloopState,
  resetMaxloop,
} from './maxloop.ts';
import type { ModuleStateName, Readiness } from './states.ts';

export type FarmVerb = 'start' | 'stop' | 'forcestop' | 'restart' | 'stopstart' | 'wait';

/** Who asked: an admin (`called by root`), a component (`called by errd`) or a failover rule. */
export type Origin = { kind: 'caller'; who: string } | { kind: 'rule'; rule: string };

export type FarmEvent =
  | { type: 'command'; verb: FarmVerb; identity?: string; origin: Origin; nowMs: number }
  | { type: 'scriptDone'; script: string; exitCode: number | null; timedOut: boolean; nowMs: number }
  | { type: 'waitStatus'; wait: WaitStatus; nowMs: number };

export interface FarmCore extends JobHost {
  job: Job | null;
  /** One command waits while a job runs; a stop replaces a queued start, never the reverse. */
  queued: { verb: FarmVerb; origin: Origin } | null;
  maxloop: MaxloopState;
  /** Why the last start attempt failed, shown as a detailed state. */
  lastFailure: string | null;
}

export interface FarmSettings extends MaxloopSettings {
  /** False without <user>: no scripts at all (reference 4.8). */
  scriptsEnabled: boolean;
}

export interface StepResult {
  core: FarmCore;
  actions: CoreAction[];
  /** For a command: whether it was accepted, and why not. */
  accepted: boolean;
  message: string;
}

const component = 'heart';
const upClasses: ActivityClass[] = ['pre', 'both', 'prim', 'sec'];

export function initialFarmCore(nowMs: number): FarmCore {
  return {
    state: 'STOP',
    readiness: 'NotReady',
    activeClasses: [],
    waitStatus: { status: 'clear' },
    blockingRule: null,
    job: null,
    queued: null,
    maxloop: initialMaxloop(nowMs),
    lastFailure: null,
  };
}

function script(name: string, args: string[], stage: ScriptStage): Step {
  return { kind: 'script', script: name, args, stage };
}

function state(stateName: ModuleStateName, readiness: Readiness): Step {
  return { kind: 'state', state: stateName, readiness };
}

/** WAIT -> UP: transition, start_both, start_prim, start_sec; checkers of the up classes after. */
function enterUpSteps(): Step[] {
  const args = ['WAIT', 'UP', 'start'];
  return [
    state('UP', 'Transient'),
    script('transition', args, 'other'),
    script('start_both', args, 'start'),
    script('start_prim', args, 'start'),
    script('start_sec', args, 'start'),
    { kind: 'classes', active: upClasses },
    state('UP', 'Ready'),
  ];
}

function startSteps(): Step[] {
  const args = ['STOP', 'WAIT', 'start'];
  return [
    state('WAIT', 'Transient'),
    script('transition', args, 'other'),
    script('prestart', args, 'start'),
    { kind: 'classes', active: ['pre'] },
    { kind: 'awaitWaitClear' },
    ...enterUpSteps(),
  ];
}

/** UP -> WAIT: graceful stop scripts. `action` is stop, stopstart or stopwait. */
function leaveUpSteps(action: string): Step[] {
  const args = ['UP', 'WAIT', action];
  return [
    { kind: 'classes', active: ['pre'] },
    state('WAIT', 'Transient'),
    script('stop_sec', args, 'stop'),
    script('stop_prim', args, 'stop'),
    script('stop_both', args, 'stop'),
    script('transition', args, 'other'),
  ];
}

/** The forced stop calls: `force` first, then the usual three arguments. */
function forceStopSteps(from: ModuleStateName, to: ModuleStateName, action: string): Step[] {
  const args = ['force', from, to, action];
  return [
    script('stop_sec', args, 'force'),
    script('stop_prim', args, 'force'),
    script('stop_second', args, 'force'),
    script('stop_both', args, 'force'),
  ];
}

/** WAIT -> STOP: forced stops, poststop, transition. */
function reachStopSteps(action: string): Step[] {
  const args = ['WAIT', 'STOP', action];
  return [
    ...forceStopSteps('WAIT', 'STOP', action),
    { kind: 'classes', active: [] },
    script('poststop', args, 'other'),
    script('transition', args, 'other'),
    state('STOP', 'NotReady'),
  ];
}

function stopSteps(from: ModuleStateName, action: string): Step[] {
  return from === 'UP' ? [...leaveUpSteps(action), ...reachStopSteps(action)] : reachStopSteps(action);
}

function restartSteps(): Step[] {
  const args = ['UP', 'UP', 'restart'];
  return [
    state('UP', 'Transient'),
    { kind: 'classes', active: ['pre'] },
    script('stop_sec', args, 'stop'),
    script('stop_prim', args, 'stop'),
    script('stop_both', args, 'stop'),
    script('start_both', args, 'start'),
    script('start_prim', args, 'start'),
    script('start_sec', args, 'start'),
    { kind: 'classes', active: upClasses },
    state('UP', 'Ready'),
  ];
}

/** `wait` from UP: stop the application and hold in WAIT until the wait rules clear. */
function waitSteps(): Step[] {
  return [
    ...leaveUpSteps('stopwait'),
    ...forceStopSteps('UP', 'WAIT', 'stopwait'),
    { kind: 'awaitWaitClear' },
    ...enterUpSteps(),
  ];
}

function describeOrigin(origin: Origin): string {
  return origin.kind === 'rule' ? `from failover rule ${origin.rule}` : `called by ${origin.who}`;
}

function withoutScripts(steps: Step[], settings: FarmSettings): Step[] {
  return settings.scriptsEnabled ? steps : steps.filter((step) => step.kind !== 'script');
}

function run(
  core: FarmCore,
  actions: CoreAction[],
  settings: FarmSettings,
): { core: FarmCore; actions: CoreAction[] } {
  if (core.job === null) return { core, actions };
  const advanced: AdvanceResult<FarmCore> = advanceJob(core, core.job, component);
  let next: FarmCore = { ...advanced.host, job: advanced.job };
  const all = [...actions, ...advanced.actions];
  if (next.job === null && next.queued !== null) {
    // The job ended: the queued command runs now, re-checked against the new state.
    const queued = next.queued;
    next = { ...next, queued: null };
    const job = plan(next, queued.verb, settings);
    return job === null ? { core: next, actions: all } : run({ ...next, job }, all, settings);
  }
  return { core: next, actions: all };
}

/** The job for a verb in the current state, or null when the verb does not apply. */
function plan(core: FarmCore, verb: FarmVerb, settings: FarmSettings): Job | null {
  const steps = (list: Step[]) => newJob(verb, withoutScripts(list, settings));
  switch (verb) {
    case 'start':
      return core.state === 'STOP' ? steps(startSteps()) : null;
    case 'stop':
      return core.state === 'STOP' ? null : steps(stopSteps(core.state, 'stop'));
    case 'forcestop':
      return core.state === 'STOP' ? null : steps(reachStopSteps('stop'));
    case 'restart':
      return core.state === 'UP' && core.readiness === 'Ready' ? steps(restartSteps()) : null;
    case 'stopstart':
      if (core.state === 'STOP') return null;
      return steps([
        ...stopSteps(core.state, 'stopstart'),
        { kind: 'log', level: 'U', message: 'Action start called automatically' },
        ...startSteps(),
      ]);
    case 'wait':
      return core.state === 'UP' ? steps(waitSteps()) : null;
  }
}

function refuse(core: FarmCore, message: string): StepResult {
  return { core, actions: [], accepted: false, message };
}

function handleCommand(
  core: FarmCore,
  event: Extract<FarmEvent, { type: 'command' }>,
  settings: FarmSettings,
): StepResult {
  let verb = event.verb;
  let origin = event.origin;
  const actions: CoreAction[] = [];
  let maxloop = core.maxloop;
  if (event.identity === undefined) {
    maxloop = resetMaxloop(event.nowMs);
  } else {
    const counted = countAction(maxloop, settings, event.nowMs);
    maxloop = counted.state;
    if (counted.exceeded && verb !== 'stop' && verb !== 'forcestop') {
      actions.push({
        type: 'log',
        level: 'E',
        component,
        message: `Action ${verb} ${describeOrigin(origin)} refused: maxloop reached (${counted.count} actions within loop_interval)`,
      });
      verb = 'stop';
      origin = { kind: 'caller', who: 'maxloop' };
    }
  }
  let next: FarmCore = { ...core, maxloop };
  const busy = next.job !== null;
  if (busy) {
    const isStop = verb === 'stop' || verb === 'forcestop';
    if (!isStop && verb !== 'start') {
      // A checker firing during a transition must not pile up work: the transition decides.
      return { ...refuse(next, `module is busy (${next.job?.verb} in progress)`), actions };
    }
    if (verb === 'start' && next.job?.verb !== 'stop' && next.job?.verb !== 'forcestop') {
      return { ...refuse(next, `module is already starting (${next.job?.verb} in progress)`), actions };
    }
    if (
      next.queued !== null &&
      !isStop &&
      (next.queued.verb === 'stop' || next.queued.verb === 'forcestop')
    ) {
      return { ...refuse(next, 'a stop is already queued'), actions };
    }
    next = { ...next, queued: { verb, origin } };
    actions.push({
      type: 'log',
      level: 'U',
      component,
      message: `Action ${verb} ${describeOrigin(origin)} (queued)`,
    });
    if (verb === 'forcestop') actions.push({ type: 'killScript' });
    actions.push({ type: 'persist' });
    return { core: next, actions, accepted: true, message: `${verb} queued after ${core.job?.verb}` };
  }
  const job = plan(next, verb, settings);
  if (job === null) {
    if (verb === 'stop' || verb === 'forcestop')
      return { core: next, actions, accepted: true, message: 'module is already stopped' };
    return { ...refuse(next, `${verb} is not possible in state ${next.state} (${next.readiness})`), actions };
  }
  actions.push({ type: 'log', level: 'U', component, message: `Action ${verb} ${describeOrigin(origin)}` });
  if (verb === 'start') next = { ...next, lastFailure: null };
  next = { ...next, job };
  const ran = run(next, actions, settings);
  return {
    core: ran.core,
    actions: [...ran.actions, { type: 'persist' }],
    accepted: true,
    message: `${verb} accepted`,
  };
}

function handleScriptDone(
  core: FarmCore,
  event: Extract<FarmEvent, { type: 'scriptDone' }>,
  settings: FarmSettings,
): StepResult {
  if (core.job === null) throw new Error(`script ${event.script} finished with no job running`);
  const step = core.job.steps[core.job.index];
  const stage = step?.kind === 'script' ? step.stage : 'other';
  const actions: CoreAction[] = [];
  const failed = event.timedOut || event.exitCode !== 0;
  if (failed) {
    const why = event.timedOut ? 'timed out and was killed' : `exited with ${event.exitCode ?? 'a signal'}`;
    actions.push({
      type: 'log',
      level: stage === 'start' ? 'C' : event.timedOut ? 'E' : 'I',
      component,
      message: `Script ${event.script} ${why}`,
    });
  }
  let next: FarmCore = { ...core, job: scriptFinished(core.job, event.script) };
  if (next.queued !== null && (next.queued.verb === 'stop' || next.queued.verb === 'forcestop')) {
    // A queued stop interrupts the running job at the next script boundary.
    const queued = next.queued;
    next = { ...next, job: null, queued: null };
    const job = plan(next, queued.verb, settings);
    if (job !== null) next = { ...next, job };
    const ran = run(next, actions, settings);
    return { core: ran.core, actions: ran.actions, accepted: true, message: '' };
  }
  if (failed && stage === 'start') {
    // A start script that fails leaves the application in an unknown state: stop everything and
    // try again; the identity makes repeated failures end in STOP through maxloop.
    next = { ...next, job: null, lastFailure: `${event.script} failed`, queued: null };
    const retried = handleCommand(
      next,
      {
        type: 'command',
        verb: 'stopstart',
        identity: event.script,
        origin: { kind: 'caller', who: event.script },
        nowMs: event.nowMs,
      },
      settings,
    );
    return { ...retried, actions: [...actions, ...retried.actions], accepted: true, message: '' };
  }
  const ran = run(next, actions, settings);
  return { core: ran.core, actions: ran.actions, accepted: true, message: '' };
}

/** One step of the automaton. `settings` come from the effective configuration. */
export function stepFarm(core: FarmCore, event: FarmEvent, settings: FarmSettings): StepResult {
  switch (event.type) {
    case 'command':
      return handleCommand(core, event, settings);
    case 'scriptDone':
      return handleScriptDone(core, event, settings);
    case 'waitStatus': {
      const next: FarmCore = { ...core, waitStatus: event.wait };
      const ran = run(next, [], settings);
      return { core: ran.core, actions: ran.actions, accepted: true, message: '' };
    }
  }
}
