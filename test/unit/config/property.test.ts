// Property-based tests over mutated real documents (fixed seed, bounded runs): the loaders never
// throw, the parser is lossless, every problem has a valid location, and nothing the schema does
// not know is dropped without a problem on its line. Plus value round trips through the editor.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { loadClusterXml } from '../../../agent/config/cluster-config.ts';
import { clusterSchema } from '../../../agent/config/cluster-schema.ts';
import { parseDuration } from '../../../agent/config/duration.ts';
import { setAttribute, setVar } from '../../../agent/config/edit.ts';
import { LineIndex } from '../../../agent/config/positions.ts';
import type { ConfigProblem } from '../../../agent/config/problems.ts';
import type { ElementSpec } from '../../../agent/config/schema.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { userconfigSchema } from '../../../agent/config/userconfig-schema.ts';
import { nodeText, parseXml, serializeXml, type XmlElement } from '../../../agent/config/xml.ts';
import { fixture, fixturesDir } from './helpers.ts';

const seed = 20_240_611;
const runs = 300;

const userconfigs = readdirSync(fixturesDir)
  .filter((name) => name.endsWith('.userconfig.xml'))
  .map((name) => fixture(name));
const clusters = readdirSync(fixturesDir)
  .filter((name) => name.endsWith('.cluster.xml'))
  .map((name) => fixture(name));

/** Fragments that stress the parser and the schema: markup pieces, names near the real ones. */
const fragments = [
  '<',
  '>',
  '/>',
  '"',
  "'",
  '=',
  '&',
  '&amp;',
  '&bogus;',
  '\u201d',
  '<!--',
  '-->',
  '<![CDATA[',
  ']]>',
  '</service>',
  '<heart>',
  '<hert pulse="1"/>',
  '<rfs><replicated dir="/x"/></rfs>',
  '<check><tcp ident="a" when="prim"><to addr="1.2.3.4" port="80"/></tcp></check>',
  ' plse="700"',
  ' pulse="0"',
  ' mode="farm"',
  '%VIP%',
  '<macro name="VIP" value=""/>',
  '<failover><![CDATA[r: if (ping.x == down) then wait();]]></failover>',
  '<failover><![CDATA[--Lua\nRules.disable("x")]]></failover>',
  '\n',
  '\t',
  '\u00e9',
  '\ud83d\ude00',
];

type Mutation =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'attribute'; tag: number; text: string }
  | { kind: 'element'; tag: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...fragments), fc.string({ maxLength: 8 })),
  }),
  // Targeted: an attribute right after a tag name, an element right after a tag, so the schema
  // (not only the XML syntax) is exercised on every run.
  fc.record({
    kind: fc.constant('attribute' as const),
    tag: fc.nat(),
    text: fc.constantFrom(
      ' plse="700"',
      ' pulse="0"',
      ' pulse="9h"',
      ' modee="x"',
      ' name=""',
      ' when="never"',
      ' ident="flow"',
      ' check="maybe"',
    ),
  }),
  fc.record({
    kind: fc.constant('element' as const),
    tag: fc.nat(),
    text: fc.constantFrom(
      '<hert/>',
      '<heartbeat name="x"/>',
      '<rfs/>',
      '<farm><lan name="default"/></farm>',
      'stray text',
      '<var name="V" value="1"/>',
      '<![CDATA[x]]>',
      '<proc name="p"/>',
    ),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 80 }),
  }),
);

function mutate(text: string, mutations: readonly Mutation[]): string {
  let result = text;
  for (const change of mutations) {
    if (change.kind === 'attribute' || change.kind === 'element') {
      const tags = [...result.matchAll(change.kind === 'attribute' ? /<[A-Za-z_][\w.-]*/g : />/g)];
      const match = tags[tags.length === 0 ? 0 : change.tag % tags.length];
      if (match === undefined) continue;
      const position = (match.index ?? 0) + match[0].length;
      result = result.slice(0, position) + change.text + result.slice(position);
      continue;
    }
    const at = result.length === 0 ? 0 : change.at % (result.length + 1);
    if (change.kind === 'insert') result = result.slice(0, at) + change.text + result.slice(at);
    else if (change.kind === 'delete') result = result.slice(0, at) + result.slice(at + change.length);
    else result = result.slice(0, at) + result.slice(at, at + change.length) + result.slice(at);
  }
  return result;
}

/** Characters XML 1.0 allows in text (controls other than tab and line ends are not). */
function isXmlTextChar(char: string): boolean {
  const code = char.codePointAt(0) ?? 0;
  return code >= 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

function assertLocated(problems: readonly ConfigProblem[], text: string): void {
  const lines = new LineIndex(text);
  const lineLengths = text.split('\n').map((line) => line.length);
  for (const problem of problems) {
    assert.ok(problem.message.length > 0, 'a problem has a message');
    assert.ok(problem.file.length > 0, 'a problem has a file');
    assert.ok(problem.severity === 'error' || problem.severity === 'warning');
    assert.ok(
      problem.line >= 1 && problem.line <= lines.lineCount,
      `line ${problem.line} within 1..${lines.lineCount}`,
    );
    assert.ok(
      problem.column >= 1 && problem.column <= (lineLengths[problem.line - 1] ?? 0) + 1,
      `column ${problem.column} on its line`,
    );
    assert.ok(
      problem.endLine > problem.line ||
        (problem.endLine === problem.line && problem.endColumn >= problem.column),
    );
    assert.equal(typeof problem.path, 'string');
  }
}

/**
 * Every element, attribute and text the schema does not consume has a problem on its line (or an
 * ancestor that was set aside has one on its own line).
 */
function assertNothingDropped(
  text: string,
  problems: readonly ConfigProblem[],
  rootSpec: ElementSpec,
  rootName: string,
): void {
  const document = parseXml(text);
  const lines = new LineIndex(text);
  const at = new Set(problems.map((problem) => `${problem.line}:${problem.column}`));
  const syntaxLines = new Set(
    problems.filter((problem) => problem.code === 'xml-syntax').map((problem) => problem.line),
  );
  const lineOfOffset = (offset: number) => lines.position(offset).line;
  // A problem exactly where the thing starts; a syntax error on the same line also explains it.
  const accounted = (offset: number, what: string) => {
    const position = lines.position(offset);
    assert.ok(
      at.has(`${position.line}:${position.column}`) || syntaxLines.has(position.line),
      `${what} at ${position.line}:${position.column} has a problem there`,
    );
  };
  const root = document.root;
  if (root === undefined) {
    assert.ok(problems.length > 0, 'a document without a root has a problem');
    return;
  }
  if (root.name !== rootName) {
    accounted(root.nameSpan.start, `root <${root.name}>`);
    return;
  }
  const visit = (element: XmlElement, spec: ElementSpec): void => {
    for (const attribute of element.attributes) {
      if (spec.attributes[attribute.name] === undefined && spec.anyAttributes !== true) {
        accounted(attribute.nameSpan.start, `attribute ${attribute.name}`);
      }
    }
    for (const node of element.children) {
      if (
        (node.kind === 'text' || node.kind === 'cdata') &&
        spec.content !== 'rules' &&
        nodeText(text, node).trim() !== ''
      ) {
        const firstChar =
          node.span.start +
          (text.slice(node.span.start, node.span.end).length -
            text.slice(node.span.start, node.span.end).trimStart().length);
        accounted(node.kind === 'cdata' ? node.span.start : firstChar, 'text');
      }
      if (node.kind !== 'element') continue;
      const childSpec = spec.children[node.name];
      if (childSpec === undefined) {
        accounted(node.nameSpan.start, `element <${node.name}>`);
        continue;
      }
      // Set aside (repeated, wrong mode): its own line has the problem; its subtree is covered.
      const line = lineOfOffset(node.nameSpan.start);
      if (
        problems.some(
          (problem) => /duplicate-element|mode-mismatch/.test(problem.code) && problem.line === line,
        )
      )
        continue;
      visit(node, childSpec);
    }
  };
  visit(root, rootSpec);
}

describe('properties over mutated documents', () => {
  test('userconfig.xml: never throws, lossless, located, nothing dropped', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...userconfigs),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        (base, mutations) => {
          const text = mutate(base, mutations);
          assert.equal(serializeXml(parseXml(text)), text, 'the parser keeps every character');
          const loaded = loadUserconfig(text, { file: 'mutated.xml' });
          assertLocated(loaded.problems, text);
          assertNothingDropped(text, loaded.problems, userconfigSchema, 'safe');
          assert.equal(loaded.ok, !loaded.problems.some((problem) => problem.severity === 'error'));
          assert.deepEqual(
            loadUserconfig(text, { file: 'mutated.xml' }).problems,
            loaded.problems,
            'deterministic',
          );
        },
      ),
      { seed, numRuns: runs },
    );
  });

  test('cluster.xml: never throws, lossless, located, nothing dropped', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...clusters),
        fc.array(mutation, { minLength: 1, maxLength: 6 }),
        (base, mutations) => {
          const text = mutate(base, mutations);
          assert.equal(serializeXml(parseXml(text)), text);
          const loaded = loadClusterXml(text, { file: 'cluster.xml' });
          assertLocated(loaded.problems, text);
          assertNothingDropped(text, loaded.problems, clusterSchema, 'cluster');
        },
      ),
      { seed, numRuns: runs },
    );
  });

  test('arbitrary text never makes the loaders throw', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        assert.equal(serializeXml(parseXml(text)), text);
        assertLocated(loadUserconfig(text).problems, text);
        assertLocated(loadClusterXml(text).problems, text);
      }),
      { seed, numRuns: runs },
    );
  });

  test('any value set through the editor reads back unchanged and touches one line', () => {
    const base = fixture('compat-postgresql.userconfig.xml');
    const value = fc
      .string({ maxLength: 40 })
      .filter((candidate) => !candidate.includes('%') && [...candidate].every(isXmlTextChar));
    fc.assert(
      fc.property(value, value, (variable, address) => {
        const withVar = setVar(base, 'SERVICES', variable);
        assert.equal(
          loadUserconfig(withVar).config?.user?.vars[0]?.value.replace(/\s/g, ' '),
          variable.replace(/\s/g, ' '),
        );
        const withAddress = setAttribute(base, ['service', 'rfs', 'replicated'], 'dir', address);
        const changed = withAddress.split('\n').filter((line, index) => line !== base.split('\n')[index]);
        assert.ok(changed.length <= 1, 'one line changes');
        const reparsed = parseXml(withAddress);
        assert.deepEqual(reparsed.problems, []);
      }),
      { seed, numRuns: runs },
    );
  });

  test('durations: n seconds is n*1000 ms, and back', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2_000_000 }), (seconds) => {
        const inMs = parseDuration(`${seconds}s`, 'a', { unit: 'ms', zeroAllowed: false });
        const back = parseDuration(`${seconds * 1000}ms`, 'a', { unit: 's', zeroAllowed: false });
        assert.deepEqual([inMs.ok && inMs.value, back.ok && back.value], [seconds * 1000, seconds]);
      }),
      { seed, numRuns: runs },
    );
  });
});
