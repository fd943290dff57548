// The failover machine (reference 4.12): rules map resource states to actions. Evaluated every
// `period`; an action fires only after its rule has held for `handle_time`; wait rules come
// first, and also decide, instantly, whether a starting module may leave WAIT. Pure.
import type { WaitStatus } from './job.ts';
import type { ResourceTable } from './resources.ts';

export type RuleAction = 'stop' | 'stopstart' | 'restart' | 'wait' | 'swap' | 'noaction';

/** A rule's verdict: holds, does not hold, or cannot tell yet because a resource is still init. */
export type RuleVerdict = 'true' | 'false' | 'init';

export interface CompiledRule {
  name: string;
  action: RuleAction;
  test(resources: ResourceTable): RuleVerdict;
  /** The condition as text: tells two configurations apart (a dynamic update). */
  condition?: string;
}

export interface RuleEngineState {
  /** Since when each rule has held without interruption. */
  heldSinceMs: Readonly<Record<string, number>>;
}

export interface RuleEvaluation {
  state: RuleEngineState;
  wait: WaitStatus;
  /** A non-wait action to carry out now, or a wait while running. */
  fire: { rule: string; action: RuleAction } | null;
}

export const rulesMax = 512;

export function initialRuleEngine(): RuleEngineState {
  return { heldSinceMs: {} };
}

export function evaluateRules(
  rules: readonly CompiledRule[],
  resources: ResourceTable,
  state: RuleEngineState,
  nowMs: number,
  handleTimeMs: number,
): RuleEvaluation {
  if (rules.length > rulesMax) throw new Error(`${rules.length} failover rules exceed ${rulesMax}`);
  const heldSinceMs: Record<string, number> = {};
  const verdicts = rules.map((rule) => {
    const verdict = rule.test(resources);
    if (verdict === 'true') heldSinceMs[rule.name] = state.heldSinceMs[rule.name] ?? nowMs;
    return { rule, verdict };
  });
  const waitRules = verdicts.filter((entry) => entry.rule.action === 'wait');
  const blocking = waitRules.find((entry) => entry.verdict === 'true');
  let wait: WaitStatus;
  if (blocking) wait = { status: 'blocked', rule: blocking.rule.name };
  else if (waitRules.some((entry) => entry.verdict === 'init')) wait = { status: 'pending' };
  else wait = { status: 'clear' };

  const stable = (name: string) => nowMs - (heldSinceMs[name] ?? nowMs) >= handleTimeMs;
  // Wait family first, then the others in the order they were written.
  const ordered = [...waitRules, ...verdicts.filter((entry) => entry.rule.action !== 'wait')];
  const firing = ordered.find(
    (entry) => entry.verdict === 'true' && entry.rule.action !== 'noaction' && stable(entry.rule.name),
  );
  if (firing) {
    // Once fired, the rule must hold for a whole handle_time again before it fires again.
    heldSinceMs[firing.rule.name] = nowMs;
    return { state: { heldSinceMs }, wait, fire: { rule: firing.rule.name, action: firing.rule.action } };
  }
  return { state: { heldSinceMs }, wait, fire: null };
}

/** `if (RESOURCE == down) then ACTION`, the shape of every checker's default rule. */
export function resourceDownRule(name: string, resource: string, action: RuleAction): CompiledRule {
  return {
    name,
    action,
    test: (resources) => {
      const value = resources[resource]?.value;
      if (value === undefined || value === 'init') return 'init';
      return value === 'down' ? 'true' : 'false';
    },
  };
}

/**
 * Any of these resources down: the default rules of checkers the module declares. A resource not
 * reported yet counts as init, so a start waits for the checker's first verdict (reference M3).
 */
export function resourcesDownRule(
  name: string,
  resources: readonly string[],
  action: RuleAction,
): CompiledRule {
  return {
    name,
    action,
    test: (table) => {
      const values = resources.map((resource) => table[resource]?.value);
      if (values.includes('down')) return 'true';
      return values.some((value) => value === undefined || value === 'init') ? 'init' : 'false';
    },
  };
}

/** `if (CLASS.* == down) then ACTION`: any resource of a class (interface_failure, ip_failure...). */
export function classDownRule(name: string, resourceClass: string, action: RuleAction): CompiledRule {
  return {
    name,
    action,
    test: (resources) => {
      const values = Object.entries(resources)
        .filter(([resourceName]) => resourceName.startsWith(`${resourceClass}.`))
        .map(([, resource]) => resource.value);
      if (values.includes('down')) return 'true';
      return values.includes('init') ? 'init' : 'false';
    },
  };
}
