// The step lists of every mirror transition: scripts in the order of reference 6.4 with their
// three arguments (current state, next state, action; `force` first on forced stops), state
// changes, checker classes, and the VIP / replication / lease effects at the right places.
// Pure builders; mirror-automaton.ts decides which one runs.
import type { ActivityClass, ScriptStage } from './job.ts';
import type { Generation } from './mirror-data.ts';
import type { Effect, MirrorStep } from './mirror-types.ts';
import type { ModuleStateName, Readiness } from './states.ts';

export const classesAlone: ActivityClass[] = ['pre', 'both', 'prim', 'sec'];
export const classesPrim: ActivityClass[] = ['pre', 'both', 'prim'];
export const classesSecond: ActivityClass[] = ['pre', 'both', 'second', 'sec'];

function script(name: string, args: string[], stage: ScriptStage): MirrorStep {
  return { kind: 'script', script: name, args, stage };
}

function state(stateName: ModuleStateName, readiness: Readiness): MirrorStep {
  return { kind: 'state', state: stateName, readiness };
}

function classes(active: ActivityClass[]): MirrorStep {
  return { kind: 'classes', active };
}

function fx(effect: Effect): MirrorStep {
  return { kind: 'effect', effect };
}

export function log(level: 'U' | 'E' | 'C' | 'I', message: string): MirrorStep {
  return { kind: 'log', level, message };
}

/** M1: STOP -> WAIT: transition, prestart; then the wait rules must clear. */
export function startSteps(effect: Extract<Effect, { type: 'intent' }>): MirrorStep[] {
  const args = ['STOP', 'WAIT', 'start'];
  return [
    fx(effect),
    state('WAIT', 'Transient'),
    script('transition', args, 'other'),
    script('prestart', args, 'start'),
    classes(['pre']),
    { kind: 'awaitWaitClear' },
  ];
}

/** M4 / M6: WAIT -> ALONE (transition, start_both, start_prim, start_sec) or -> PRIM (no start_sec). */
export function enterPrimaryFromWaitSteps(target: 'ALONE' | 'PRIM'): MirrorStep[] {
  const args = ['WAIT', target, 'start'];
  return [
    state(target, 'Transient'),
    fx({ type: 'primaryOn', target }),
    script('transition', args, 'other'),
    fx({ type: 'vipSet' }),
    fx({ type: 'replicationPrimary' }),
    script('start_both', args, 'start'),
    script('start_prim', args, 'start'),
    ...(target === 'ALONE' ? [script('start_sec', args, 'start')] : []),
    classes(target === 'ALONE' ? classesAlone : classesPrim),
    state(target, 'Ready'),
  ];
}

/** M9: SECOND -> ALONE, the failover: stop_second, transition, start_prim. */
export function failoverSteps(cause: string): MirrorStep[] {
  const args = ['SECOND', 'ALONE', 'start'];
  return [
    log('U', `Action alone called by heart: ${cause}`),
    state('ALONE', 'Transient'),
    fx({ type: 'primaryOn', target: 'ALONE' }),
    classes(['pre', 'both', 'sec']),
    script('stop_second', args, 'stop'),
    script('transition', args, 'other'),
    fx({ type: 'vipSet' }),
    fx({ type: 'replicationPrimary' }),
    script('start_prim', args, 'start'),
    classes(classesAlone),
    state('ALONE', 'Ready'),
  ];
}

/** M12, new primary: SECOND -> PRIM: stop_sec, stop_second, transition, start_prim. */
export function swapInSteps(cause: string): MirrorStep[] {
  const args = ['SECOND', 'PRIM', 'start'];
  return [
    log('E', `Transition SWAP from ${cause}`),
    state('PRIM', 'Transient'),
    fx({ type: 'primaryOn', target: 'PRIM' }),
    classes(['pre', 'both']),
    script('stop_sec', args, 'stop'),
    script('stop_second', args, 'stop'),
    script('transition', args, 'other'),
    fx({ type: 'vipSet' }),
    fx({ type: 'replicationPrimary' }),
    script('start_prim', args, 'start'),
    classes(classesPrim),
    state('PRIM', 'Ready'),
  ];
}

/** M12, old primary: PRIM -> SECOND: stop_prim, transition, start_second, start_sec. */
export function swapOutSteps(cause: string, nosync: boolean): MirrorStep[] {
  const args = ['PRIM', 'SECOND', 'start'];
  return [
    log('E', 'Begin of Swap'),
    log('E', `Transition SWAP from ${cause}`),
    state('PRIM', 'Transient'),
    classes(['pre', 'both']),
    script('stop_prim', args, 'stop'),
    fx({ type: 'fence' }),
    fx({ type: 'primaryOff', handover: true }),
    state('SECOND', 'Transient'),
    script('transition', args, 'other'),
    script('start_second', args, 'start'),
    script('start_sec', args, 'start'),
    classes(classesSecond),
    fx({
      type: 'secondaryOn',
      primary: null,
      primaryTenure: null,
      primaryHistory: null,
      fullsync: false,
      reintegrate: !nosync,
    }),
  ];
}

/** M7: ALONE -> PRIM once the secondary finished its reintegration: stop_sec, transition. */
export function aloneToPrimSteps(secondary: number): MirrorStep[] {
  const args = ['ALONE', 'PRIM', 'start'];
  return [
    fx({ type: 'confirmSecondary', secondary }),
    classes(classesPrim),
    script('stop_sec', args, 'stop'),
    script('transition', args, 'other'),
    state('PRIM', 'Ready'),
  ];
}

/** M8: PRIM -> ALONE when the secondary left: transition, start_sec. No downtime. */
export function primToAloneSteps(cause: string): MirrorStep[] {
  const args = ['PRIM', 'ALONE', 'start'];
  return [
    log('U', `Action alone called by heart: ${cause}`),
    state('ALONE', 'Ready'),
    fx({ type: 'aloneGeneration' }),
    script('transition', args, 'other'),
    script('start_sec', args, 'start'),
    classes(classesAlone),
  ];
}

/**
 * M13: the losing side of a healed split brain ("exiting alone"): ALONE -> SECOND with
 * stop_prim, transition, start_second (PRIM -> SECOND adds start_sec, as a swap does). Its data
 * is kept aside by the secondaryOn effect before the reintegration overwrites it.
 */
export function exitingAloneSteps(
  from: 'ALONE' | 'PRIM',
  primary: number,
  primaryTenure: number,
  primaryHistory: Generation[],
): MirrorStep[] {
  const args = [from, 'SECOND', 'start'];
  return [
    log('E', 'Split brain recovery: exiting alone'),
    state(from, 'Transient'),
    classes(['pre', 'both', ...(from === 'ALONE' ? (['sec'] as const) : [])]),
    script('stop_prim', args, 'stop'),
    fx({ type: 'fence' }),
    fx({ type: 'primaryOff', handover: false }),
    state('SECOND', 'Transient'),
    // Kept aside as soon as nothing writes any more, before the reintegration may overwrite it.
    fx({ type: 'secondaryOn', primary, primaryTenure, primaryHistory, fullsync: false, reintegrate: true }),
    script('transition', args, 'other'),
    script('start_second', args, 'start'),
    ...(from === 'PRIM' ? [script('start_sec', args, 'start')] : []),
    classes(classesSecond),
  ];
}

/** M5: WAIT -> SECOND: transition, start_both, start_second, start_sec; then reintegration. */
export function enterSecondSteps(
  primary: number,
  primaryTenure: number,
  primaryHistory: Generation[],
  fullsync: boolean,
): MirrorStep[] {
  const args = ['WAIT', 'SECOND', 'start'];
  return [
    state('SECOND', 'Transient'),
    script('transition', args, 'other'),
    fx({ type: 'secondaryOn', primary, primaryTenure, primaryHistory, fullsync, reintegrate: true }),
    script('start_both', args, 'start'),
    script('start_second', args, 'start'),
    script('start_sec', args, 'start'),
    classes(classesSecond),
  ];
}

/** M14: restart inside PRIM, ALONE or SECOND: only the stop then the start scripts. */
export function restartSteps(from: 'PRIM' | 'ALONE' | 'SECOND'): MirrorStep[] {
  const args = [from, from, 'restart'];
  const s = (name: string, stage: ScriptStage) => script(name, args, stage);
  const scripts: Record<typeof from, MirrorStep[]> = {
    PRIM: [
      s('stop_prim', 'stop'),
      s('stop_both', 'stop'),
      s('start_both', 'start'),
      s('start_prim', 'start'),
    ],
    ALONE: [
      s('stop_sec', 'stop'),
      s('stop_prim', 'stop'),
      s('stop_both', 'stop'),
      s('start_both', 'start'),
      s('start_prim', 'start'),
      s('start_sec', 'start'),
    ],
    SECOND: [
      s('stop_sec', 'stop'),
      s('stop_second', 'stop'),
      s('stop_both', 'stop'),
      s('start_both', 'start'),
      s('start_second', 'start'),
      s('start_sec', 'start'),
    ],
  };
  const after = from === 'PRIM' ? classesPrim : from === 'ALONE' ? classesAlone : classesSecond;
  return [state(from, 'Transient'), classes(['pre']), ...scripts[from], classes(after), state(from, 'Ready')];
}

/** M15: X -> WAIT with the graceful stop scripts of X; the VIP goes after the application. */
export function leaveSteps(from: ModuleStateName, action: string): MirrorStep[] {
  const args = [from, 'WAIT', action];
  const s = (name: string) => script(name, args, 'stop');
  const head: MirrorStep[] = [classes(['pre']), state('WAIT', 'Transient')];
  switch (from) {
    case 'PRIM':
      return [
        ...head,
        s('stop_prim'),
        s('stop_both'),
        fx({ type: 'fence' }),
        fx({ type: 'primaryOff', handover: false }),
        script('transition', args, 'other'),
      ];
    case 'ALONE':
      return [
        ...head,
        s('stop_sec'),
        s('stop_prim'),
        s('stop_both'),
        fx({ type: 'fence' }),
        fx({ type: 'primaryOff', handover: false }),
        script('transition', args, 'other'),
      ];
    case 'SECOND':
      return [
        ...head,
        s('stop_sec'),
        s('stop_second'),
        s('stop_both'),
        fx({ type: 'secondaryOff' }),
        script('transition', args, 'other'),
      ];
    case 'WAIT':
    case 'STOP':
    case 'UP':
      return [
        fx({ type: 'fence' }),
        fx({ type: 'primaryOff', handover: false }),
        fx({ type: 'secondaryOff' }),
      ];
  }
}

/** The forced stop calls: `force` first, then the usual three arguments. */
export function forceStopSteps(from: ModuleStateName, to: ModuleStateName, action: string): MirrorStep[] {
  const args = ['force', from, to, action];
  return [
    script('stop_sec', args, 'force'),
    script('stop_prim', args, 'force'),
    script('stop_second', args, 'force'),
    script('stop_both', args, 'force'),
  ];
}

/** WAIT -> STOP: forced stops, poststop, transition. */
export function reachStopSteps(action: string): MirrorStep[] {
  const args = ['WAIT', 'STOP', action];
  return [
    fx({ type: 'fence' }),
    fx({ type: 'primaryOff', handover: false }),
    fx({ type: 'secondaryOff' }),
    ...forceStopSteps('WAIT', 'STOP', action),
    classes([]),
    script('poststop', args, 'other'),
    script('transition', args, 'other'),
    state('STOP', 'NotReady'),
    fx({ type: 'stopped' }),
  ];
}

/** `stop` from any running state. */
export function stopSteps(from: ModuleStateName, action: string): MirrorStep[] {
  return from === 'WAIT' ? reachStopSteps(action) : [...leaveSteps(from, action), ...reachStopSteps(action)];
}

/**
 * Into WAIT without stopping the module (`wait` rule action, lost reintegration, refused lease,
 * resynchronisation): graceful stops, forced stops with `stopwait`, then the start rules again.
 */
export function stopWaitSteps(from: ModuleStateName): MirrorStep[] {
  const steps = from === 'WAIT' ? leaveSteps('WAIT', 'stopwait') : leaveSteps(from, 'stopwait');
  return [
    ...steps,
    ...(from === 'WAIT' ? [] : forceStopSteps(from, 'WAIT', 'stopwait')),
    fx({ type: 'intent', intent: 'start', fullsync: false, failoverOffHold: false }),
    { kind: 'awaitWaitClear' },
  ];
}

/** Authority lost (arbitrator configured): fence first, then the stop scripts, then WAIT. */
export function demoteSteps(from: ModuleStateName): MirrorStep[] {
  return [
    fx({ type: 'fence' }),
    log('C', 'Primary authority expired (peer and arbitrator lost): VIP removed, writes blocked'),
    ...stopWaitSteps(from),
  ];
}

/** M10: a SECOND whose primary stopped, with failover="off": stopstart into WAIT NotReady. */
export function failoverOffSteps(): MirrorStep[] {
  return [
    log('E', 'Failover-off configured'),
    log('U', 'Action stopstart called by failover-off'),
    log('E', 'Transition STOPSTART from failover-off'),
    ...stopSteps('SECOND', 'stopstart'),
    log('U', 'Action start called automatically'),
    ...startSteps({ type: 'intent', intent: 'start', fullsync: false, failoverOffHold: true }),
  ];
}
