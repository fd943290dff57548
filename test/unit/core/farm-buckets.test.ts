// Farm buckets: the kernel jhash reproduced bit for bit (known vectors), quotas by power with the
// cascade of multiples of 64, every bucket owned by exactly one member, the same map whatever
// the order of the view, and few buckets moved on join and leave.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addressBytes,
  assignBuckets,
  bitmapWords,
  bucketCount,
  type BucketMember,
  bucketOf,
  bucketQuotas,
  bucketRanges,
  bucketsOf,
  jhash,
  movedBuckets,
} from '../../../agent/core/farm-buckets.ts';

function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const members = (count: number, power = 1): BucketMember[] =>
  Array.from({ length: count }, (_, index) => ({ node: `n${index + 1}`, power }));

describe('jhash', () => {
  test('pinned vectors of lib/jhash.h; spreads addresses over the buckets', () => {
    // Empty input returns the initial value unchanged.
    assert.equal(jhash(new Uint8Array(), 0), 0xdeadbeef);
    // Pinned values; test/unit/net/farm-filter.test.ts checks the same function against the kernel.
    assert.equal(jhash(Uint8Array.from([10, 231, 0, 5]), 0x5afe), 0x4af2ab04);
    assert.equal(jhash(Uint8Array.from([0x9c, 0x40]), 0x5afe), 0x99c4c646);
    assert.equal(jhash(Uint8Array.from([...Array(16).keys()]), 0x5afe), 0x1dd840f5);
    // Different seeds and inputs spread: 1000 addresses fill most of the 256 buckets.
    const seen = new Set<number>();
    for (let host = 0; host < 1000; host += 1)
      seen.add(bucketOf('on_addr', { address: `10.${(host >> 8) & 255}.${host & 255}.7` }));
    assert.ok(seen.size > 240, `1000 addresses reached only ${seen.size} buckets`);
  });

  test('IPv6 addresses hash their 16 bytes; bad input is refused with a clear error', () => {
    assert.deepEqual([...addressBytes('2001:db8::1')], [32, 1, 13, 184, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.ok(bucketOf('on_addr', { address: '2001:db8::1' }) < bucketCount);
    assert.throws(() => addressBytes('10.0.0.300'), /not an IPv4 address/);
    assert.throws(() => bucketOf('on_port', { port: 70_000 }), /client port 70000/);
    assert.throws(() => bucketOf('on_addr', {}), /needs the client address/);
  });
});

describe('bucket assignment', () => {
  test('equal powers: 128/128 with two nodes, 86/85/85 with three', () => {
    assert.deepEqual([...bucketQuotas(members(2)).values()], [128, 128]);
    assert.deepEqual([...bucketQuotas(members(3)).values()].sort(), [85, 85, 86]);
    const map = assignBuckets(members(2));
    assert.equal(bucketsOf(map, 'n1').length, 128);
    assert.equal(bucketsOf(map, 'n2').length, 128);
  });

  test('power 0 gets nothing; powers in multiples of 64 cascade', () => {
    const zero = assignBuckets([
      { node: 'a', power: 0 },
      { node: 'b', power: 1 },
    ]);
    assert.equal(bucketsOf(zero, 'a').length, 0);
    assert.equal(bucketsOf(zero, 'b').length, bucketCount);
    const chain = [
      { node: 'a', power: 1 },
      { node: 'b', power: 64 },
      { node: 'c', power: 4096 },
    ];
    assert.equal(bucketsOf(assignBuckets(chain), 'c').length, bucketCount);
    assert.equal(bucketsOf(assignBuckets(chain.slice(0, 2)), 'b').length, bucketCount);
    assert.equal(bucketsOf(assignBuckets(chain.slice(0, 1)), 'a').length, bucketCount);
    // Below the factor, shares are proportional.
    const weighted = bucketQuotas([
      { node: 'a', power: 1 },
      { node: 'b', power: 3 },
    ]);
    assert.deepEqual([weighted.get('a'), weighted.get('b')], [64, 192]);
  });

  test('no member, or only power 0: every bucket unowned', () => {
    assert.ok(assignBuckets([]).owners.every((owner) => owner === null));
    assert.ok(assignBuckets([{ node: 'a', power: 0 }]).owners.every((owner) => owner === null));
    assert.throws(() => assignBuckets([...members(2), { node: 'n1', power: 1 }]), /n1 is twice/);
    assert.throws(() => assignBuckets([{ node: 'a', power: -1 }]), /power -1 of a/);
  });

  test('property: same view in any order -> same map; each bucket owned once; counts = quotas', () => {
    const random = prng(9);
    for (let round = 0; round < 200; round += 1) {
      const count = 1 + Math.floor(random() * 8);
      const view = Array.from({ length: count }, (_, index) => ({
        node: `node-${Math.floor(random() * 1000)}-${index}`,
        power: [0, 1, 1, 2, 3, 64, 100][Math.floor(random() * 7)] ?? 1,
      }));
      const shuffled = [...view].sort(() => random() - 0.5);
      const map = assignBuckets(view);
      assert.deepEqual(assignBuckets(shuffled), map);
      const quotas = bucketQuotas(view);
      const total = [...quotas.values()].reduce((sum, quota) => sum + quota, 0);
      for (const member of view) assert.equal(bucketsOf(map, member.node).length, quotas.get(member.node));
      if (total > 0) {
        assert.equal(total, bucketCount);
        assert.ok(
          map.owners.every((owner) => owner !== null && view.some((m) => m.node === owner && m.power > 0)),
        );
      }
    }
  });

  test('property: a leave or a join moves few buckets beyond those that must move', () => {
    const report: string[] = [];
    for (const count of [2, 3, 4, 5, 8, 16]) {
      const full = assignBuckets(members(count));
      let worst = 0;
      for (let leaving = 1; leaving <= count; leaving += 1) {
        const rest = members(count).filter((member) => member.node !== `n${leaving}`);
        const minimum = bucketsOf(full, `n${leaving}`).length;
        const moved = movedBuckets(full, assignBuckets(rest));
        // Joining is the same pair of maps seen the other way.
        assert.ok(moved >= minimum);
        assert.ok(
          moved <= minimum * 2 + 4,
          `${count} nodes, n${leaving} leaves: ${moved} moved, ${minimum} must`,
        );
        worst = Math.max(worst, moved / minimum);
      }
      report.push(`${count} nodes: worst ${worst.toFixed(2)}x the minimum`);
    }
    console.log(`buckets moved on leave/join: ${report.join('; ')}`);
  });

  test('golden maps: the algorithm is part of the wire contract (mixed versions must agree)', () => {
    // Changing any of these breaks clusters running two hakit versions side by side during an
    // upgrade: each node would compute another map. Change only with a protocol version bump.
    const golden: Record<string, [string, number, string][]> = {
      'two nodes': [
        ['n1', 1, '83942503 ebff4d1d caeb7214 030567c2 c167ef59 7a9b402b 877a2a5f 09d560fc'],
        ['n2', 1, '7c6bdafc 1400b2e2 35148deb fcfa983d 3e9810a6 8564bfd4 7885d5a0 f62a9f03'],
      ],
      'three nodes': [
        ['n1', 1, '81842502 68ae4a1c 8a6a3014 01006f80 4125c249 7a830029 87382a57 01917020'],
        ['n2', 1, '6c4b58cc 000090c2 341081a0 64fa801d 328810a6 84448d90 5885d500 66028f03'],
        ['n3', 1, '12308231 97512521 41854e4b 9a051062 8c522d10 01387246 204200a8 986c00dc'],
      ],
      'powers 2, 1, 0': [
        ['web1', 2, 'c6bff604 f79fcbd5 475be9ef 7dc6ec9a fdfa7ff1 af471d06 7fff99fe d6dcbbef'],
        ['web2', 1, '394009fb 0860342a b8a41610 82391365 0205800e 50b8e2f9 80006601 29234410'],
        ['web3', 0, '00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000'],
      ],
    };
    for (const [name, view] of Object.entries(golden)) {
      const map = assignBuckets(view.map(([node, power]) => ({ node, power })));
      for (const [node, , words] of view)
        assert.equal(bitmapWords(bucketsOf(map, node)).join(' '), words, `${name}: ${node}`);
    }
  });

  test('ranges and the reference bitmap form', () => {
    assert.deepEqual(bucketRanges([0, 1, 2, 5, 7, 8]), [
      [0, 2],
      [5, 5],
      [7, 8],
    ]);
    assert.deepEqual(bitmapWords([0, 33, 255]), [
      '00000001',
      '00000002',
      '00000000',
      '00000000',
      '00000000',
      '00000000',
      '00000000',
      '80000000',
    ]);
  });
});
