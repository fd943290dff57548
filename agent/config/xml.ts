// A small lossless XML parser for userconfig.xml and cluster.xml.
//
// Why not fast-xml-parser (or another general parser): validation must point at the line and column
// of every element and attribute, and editing must write back the user's file with only the edited
// bytes changed (comments, `<!DOCTYPE safe>`, attribute order, indentation and quoting kept). General
// parsers drop the DOCTYPE and positions and re-serialise from a tree. This parser keeps the exact
// source span of every node instead: every character of the input belongs to exactly one node, even
// in a malformed file, so problems have precise locations, edits are splices of the original text
// and `serializeXml(parseXml(x)) === x` always. The files use a tiny subset of XML (no namespaces,
// no DTD semantics, no external entities), which keeps the parser short and without an XXE surface.
// It never throws on bad input: syntax errors become problems and parsing recovers.
import { assert } from './assert.ts';

export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface XmlAttribute {
  readonly name: string;
  readonly nameSpan: Span;
  /** Decoded value: entities replaced, tabs and newlines normalised to spaces (XML 1.0 §3.3.3). */
  readonly value: string;
  /** Span of the raw value between the quotes. */
  readonly valueSpan: Span;
  /** The opening quote as written (`"`, `'`, a typographic quote, or empty when unquoted). */
  readonly openQuote: string;
  readonly closeQuote: string;
  /** From the first character of the name to the closing quote. */
  readonly span: Span;
}

export interface XmlElement {
  readonly kind: 'element';
  readonly name: string;
  readonly nameSpan: Span;
  readonly attributes: readonly XmlAttribute[];
  readonly startTag: Span;
  readonly selfClosing: boolean;
  readonly children: readonly XmlNode[];
  readonly endTag: Span | undefined;
  readonly span: Span;
  readonly parent: XmlElement | undefined;
}

export interface XmlText {
  readonly kind: 'text';
  readonly span: Span;
}

export interface XmlComment {
  readonly kind: 'comment';
  readonly span: Span;
}

export interface XmlCData {
  readonly kind: 'cdata';
  readonly span: Span;
  readonly content: Span;
}

export interface XmlDoctype {
  readonly kind: 'doctype';
  readonly span: Span;
  readonly name: string;
}

export interface XmlProcessingInstruction {
  readonly kind: 'pi';
  readonly span: Span;
  readonly target: string;
}

/** Markup that belongs nowhere (an end tag closing nothing, an unknown `<!` declaration). */
export interface XmlStray {
  readonly kind: 'stray';
  readonly span: Span;
}

/** Every node but an element. */
export type XmlLeaf = XmlText | XmlComment | XmlCData | XmlDoctype | XmlProcessingInstruction | XmlStray;

export type XmlNode = XmlElement | XmlLeaf;

export interface XmlSyntaxProblem {
  readonly severity: 'error' | 'warning';
  readonly span: Span;
  readonly message: string;
  readonly hint?: string;
}

export interface XmlDocument {
  readonly source: string;
  /** Top-level nodes; their spans tile the whole source. */
  readonly nodes: readonly XmlNode[];
  readonly root: XmlElement | undefined;
  readonly doctype: XmlDoctype | undefined;
  readonly problems: readonly XmlSyntaxProblem[];
}

export interface XmlLimits {
  readonly charsMax: number;
  readonly depthMax: number;
  readonly elementsMax: number;
  readonly attributesPerElementMax: number;
}

/** Real module files are a few KiB; these bounds only stop pathological input. */
export const defaultXmlLimits: XmlLimits = {
  charsMax: 4 * 1024 * 1024,
  depthMax: 64,
  elementsMax: 100_000,
  attributesPerElementMax: 256,
};

interface MutableElement {
  kind: 'element';
  name: string;
  nameSpan: Span;
  attributes: XmlAttribute[];
  startTag: Span;
  selfClosing: boolean;
  children: XmlNode[];
  endTag: Span | undefined;
  span: { start: number; end: number };
  parent: MutableElement | undefined;
}

const lt = 0x3c;
const gt = 0x3e;
const slash = 0x2f;
const equals = 0x3d;
const leftDoubleQuote = '\u201c';
const rightDoubleQuote = '\u201d';

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

function isNameStart(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    code === 0x5f ||
    code === 0x3a ||
    code > 0x7f
  );
}

function isNameChar(code: number): boolean {
  return isNameStart(code) || (code >= 0x30 && code <= 0x39) || code === 0x2d || code === 0x2e;
}

function describeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  return code < 0x20 ? `U+${code.toString(16).padStart(4, '0').toUpperCase()}` : `'${char}'`;
}

class Parser {
  private pos = 0;
  private readonly stack: MutableElement[] = [];
  private readonly top: XmlNode[] = [];
  private readonly problems: XmlSyntaxProblem[] = [];
  private elementCount = 0;
  private doctype: XmlDoctype | undefined;

  constructor(
    private readonly source: string,
    private readonly limits: XmlLimits,
  ) {}

  run(): XmlDocument {
    const length = this.source.length;
    if (length > this.limits.charsMax) {
      this.error(
        { start: 0, end: 0 },
        `file too large: ${length} characters (at most ${this.limits.charsMax})`,
      );
      this.appendText(0, length);
      return this.finish();
    }
    while (this.pos < length) {
      if (this.elementCount > this.limits.elementsMax) {
        this.error(
          { start: this.pos, end: this.pos },
          `too many elements (at most ${this.limits.elementsMax}); the rest of the file is not read`,
        );
        this.appendText(this.pos, length);
        this.pos = length;
        break;
      }
      if (this.source.charCodeAt(this.pos) === lt) this.markup();
      else {
        const next = this.source.indexOf('<', this.pos);
        const end = next === -1 ? length : next;
        this.appendText(this.pos, end);
        this.pos = end;
      }
    }
    while (this.stack.length > 0) {
      const open = this.stack.pop();
      assert(open !== undefined, 'stack is not empty');
      this.error(open.nameSpan, `<${open.name}> is never closed: missing </${open.name}>`);
      open.span.end = length;
    }
    return this.finish();
  }

  private finish(): XmlDocument {
    let root: XmlElement | undefined;
    for (const node of this.top) {
      if (node.kind === 'element') {
        if (root === undefined) root = node;
        else
          this.error(
            node.nameSpan,
            `only one root element is allowed; <${node.name}> comes after <${root.name}>`,
          );
      } else if (node.kind === 'text') {
        const text = this.source.slice(node.span.start, node.span.end);
        if (text.replace(/^\uFEFF/, '').trim() !== '') {
          const offset = node.span.start + (text.length - text.trimStart().length);
          this.error({ start: offset, end: node.span.end }, 'text outside the root element');
        }
      }
    }
    const covered = this.top.reduce((sum, node) => sum + (node.span.end - node.span.start), 0);
    assert(
      covered === this.source.length,
      `top-level nodes cover the source (${covered}/${this.source.length})`,
    );
    return {
      source: this.source,
      nodes: this.top,
      root,
      doctype: this.doctype,
      problems: this.problems,
    };
  }

  private error(span: Span, message: string, hint?: string): void {
    this.problems.push({ severity: 'error', span, message, ...(hint === undefined ? {} : { hint }) });
  }

  private warning(span: Span, message: string, hint?: string): void {
    this.problems.push({ severity: 'warning', span, message, ...(hint === undefined ? {} : { hint }) });
  }

  private children(): XmlNode[] {
    return this.stack.at(-1)?.children ?? this.top;
  }

  private appendText(start: number, end: number): void {
    if (end <= start) return;
    const siblings = this.children();
    const last = siblings.at(-1);
    if (last?.kind === 'text' && last.span.end === start) {
      siblings[siblings.length - 1] = { kind: 'text', span: { start: last.span.start, end } };
    } else siblings.push({ kind: 'text', span: { start, end } });
  }

  private startsWith(prefix: string): boolean {
    return this.source.startsWith(prefix, this.pos);
  }

  private markup(): void {
    const start = this.pos;
    if (this.startsWith('<!--')) {
      const close = this.source.indexOf('-->', start + 4);
      const end = close === -1 ? this.source.length : close + 3;
      if (close === -1) this.error({ start, end: start + 4 }, 'comment is never closed: missing -->');
      this.children().push({ kind: 'comment', span: { start, end } });
      this.pos = end;
    } else if (this.startsWith('<![CDATA[')) {
      const close = this.source.indexOf(']]>', start + 9);
      const contentEnd = close === -1 ? this.source.length : close;
      const end = close === -1 ? this.source.length : close + 3;
      if (close === -1) this.error({ start, end: start + 9 }, 'CDATA section is never closed: missing ]]>');
      this.children().push({
        kind: 'cdata',
        span: { start, end },
        content: { start: start + 9, end: contentEnd },
      });
      this.pos = end;
    } else if (this.source.slice(start, start + 9).toUpperCase() === '<!DOCTYPE') {
      this.doctypeDeclaration();
    } else if (this.startsWith('<!')) {
      const end = this.declarationEnd(start + 2);
      this.error({ start, end }, 'unsupported markup declaration');
      this.children().push({ kind: 'stray', span: { start, end } });
      this.pos = end;
    } else if (this.startsWith('<?')) {
      const close = this.source.indexOf('?>', start + 2);
      const end = close === -1 ? this.source.length : close + 2;
      if (close === -1)
        this.error({ start, end: start + 2 }, 'processing instruction is never closed: missing ?>');
      this.pos = start + 2;
      const target = this.readName();
      this.children().push({ kind: 'pi', span: { start, end }, target });
      this.pos = end;
    } else if (this.startsWith('</')) {
      this.endTag();
    } else if (isNameStart(this.source.charCodeAt(start + 1))) {
      this.startTag();
    } else {
      this.error({ start, end: start + 1 }, "'<' does not start a tag", 'write &lt; for a literal <');
      this.appendText(start, start + 1);
      this.pos = start + 1;
    }
  }

  /** End of a `<!...>` declaration, skipping quoted strings and a bracketed internal subset. */
  private declarationEnd(from: number): number {
    let depth = 0;
    let quote = '';
    for (let i = from; i < this.source.length; i++) {
      const char = this.source[i];
      if (quote !== '') {
        if (char === quote) quote = '';
      } else if (char === '"' || char === "'") quote = char;
      else if (char === '[') depth += 1;
      else if (char === ']') depth = Math.max(0, depth - 1);
      else if (char === '>' && depth === 0) return i + 1;
      else if (char === '<' && depth === 0) {
        this.error({ start: from - 2, end: i }, 'markup declaration is never closed: missing >');
        return i;
      }
    }
    this.error({ start: from - 2, end: this.source.length }, 'markup declaration is never closed: missing >');
    return this.source.length;
  }

  private doctypeDeclaration(): void {
    const start = this.pos;
    const end = this.declarationEnd(start + 2);
    this.pos = start + 9;
    this.skipSpaces();
    const name = this.readName();
    const node: XmlDoctype = { kind: 'doctype', span: { start, end }, name };
    if (this.stack.length > 0 || this.top.some((other) => other.kind === 'element')) {
      this.error({ start, end }, '<!DOCTYPE> must come before the root element');
    } else if (this.doctype !== undefined) {
      this.error({ start, end }, 'only one <!DOCTYPE> is allowed');
    } else this.doctype = node;
    this.children().push(node);
    this.pos = end;
  }

  private skipSpaces(): void {
    while (this.pos < this.source.length && isSpace(this.source.charCodeAt(this.pos))) this.pos += 1;
  }

  private readName(): string {
    const start = this.pos;
    if (this.pos < this.source.length && isNameStart(this.source.charCodeAt(this.pos))) {
      this.pos += 1;
      while (this.pos < this.source.length && isNameChar(this.source.charCodeAt(this.pos))) this.pos += 1;
    }
    return this.source.slice(start, this.pos);
  }

  private startTag(): void {
    const start = this.pos;
    this.pos += 1;
    const nameStart = this.pos;
    const name = this.readName();
    const nameSpan = { start: nameStart, end: this.pos };
    const attributes: XmlAttribute[] = [];
    let selfClosing = false;
    let tooManyReported = false;
    for (;;) {
      this.skipSpaces();
      if (this.pos >= this.source.length) {
        this.error(nameSpan, `tag <${name}> is never closed: missing >`);
        selfClosing = true;
        break;
      }
      const code = this.source.charCodeAt(this.pos);
      if (code === gt) {
        this.pos += 1;
        break;
      }
      if (code === slash && this.source.charCodeAt(this.pos + 1) === gt) {
        this.pos += 2;
        selfClosing = true;
        break;
      }
      if (code === lt) {
        this.error(nameSpan, `tag <${name}> is never closed: missing >`);
        selfClosing = true;
        break;
      }
      if (isNameStart(code)) {
        const attribute = this.attribute();
        if (attributes.some((other) => other.name === attribute.name)) {
          this.error(attribute.nameSpan, `attribute ${attribute.name} is given twice in <${name}>`);
        }
        if (attributes.length < this.limits.attributesPerElementMax) attributes.push(attribute);
        else if (!tooManyReported) {
          tooManyReported = true;
          this.error(
            attribute.nameSpan,
            `too many attributes in <${name}> (at most ${this.limits.attributesPerElementMax})`,
          );
        }
        continue;
      }
      const char = String.fromCodePoint(this.source.codePointAt(this.pos) ?? 0);
      this.error(
        { start: this.pos, end: this.pos + char.length },
        `unexpected character ${describeChar(char)} in tag <${name}>`,
      );
      this.pos += char.length;
    }
    this.elementCount += 1;
    const parent = this.stack.at(-1);
    if (!selfClosing && this.stack.length >= this.limits.depthMax) {
      this.error(nameSpan, `elements are nested deeper than ${this.limits.depthMax} levels`);
      selfClosing = true;
    }
    const element: MutableElement = {
      kind: 'element',
      name,
      nameSpan,
      attributes,
      startTag: { start, end: this.pos },
      selfClosing,
      children: [],
      endTag: undefined,
      span: { start, end: this.pos },
      parent,
    };
    this.children().push(element);
    if (!selfClosing) this.stack.push(element);
  }

  private attribute(): XmlAttribute {
    const nameStart = this.pos;
    const name = this.readName();
    const nameSpan = { start: nameStart, end: this.pos };
    const afterName = this.pos;
    this.skipSpaces();
    if (this.source.charCodeAt(this.pos) !== equals) {
      this.pos = afterName;
      this.error(nameSpan, `attribute ${name} has no value`, `write ${name}="..."`);
      return {
        name,
        nameSpan,
        value: '',
        valueSpan: { start: afterName, end: afterName },
        openQuote: '',
        closeQuote: '',
        span: nameSpan,
      };
    }
    this.pos += 1;
    this.skipSpaces();
    const open = this.source[this.pos] ?? '';
    let closers: string;
    if (open === '"' || open === "'") closers = open;
    else if (open === leftDoubleQuote || open === rightDoubleQuote) {
      // Copied from a web page: typographic quotes. Read them as quotes (the intent is clear) but
      // warn, since other XML tools reject the file.
      closers = `${leftDoubleQuote}${rightDoubleQuote}"`;
      this.warning(
        { start: this.pos, end: this.pos + 1 },
        `typographic quote ${open} around the value of ${name}`,
        'replace it with a straight quote "',
      );
    } else {
      return this.unquotedValue(name, nameSpan);
    }
    this.pos += 1;
    const valueStart = this.pos;
    let closeQuote = '';
    while (this.pos < this.source.length) {
      const char = this.source[this.pos] ?? '';
      if (closers.includes(char)) {
        closeQuote = char;
        break;
      }
      if (char === '<') break;
      this.pos += 1;
    }
    const valueSpan = { start: valueStart, end: this.pos };
    if (closeQuote === '') {
      this.error(
        { start: valueStart - 1, end: this.pos },
        `value of ${name} has no closing quote ${closers[0]}`,
      );
    } else this.pos += 1;
    const value = decodeText(this.source, valueSpan, true, this.problems);
    return {
      name,
      nameSpan,
      value,
      valueSpan,
      openQuote: open,
      closeQuote,
      span: { start: nameStart, end: this.pos },
    };
  }

  private unquotedValue(name: string, nameSpan: Span): XmlAttribute {
    const valueStart = this.pos;
    while (this.pos < this.source.length) {
      const code = this.source.charCodeAt(this.pos);
      if (isSpace(code) || code === gt || code === lt) break;
      if (code === slash && this.source.charCodeAt(this.pos + 1) === gt) break;
      this.pos += 1;
    }
    const valueSpan = { start: valueStart, end: this.pos };
    this.error(
      { start: valueStart, end: Math.max(valueStart + 1, this.pos) },
      `value of ${name} is not quoted`,
      `write ${name}="${this.source.slice(valueStart, this.pos)}"`,
    );
    const value = decodeText(this.source, valueSpan, true, this.problems);
    return {
      name,
      nameSpan,
      value,
      valueSpan,
      openQuote: '',
      closeQuote: '',
      span: { start: nameSpan.start, end: this.pos },
    };
  }

  private endTag(): void {
    const start = this.pos;
    this.pos += 2;
    const nameStart = this.pos;
    const name = this.readName();
    const nameSpan = { start: nameStart, end: this.pos };
    this.skipSpaces();
    if (this.source.charCodeAt(this.pos) === gt) this.pos += 1;
    else {
      this.error(
        { start, end: this.pos },
        name === '' ? 'malformed end tag' : `end tag </${name}> is missing >`,
      );
    }
    const span = { start, end: this.pos };
    let index = -1;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      if (this.stack[i]?.name === name) {
        index = i;
        break;
      }
    }
    if (index === -1) {
      const open = this.stack.at(-1);
      this.error(
        nameSpan.end > nameSpan.start ? nameSpan : span,
        open === undefined
          ? `unexpected </${name}>: no element is open`
          : `unexpected </${name}> inside <${open.name}>`,
        open === undefined ? undefined : `did you mean </${open.name}>?`,
      );
      this.children().push({ kind: 'stray', span });
      return;
    }
    while (this.stack.length - 1 > index) {
      const unclosed = this.stack.pop();
      assert(unclosed !== undefined, 'an element above the match is open');
      this.error(unclosed.nameSpan, `<${unclosed.name}> is never closed: missing </${unclosed.name}>`);
      unclosed.span.end = start;
    }
    const element = this.stack.pop();
    assert(element !== undefined && element.name === name, 'the matching element is on top');
    element.endTag = span;
    element.span.end = span.end;
  }
}

export function parseXml(source: string, limits: XmlLimits = defaultXmlLimits): XmlDocument {
  return new Parser(source, limits).run();
}

const namedEntities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * Decodes character and entity references in `source[span]`. Attribute values also get XML's
 * whitespace normalisation and may not contain `<`. Problems go to `problems` (may be undefined
 * when the caller already reported them).
 */
export function decodeText(
  source: string,
  span: Span,
  isAttribute: boolean,
  problems: XmlSyntaxProblem[] | undefined,
): string {
  const raw = source.slice(span.start, span.end);
  if (!raw.includes('&') && !(isAttribute && /[\t\n\r<]/.test(raw))) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i] ?? '';
    if (isAttribute && (char === '\t' || char === '\n' || char === '\r')) {
      // A CR LF pair is one line end, hence one space.
      if (!(char === '\r' && raw[i + 1] === '\n')) out += ' ';
      continue;
    }
    if (isAttribute && char === '<') {
      problems?.push({
        severity: 'error',
        span: { start: span.start + i, end: span.start + i + 1 },
        message: "'<' is not allowed in an attribute value",
        hint: 'write &lt;',
      });
      out += char;
      continue;
    }
    if (char !== '&') {
      out += char;
      continue;
    }
    const match = /^&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{0,31});/.exec(raw.slice(i, i + 40));
    const site = { start: span.start + i, end: span.start + i + (match?.[0].length ?? 1) };
    if (match === null) {
      problems?.push({
        severity: 'error',
        span: site,
        message: "'&' does not start an entity",
        hint: 'write &amp;',
      });
      out += char;
      continue;
    }
    const reference = match[1] ?? '';
    let decoded: string | undefined;
    if (reference.startsWith('#')) {
      const codePoint = reference.startsWith('#x')
        ? Number.parseInt(reference.slice(2), 16)
        : Number.parseInt(reference.slice(1), 10);
      const valid =
        codePoint === 0x9 ||
        codePoint === 0xa ||
        codePoint === 0xd ||
        (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
        (codePoint >= 0xe000 && codePoint <= 0x10ffff && codePoint !== 0xfffe && codePoint !== 0xffff);
      if (valid) decoded = String.fromCodePoint(codePoint);
    } else decoded = namedEntities[reference];
    if (decoded === undefined) {
      problems?.push({ severity: 'error', span: site, message: `unknown entity ${match[0]}` });
      out += match[0];
    } else out += decoded;
    i += match[0].length - 1;
  }
  return out;
}

/** Decoded text of a text node, or the raw content of a CDATA section. */
export function nodeText(source: string, node: XmlText | XmlCData): string {
  return node.kind === 'cdata'
    ? source.slice(node.content.start, node.content.end)
    : decodeText(source, node.span, false, undefined);
}

/** Escapes a value for writing between `quote` characters. */
export function escapeAttributeValue(value: string, quote: string): string {
  let out = value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
  out = out.replace(/\r/g, '&#13;');
  if (quote === "'") out = out.replace(/'/g, '&apos;');
  else out = out.replace(/"/g, '&quot;');
  return out;
}

export function elementChildren(element: XmlElement): XmlElement[] {
  return element.children.filter((node): node is XmlElement => node.kind === 'element');
}

export function findAttribute(element: XmlElement, name: string): XmlAttribute | undefined {
  return element.attributes.find((attribute) => attribute.name === name);
}

/** `safe/service/rfs/replicated[2]`: names from the root, `[n]` (1-based) when the name repeats. */
export function elementPath(element: XmlElement): string {
  const steps: string[] = [];
  let current: XmlElement | undefined = element;
  while (current !== undefined) {
    const parent: XmlElement | undefined = current.parent;
    let step = current.name;
    if (parent !== undefined) {
      const sameName = parent.children.filter(
        (node): node is XmlElement => node.kind === 'element' && node.name === step,
      );
      if (sameName.length > 1) step += `[${sameName.indexOf(current) + 1}]`;
    }
    steps.push(step);
    current = parent;
  }
  return steps.reverse().join('/');
}

/** Path of the innermost element around `offset` (for syntax problems), or '' outside the root. */
export function elementPathAt(document: XmlDocument, offset: number): string {
  let current: XmlElement | undefined;
  let nodes: readonly XmlNode[] = document.nodes;
  for (let depth = 0; depth < defaultXmlLimits.depthMax + 1; depth++) {
    const inside = nodes.find(
      (node): node is XmlElement =>
        node.kind === 'element' && node.span.start <= offset && offset < node.span.end,
    );
    if (inside === undefined) break;
    current = inside;
    nodes = inside.children;
  }
  return current === undefined ? '' : elementPath(current);
}

export interface SerializeOptions {
  /** Rebuild start and end tags with single spaces (`<a b="1" c="2"/>`); text, comments and
   *  attribute values stay byte for byte. */
  readonly normalizeTags?: boolean;
}

/** Writes the document back. Without options the result is the input, byte for byte. */
export function serializeXml(document: XmlDocument, options: SerializeOptions = {}): string {
  const parts: string[] = [];
  const source = document.source;
  const write = (node: XmlNode): void => {
    if (node.kind !== 'element') {
      parts.push(source.slice(node.span.start, node.span.end));
      return;
    }
    if (options.normalizeTags === true) {
      const attributes = node.attributes
        .map(
          (attribute) =>
            ` ${attribute.name}=${attribute.openQuote}${source.slice(attribute.valueSpan.start, attribute.valueSpan.end)}${attribute.closeQuote}`,
        )
        .join('');
      parts.push(`<${node.name}${attributes}${node.selfClosing ? '/>' : '>'}`);
    } else parts.push(source.slice(node.startTag.start, node.startTag.end));
    for (const child of node.children) write(child);
    if (node.endTag !== undefined) {
      parts.push(
        options.normalizeTags === true ? `</${node.name}>` : source.slice(node.endTag.start, node.endTag.end),
      );
    }
  };
  for (const node of document.nodes) write(node);
  return parts.join('');
}
