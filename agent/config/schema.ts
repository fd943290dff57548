// The declarative schema shared by userconfig.xml and cluster.xml: which elements and attributes
// exist where, their value types, units, defaults and the modes they apply to. One table drives
// the unknown-name warnings, the value checks, the defaults of the effective configuration and
// (later) the console's forms, so the four can never disagree.
import type { TimeUnit } from './duration.ts';

export type ModuleMode = 'mirror' | 'farm' | 'light';

export const moduleModes: readonly ModuleMode[] = ['mirror', 'farm', 'light'];

export type ValueType =
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  /** One of `values`, or any other word matching `pattern` (errd handlers, custom classes). */
  | {
      readonly kind: 'open-enum';
      readonly values: readonly string[];
      readonly pattern: RegExp;
      readonly otherwise: string;
    }
  | { readonly kind: 'duration'; readonly unit: TimeUnit; readonly zeroAllowed: boolean }
  | { readonly kind: 'integer'; readonly min: number; readonly max: number; readonly hex?: boolean }
  | {
      readonly kind: 'text';
      readonly emptyAllowed: boolean;
      readonly lengthMax: number;
      readonly pattern?: RegExp;
      readonly patternText?: string;
    }
  /** IPv4, IPv6 or DNS name; `brackets` when IPv6 must be written `[..]` (cluster.xml). */
  | { readonly kind: 'address'; readonly brackets: boolean; readonly anyAllowed?: boolean }
  | { readonly kind: 'port'; readonly anyAllowed: boolean }
  | { readonly kind: 'mac' }
  | { readonly kind: 'netmask' };

export type ParsedValue = string | number;

/** What a default may look at: the element's own values and its parent's (heartbeat pulse). */
export interface ValueLookup {
  value(name: string): ParsedValue | undefined;
  readonly parent: ValueLookup | undefined;
  readonly elementName: string;
}

export interface AttributeSpec {
  readonly type: ValueType;
  /** Missing or empty is an error; the text tells the user what to set. */
  readonly required?: string;
  /** For an optional attribute left empty (a template placeholder): what to set. */
  readonly emptyHint?: string;
  readonly default?: ParsedValue | ((element: ValueLookup) => ParsedValue | undefined);
  /** Changeable by a dynamic configuration (reference: "dyn"). */
  readonly dyn?: boolean;
  /** Only meaningful in these modes; set elsewhere it is a warning. */
  readonly modes?: readonly ModuleMode[];
  /** Accepted for old files and otherwise ignored; the text says so. */
  readonly legacy?: string;
  readonly doc: string;
}

export interface ElementSpec {
  readonly doc: string;
  readonly attributes: Readonly<Record<string, AttributeSpec>>;
  readonly children: Readonly<Record<string, ElementSpec>>;
  /** Only valid in these modes (an error elsewhere). */
  readonly modes?: readonly ModuleMode[];
  /** At most this many under one parent. */
  readonly occurrencesMax?: number;
  /** Text or CDATA content is meaningful (failover rules). */
  readonly content?: 'rules';
  /** Old syntax: a warning (or an error when `legacyIsError`) with this text. */
  readonly legacy?: string;
  readonly legacyIsError?: boolean;
  /** Any attribute is accepted without a warning (legacy elements read for nothing). */
  readonly anyAttributes?: boolean;
  /** Exactly one of these attributes must be present (`<notreplicated path|regexpath>`). */
  readonly exactlyOne?: readonly string[];
  /** Attribute values are taken literally (macro definitions are expanded in their own pass). */
  readonly literal?: boolean;
  readonly dyn?: boolean;
}

// Small constructors keep the tables readable.

export const onOff = (
  defaultValue: 'on' | 'off' | undefined,
  doc: string,
  extra: Partial<AttributeSpec> = {},
) =>
  ({
    type: { kind: 'enum', values: ['on', 'off'] },
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const oneOf = (
  values: readonly string[],
  defaultValue: AttributeSpec['default'],
  doc: string,
  extra: Partial<AttributeSpec> = {},
) =>
  ({
    type: { kind: 'enum', values },
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const duration = (
  unit: TimeUnit,
  defaultValue: AttributeSpec['default'],
  zeroAllowed: boolean,
  doc: string,
  extra: Partial<AttributeSpec> = {},
) =>
  ({
    type: { kind: 'duration', unit, zeroAllowed },
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const integer = (
  min: number,
  max: number,
  defaultValue: AttributeSpec['default'],
  doc: string,
  extra: Partial<AttributeSpec> = {},
) =>
  ({
    type: { kind: 'integer', min, max },
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const text = (
  doc: string,
  extra: Partial<AttributeSpec> = {},
  emptyAllowed = false,
  lengthMax = 4096,
) => ({ type: { kind: 'text', emptyAllowed, lengthMax }, doc, ...extra }) satisfies AttributeSpec;

export const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A resource ident (`tcp.<ident>`): no spaces, no dots that would split the resource name. */
export const identText = (doc: string, extra: Partial<AttributeSpec> = {}) =>
  ({
    type: {
      kind: 'text',
      emptyAllowed: false,
      lengthMax: 128,
      pattern: /^[A-Za-z0-9_%][A-Za-z0-9_.:%-]*$/,
      patternText: 'letters, digits, _ . : and -',
    },
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const portNumber = (
  defaultValue: AttributeSpec['default'],
  doc: string,
  extra: Partial<AttributeSpec> = {},
) =>
  ({
    type: { kind: 'port', anyAllowed: false },
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    doc,
    ...extra,
  }) satisfies AttributeSpec;

export const address = (brackets: boolean, doc: string, extra: Partial<AttributeSpec> = {}) =>
  ({ type: { kind: 'address', brackets }, doc, ...extra }) satisfies AttributeSpec;

export function element(
  doc: string,
  attributes: Record<string, AttributeSpec>,
  children: Record<string, ElementSpec> = {},
  extra: Partial<ElementSpec> = {},
): ElementSpec {
  return { doc, attributes, children, ...extra };
}

/** Every element name that appears anywhere under `spec`, with the parents it belongs to. */
export function elementHomes(spec: ElementSpec, rootName: string): Map<string, string[]> {
  const homes = new Map<string, string[]>();
  const visit = (current: ElementSpec, name: string, depth: number): void => {
    if (depth > 16) return;
    for (const [childName, child] of Object.entries(current.children)) {
      const list = homes.get(childName) ?? [];
      if (!list.includes(name)) list.push(name);
      homes.set(childName, list);
      visit(child, childName, depth + 1);
    }
  };
  visit(spec, rootName, 0);
  return homes;
}
