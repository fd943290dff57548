// Offsets in a source text to 1-based line and column (columns count UTF-16 code units, a tab is
// one column), so every problem can point at the exact place an editor shows.
import { assert } from './assert.ts';

export interface Position {
  readonly line: number;
  readonly column: number;
}

export class LineIndex {
  private readonly lineStarts: number[] = [0];

  constructor(private readonly text: string) {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10) this.lineStarts.push(i + 1);
    }
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  position(offset: number): Position {
    assert(offset >= 0 && offset <= this.text.length, `offset ${offset} within 0..${this.text.length}`);
    // Binary search for the last line start <= offset.
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.lineStarts[middle] ?? 0) <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - (this.lineStarts[low] ?? 0) + 1 };
  }

  /** Offset of the first character of a 1-based line (the text length past the last line). */
  lineStart(line: number): number {
    assert(line >= 1, 'lines are 1-based');
    return this.lineStarts[line - 1] ?? this.text.length;
  }
}
