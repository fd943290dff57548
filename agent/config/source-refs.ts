// SourceRef: where a model item is written, kept on the item so checks made after the schema walk
// (nesting, duplicates, cluster names) still point at the right line and attribute.
import type { SourceRef } from './model.ts';
import type { LineIndex } from './positions.ts';
import type { ProblemSite } from './problems.ts';
import type { WalkedElement } from './schema-walk.ts';

export class SourceRefs {
  constructor(private readonly lines: LineIndex) {}

  of(walked: WalkedElement): SourceRef {
    const element = walked.element;
    const position = this.lines.position(element.nameSpan.start);
    const attributes: Record<string, { start: number; end: number }> = {};
    for (const attribute of element.attributes) {
      attributes[attribute.name] = { start: attribute.valueSpan.start, end: attribute.valueSpan.end };
    }
    return {
      line: position.line,
      column: position.column,
      path: walked.path,
      start: element.nameSpan.start,
      end: element.nameSpan.end,
      attributes,
    };
  }
}

export function elementSite(source: SourceRef): ProblemSite {
  return { start: source.start, end: source.end, path: source.path };
}

/** The value of attribute `name`, or the element name when the attribute is absent or empty. */
export function attributeSiteOf(source: SourceRef, name: string): ProblemSite {
  const span = source.attributes[name];
  if (span === undefined || span.end <= span.start) return elementSite(source);
  return { start: span.start, end: span.end, path: source.path };
}
