// Drives the pure farm automaton through a scenario: commands, script completions and wait
// status changes, recording what it does in a compact text form for golden files and asserts.
import {
  type FarmCore,
  type FarmEvent,
  type FarmSettings,
  initialFarmCore,
  stepFarm,
} from '../../../agent/core/farm-automaton.ts';
import type { CoreAction, WaitStatus } from '../../../agent/core/job.ts';

export type ScenarioEvent =
  | {
      type: 'command';
      verb: Extract<FarmEvent, { type: 'command' }>['verb'];
      identity?: string;
      who?: string;
      rule?: string;
      atMs?: number;
    }
  /**
   * Answers every script the automaton asks for until none is pending: exit 0, except the first
   * run of each script listed in exitCodes / timedOut within this event.
   */
  | {
      type: 'runScripts';
      exitCodes?: Record<string, number>;
      /** Exit codes for every run of these scripts within the event. */
      exitCodesAlways?: Record<string, number>;
      timedOut?: string[];
      atMs?: number;
    }
  /** Answers exactly one pending script. */
  | { type: 'scriptDone'; script: string; exitCode?: number; atMs?: number }
  | { type: 'waitStatus'; wait: WaitStatus; atMs?: number };

export interface ScenarioRecord {
  event: string;
  state: string;
  accepted: boolean;
  message: string;
  actions: string[];
}

export function describeAction(action: CoreAction): string {
  switch (action.type) {
    case 'runScript':
      return `run ${action.script} ${action.args.join(' ')}`;
    case 'killScript':
      return 'kill running script';
    case 'log':
      return `log ${action.level} ${action.component}: ${action.message}`;
    case 'state':
      return `state ${action.state} ${action.readiness}`;
    case 'classes':
      return `classes [${action.active.join(' ')}]`;
    case 'persist':
      return 'persist';
  }
}

function pendingScript(core: FarmCore): string | null {
  const job = core.job;
  if (!job?.scriptRunning) return null;
  const step = job.steps[job.index];
  return step?.kind === 'script' ? step.script : null;
}

export class FarmScenario {
  core: FarmCore;
  nowMs = 0;
  readonly records: ScenarioRecord[] = [];
  /** Every script the automaton ran, in order, with its arguments. */
  readonly scriptsRun: string[] = [];

  constructor(readonly settings: FarmSettings) {
    this.core = initialFarmCore(0);
  }

  private step(event: FarmEvent): { accepted: boolean; message: string; actions: string[] } {
    const result = stepFarm(this.core, event, this.settings);
    this.core = result.core;
    for (const action of result.actions) {
      if (action.type === 'runScript') this.scriptsRun.push(`${action.script} ${action.args.join(' ')}`);
    }
    return {
      accepted: result.accepted,
      message: result.message,
      actions: result.actions.map(describeAction),
    };
  }

  play(event: ScenarioEvent): ScenarioRecord {
    this.nowMs = event.atMs ?? this.nowMs + 1000;
    let outcome: { accepted: boolean; message: string; actions: string[] };
    let label: string;
    switch (event.type) {
      case 'command': {
        const origin = event.rule
          ? { kind: 'rule' as const, rule: event.rule }
          : { kind: 'caller' as const, who: event.who ?? 'root' };
        const farmEvent: FarmEvent = { type: 'command', verb: event.verb, origin, nowMs: this.nowMs };
        if (event.identity !== undefined) farmEvent.identity = event.identity;
        outcome = this.step(farmEvent);
        label = `command ${event.verb}${event.identity ? ` -i ${event.identity}` : ''}`;
        break;
      }
      case 'scriptDone': {
        const running = pendingScript(this.core);
        if (running !== event.script)
          throw new Error(`scenario: ${event.script} is not running (running: ${running})`);
        outcome = this.step({
          type: 'scriptDone',
          script: event.script,
          exitCode: event.exitCode ?? 0,
          timedOut: false,
          nowMs: this.nowMs,
        });
        label = `scriptDone ${event.script} ${event.exitCode ?? 0}`;
        break;
      }
      case 'runScripts': {
        const actions: string[] = [];
        const failuresLeft = new Set([...Object.keys(event.exitCodes ?? {}), ...(event.timedOut ?? [])]);
        for (let count = 0; ; count += 1) {
          if (count > 200) throw new Error('scenario: scripts never stop being asked for');
          const script = pendingScript(this.core);
          if (script === null) break;
          const failsNow = failuresLeft.delete(script);
          const timedOut = failsNow && (event.timedOut?.includes(script) ?? false);
          const always = event.exitCodesAlways?.[script];
          const exitCode = timedOut ? null : failsNow ? (event.exitCodes?.[script] ?? 0) : (always ?? 0);
          actions.push(
            ...this.step({ type: 'scriptDone', script, exitCode, timedOut, nowMs: this.nowMs }).actions,
          );
        }
        outcome = { accepted: true, message: '', actions };
        label = 'runScripts';
        break;
      }
      case 'waitStatus':
        outcome = this.step({ type: 'waitStatus', wait: event.wait, nowMs: this.nowMs });
        label = `waitStatus ${event.wait.status}`;
        break;
    }
    const record = { event: label, state: `${this.core.state} ${this.core.readiness}`, ...outcome };
    this.records.push(record);
    return record;
  }
}
