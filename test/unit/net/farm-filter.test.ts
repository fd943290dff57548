// The farm filter: the nft text it writes (pure), then the real thing in a fresh network
// namespace: real nftables decides which client addresses and ports get through, and it must
// match the buckets agent/core/farm-buckets.ts computes, before and after an atomic swap.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import {
  balanceRules,
  defaultVirtualMac,
  directorRules,
  type FarmFilterSpec,
  normaliseMac,
  renderFarmNft,
} from '../../../agent/net/farm-filter.ts';

const spec: FarmFilterSpec = {
  moduleId: 2,
  vips: [{ address: '10.0.0.50' }],
  groups: [{ name: 'web', rules: [{ virtualAddr: '*', port: 80, proto: 'tcp', filter: 'on_addr' }] }],
  virtualMac: '5a:fe:0a:00:00:32',
  nftFile: '/unused',
};

function canRunNamespaces(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const tool of ['nft', 'unshare', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return false;
}

describe('farm filter rules', () => {
  test('owned buckets become one jhash test with ranges; all -> accept; none -> drop', () => {
    assert.deepEqual(balanceRules(spec, new Map([['web', [0, 1, 2, 3, 10, 200]]])), [
      'ip daddr 10.0.0.50 tcp dport 80 jhash ip saddr mod 256 seed 0x5afe != { 0-3, 10, 200 } drop',
      'ip daddr 10.0.0.50 tcp dport 80 accept',
      'ip daddr 10.0.0.50 jhash ip saddr mod 256 seed 0x5afe != { 0-3, 10, 200 } drop',
    ]);
    const all = Array.from({ length: 256 }, (_, bucket) => bucket);
    assert.deepEqual(balanceRules(spec, new Map([['web', all]])), ['ip daddr 10.0.0.50 tcp dport 80 accept']);
    assert.deepEqual(balanceRules(spec, new Map()), [
      'ip daddr 10.0.0.50 tcp dport 80 drop',
      'ip daddr 10.0.0.50 drop',
    ]);
  });

  test('vmac_directed: the director keeps its buckets and forwards the others to their MACs', () => {
    const owners = Array.from({ length: 256 }, (_, bucket) =>
      bucket < 128 ? 'n1' : bucket < 200 ? 'n2' : 'n3',
    );
    const plan = {
      director: true,
      owners: new Map([['web', owners]]),
      macs: new Map([
        ['n1', '02:00:00:00:00:01'],
        ['n2', '02:00:00:00:00:02'],
      ]),
      localNode: 'n1',
    };
    const directed = { ...spec, virtualMac: null, directed: true };
    assert.deepEqual(directorRules(directed, plan, 'eth0', '02:00:00:00:00:01'), [
      'ip daddr 10.0.0.50 tcp dport 80 jhash ip saddr mod 256 seed 0x5afe { 0-127 } accept',
      // n3 has no known MAC: nothing forwarded to it (the inet filter drops those buckets).
      'ip daddr 10.0.0.50 tcp dport 80 ether saddr set 02:00:00:00:00:01 ether daddr set jhash ip saddr mod 256 seed 0x5afe map { 128-199 : 02:00:00:00:00:02 } fwd to "eth0"',
      'ip daddr 10.0.0.50 jhash ip saddr mod 256 seed 0x5afe { 0-127 } accept',
      'ip daddr 10.0.0.50 ether saddr set 02:00:00:00:00:01 ether daddr set jhash ip saddr mod 256 seed 0x5afe map { 128-199 : 02:00:00:00:00:02 } fwd to "eth0"',
    ]);
    const open = {
      open: true as const,
      owned: new Map(),
      interfaceName: 'eth0',
      ownMac: '02:00:00:00:00:02',
      ownAddress: '10.0.0.2',
    };
    const follower = renderFarmNft(directed, {
      ...open,
      directed: { ...plan, director: false, localNode: 'n2' },
    });
    assert.match(follower, /arp operation request arp daddr ip 10.0.0.50 drop/);
    assert.match(follower, /arp operation request arp saddr ip 10.0.0.50 arp saddr ip set 10.0.0.2/);
    assert.doesNotMatch(follower, /fwd to/);
    const director = renderFarmNft(directed, { ...open, directed: plan });
    assert.doesNotMatch(director, /arp daddr ip 10.0.0.50 drop/);
    assert.match(director, /fwd to "eth0"/);
    assert.throws(
      () => renderFarmNft(directed, { ...open, ownAddress: undefined, directed: plan }),
      /own IPv4 address/,
    );
    // And nft itself accepts the text (checked without applying it).
    if (canRunNamespaces() === false) {
      const check = spawnSync(
        'unshare',
        ['-n', 'sh', '-c', 'ip link add eth0 type veth peer name eth1 && nft -c -f -'],
        {
          input: director,
          encoding: 'utf8',
        },
      );
      assert.equal(check.status, 0, check.stderr);
    }
  });

  test('closed: only removals, so one transaction leaves nothing behind', () => {
    const text = renderFarmNft(spec, { open: false });
    assert.doesNotMatch(text, /chain/);
    assert.match(text, /delete table inet hakit_farm_2\n/);
  });

  test('bad values never reach nft', () => {
    assert.throws(
      () => balanceRules({ ...spec, vips: [{ address: '10.0.0.50; flush ruleset' }] }, new Map()),
      /not an IP/,
    );
    assert.throws(
      () =>
        renderFarmNft(spec, {
          open: true,
          owned: new Map(),
          interfaceName: 'eth0"; flush',
          ownMac: '02:00:00:00:00:01',
        }),
      /interface name/,
    );
    assert.throws(() => normaliseMac('5b:fe:00:00:00:01'), /multicast/);
    assert.equal(defaultVirtualMac('10.1.0.126'), '5a:fe:0a:01:00:7e');
    assert.throws(() => defaultVirtualMac('fd00::1'), /IPv4 VIP/);
    assert.throws(() => balanceRules({ ...spec, moduleId: 0 }, new Map()), /module id 0/);
  });
});

describe('farm filter in a real network namespace', { skip: canRunNamespaces() }, () => {
  test('nft passes exactly the predicted addresses and ports, before and after a swap', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hakit-farm-filter-'));
    try {
      const helper = resolve(import.meta.dirname, 'farm-filter-ns.ts');
      const result = spawnSync(
        'unshare',
        ['-n', process.execPath, '--import', 'tsx', helper, join(dir, 'farm.nft')],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      assert.equal(result.status, 0, result.stderr);
      const found = JSON.parse(result.stdout) as Record<string, unknown>;
      console.log(`farm filter in a namespace: ${JSON.stringify(found)}`);
      for (const round of ['first', 'swapped']) {
        const figures = found[round] as Record<string, number>;
        assert.equal(figures.addrMismatches, 0, `${round}: client addresses`);
        assert.equal(figures.portMismatches, 0, `${round}: client ports`);
        // Guards against a vacuous pass: some get through, some do not.
        assert.ok((figures.addrExpected ?? 0) > 50 && (figures.addrExpected ?? 0) < 150);
        assert.ok((figures.portExpected ?? 0) > 50 && (figures.portExpected ?? 0) < 150);
      }
      assert.equal(found.vipWhileOpen, true);
      assert.equal(found.vmacRule, true);
      assert.equal(found.arpRule, true);
      assert.equal(found.tablesAfterClose, '');
      assert.equal(found.vipAfterClose, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
