// Turns the module's failover configuration into rules the engine evaluates: the reference's
// default rules for the module's checkers (4.11, 2.8), then the legacy-grammar rules written in
// <failover> (4.12). Three-valued logic: a resource still at `init` makes a comparison unknown,
// so a rule never fires on a checker that has not spoken yet.
import type {
  Checker,
  FailoverRule,
  FailoverSettings,
  ResourceRef,
  RuleExpression,
} from '../config/model.ts';
import type { ResourceTable } from './resources.ts';
import {
  type CompiledRule,
  type RuleAction,
  resourceDownRule,
  resourcesDownRule,
  type RuleVerdict,
} from './rule-engine.ts';

export interface CompiledRules {
  rules: CompiledRule[];
  /** Rules that cannot run (assignments, functions, Lua), for the module log. */
  skipped: string[];
}

function checkerAction(action: string): RuleAction {
  return action === 'restart' || action === 'stopstart' || action === 'stop' || action === 'wait'
    ? action
    : 'noaction';
}

/** The default rules the reference generates for a module's checkers. */
export function defaultRules(checkers: readonly Checker[]): CompiledRule[] {
  const rules: CompiledRule[] = [];
  const classes = new Set(checkers.map((checker) => checker.type));
  for (const checker of checkers) {
    if (checker.type === 'tcp')
      rules.push(resourceDownRule(`t_${checker.ident}`, checker.resource, checkerAction(checker.action)));
    if (checker.type === 'ping')
      rules.push(resourceDownRule(`p_${checker.ident}`, checker.resource, checkerAction(checker.action)));
    if (checker.type === 'custom')
      rules.push(resourceDownRule(`c_${checker.ident}`, checker.resource, checkerAction(checker.action)));
  }
  const resourcesOf = (type: string) =>
    checkers.filter((checker) => checker.type === type).map((checker) => checker.resource);
  if (classes.has('intf')) rules.push(resourcesDownRule('interface_failure', resourcesOf('intf'), 'wait'));
  if (classes.has('ip')) rules.push(resourcesDownRule('ip_failure', resourcesOf('ip'), 'stopstart'));
  if (classes.has('module')) rules.push(resourcesDownRule('module_failure', resourcesOf('module'), 'wait'));
  if (classes.has('splitbrain')) {
    rules.push(resourcesDownRule('splitbrain_failure', resourcesOf('splitbrain'), 'wait'));
  }
  return rules;
}

type Value =
  | { kind: 'verdict'; verdict: RuleVerdict }
  | { kind: 'resources'; values: (string | undefined)[]; mode: 'all' | 'any' | 'one' }
  | { kind: 'literal'; value: string };

function resourceKey(ref: ResourceRef, name: string): string {
  const local = `${ref.class}.${name}`;
  return ref.scope === 'remote' ? `remote.${local}` : local;
}

function resolveResource(ref: ResourceRef, resources: ResourceTable): Value {
  if (ref.name === '*' || ref.name === '?') {
    const prefix = resourceKey(ref, '');
    const values = Object.entries(resources)
      .filter(([name]) => name.startsWith(prefix))
      .map(([, resource]) => resource.value);
    return { kind: 'resources', values, mode: ref.name === '*' ? 'all' : 'any' };
  }
  return { kind: 'resources', values: [resources[resourceKey(ref, ref.name)]?.value], mode: 'one' };
}

function evaluate(expression: RuleExpression, resources: ResourceTable): Value {
  switch (expression.kind) {
    case 'resource':
      return resolveResource(expression, resources);
    case 'state':
      return { kind: 'literal', value: expression.value };
    case 'word':
      return { kind: 'literal', value: expression.value };
    case 'call':
      // cluster() and friends are not supported: such a comparison never holds.
      return { kind: 'verdict', verdict: 'false' };
    case 'not': {
      const operand = asVerdict(evaluate(expression.operand, resources));
      return {
        kind: 'verdict',
        verdict: operand === 'init' ? 'init' : operand === 'true' ? 'false' : 'true',
      };
    }
    case 'and':
    case 'or': {
      const left = asVerdict(evaluate(expression.left, resources));
      const right = asVerdict(evaluate(expression.right, resources));
      const dominant = expression.kind === 'and' ? 'false' : 'true';
      if (left === dominant || right === dominant) return { kind: 'verdict', verdict: dominant };
      if (left === 'init' || right === 'init') return { kind: 'verdict', verdict: 'init' };
      return { kind: 'verdict', verdict: expression.kind === 'and' ? 'true' : 'false' };
    }
    case 'compare': {
      const verdict = compare(evaluate(expression.left, resources), evaluate(expression.right, resources));
      if (verdict === 'init' || expression.op === '==') return { kind: 'verdict', verdict };
      return { kind: 'verdict', verdict: verdict === 'true' ? 'false' : 'true' };
    }
  }
}

function asVerdict(value: Value): RuleVerdict {
  if (value.kind === 'verdict') return value.verdict;
  // A bare resource in a condition means "is up".
  if (value.kind === 'resources') return compare(value, { kind: 'literal', value: 'up' });
  return value.value === 'true' ? 'true' : 'false';
}

/** `resource == state`; `*` must hold for every resource of the class, `?` for one of them. */
function compare(left: Value, right: Value): RuleVerdict {
  if (left.kind === 'literal' && right.kind === 'resources') return compare(right, left);
  if (left.kind === 'resources' && right.kind === 'literal') {
    const wanted = right.value;
    const known = left.values.filter(
      (value): value is string => value !== undefined && (value !== 'init' || wanted === 'init'),
    );
    const anyUnknown = known.length < left.values.length || left.values.length === 0;
    if (left.mode === 'all') {
      if (known.some((value) => value !== wanted)) return 'false';
      return anyUnknown ? 'init' : 'true';
    }
    if (known.some((value) => value === wanted)) return 'true';
    return anyUnknown ? 'init' : 'false';
  }
  if (left.kind === 'literal' && right.kind === 'literal')
    return left.value === right.value ? 'true' : 'false';
  const leftVerdict = asVerdict(left);
  const rightVerdict = asVerdict(right);
  if (leftVerdict === 'init' || rightVerdict === 'init') return 'init';
  return leftVerdict === rightVerdict ? 'true' : 'false';
}

export function compileRule(rule: FailoverRule): CompiledRule | null {
  if (rule.action.kind !== 'command') return null;
  const condition = rule.condition;
  return {
    name: rule.label,
    action: rule.action.command,
    test: (resources) => asVerdict(evaluate(condition, resources)),
    condition: JSON.stringify(condition),
  };
}

/** Default rules (unless extends="no") followed by the module's own, in the order written. */
export function compileFailover(
  checkers: readonly Checker[],
  failover: FailoverSettings | undefined,
): CompiledRules {
  const rules = failover?.extends === false ? [] : defaultRules(checkers);
  const skipped: string[] = [];
  for (const rule of failover?.rules ?? []) {
    const compiled = compileRule(rule);
    if (compiled === null)
      skipped.push(`${rule.label} (line ${rule.line}): assignment actions are not supported`);
    else {
      // A rule of the module replaces a default rule of the same name.
      const existing = rules.findIndex((candidate) => candidate.name === compiled.name);
      if (existing >= 0) rules.splice(existing, 1);
      rules.push(compiled);
    }
  }
  for (const block of failover?.luaBlocks ?? [])
    skipped.push(`Lua rules at line ${block.line}: not supported`);
  return { rules, skipped };
}
