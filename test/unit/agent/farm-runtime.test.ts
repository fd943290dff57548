// A farm module's run-time settings from its userconfig.xml and cluster.xml: nodes, powers,
// VIPs and modes, and clear refusals naming the line for what cannot run.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadClusterXml } from '../../../agent/config/cluster-config.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';
import { farmRuntimeOf } from '../../../agent/daemon/farm-runtime.ts';

const cluster = `<?xml version="1.0"?>
<cluster><lans><lan name="default">
<node name="n1" addr="10.0.0.1"/><node name="n2" addr="10.0.0.2"/><node name="n3" addr="10.0.0.3"/>
</lan></lans></cluster>`;

function moduleXml(vip: string, groups: string): string {
  return `<!DOCTYPE safe>
<safe>
<service mode="farm">
  <farm><lan name="default"/></farm>
  <vip><interface_list><interface>${vip}</interface></interface_list>
    <loadbalancing_list>${groups}</loadbalancing_list></vip>
</service>
</safe>`;
}

function runtime(vip: string, groups: string, local = '10.0.0.2') {
  const loaded = loadUserconfig(moduleXml(vip, groups), { moduleName: 'web' });
  assert.ok(loaded.config, JSON.stringify(loaded.problems));
  const clusterConfig = loadClusterXml(cluster).cluster;
  assert.ok(clusterConfig);
  return farmRuntimeOf(
    'web',
    3,
    loaded.config,
    clusterConfig,
    new Set([local]),
    Buffer.alloc(32, 1),
    'hakit-x',
  );
}

const invisible = `<virtual_interface type="vmac_invisible"><virtual_addr addr="10.0.0.60" where="alias"/></virtual_interface>`;

describe('farm runtime', () => {
  test('nodes, port, powers and the virtual MAC come out right', () => {
    const farm = runtime(
      invisible,
      `<group name="g"><cluster><host name="n1" power="2"/><host name="n2" power="1"/></cluster><rule port="80" proto="tcp" filter="on_addr"/></group>
       <group name="all"><rule port="81" proto="udp" filter="on_port"/></group>`,
    );
    assert.ok(farm);
    assert.equal(farm.localNode, 'n2');
    assert.deepEqual(farm.peers, ['n1', 'n3']);
    assert.equal(farm.lans[0]?.port, 4803 + 2 * 3);
    assert.deepEqual(farm.groups[0]?.powers, { n1: 2, n2: 1 });
    assert.deepEqual(farm.groups[1]?.powers, { n1: 1, n2: 1, n3: 1 });
    assert.equal(farm.virtualMac, '5a:fe:0a:00:00:3c');
    assert.equal(farm.directed, false);
    assert.equal(farm.pulseMs, 100);
    assert.equal(farm.slostCount, 10);
    assert.equal(farm.mlostCount, 20);
  });

  test('vmac_directed: no virtual MAC, directed on', () => {
    const farm = runtime(
      `<virtual_interface type="vmac_directed"><virtual_addr addr="10.0.0.61" where="alias"/></virtual_interface>`,
      `<group name="g"><rule port="80" proto="tcp" filter="on_port"/></group>`,
    );
    assert.equal(farm?.directed, true);
    assert.equal(farm?.virtualMac, null);
  });

  test('refusals name what is wrong', () => {
    assert.throws(
      () =>
        runtime(
          invisible,
          `<group name="g"><cluster><host name="n9" power="1"/></cluster><rule port="80" proto="tcp" filter="on_addr"/></group>`,
        ),
      /line \d+: host n9 of group g is not a farm node/,
    );
    assert.throws(
      () =>
        runtime(
          invisible,
          `<group name="g"><rule port="80" proto="tcp" filter="on_addr"/></group>`,
          '10.9.9.9',
        ),
      /none of this node's addresses/,
    );
  });
});
