// The lossless XML parser: spans, the DOCTYPE kept, byte-identical write back, recovery from
// malformed input with located problems.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  decodeText,
  elementChildren,
  elementPath,
  parseXml,
  serializeXml,
  type XmlElement,
} from '../../../agent/config/xml.ts';
import { fixture, fixturesDir } from './helpers.ts';

function root(text: string): XmlElement {
  const document = parseXml(text);
  assert.ok(document.root, 'the document has a root');
  return document.root;
}

function messages(text: string): string[] {
  return parseXml(text).problems.map((problem) => `${problem.severity}: ${problem.message}`);
}

/** Whitespace inside tags collapsed as serializeXml's normalizeTags does, for comparison. */
function normalizeTagWhitespace(text: string): string {
  return text
    .replace(
      /<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g,
      (_match, name: string, attributes: string, slash: string) => {
        const normalized = attributes.replace(/\s+([\w.:-]+)\s*=\s*("[^"]*"|'[^']*')/g, ' $1=$2');
        return `<${name}${normalized}${slash}>`;
      },
    )
    .replace(/<\/([A-Za-z_][\w.:-]*)\s+>/g, '</$1>');
}

describe('XML parser', () => {
  test('elements and attributes carry their exact spans', () => {
    const text = '<safe>\n  <service mode="mirror" boot=\'on\'/>\n</safe>';
    const service = elementChildren(root(text))[0];
    assert.ok(service);
    assert.equal(text.slice(service.nameSpan.start, service.nameSpan.end), 'service');
    const [mode, boot] = service.attributes;
    assert.ok(mode && boot);
    assert.equal(text.slice(mode.valueSpan.start, mode.valueSpan.end), 'mirror');
    assert.equal(text.slice(mode.span.start, mode.span.end), 'mode="mirror"');
    assert.equal(boot.openQuote, "'");
    assert.equal(service.selfClosing, true);
    assert.equal(elementPath(service), 'safe/service');
  });

  test('the DOCTYPE and comments before it are kept as nodes', () => {
    const document = parseXml('<!-- head -->\n<!DOCTYPE safe>\n<safe/>\n');
    assert.equal(document.doctype?.name, 'safe');
    assert.deepEqual(
      document.nodes.map((node) => node.kind),
      ['comment', 'text', 'doctype', 'text', 'element', 'text'],
    );
    assert.deepEqual(document.problems, []);
  });

  test('every fixture writes back byte for byte', () => {
    const files = readdirSync(fixturesDir).filter((name) => name.endsWith('.xml'));
    assert.ok(files.length >= 10, 'fixtures are present');
    for (const name of files) {
      const text = fixture(name);
      assert.equal(serializeXml(parseXml(text)), text, name);
    }
  });

  test('normalised write back differs only by whitespace inside tags', () => {
    const files = readdirSync(fixturesDir).filter(
      (name) => name.endsWith('.xml') && !name.includes('mirror-linux'),
    );
    for (const name of files) {
      const text = fixture(name);
      const normalized = serializeXml(parseXml(text), { normalizeTags: true });
      assert.equal(normalized, normalizeTagWhitespace(text), name);
    }
    // The multi-line <to .../> of the apache farm module is the case that matters.
    const apache = serializeXml(parseXml(fixture('compat-apache_farm.userconfig.xml')), {
      normalizeTags: true,
    });
    assert.match(apache, /<to addr="%VIRTUAL_IP%" port="%APACHE_PORT%" interval="10" timeout="5"\/>/);
  });

  test('entities and character references are decoded; attribute whitespace is normalised', () => {
    const service = elementChildren(
      root('<safe><var value="a &amp; b &lt;c&gt; &#65;&#x42; &quot;q&quot;\tx\ny"/></safe>'),
    )[0];
    assert.equal(service?.attributes[0]?.value, 'a & b <c> AB "q" x y');
  });

  test('unknown entities and bare ampersands are errors located at the ampersand', () => {
    const text = '<safe><var value="a &nbsp; b & c"/></safe>';
    const problems = parseXml(text).problems;
    assert.deepEqual(
      problems.map((problem) => [problem.message, text.slice(problem.span.start, problem.span.end)]),
      [
        ['unknown entity &nbsp;', '&nbsp;'],
        ["'&' does not start an entity", '&'],
      ],
    );
    assert.equal(decodeText(text, { start: 0, end: text.length }, false, undefined).includes('&nbsp;'), true);
  });

  test('typographic quotes are read as quotes with a warning', () => {
    const text = '<safe><heartbeat name=\u201ddefault\u201d ident=\u201cflow\u201d/></safe>';
    const heartbeat = elementChildren(root(text))[0];
    assert.deepEqual(
      heartbeat?.attributes.map((attribute) => [attribute.name, attribute.value]),
      [
        ['name', 'default'],
        ['ident', 'flow'],
      ],
    );
    assert.deepEqual(messages(text), [
      'warning: typographic quote \u201d around the value of name',
      'warning: typographic quote \u201c around the value of ident',
    ]);
  });

  test('malformed documents are recovered with errors, never exceptions', () => {
    assert.deepEqual(messages('<safe><service></safe>'), [
      'error: <service> is never closed: missing </service>',
    ]);
    assert.deepEqual(messages('<safe></service></safe>'), ['error: unexpected </service> inside <safe>']);
    assert.deepEqual(messages('<safe><a b=c/></safe>'), ['error: value of b is not quoted']);
    assert.deepEqual(messages('<safe><a b/></safe>'), ['error: attribute b has no value']);
    assert.deepEqual(messages('<safe><a b="1" b="2"/></safe>'), ['error: attribute b is given twice in <a>']);
    assert.deepEqual(messages('<safe><a b="1></safe>'), [
      'error: value of b has no closing quote "',
      'error: tag <a> is never closed: missing >',
    ]);
    assert.deepEqual(messages('<safe>< a/></safe>'), ["error: '<' does not start a tag"]);
    assert.deepEqual(messages('<safe/><other/>'), [
      'error: only one root element is allowed; <other> comes after <safe>',
    ]);
    assert.deepEqual(messages('<!-- x'), ['error: comment is never closed: missing -->']);
    assert.deepEqual(messages('<safe/>junk'), ['error: text outside the root element']);
  });

  test('a missing end tag closes the inner element at the outer end tag', () => {
    const text = '<safe><service><heart></service></safe>';
    const document = parseXml(text);
    const service = elementChildren(document.root as XmlElement)[0] as XmlElement;
    const heart = elementChildren(service)[0] as XmlElement;
    assert.equal(heart.endTag, undefined);
    assert.equal(text.slice(heart.span.start, heart.span.end), '<heart>');
    assert.equal(service.endTag !== undefined, true);
    assert.equal(serializeXml(document), text);
  });

  test('nesting and size limits hold without recursion blowing up', () => {
    const deep = `${'<a>'.repeat(200)}${'</a>'.repeat(200)}`;
    const document = parseXml(deep);
    assert.ok(document.problems.some((problem) => /nested deeper than 64/.test(problem.message)));
    assert.equal(serializeXml(document), deep);
    const big = parseXml('x'.repeat(100), {
      charsMax: 10,
      depthMax: 64,
      elementsMax: 10,
      attributesPerElementMax: 4,
    });
    assert.match(big.problems[0]?.message ?? '', /file too large/);
    assert.equal(serializeXml(big), 'x'.repeat(100));
  });
});
