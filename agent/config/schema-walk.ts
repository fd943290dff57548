// Walks a parsed XML document along a schema: reports unknown or misplaced elements and attributes
// (with "did you mean"), elements in the wrong mode, repeated elements, missing required values,
// empty template placeholders and invalid values; expands macros in attribute values and keeps the
// typed values (with defaults) for the model builders. Nothing in the file is skipped silently:
// whatever the schema does not know gets a problem at its position.
import { isMacAddress, isNetmask, parseAddress } from './addresses.ts';
import { assert } from './assert.ts';
import { parseDuration } from './duration.ts';
import type { Expansion, MacroExpander } from './macros.ts';
import type { ProblemCollector, ProblemSite } from './problems.ts';
import type {
  AttributeSpec,
  ElementSpec,
  ModuleMode,
  ParsedValue,
  ValueLookup,
  ValueType,
} from './schema.ts';
import { closestName, didYouMean } from './suggest.ts';
import {
  elementPath,
  nodeText,
  type Span,
  type XmlAttribute,
  type XmlDocument,
  type XmlElement,
} from './xml.ts';

export interface WalkedElement extends ValueLookup {
  readonly element: XmlElement;
  readonly spec: ElementSpec;
  readonly parent: WalkedElement | undefined;
  readonly children: readonly WalkedElement[];
  readonly path: string;
  /** Valid values written in the file (after macro expansion). */
  readonly given: ReadonlyMap<string, ParsedValue>;
  /** Known attributes present in the file, expanded, valid or not. */
  readonly expanded: ReadonlyMap<string, Expansion>;
  attribute(name: string): XmlAttribute | undefined;
  /** Known child elements with this name, in document order. */
  childrenNamed(name: string): WalkedElement[];
  child(name: string): WalkedElement | undefined;
}

export interface WalkContext {
  readonly source: string;
  readonly problems: ProblemCollector;
  /** The module mode, when known, for mode-restricted elements and attributes. */
  readonly mode: ModuleMode | undefined;
  readonly expander: MacroExpander | undefined;
  readonly homes: ReadonlyMap<string, readonly string[]>;
}

export function site(span: Span, path: string): ProblemSite {
  return { start: span.start, end: span.end, path };
}

/** Where a problem about an attribute points: its value, or its name when the value is empty. */
export function attributeSite(attribute: XmlAttribute, path: string): ProblemSite {
  return attribute.valueSpan.end > attribute.valueSpan.start
    ? site(attribute.valueSpan, path)
    : site(attribute.nameSpan, path);
}

class Walked implements WalkedElement {
  readonly children: WalkedElement[] = [];
  readonly given = new Map<string, ParsedValue>();
  readonly expanded = new Map<string, Expansion>();
  readonly elementName: string;

  constructor(
    readonly element: XmlElement,
    readonly spec: ElementSpec,
    readonly parent: Walked | undefined,
    readonly path: string,
  ) {
    this.elementName = element.name;
  }

  value(name: string): ParsedValue | undefined {
    const given = this.given.get(name);
    if (given !== undefined) return given;
    const spec = this.spec.attributes[name];
    assert(spec !== undefined, `attribute ${name} is in the schema of <${this.element.name}>`);
    const fallback = spec.default;
    return typeof fallback === 'function' ? fallback(this) : fallback;
  }

  attribute(name: string): XmlAttribute | undefined {
    return this.element.attributes.find((attribute) => attribute.name === name);
  }

  childrenNamed(name: string): WalkedElement[] {
    return this.children.filter((child) => child.element.name === name);
  }

  child(name: string): WalkedElement | undefined {
    return this.children.find((child) => child.element.name === name);
  }
}

function describeExpected(type: ValueType): string {
  switch (type.kind) {
    case 'enum':
      return type.values.length === 1
        ? (type.values[0] ?? '')
        : `${type.values.slice(0, -1).join(', ')} or ${type.values.at(-1)}`;
    case 'open-enum':
      return `${type.values.join(', ')} or ${type.otherwise}`;
    case 'duration':
      return `a duration (bare numbers in ${type.unit})`;
    case 'integer':
      return `an integer from ${type.min} to ${type.max}`;
    case 'text':
      return type.patternText ?? 'text';
    case 'address':
      return type.anyAllowed === true ? '* or an address' : 'an IPv4 address, an IPv6 address or a DNS name';
    case 'port':
      return type.anyAllowed ? '* or a port from 1 to 65535' : 'a port from 1 to 65535';
    case 'mac':
      return 'a MAC address such as 5A:FE:0A:01:00:7E';
    case 'netmask':
      return 'a netmask such as 255.255.255.0 or a prefix length';
  }
}

export type ValueResult = { ok: true; value: ParsedValue } | { ok: false; message: string; hint?: string };

export function parseValue(type: ValueType, raw: string, attribute: string): ValueResult {
  const invalid = (hint?: string): ValueResult => ({
    ok: false,
    message: `invalid value '${raw}' for the attribute ${attribute} (expected ${describeExpected(type)})`,
    ...(hint === undefined ? {} : { hint }),
  });
  const trimmed = raw.trim();
  switch (type.kind) {
    case 'enum': {
      if (type.values.includes(trimmed)) return { ok: true, value: trimmed };
      return invalid(didYouMean(trimmed, type.values));
    }
    case 'open-enum': {
      if (type.values.includes(trimmed) || type.pattern.test(trimmed)) return { ok: true, value: trimmed };
      return invalid(didYouMean(trimmed, type.values));
    }
    case 'duration': {
      const result = parseDuration(raw, attribute, type);
      return result.ok ? { ok: true, value: result.value } : { ok: false, message: result.message };
    }
    case 'integer': {
      let value: number;
      if (type.hex === true && /^0[xX][0-9a-fA-F]{1,8}$/.test(trimmed))
        value = Number.parseInt(trimmed.slice(2), 16);
      else if (/^-?[0-9]{1,12}$/.test(trimmed)) value = Number(trimmed);
      else return invalid();
      return value >= type.min && value <= type.max ? { ok: true, value } : invalid();
    }
    case 'text': {
      if (raw.length > type.lengthMax) {
        return {
          ok: false,
          message: `value of ${attribute} is too long (${raw.length} characters, at most ${type.lengthMax})`,
        };
      }
      if (type.pattern !== undefined && !type.pattern.test(trimmed)) return invalid();
      return { ok: true, value: raw };
    }
    case 'address': {
      if (type.anyAllowed === true && trimmed === '*') return { ok: true, value: trimmed };
      const result = parseAddress(trimmed, type.brackets);
      return result.ok
        ? { ok: true, value: trimmed }
        : {
            ok: false,
            message: `invalid value '${raw}' for the attribute ${attribute}: ${result.message}`,
            ...(result.hint === undefined ? {} : { hint: result.hint }),
          };
    }
    case 'port': {
      if (type.anyAllowed && trimmed === '*') return { ok: true, value: trimmed };
      if (!/^[0-9]{1,5}$/.test(trimmed)) return invalid();
      const port = Number(trimmed);
      return port >= 1 && port <= 65535 ? { ok: true, value: port } : invalid();
    }
    case 'mac':
      return isMacAddress(trimmed) ? { ok: true, value: trimmed.toUpperCase() } : invalid();
    case 'netmask':
      return isNetmask(trimmed) ? { ok: true, value: trimmed } : invalid();
  }
}

function emptyAllowed(type: ValueType): boolean {
  return type.kind === 'text' && type.emptyAllowed;
}

function reportEmpty(
  context: WalkContext,
  walked: Walked,
  attribute: XmlAttribute,
  spec: AttributeSpec,
  expansion: Expansion,
): void {
  const what = spec.required ?? spec.emptyHint ?? 'set a value or remove the attribute';
  const macroSources = expansion.sources.filter((source) => source.definition !== undefined);
  const definition = macroSources[0]?.definition;
  if (definition !== undefined && expansion.sources.every((source) => source.value.trim() === '')) {
    // The placeholder is the macro: point there, and say where it is used.
    const at = definition.valueAttribute ?? definition.element.attributes[0];
    const usedAt = context.problems.lineOf(attribute.nameSpan.start);
    context.problems.error(
      'empty-placeholder',
      at === undefined
        ? site(definition.element.nameSpan, walked.path)
        : attributeSite(at, elementPath(definition.element)),
      `macro ${definition.name} is empty but <${walked.element.name}> ${attribute.name} (line ${usedAt}) needs a value: ${what}`,
    );
    return;
  }
  const environment = expansion.sources.find((source) => source.kind === 'environment');
  const suffix = environment === undefined ? '' : ` (environment variable ${environment.name} is empty)`;
  context.problems.error(
    'empty-placeholder',
    attributeSite(attribute, walked.path),
    `<${walked.element.name}> ${attribute.name} is empty${suffix}: ${what}`,
  );
}

function walkAttributes(context: WalkContext, walked: Walked): void {
  const { element, spec } = walked;
  for (const attribute of element.attributes) {
    const attributeSpec = spec.attributes[attribute.name];
    if (attributeSpec === undefined) {
      if (spec.anyAttributes === true) continue;
      const known = Object.keys(spec.attributes);
      const suggestion = closestName(attribute.name, known);
      context.problems.warning(
        'unknown-attribute',
        site(attribute.nameSpan, walked.path),
        `unknown attribute ${attribute.name} in <${element.name}>; it is ignored`,
        suggestion === undefined
          ? known.length === 0
            ? `<${element.name}> has no attributes`
            : `known attributes: ${known.join(', ')}`
          : `did you mean ${suggestion}?`,
      );
      continue;
    }
    if (attributeSpec.legacy !== undefined) {
      context.problems.warning('legacy-syntax', site(attribute.nameSpan, walked.path), attributeSpec.legacy);
    }
    if (
      attributeSpec.modes !== undefined &&
      context.mode !== undefined &&
      !attributeSpec.modes.includes(context.mode)
    ) {
      context.problems.warning(
        'mode-mismatch',
        site(attribute.nameSpan, walked.path),
        `${attribute.name} applies to ${attributeSpec.modes.join(' and ')} modules only; it is ignored in a ${context.mode} module`,
      );
    }
    const expander = spec.literal === true ? undefined : context.expander;
    const expansion = expander?.expand(attribute.value) ?? {
      value: attribute.value,
      sources: [],
      undefinedNames: [],
      truncated: false,
    };
    walked.expanded.set(attribute.name, expansion);
    for (const name of expansion.undefinedNames) {
      const suggestion = context.expander?.suggestion(name);
      context.problems.warning(
        'undefined-macro',
        attributeSite(attribute, walked.path),
        `%${name}% is neither a macro nor an environment variable; it is left as written`,
        suggestion === undefined ? undefined : `did you mean %${suggestion}%?`,
      );
    }
    if (expansion.truncated) {
      context.problems.error(
        'invalid-value',
        attributeSite(attribute, walked.path),
        `value of ${attribute.name} grows past ${expansion.value.length} characters when macros are expanded`,
      );
      continue;
    }
    if (expansion.value.trim() === '' && !emptyAllowed(attributeSpec.type)) {
      reportEmpty(context, walked, attribute, attributeSpec, expansion);
      continue;
    }
    const result = parseValue(attributeSpec.type, expansion.value, attribute.name);
    if (result.ok) walked.given.set(attribute.name, result.value);
    else
      context.problems.error(
        'invalid-value',
        attributeSite(attribute, walked.path),
        result.message,
        result.hint,
      );
  }
  if (spec.exactlyOne !== undefined) {
    const present = spec.exactlyOne.filter((name) =>
      element.attributes.some((attribute) => attribute.name === name),
    );
    if (present.length !== 1) {
      const choices = spec.exactlyOne.map((name) => `${name}="..."`).join(' or ');
      context.problems.error(
        'missing-value',
        site(element.nameSpan, walked.path),
        present.length === 0
          ? `<${element.name}> needs ${choices}`
          : `<${element.name}> takes one of ${spec.exactlyOne.join(', ')}, not ${present.join(' and ')}`,
      );
    }
  }
  for (const [name, attributeSpec] of Object.entries(spec.attributes)) {
    if (attributeSpec.required === undefined) continue;
    if (element.attributes.some((attribute) => attribute.name === name)) continue;
    context.problems.error(
      'missing-value',
      site(element.nameSpan, walked.path),
      `missing attribute ${name} in <${element.name}>: ${attributeSpec.required}`,
    );
  }
}

/** Paths of an element's children (`name[n]` when the name repeats), computed once per parent. */
function childPaths(element: XmlElement, path: string): Map<XmlElement, string> {
  const totals = new Map<string, number>();
  for (const node of element.children)
    if (node.kind === 'element') totals.set(node.name, (totals.get(node.name) ?? 0) + 1);
  const seen = new Map<string, number>();
  const paths = new Map<XmlElement, string>();
  for (const node of element.children) {
    if (node.kind !== 'element') continue;
    const index = (seen.get(node.name) ?? 0) + 1;
    seen.set(node.name, index);
    paths.set(
      node,
      (totals.get(node.name) ?? 0) > 1 ? `${path}/${node.name}[${index}]` : `${path}/${node.name}`,
    );
  }
  return paths;
}

function walkElement(
  context: WalkContext,
  element: XmlElement,
  spec: ElementSpec,
  parent: Walked | undefined,
  path: string,
): Walked {
  const walked = new Walked(element, spec, parent, path);
  if (spec.legacy !== undefined) {
    if (spec.legacyIsError === true)
      context.problems.error('legacy-syntax', site(element.nameSpan, walked.path), spec.legacy);
    else context.problems.warning('legacy-syntax', site(element.nameSpan, walked.path), spec.legacy);
  }
  walkAttributes(context, walked);
  const counts = new Map<string, number>();
  const paths = childPaths(element, walked.path);
  for (const node of element.children) {
    if (node.kind === 'text' || node.kind === 'cdata') {
      if (spec.content === 'rules') continue;
      const text = nodeText(context.source, node);
      if (text.trim() === '') continue;
      const leading = node.kind === 'text' ? text.length - text.trimStart().length : 0;
      context.problems.warning(
        'unexpected-text',
        {
          start: node.span.start + Math.min(leading, node.span.end - node.span.start),
          end: node.span.end,
          path: walked.path,
        },
        `text inside <${element.name}> is ignored`,
      );
      continue;
    }
    if (node.kind !== 'element') continue;
    const childSpec = spec.children[node.name];
    const childPath = paths.get(node) ?? `${walked.path}/${node.name}`;
    if (childSpec === undefined) {
      const homes = context.homes.get(node.name);
      if (homes !== undefined && homes.length > 0) {
        context.problems.warning(
          'misplaced-element',
          site(node.nameSpan, childPath),
          `<${node.name}> is not valid inside <${element.name}>; it is ignored`,
          `<${node.name}> belongs inside <${homes.join('> or <')}>`,
        );
      } else {
        const known = Object.keys(spec.children);
        const suggestion = closestName(node.name, known);
        context.problems.warning(
          'unknown-element',
          site(node.nameSpan, childPath),
          `unknown element <${node.name}> in <${element.name}>; it is ignored`,
          suggestion === undefined
            ? known.length === 0
              ? `<${element.name}> has no child elements`
              : `known elements: ${known.join(', ')}`
            : `did you mean <${suggestion}>?`,
        );
      }
      continue;
    }
    const count = (counts.get(node.name) ?? 0) + 1;
    counts.set(node.name, count);
    if (childSpec.occurrencesMax !== undefined && count > childSpec.occurrencesMax) {
      context.problems.error(
        'duplicate-element',
        site(node.nameSpan, childPath),
        `only ${childSpec.occurrencesMax === 1 ? 'one' : childSpec.occurrencesMax} <${node.name}> allowed in <${element.name}>; this one is ignored`,
      );
      continue;
    }
    if (
      childSpec.modes !== undefined &&
      context.mode !== undefined &&
      !childSpec.modes.includes(context.mode)
    ) {
      context.problems.error(
        'mode-mismatch',
        site(node.nameSpan, childPath),
        `<${node.name}> is only valid in ${childSpec.modes.join(' and ')} modules; this module is ${context.mode}`,
      );
      continue;
    }
    walked.children.push(walkElement(context, node, childSpec, walked, childPath));
  }
  return walked;
}

/**
 * Walks `document` from its root, which must be `<rootName>`. Returns undefined (with a problem)
 * when there is no usable root.
 */
export function walkDocument(
  document: XmlDocument,
  rootSpec: ElementSpec,
  rootName: string,
  context: WalkContext,
): WalkedElement | undefined {
  const root = document.root;
  if (root === undefined) {
    context.problems.error(
      'document-structure',
      { start: 0, end: 0, path: '' },
      `no <${rootName}> element in the file`,
    );
    return undefined;
  }
  if (root.name !== rootName) {
    context.problems.error(
      'document-structure',
      site(root.nameSpan, root.name),
      `the root element must be <${rootName}>, not <${root.name}>`,
    );
    return undefined;
  }
  return walkElement(context, root, rootSpec, undefined, root.name);
}
