// Editing userconfig.xml (or cluster.xml) without rewriting it: every edit is a splice of the
// original text at the spans the parser recorded, so comments, the `<!DOCTYPE safe>` line, element
// and attribute order, quoting and indentation stay as the user wrote them and a diff shows only
// the change. New elements copy the indentation and line ends of their neighbours.
//
// Edits work on the file as written (macros not expanded) and are pure: text in, text out.
import { assert } from './assert.ts';
import { normalizePath } from './paths.ts';
import {
  elementChildren,
  escapeAttributeValue,
  parseXml,
  type XmlAttribute,
  type XmlDocument,
  type XmlElement,
} from './xml.ts';

export class EditError extends Error {
  override readonly name = 'EditError';
}

/** One step from the root: a child name, optionally the n-th (0-based) or the one whose
 *  attributes match `where`. */
export type ElementStep =
  | string
  | { readonly name: string; readonly index?: number; readonly where?: Readonly<Record<string, string>> };

export type ElementSelector = readonly ElementStep[];

export interface NewElement {
  readonly name: string;
  readonly attributes?: readonly (readonly [string, string | number | undefined])[];
  readonly children?: readonly NewElement[];
}

interface Splice {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

function parseForEdit(text: string): XmlDocument {
  const document = parseXml(text);
  const errors = document.problems.filter((problem) => problem.severity === 'error');
  if (errors.length > 0) {
    throw new EditError(`cannot edit a file with XML syntax errors (first: ${errors[0]?.message ?? ''})`);
  }
  if (document.root === undefined) throw new EditError('the file has no root element');
  return document;
}

function apply(document: XmlDocument, splice: Splice): string {
  const source = document.source;
  assert(
    splice.start >= 0 && splice.start <= splice.end && splice.end <= source.length,
    'splice within the text',
  );
  const result = `${source.slice(0, splice.start)}${splice.text}${source.slice(splice.end)}`;
  const reparsed = parseXml(result);
  assert(
    reparsed.problems.filter((problem) => problem.severity === 'error').length === 0,
    'an edit of a well-formed file leaves it well-formed',
  );
  return result;
}

function matches(element: XmlElement, step: ElementStep): boolean {
  if (typeof step === 'string') return element.name === step;
  if (element.name !== step.name) return false;
  for (const [name, value] of Object.entries(step.where ?? {})) {
    if (element.attributes.find((attribute) => attribute.name === name)?.value !== value) return false;
  }
  return true;
}

/** The element at `selector` below the root, or undefined. */
export function findElement(document: XmlDocument, selector: ElementSelector): XmlElement | undefined {
  let current = document.root;
  for (const step of selector) {
    if (current === undefined) return undefined;
    const candidates = elementChildren(current).filter((child) => matches(child, step));
    current = candidates[typeof step === 'string' ? 0 : (step.index ?? 0)];
  }
  return current;
}

function requireElement(document: XmlDocument, selector: ElementSelector): XmlElement {
  const element = findElement(document, selector);
  if (element === undefined) {
    const steps = selector.map((step) => (typeof step === 'string' ? step : step.name)).join('/');
    throw new EditError(`no element ${document.root?.name ?? ''}/${steps} in the file`);
  }
  return element;
}

function newlineOf(source: string): string {
  return source.includes('\r\n') ? '\r\n' : '\n';
}

/** Indentation of the line `offset` is on, when only whitespace precedes it; else undefined. */
function lineIndent(source: string, offset: number): string | undefined {
  const lineStart = source.lastIndexOf('\n', offset - 1) + 1;
  const before = source.slice(lineStart, offset);
  return /^[ \t]*$/.test(before) ? before : undefined;
}

/** The file's indentation step: the most common difference between a child and its parent. */
function indentUnit(document: XmlDocument): string {
  const counts = new Map<string, number>();
  const visit = (element: XmlElement, depth: number): void => {
    if (depth > 64) return;
    const parentIndent = lineIndent(document.source, element.startTag.start);
    for (const child of elementChildren(element)) {
      const childIndent = lineIndent(document.source, child.startTag.start) ?? '';
      const unit = parentIndent === undefined ? '' : childIndent.slice(parentIndent.length);
      if (unit !== '' && childIndent === `${parentIndent}${unit}`)
        counts.set(unit, (counts.get(unit) ?? 0) + 1);
      visit(child, depth + 1);
    }
  };
  if (document.root !== undefined) visit(document.root, 0);
  let best = '  ';
  let bestCount = 0;
  for (const [unit, count] of counts) {
    if (count > bestCount || (count === bestCount && unit.length < best.length)) {
      best = unit;
      bestCount = count;
    }
  }
  return best;
}

function renderAttributes(attributes: NewElement['attributes']): string {
  return (attributes ?? [])
    .filter((pair): pair is readonly [string, string | number] => pair[1] !== undefined)
    .map(([name, value]) => ` ${name}="${escapeAttributeValue(String(value), '"')}"`)
    .join('');
}

const xmlName = /^[A-Za-z_:][A-Za-z0-9_:.-]*$/;

function renderElement(element: NewElement, indent: string, unit: string, newline: string): string {
  if (!xmlName.test(element.name)) throw new EditError(`${element.name} is not an element name`);
  for (const [name] of element.attributes ?? []) {
    if (!xmlName.test(name)) throw new EditError(`${name} is not an attribute name`);
  }
  const attributes = renderAttributes(element.attributes);
  const children = element.children ?? [];
  if (children.length === 0) return `<${element.name}${attributes}/>`;
  const inner = children
    .map((child) => `${newline}${indent}${unit}${renderElement(child, indent + unit, unit, newline)}`)
    .join('');
  return `<${element.name}${attributes}>${inner}${newline}${indent}</${element.name}>`;
}

function insertSplice(document: XmlDocument, parent: XmlElement, element: NewElement): Splice {
  const source = document.source;
  const newline = newlineOf(source);
  const unit = indentUnit(document);
  const parentIndent = lineIndent(source, parent.startTag.start) ?? '';
  const children = elementChildren(parent);
  const last = children.at(-1);
  const childIndent =
    (last === undefined ? undefined : lineIndent(source, last.startTag.start)) ?? parentIndent + unit;
  const fragment = renderElement(element, childIndent, unit, newline);
  if (parent.selfClosing || parent.endTag === undefined) {
    // <user/> becomes <user>...</user>; whitespace before "/>" goes with it.
    let start = parent.startTag.end - 2;
    assert(source.slice(start, start + 2) === '/>', 'a self-closing tag ends with />');
    while (start > parent.nameSpan.end && /[ \t\r\n]/.test(source[start - 1] ?? '')) start -= 1;
    return {
      start,
      end: parent.startTag.end,
      text: `>${newline}${childIndent}${fragment}${newline}${parentIndent}</${parent.name}>`,
    };
  }
  // After the last non-blank child (element, comment or text), before the closing tag.
  let position = parent.startTag.end;
  for (const node of parent.children) {
    if (node.kind === 'text' && source.slice(node.span.start, node.span.end).trim() === '') continue;
    position = node.span.end;
  }
  const gap = source.slice(position, parent.endTag.start);
  const closing = gap.includes('\n') ? '' : `${newline}${parentIndent}`;
  return { start: position, end: position, text: `${newline}${childIndent}${fragment}${closing}` };
}

/** Adds `element` as the last child of the element at `parentSelector`. */
export function insertElement(text: string, parentSelector: ElementSelector, element: NewElement): string {
  const document = parseForEdit(text);
  return apply(document, insertSplice(document, requireElement(document, parentSelector), element));
}

function removeSplice(document: XmlDocument, element: XmlElement): Splice {
  const source = document.source;
  let start = element.span.start;
  let end = element.span.end;
  const indent = lineIndent(source, start);
  const rest = /^[ \t]*(\r?\n|$)/.exec(source.slice(end));
  if (indent !== undefined && rest !== null) {
    // Alone on its line: remove the whole line.
    start -= indent.length;
    end += rest[0].length;
  }
  return { start, end, text: '' };
}

export function removeElement(text: string, selector: ElementSelector): string {
  const document = parseForEdit(text);
  return apply(document, removeSplice(document, requireElement(document, selector)));
}

function setAttributeSplice(element: XmlElement, name: string, value: string): Splice {
  const existing = element.attributes.find((attribute) => attribute.name === name);
  if (existing !== undefined) {
    if (existing.openQuote === '"' || existing.openQuote === "'") {
      return { ...existing.valueSpan, text: escapeAttributeValue(value, existing.openQuote) };
    }
    // Unquoted or typographic quotes: rewrite the attribute properly.
    return { ...existing.span, text: `${name}="${escapeAttributeValue(value, '"')}"` };
  }
  const last: XmlAttribute | undefined = element.attributes.at(-1);
  const position = last === undefined ? element.nameSpan.end : last.span.end;
  return { start: position, end: position, text: ` ${name}="${escapeAttributeValue(value, '"')}"` };
}

/** Sets (or adds, after the last attribute) `name="value"` on the element at `selector`. */
export function setAttribute(text: string, selector: ElementSelector, name: string, value: string): string {
  if (!xmlName.test(name)) throw new EditError(`${name} is not an attribute name`);
  const document = parseForEdit(text);
  const element = requireElement(document, selector);
  const existing = element.attributes.find((attribute) => attribute.name === name);
  if (existing !== undefined && existing.value === value) return text;
  return apply(document, setAttributeSplice(element, name, value));
}

export function removeAttribute(text: string, selector: ElementSelector, name: string): string {
  const document = parseForEdit(text);
  const element = requireElement(document, selector);
  const attribute = element.attributes.find((candidate) => candidate.name === name);
  if (attribute === undefined) return text;
  let start = attribute.span.start;
  while (start > element.nameSpan.end && /[ \t\r\n]/.test(document.source[start - 1] ?? '')) start -= 1;
  return apply(document, { start, end: attribute.span.end, text: '' });
}

// Domain edits of userconfig.xml.

const service: ElementSelector = ['service'];

/** Adds `element` under `service/<container>`, creating the container when it is missing. */
function addUnder(
  text: string,
  container: string,
  element: NewElement,
  containerAttributes: NewElement['attributes'] = [],
): string {
  const document = parseForEdit(text);
  const parent = findElement(document, [...service, container]);
  if (parent !== undefined) return apply(document, insertSplice(document, parent, element));
  const serviceElement = requireElement(document, service);
  return apply(
    document,
    insertSplice(document, serviceElement, {
      name: container,
      attributes: containerAttributes,
      children: [element],
    }),
  );
}

function replicatedElements(document: XmlDocument): XmlElement[] {
  const rfs = findElement(document, [...service, 'rfs']);
  return rfs === undefined ? [] : elementChildren(rfs).filter((child) => child.name === 'replicated');
}

function sameDir(a: string, b: string): boolean {
  return normalizePath(a).key === normalizePath(b).key;
}

export function addReplicatedDir(
  text: string,
  dir: string,
  options: { readonly readOnly?: boolean } = {},
): string {
  const document = parseForEdit(text);
  if (
    replicatedElements(document).some((element) =>
      sameDir(element.attributes.find((a) => a.name === 'dir')?.value ?? '', dir),
    )
  ) {
    throw new EditError(`${dir} is already replicated`);
  }
  return addUnder(text, 'rfs', {
    name: 'replicated',
    attributes: [
      ['dir', dir],
      ['mode', options.readOnly === false ? undefined : 'read_only'],
    ],
  });
}

export function removeReplicatedDir(text: string, dir: string): string {
  const document = parseForEdit(text);
  const element = replicatedElements(document).find((candidate) =>
    sameDir(candidate.attributes.find((attribute) => attribute.name === 'dir')?.value ?? '', dir),
  );
  if (element === undefined) throw new EditError(`${dir} is not a replicated directory of this module`);
  return apply(document, removeSplice(document, element));
}

export type NewChecker =
  | {
      readonly type: 'tcp';
      readonly ident: string;
      readonly when: 'prim' | 'second' | 'both' | 'pre';
      readonly action?: string;
      readonly addr: string;
      readonly port: number;
      readonly interval?: string;
      readonly timeout?: string;
    }
  | {
      readonly type: 'ping';
      readonly ident: string;
      readonly when?: string;
      readonly action?: string;
      readonly addr: string;
      readonly interval?: string;
      readonly timeout?: string;
    }
  | { readonly type: 'intf'; readonly ident: string; readonly when?: string; readonly localAddr: string }
  | {
      readonly type: 'ip';
      readonly ident: string;
      readonly when?: string;
      readonly addr: string;
      readonly interval?: string;
    }
  | {
      readonly type: 'custom';
      readonly ident: string;
      readonly when: 'prim' | 'second' | 'both' | 'pre';
      readonly exec: string;
      readonly arg?: string;
      readonly action?: string;
    }
  | {
      readonly type: 'module';
      readonly ident?: string;
      readonly name: string;
      readonly addr?: string;
      readonly port?: number;
    }
  | { readonly type: 'splitbrain'; readonly ident: string; readonly witnesses: readonly string[] };

function checkerElement(checker: NewChecker): NewElement {
  switch (checker.type) {
    case 'tcp':
      return {
        name: 'tcp',
        attributes: [
          ['ident', checker.ident],
          ['when', checker.when],
          ['action', checker.action],
        ],
        children: [
          {
            name: 'to',
            attributes: [
              ['addr', checker.addr],
              ['port', checker.port],
              ['interval', checker.interval],
              ['timeout', checker.timeout],
            ],
          },
        ],
      };
    case 'ping':
      return {
        name: 'ping',
        attributes: [
          ['ident', checker.ident],
          ['when', checker.when],
          ['action', checker.action],
        ],
        children: [
          {
            name: 'to',
            attributes: [
              ['addr', checker.addr],
              ['interval', checker.interval],
              ['timeout', checker.timeout],
            ],
          },
        ],
      };
    case 'intf':
      return {
        name: 'intf',
        attributes: [
          ['ident', checker.ident],
          ['when', checker.when],
        ],
        children: [{ name: 'to', attributes: [['local_addr', checker.localAddr]] }],
      };
    case 'ip':
      return {
        name: 'ip',
        attributes: [
          ['ident', checker.ident],
          ['when', checker.when],
        ],
        children: [
          {
            name: 'to',
            attributes: [
              ['addr', checker.addr],
              ['interval', checker.interval],
            ],
          },
        ],
      };
    case 'custom':
      return {
        name: 'custom',
        attributes: [
          ['ident', checker.ident],
          ['when', checker.when],
          ['exec', checker.exec],
          ['arg', checker.arg],
          ['action', checker.action],
        ],
      };
    case 'module':
      return {
        name: 'module',
        attributes: [
          ['ident', checker.ident],
          ['name', checker.name],
        ],
        children:
          checker.addr === undefined && checker.port === undefined
            ? []
            : [
                {
                  name: 'to',
                  attributes: [
                    ['addr', checker.addr],
                    ['port', checker.port],
                  ],
                },
              ],
      };
    case 'splitbrain':
      return {
        name: 'splitbrain',
        attributes: [
          ['ident', checker.ident],
          ['exec', 'ping'],
          ['arg', checker.witnesses.join(' ')],
        ],
      };
  }
}

function checkerElements(document: XmlDocument): XmlElement[] {
  const check = findElement(document, [...service, 'check']);
  return check === undefined ? [] : elementChildren(check);
}

function identOf(element: XmlElement): string | undefined {
  return element.attributes.find((attribute) => attribute.name === 'ident')?.value;
}

export function addChecker(text: string, checker: NewChecker): string {
  const document = parseForEdit(text);
  const ident = checker.ident;
  if (
    ident !== undefined &&
    checkerElements(document).some((element) => element.name === checker.type && identOf(element) === ident)
  ) {
    throw new EditError(`a ${checker.type} checker with ident ${ident} already exists`);
  }
  return addUnder(text, 'check', checkerElement(checker));
}

export function removeChecker(text: string, type: NewChecker['type'], ident: string): string {
  const document = parseForEdit(text);
  const element = checkerElements(document).find(
    (candidate) => candidate.name === type && identOf(candidate) === ident,
  );
  if (element === undefined) throw new EditError(`no ${type} checker with ident ${ident}`);
  return apply(document, removeSplice(document, element));
}

export interface NewProcess {
  readonly name: string;
  readonly service?: boolean;
  readonly nameregex?: string;
  readonly argregex?: string;
  readonly atleast?: number;
  readonly atmax?: number;
  readonly action?: string;
  readonly class?: string;
  readonly startAfter?: number;
  readonly restartServices?: readonly string[];
}

function processElements(document: XmlDocument): XmlElement[] {
  const errd = findElement(document, [...service, 'errd']);
  return errd === undefined ? [] : elementChildren(errd).filter((child) => child.name === 'proc');
}

/** Adds a `<proc>` to `<errd>` (made if missing, with the `<user/>` errd needs). */
export function addProcess(text: string, process: NewProcess): string {
  const document = parseForEdit(text);
  if (
    processElements(document).some(
      (element) => element.attributes.find((a) => a.name === 'name')?.value === process.name,
    )
  ) {
    throw new EditError(`process ${process.name} is already monitored`);
  }
  let result = addUnder(text, 'errd', {
    name: 'proc',
    attributes: [
      ['name', process.name],
      ['service', process.service === undefined ? undefined : process.service ? 'yes' : 'no'],
      ['nameregex', process.nameregex],
      ['argregex', process.argregex],
      ['atleast', process.atleast],
      ['atmax', process.atmax],
      ['action', process.action],
      ['class', process.class],
      ['start_after', process.startAfter],
      ['restart_services', process.restartServices?.join(', ')],
    ],
  });
  if (findElement(parseForEdit(result), [...service, 'user']) === undefined) {
    result = insertElement(result, service, { name: 'user' });
  }
  return result;
}

export function removeProcess(text: string, name: string): string {
  const document = parseForEdit(text);
  const element = processElements(document).find(
    (candidate) => candidate.attributes.find((a) => a.name === 'name')?.value === name,
  );
  if (element === undefined) throw new EditError(`process ${name} is not monitored`);
  return apply(document, removeSplice(document, element));
}

function variableElement(document: XmlDocument, name: string): XmlElement | undefined {
  const user = findElement(document, [...service, 'user']);
  return user === undefined
    ? undefined
    : elementChildren(user).find(
        (child) => child.name === 'var' && child.attributes.find((a) => a.name === 'name')?.value === name,
      );
}

/** Sets a script variable: updates its value in place, or adds `<var>` (and `<user>` if needed). */
export function setVar(text: string, name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new EditError(`${name} is not a variable name`);
  const document = parseForEdit(text);
  const existing = variableElement(document, name);
  if (existing !== undefined) {
    if (existing.attributes.find((attribute) => attribute.name === 'value')?.value === value) return text;
    return apply(document, setAttributeSplice(existing, 'value', value));
  }
  return addUnder(text, 'user', {
    name: 'var',
    attributes: [
      ['name', name],
      ['value', value],
    ],
  });
}

export function removeVar(text: string, name: string): string {
  const document = parseForEdit(text);
  const element = variableElement(document, name);
  if (element === undefined) throw new EditError(`variable ${name} is not set`);
  return apply(document, removeSplice(document, element));
}

/** Sets the value of `<macro name>` (filling a template placeholder), adding the macro if needed. */
export function setMacro(text: string, name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new EditError(`${name} is not a macro name`);
  const document = parseForEdit(text);
  const root = document.root as XmlElement;
  const existing = elementChildren(root).find(
    (child) =>
      child.name === 'macro' &&
      child.attributes.find((attribute) => attribute.name === 'name')?.value === name,
  );
  if (existing !== undefined) {
    if (existing.attributes.find((attribute) => attribute.name === 'value')?.value === value) return text;
    return apply(document, setAttributeSplice(existing, 'value', value));
  }
  // A new macro goes before <service>, where macros belong.
  const serviceElement = requireElement(document, service);
  const source = document.source;
  const indent = lineIndent(source, serviceElement.startTag.start) ?? '';
  const fragment = `<macro name="${escapeAttributeValue(name, '"')}" value="${escapeAttributeValue(value, '"')}"/>`;
  const newline = newlineOf(source);
  return apply(document, {
    start: serviceElement.startTag.start - indent.length,
    end: serviceElement.startTag.start - indent.length,
    text: `${indent}${fragment}${newline}`,
  });
}
