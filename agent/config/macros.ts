// `<macro name="ID" value="..."/>` and `%NAME%` expansion (reference §4.2): macros first, then the
// environment. Each expansion remembers where its text came from, so an empty template
// placeholder (`<macro name="VIRTUAL_IP" value=""/>`) is reported at the macro the user must fill in.
import { closestName } from './suggest.ts';
import type { XmlAttribute, XmlElement } from './xml.ts';

export interface MacroDefinition {
  readonly name: string;
  /** Expanded value (a macro may use the macros defined before it, and the environment). */
  readonly value: string;
  readonly element: XmlElement;
  readonly valueAttribute: XmlAttribute | undefined;
}

export interface ExpansionSource {
  readonly kind: 'macro' | 'environment';
  readonly name: string;
  readonly value: string;
  readonly definition: MacroDefinition | undefined;
}

export interface Expansion {
  readonly value: string;
  readonly sources: readonly ExpansionSource[];
  /** `%NAME%` references that are neither macros nor environment variables (left as written). */
  readonly undefinedNames: readonly string[];
  /** The result hit the size bound and the rest was left unexpanded. */
  readonly truncated: boolean;
}

export type Environment = Readonly<Record<string, string | undefined>>;

/** One expanded value may not grow past this (a runaway environment variable, a macro bomb). */
export const expandedValueCharsMax = 256 * 1024;

const reference = /%([A-Za-z_][A-Za-z0-9_]*)%/g;

export class MacroExpander {
  private readonly macros = new Map<string, MacroDefinition>();

  constructor(private readonly environment: Environment) {}

  define(definition: MacroDefinition): void {
    this.macros.set(definition.name, definition);
  }

  has(name: string): boolean {
    return this.macros.has(name);
  }

  definitions(): MacroDefinition[] {
    return [...this.macros.values()];
  }

  expand(raw: string): Expansion {
    if (!raw.includes('%')) return { value: raw, sources: [], undefinedNames: [], truncated: false };
    const sources: ExpansionSource[] = [];
    const undefinedNames: string[] = [];
    let truncated = false;
    let out = '';
    let last = 0;
    for (const match of raw.matchAll(reference)) {
      const name = match[1] ?? '';
      const index = match.index ?? 0;
      out += raw.slice(last, index);
      last = index + match[0].length;
      const macro = this.macros.get(name);
      const environmentValue = this.environment[name];
      let replacement: string;
      if (macro !== undefined) {
        replacement = macro.value;
        sources.push({ kind: 'macro', name, value: macro.value, definition: macro });
      } else if (environmentValue !== undefined) {
        replacement = environmentValue;
        sources.push({ kind: 'environment', name, value: environmentValue, definition: undefined });
      } else {
        replacement = match[0];
        if (!undefinedNames.includes(name)) undefinedNames.push(name);
      }
      if (out.length + replacement.length > expandedValueCharsMax) {
        truncated = true;
        out += raw.slice(index);
        last = raw.length;
        break;
      }
      out += replacement;
    }
    out += raw.slice(last);
    return { value: out, sources, undefinedNames, truncated };
  }

  suggestion(name: string): string | undefined {
    return closestName(name, this.macros.keys());
  }
}
