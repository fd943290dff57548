// Module states and readiness exactly as the reference names them (section 2.1, 3.1).

export const moduleStateNames = ['STOP', 'WAIT', 'ALONE', 'PRIM', 'SECOND', 'UP'] as const;
export type ModuleStateName = (typeof moduleStateNames)[number];

export const readinessNames = ['NotReady', 'Transient', 'Ready'] as const;
export type Readiness = (typeof readinessNames)[number];

/** `hakit state -lq` exit codes (reference 7.4). */
export const stateExitCode: Readonly<Record<ModuleStateName, number>> = {
  STOP: 0,
  WAIT: 1,
  ALONE: 2,
  UP: 2,
  PRIM: 3,
  SECOND: 4,
};

/** The console's colour for a readiness (reference 2.1, 8.2 console). */
export const readinessColour: Readonly<Record<Readiness, string>> = {
  NotReady: 'red',
  Transient: 'orange',
  Ready: 'green',
};

export function formatState(state: ModuleStateName, readiness: Readiness): string {
  return `${state} (${readiness})`;
}
