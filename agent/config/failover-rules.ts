// The legacy failover rule language of `<failover>` (reference §4.12), parsed to an AST:
//
//   rule     ::= label ':' 'if' '(' expr ')' 'then' action ';'
//   action   ::= stop() | stopstart() | wait() | restart() | swap() | resource '=' word
//   expr     ::= expr '||' expr | expr '&&' expr | '!' expr | operand (('==' | '!=') operand)?
//   operand  ::= '(' expr ')' | name '(' ')' | resource | state | word
//   resource ::= ['local.' | 'remote.'] class '.' ('*' | '?' | name)
//
// Precedence, loosest first: ||, &&, !, == and != (so `!a.b == up` reads `!(a.b == up)`: negating a
// resource alone means nothing). Comments are `/* ... */`. Lua blocks (the
// syntax since 7.5) are recognised by their leading `--` and left to the caller.
import type { FailoverRule, ResourceRef, RuleAction, RuleExpression } from './model.ts';

export const ruleStates = ['init', 'down', 'up', 'unknown'] as const;
export const ruleCommands = ['stop', 'stopstart', 'wait', 'restart', 'swap'] as const;

/** A rule block bigger than this is not hand-written rules; refuse rather than crawl. */
export const ruleTextCharsMax = 256 * 1024;
const expressionDepthMax = 64;

export interface RuleSyntaxError {
  readonly start: number;
  readonly end: number;
  readonly message: string;
}

export interface ParsedRules {
  readonly rules: readonly FailoverRule[];
  readonly errors: readonly RuleSyntaxError[];
}

type TokenKind = 'word' | 'punct' | 'end';

interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const punctuation = ['==', '!=', '&&', '||', '(', ')', ';', ':', '!', '=', ','];

function tokenize(text: string, offset: (index: number) => number, errors: RuleSyntaxError[]): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i] ?? '';
    if (/\s/.test(char)) {
      i += 1;
      continue;
    }
    if (text.startsWith('/*', i)) {
      const close = text.indexOf('*/', i + 2);
      if (close === -1) {
        errors.push({ start: offset(i), end: offset(i + 2), message: 'comment is never closed: missing */' });
        i = text.length;
      } else i = close + 2;
      continue;
    }
    const symbol = punctuation.find((candidate) => text.startsWith(candidate, i));
    if (symbol !== undefined) {
      tokens.push({ kind: 'punct', text: symbol, start: offset(i), end: offset(i + symbol.length) });
      i += symbol.length;
      continue;
    }
    const word = /^[A-Za-z0-9_.*?%-]+/.exec(text.slice(i, i + 512));
    if (word !== null) {
      tokens.push({ kind: 'word', text: word[0], start: offset(i), end: offset(i + word[0].length) });
      i += word[0].length;
      continue;
    }
    errors.push({
      start: offset(i),
      end: offset(i + 1),
      message: `unexpected character '${char}' in failover rules`,
    });
    i += 1;
  }
  tokens.push({ kind: 'end', text: '', start: offset(text.length), end: offset(text.length) });
  return tokens;
}

class RuleSyntax extends Error {
  constructor(
    readonly token: Token,
    message: string,
  ) {
    super(message);
  }
}

class RuleParser {
  private index = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  private peek(): Token {
    return this.tokens[this.index] ?? (this.tokens.at(-1) as Token);
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private is(text: string): boolean {
    const token = this.peek();
    return token.kind !== 'end' && token.text === text;
  }

  private expect(text: string, what: string): Token {
    const token = this.peek();
    if (token.text !== text || token.kind === 'end') {
      throw new RuleSyntax(
        token,
        `expected ${what}, found ${token.kind === 'end' ? 'the end of the rules' : `'${token.text}'`}`,
      );
    }
    return this.next();
  }

  atEnd(): boolean {
    return this.peek().kind === 'end';
  }

  /** Skips past the next ';' after an error so the following rules are still checked. */
  recover(): void {
    while (!this.atEnd()) {
      if (this.next().text === ';') return;
    }
  }

  rule(positionOf: (offset: number) => { line: number; column: number }): FailoverRule {
    const label = this.next();
    if (label.kind !== 'word')
      throw new RuleSyntax(label, `expected a rule label, found '${label.text || 'end'}'`);
    this.expect(':', `':' after the label ${label.text}`);
    const keyword = this.next();
    if (keyword.text !== 'if') throw new RuleSyntax(keyword, `expected 'if' in rule ${label.text}`);
    this.expect('(', "'(' after if");
    const condition = this.expression(0);
    this.expect(')', "')' closing the condition");
    const then = this.next();
    if (then.text !== 'then') throw new RuleSyntax(then, `expected 'then' in rule ${label.text}`);
    const action = this.action();
    this.expect(';', `';' ending rule ${label.text}`);
    const position = positionOf(label.start);
    return { label: label.text, condition, action, line: position.line, column: position.column };
  }

  private action(): RuleAction {
    const token = this.next();
    if (token.kind !== 'word') throw new RuleSyntax(token, 'expected an action such as wait()');
    if (this.is('(')) {
      this.next();
      this.expect(')', "')'");
      const command = ruleCommands.find((candidate) => candidate === token.text);
      if (command === undefined) {
        throw new RuleSyntax(
          token,
          `unknown action ${token.text}() (expected ${ruleCommands.map((c) => `${c}()`).join(', ')})`,
        );
      }
      return { kind: 'command', command };
    }
    if (this.is('=')) {
      this.next();
      const value = this.next();
      if (value.kind !== 'word') throw new RuleSyntax(value, `expected a value after ${token.text}=`);
      const resource = toResource(token);
      if (resource === undefined) throw new RuleSyntax(token, `${token.text} is not a resource (class.name)`);
      return { kind: 'assign', resource, value: value.text };
    }
    throw new RuleSyntax(token, `expected an action such as wait(), found '${token.text}'`);
  }

  private expression(depth: number): RuleExpression {
    if (depth > expressionDepthMax) throw new RuleSyntax(this.peek(), 'condition nested too deeply');
    let left = this.conjunction(depth);
    while (this.is('||')) {
      this.next();
      left = { kind: 'or', left, right: this.conjunction(depth) };
    }
    return left;
  }

  private conjunction(depth: number): RuleExpression {
    let left = this.negation(depth);
    while (this.is('&&')) {
      this.next();
      left = { kind: 'and', left, right: this.negation(depth) };
    }
    return left;
  }

  private negation(depth: number): RuleExpression {
    if (this.is('!')) {
      this.next();
      return { kind: 'not', operand: this.negation(depth + 1) };
    }
    const left = this.operand(depth);
    if (this.is('==') || this.is('!=')) {
      const op = this.next().text as '==' | '!=';
      return { kind: 'compare', op, left, right: this.operand(depth) };
    }
    return left;
  }

  private operand(depth: number): RuleExpression {
    const token = this.next();
    if (token.text === '(' && token.kind === 'punct') {
      const inner = this.expression(depth + 1);
      this.expect(')', "')'");
      return inner;
    }
    if (token.kind !== 'word') {
      throw new RuleSyntax(
        token,
        `expected a resource or a state, found ${token.kind === 'end' ? 'the end' : `'${token.text}'`}`,
      );
    }
    if (this.is('(')) {
      this.next();
      this.expect(')', "')'");
      return { kind: 'call', name: token.text };
    }
    const resource = toResource(token);
    if (resource !== undefined) return resource;
    const state = ruleStates.find((candidate) => candidate === token.text);
    if (state !== undefined) return { kind: 'state', value: state };
    return { kind: 'word', value: token.text };
  }
}

function toResource(token: Token): ResourceRef | undefined {
  let text = token.text;
  let scope: ResourceRef['scope'];
  if (text.startsWith('local.')) {
    scope = 'local';
    text = text.slice(6);
  } else if (text.startsWith('remote.')) {
    scope = 'remote';
    text = text.slice(7);
  }
  const dot = text.indexOf('.');
  if (dot <= 0 || dot === text.length - 1) return undefined;
  return {
    kind: 'resource',
    scope,
    class: text.slice(0, dot),
    name: text.slice(dot + 1),
    start: token.start,
    end: token.end,
  };
}

/** True when a rule block is Lua (the syntax since 7.5): it starts with a `--` comment. */
export function isLuaBlock(text: string): boolean {
  return text.trimStart().startsWith('--');
}

/**
 * Parses one block of legacy rules. `base` maps an index of `text` to a file offset (a number is
 * the offset of `text` in the file), so errors and resource references carry file offsets.
 */
export function parseLegacyRules(
  text: string,
  base: number | ((index: number) => number),
  positionOf: (offset: number) => { line: number; column: number },
): ParsedRules {
  const errors: RuleSyntaxError[] = [];
  const offset = typeof base === 'number' ? (index: number) => base + index : base;
  if (text.length > ruleTextCharsMax) {
    return {
      rules: [],
      errors: [
        {
          start: offset(0),
          end: offset(0),
          message: `failover rules too long (${text.length} characters, at most ${ruleTextCharsMax})`,
        },
      ],
    };
  }
  const parser = new RuleParser(tokenize(text, offset, errors));
  const rules: FailoverRule[] = [];
  while (!parser.atEnd()) {
    try {
      rules.push(parser.rule(positionOf));
    } catch (error) {
      if (!(error instanceof RuleSyntax)) throw error;
      errors.push({ start: error.token.start, end: error.token.end, message: error.message });
      parser.recover();
    }
  }
  return { rules, errors };
}

/** Every resource a rule reads or writes. */
export function ruleResources(rule: FailoverRule): ResourceRef[] {
  const found: ResourceRef[] = [];
  const visit = (expression: RuleExpression): void => {
    switch (expression.kind) {
      case 'or':
      case 'and':
      case 'compare':
        visit(expression.left);
        visit(expression.right);
        break;
      case 'not':
        visit(expression.operand);
        break;
      case 'resource':
        found.push(expression);
        break;
      default:
        break;
    }
  };
  visit(rule.condition);
  if (rule.action.kind === 'assign') found.push(rule.action.resource);
  return found;
}
