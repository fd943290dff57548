// cluster.xml: lans, nodes with IPv4, [IPv6] and DNS addresses, the defaults of <lans> and the
// consistency rules of reference section 4.14.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadClusterXml } from '../../../agent/config/cluster-config.ts';
import { errors, findProblem, lineOf } from './helpers.ts';

describe('cluster.xml', () => {
  test('lans, nodes and address kinds', () => {
    const loaded = loadClusterXml(`<cluster>
  <lans>
    <lan name="default">
      <node name="n1" addr="192.168.1.67" laddr="10.0.0.1"/>
      <node name="n2" addr="[2001:db8::7334]"/>
      <node name="n3" addr="n3.example.com"/>
    </lan>
    <lan name="repli" command="on">
      <node name="n1" addr="[::ffff:10.1.0.1]"/><node name="n2" addr="10.1.0.2"/><node name="n3" addr="10.1.0.3"/>
    </lan>
  </lans>
</cluster>`);
    assert.deepEqual(loaded.problems, []);
    const cluster = loaded.cluster;
    assert.ok(cluster);
    assert.deepEqual(
      [cluster.portUdp, cluster.pulseMs, cluster.mlostCount, cluster.slostCount],
      [4800, 100, 20, 10],
    );
    assert.deepEqual(cluster.nodes, ['n1', 'n2', 'n3']);
    assert.equal(cluster.commandLan, 'repli');
    const [n1, n2, n3] = cluster.lans[0]?.nodes ?? [];
    assert.deepEqual(
      [n1?.addr.kind, n1?.laddr?.host, n2?.addr.kind, n2?.addr.host, n3?.addr.kind],
      ['ipv4', '10.0.0.1', 'ipv6', '2001:db8::7334', 'dns'],
    );
  });

  test('lans attributes take units and the first lan carries commands by default', () => {
    const loaded = loadClusterXml(`<cluster><lans port="4900" pulse="1s" mlost_count="80" slost_count="40">
      <lan name="a"><node name="x" addr="10.0.0.1"/><node name="y" addr="10.0.0.2"/></lan></lans></cluster>`);
    assert.deepEqual(
      [
        loaded.cluster?.portUdp,
        loaded.cluster?.pulseMs,
        loaded.cluster?.mlostCount,
        loaded.cluster?.slostCount,
        loaded.cluster?.commandLan,
      ],
      [4900, 1000, 80, 40, 'a'],
    );
  });

  test('bad addresses are located errors with a hint for bare IPv6', () => {
    const text = `<cluster><lans><lan name="default">
      <node name="a" addr="2001:db8::1"/>
      <node name="b" addr="10.0.0.300"/>
      <node name="c" addr=""/>
      <node name="d" addr="bad_name!"/>
    </lan></lans></cluster>`;
    const problems = loadClusterXml(text).problems;
    const ipv6 = findProblem(
      problems,
      'invalid-value',
      /IPv6 address '2001:db8::1' must be written in brackets/,
    );
    assert.equal(ipv6.hint, 'write [2001:db8::1]');
    assert.equal(ipv6.line, lineOf(text, '2001:db8::1'));
    findProblem(problems, 'invalid-value', /'10.0.0.300' is not a valid IPv4 address/);
    assert.equal(
      findProblem(problems, 'empty-placeholder', /<node> addr is empty: set the node address/).line,
      lineOf(text, 'addr=""'),
    );
    findProblem(
      problems,
      'invalid-value',
      /'bad_name!' is not an IPv4 address, an IPv6 address or a DNS name/,
    );
  });

  test('consistency: a lan with every node, one command lan, unique names and addresses', () => {
    const text = `<cluster><lans>
    <lan name="a" command="on"><node name="x" addr="10.0.0.1"/></lan>
    <lan name="b" command="on"><node name="y" addr="10.0.1.2"/><node name="y" addr="10.0.1.3"/></lan>
    <lan name="a"><node name="x" addr="10.0.2.1"/><node name="z" addr="10.0.2.1"/></lan>
  </lans></cluster>`;
    const problems = loadClusterXml(text).problems;
    findProblem(problems, 'duplicate-name', /lan a is defined twice/);
    findProblem(problems, 'duplicate-name', /node y appears twice in lan b/);
    findProblem(problems, 'duplicate-name', /nodes x and z have the same address 10.0.2.1 on lan a/);
    findProblem(problems, 'cluster', /no lan contains every node \(x, y, z\)/);
    assert.equal(
      findProblem(problems, 'cluster', /only one lan may have command="on"/).line,
      lineOf(text, '<lan name="b"'),
    );
  });

  test('the command lan must include every node', () => {
    const text = `<cluster><lans>
    <lan name="small" command="on"><node name="x" addr="10.0.0.1"/></lan>
    <lan name="full"><node name="x" addr="10.0.1.1"/><node name="y" addr="10.0.1.2"/></lan>
  </lans></cluster>`;
    const problem = findProblem(
      loadClusterXml(text).problems,
      'cluster',
      /lan small carries distributed commands but lacks y/,
    );
    assert.equal(problem.hint, 'set command="on" on a lan with every node, such as full');
  });

  test('legacy console/framework attributes are accepted with a warning; unknown ones suggest', () => {
    const text = `<cluster><lans><lan name="default" console="on">
      <node name="a" addr="10.0.0.1" framework="on"/><node name="b" adr="10.0.0.2" addr="10.0.0.2"/></lan></lans></cluster>`;
    const loaded = loadClusterXml(text);
    assert.equal(errors(loaded.problems).length, 0);
    findProblem(loaded.problems, 'legacy-syntax', /console= is ignored since 8.2/);
    findProblem(loaded.problems, 'legacy-syntax', /framework= is ignored since 8.2/);
    assert.equal(
      findProblem(loaded.problems, 'unknown-attribute', /unknown attribute adr in <node>/).hint,
      'did you mean addr?',
    );
  });

  test('no <lans> or no lan is an error', () => {
    findProblem(loadClusterXml('<cluster/>').problems, 'cluster', /cluster.xml needs a <lans> element/);
    findProblem(
      loadClusterXml('<cluster><lans/></cluster>').problems,
      'cluster',
      /cluster.xml defines no <lan>/,
    );
  });

  test('<arbitrator>: address, port and lease with defaults; a short lease or a node address is refused', () => {
    const lans =
      '<lans><lan name="default"><node name="n1" addr="10.0.0.1"/><node name="n2" addr="10.0.0.2"/></lan></lans>';
    const loaded = loadClusterXml(`<cluster>${lans}<arbitrator addr="10.0.0.3"/></cluster>`);
    assert.deepEqual(loaded.problems, []);
    const arbitrator = loaded.cluster?.arbitrator;
    assert.deepEqual(
      [arbitrator?.addr.host, arbitrator?.portUdp, arbitrator?.leaseMs],
      ['10.0.0.3', 4810, 4000],
    );
    const custom = loadClusterXml(
      `<cluster>${lans}<arbitrator addr="[fd00::3]" port="4999" lease="2.5s"/></cluster>`,
    );
    assert.deepEqual(
      [
        custom.cluster?.arbitrator?.addr.kind,
        custom.cluster?.arbitrator?.portUdp,
        custom.cluster?.arbitrator?.leaseMs,
      ],
      ['ipv6', 4999, 2500],
    );
    const short = loadClusterXml(`<cluster>${lans}\n<arbitrator addr="10.0.0.3" lease="500ms"/></cluster>`);
    const tooShort = errors(short.problems).find((problem) => problem.message.includes('lease 500 ms'));
    assert.ok(tooShort, JSON.stringify(short.problems));
    assert.equal(tooShort.line, 2);
    const onNode = loadClusterXml(`<cluster>${lans}<arbitrator addr="10.0.0.2"/></cluster>`);
    assert.match(
      errors(onNode.problems)[0]?.message ?? '',
      /is node n2 of lan default: it must be a third host/,
    );
    const twice = loadClusterXml(
      `<cluster>${lans}<arbitrator addr="10.0.0.3"/><arbitrator addr="10.0.0.4"/></cluster>`,
    );
    assert.equal(twice.ok, false);
  });
});
