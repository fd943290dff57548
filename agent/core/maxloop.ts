// Anti-flapping (reference 2.7): automatic recovery actions carrying an identity are counted
// over `loop_interval`; the (maxloop+1)-th within the window stops the module. An admin action
// without identity resets the count. Pure: the caller stores the state and passes the time.

export interface MaxloopState {
  /** When each counted action happened, oldest first, all within the window. */
  countedAtMs: number[];
  /** When the counter was (re)initialised: the value of resource heart.stopstartloop. */
  initialisedAtMs: number;
}

export interface MaxloopSettings {
  maxloop: number;
  /** 0 disables counting. */
  loopIntervalMs: number;
}

/** More entries than this cannot matter: the limit is reached long before. */
const countedEntriesMax = 1024;

export function initialMaxloop(nowMs: number): MaxloopState {
  return { countedAtMs: [], initialisedAtMs: nowMs };
}

function withinWindow(state: MaxloopState, settings: MaxloopSettings, nowMs: number): number[] {
  return state.countedAtMs.filter((atMs) => nowMs - atMs < settings.loopIntervalMs);
}

export interface MaxloopOutcome {
  state: MaxloopState;
  /** How many counted actions are in the window after this one. */
  count: number;
  /** True when this action goes over the limit: the module must stop instead. */
  exceeded: boolean;
}

/** Counts one automatic action (`-i IDENTITY`). */
export function countAction(state: MaxloopState, settings: MaxloopSettings, nowMs: number): MaxloopOutcome {
  if (settings.loopIntervalMs <= 0) return { state, count: 0, exceeded: false };
  const recent = withinWindow(state, settings, nowMs);
  const restarted = recent.length === 0;
  const countedAtMs = [...recent, nowMs].slice(-countedEntriesMax);
  const next: MaxloopState = {
    countedAtMs,
    initialisedAtMs: restarted ? nowMs : state.initialisedAtMs,
  };
  return { state: next, count: countedAtMs.length, exceeded: countedAtMs.length > settings.maxloop };
}

/** An admin action without identity, or `resetloop`. */
export function resetMaxloop(nowMs: number): MaxloopState {
  return initialMaxloop(nowMs);
}

/** `checkloop`: whether the limit is reached (the count already exceeds maxloop). */
export function maxloopReached(state: MaxloopState, settings: MaxloopSettings, nowMs: number): boolean {
  if (settings.loopIntervalMs <= 0) return false;
  return withinWindow(state, settings, nowMs).length > settings.maxloop;
}
