import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addressPlan,
  hostNumberOfNode,
  ipv4Range,
  ipv4RangesOverlap,
  nodeIp,
  nodeIp6,
} from '../../lab/addresses.ts';
import { assertLabName, assertNodeName, hostLinkName, nodeNetns } from '../../lab/names.ts';

test('address plan puts every lab in its own /24 and /64', () => {
  const plan = addressPlan(12);
  assert.equal(plan.subnet, '10.231.12.0/24');
  assert.equal(plan.subnet6, 'fd48:616b:6974:c::/64');
  assert.equal(plan.hostIp, '10.231.12.254');
  assert.throws(() => addressPlan(200), /out of range/);
  assert.throws(() => addressPlan(-1), /out of range/);
});

test('node names map to fixed host numbers', () => {
  assert.equal(hostNumberOfNode('n1'), 1);
  assert.equal(hostNumberOfNode('n32'), 32);
  assert.equal(hostNumberOfNode('w'), 100);
  assert.equal(hostNumberOfNode('c'), 200);
  assert.throws(() => hostNumberOfNode('x1'), /bad node name/);
  assert.equal(nodeIp(3, 100), '10.231.3.100');
  assert.equal(nodeIp6(3, 200), 'fd48:616b:6974:3::c8');
});

test('IPv4 range overlap finds routes that collide with a lab subnet', () => {
  assert.deepEqual(ipv4Range('10.231.1.0/24'), [0x0ae70100, 0x0ae701ff]);
  assert.equal(ipv4RangesOverlap('10.231.1.0/24', '10.0.0.0/8'), true);
  assert.equal(ipv4RangesOverlap('10.231.1.0/24', '10.231.1.77/32'), true);
  assert.equal(ipv4RangesOverlap('10.231.1.0/24', '10.231.2.0/24'), false);
  assert.equal(ipv4RangesOverlap('10.231.1.0/24', '192.0.2.0/24'), false);
  assert.throws(() => ipv4Range('10.300.1.0/24'), /bad IPv4/);
});

test('lab and node names are validated before anything is created', () => {
  assert.equal(assertLabName('lab2'), 'lab2');
  for (const bad of ['', 'Lab', '2lab', 'a-b', 'elevenchars'])
    assert.throws(() => assertLabName(bad), /bad lab name/);
  for (const good of ['n1', 'n32', 'w', 'c']) assert.equal(assertNodeName(good), good);
  for (const bad of ['n0', 'n', 'host', 'n100']) assert.throws(() => assertNodeName(bad), /bad node name/);
  // Interface names must fit IFNAMSIZ (15 characters) for the longest lab name.
  assert.ok(hostLinkName('abcdefghij').length <= 15);
  assert.equal(nodeNetns('lab', 'n1'), 'hlab-lab-n1');
});
