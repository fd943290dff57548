// Address arithmetic and the parsing of `ip -j addr` output (samples taken from a lab node).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  canonicalAddress,
  findAddress,
  inSubnet,
  parseIpAddrJson,
  placementFor,
  prefixLengthOf,
  sameAddress,
} from '../../../agent/net/addresses.ts';
import { labelFor } from '../../../agent/net/vip.ts';

const ipAddrSample = JSON.stringify([
  {
    ifindex: 1,
    ifname: 'lo',
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    address: '00:00:00:00:00:00',
    addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' }],
  },
  {
    ifindex: 2,
    ifname: 'eth0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    address: 'F6:C3:B8:1E:E4:32',
    addr_info: [
      { family: 'inet', local: '10.231.1.2', prefixlen: 24, label: 'eth0', valid_life_time: 4294967295 },
      { family: 'inet', local: '10.231.1.50', prefixlen: 24, label: 'eth0:hakit', valid_life_time: 30 },
      { family: 'inet6', local: 'fd48:616b:6974:1::2', prefixlen: 64, nodad: true },
      { family: 'inet6', local: 'fd48:616b:6974:1::50', prefixlen: 64, tentative: true, dadfailed: true },
      { family: 'inet6', local: 'fe80::f4c3:b8ff:fe1e:e432', prefixlen: 64, scope: 'link' },
    ],
  },
]);

describe('addresses', () => {
  test('canonical forms make spellings of one address equal', () => {
    assert.equal(canonicalAddress('fd48:616b:6974:0::1'), 'fd48:616b:6974:0000:0000:0000:0000:0001');
    assert.ok(sameAddress('fd48:616b:6974:0::1', 'FD48:616B:6974::1'));
    assert.ok(sameAddress('::ffff:10.0.0.1', '::ffff:a00:1'));
    assert.ok(sameAddress('10.0.0.1', '10.0.0.1'));
    assert.ok(!sameAddress('10.0.0.1', '10.0.0.2'));
    assert.ok(!sameAddress('fd00::1', 'fd00::2'));
    assert.ok(!sameAddress('not an address', 'not an address'));
  });

  test('subnets and netmasks', () => {
    assert.ok(inSubnet('10.231.1.50', '10.231.1.2', 24));
    assert.ok(!inSubnet('10.231.2.50', '10.231.1.2', 24));
    assert.ok(inSubnet('10.231.1.50', '10.231.1.2', 0));
    assert.ok(inSubnet('fd48:616b:6974:1::50', 'fd48:616b:6974:1::2', 64));
    assert.ok(!inSubnet('fd48:616b:6974:2::50', 'fd48:616b:6974:1::2', 64));
    assert.ok(!inSubnet('10.0.0.1', 'fd00::1', 8));
    assert.equal(prefixLengthOf('255.255.255.0', 4), 24);
    assert.equal(prefixLengthOf('255.255.255.255', 4), 32);
    assert.equal(prefixLengthOf('255.255.128.0', 4), 17);
    assert.equal(prefixLengthOf('64', 6), 64);
    assert.throws(() => prefixLengthOf('255.0.255.0', 4), /not contiguous/);
    assert.throws(() => prefixLengthOf('33', 4), /longer than 32/);
    assert.throws(() => prefixLengthOf('ffff::', 6), /not valid/);
  });

  test('parses ip -j addr: flags, labels, lifetimes, DAD state', () => {
    const [lo, eth0] = parseIpAddrJson(ipAddrSample);
    assert.equal(lo?.name, 'lo');
    assert.ok(eth0);
    assert.equal(eth0.mac, 'f6:c3:b8:1e:e4:32');
    assert.equal(eth0.up, true);
    assert.deepEqual(
      eth0.addresses.map((entry) => [
        entry.address,
        entry.label,
        entry.validLifetimeSec,
        entry.tentative,
        entry.dadFailed,
      ]),
      [
        ['10.231.1.2', 'eth0', null, false, false],
        ['10.231.1.50', 'eth0:hakit', 30, false, false],
        ['fd48:616b:6974:1::2', null, null, false, false],
        ['fd48:616b:6974:1::50', null, null, true, true],
        ['fe80::f4c3:b8ff:fe1e:e432', null, null, false, false],
      ],
    );
    assert.deepEqual(parseIpAddrJson(''), []);
    assert.throws(() => parseIpAddrJson('Error: Device does not exist'), /not JSON/);
    assert.throws(() => parseIpAddrJson('{}'), /not a list/);
  });

  test('finds an address and the placement of a VIP', () => {
    const interfaces = parseIpAddrJson(ipAddrSample);
    assert.equal(findAddress(interfaces, '10.231.1.50')?.interface.name, 'eth0');
    assert.equal(findAddress(interfaces, 'fd48:616b:6974:1:0::50')?.address.dadFailed, true);
    assert.equal(findAddress(interfaces, '10.231.1.50', 'lo'), undefined);
    assert.deepEqual(placementFor(interfaces, '10.231.1.77'), { interfaceName: 'eth0', prefixLength: 24 });
    assert.deepEqual(placementFor(interfaces, 'fd48:616b:6974:1::77'), {
      interfaceName: 'eth0',
      prefixLength: 64,
    });
    assert.equal(placementFor(interfaces, '192.168.9.9'), undefined);
    assert.equal(placementFor(interfaces, '10.231.1.77', 'lo'), undefined);
  });

  test('labels fit IFNAMSIZ and start with the interface name', () => {
    assert.equal(labelFor('eth0'), 'eth0:hakit');
    assert.equal(labelFor('enp0s31f6'), 'enp0s31f6:hakit');
    assert.equal(labelFor('enp0s31f6xy'), 'enp0s31f6xy:h');
    assert.equal(labelFor('abcdefghijklmn'), undefined);
  });
});
