// The pure parts of script-controlled farm traffic and dynamic updates: the reference's
// `-r saferpc_send vipd SETGROUPS ...` translated to `vip traffic open|close`, what a dynamic
// update may change in a running module, and in which states it is allowed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setGroupsCommand } from '../../../agent/cli/script-traffic.ts';
import { CliUsageError } from '../../../agent/cli/module-commands.ts';
import { dynamicUpdatePlan, updateRefusal } from '../../../agent/daemon/dynamic-update.ts';
import type { FarmRuntime } from '../../../agent/daemon/farm-runtime.ts';
import type { ModuleRuntimeConfig } from '../../../agent/daemon/module-runtime-config.ts';
import { compileFailover } from '../../../agent/core/rule-compiler.ts';
import { loadUserconfig } from '../../../agent/config/userconfig.ts';

describe('SETGROUPS (reference form of vip traffic)', () => {
  test('all all all opens, none none none closes, -m kept wherever it is', () => {
    assert.deepEqual(setGroupsCommand(['saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all', 'all']), [
      'vip',
      'traffic',
      'open',
    ]);
    assert.deepEqual(
      setGroupsCommand(['saferpc_send', 'vipd', 'SETGROUPS', 'none', 'none', 'none', '-m', 'web']),
      ['vip', 'traffic', 'close', '-m', 'web'],
    );
    assert.deepEqual(
      setGroupsCommand(['-m', 'web', 'saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all', 'all']),
      ['vip', 'traffic', 'open', '-m', 'web'],
    );
  });

  test('anything else is refused with what is accepted', () => {
    const refused: string[][] = [
      [],
      ['vip_if_ctrl', '-l'],
      ['saferpc_send', 'heart', 'SETGROUPS', 'all', 'all', 'all'],
      ['saferpc_send', 'vipd', 'GETGROUPS'],
      ['saferpc_send', 'vipd', 'SETGROUPS', 'all', 'none', 'all'],
      ['saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all'],
      ['saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all', 'all', 'all'],
      ['saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all', 'all', '-m'],
    ];
    for (const argv of refused) {
      assert.throws(
        () => setGroupsCommand(argv),
        (error: unknown) =>
          error instanceof CliUsageError &&
          (/SETGROUPS all all all \(open\)/.test(error.message) || /-m needs a value/.test(error.message)),
        argv.join(' '),
      );
    }
  });
});

function farmRuntime(overrides: Partial<FarmRuntime> = {}): FarmRuntime {
  return {
    localNode: 'n1',
    peers: ['n2', 'n3'],
    clusterId: 'c1',
    key: Buffer.alloc(32, 1),
    lans: [
      {
        ident: 'default',
        localAddress: '10.0.0.1',
        peers: [
          { node: 'n2', address: '10.0.0.2' },
          { node: 'n3', address: '10.0.0.3' },
        ],
        port: 4803,
      },
    ],
    pulseMs: 100,
    mlostCount: 20,
    slostCount: 10,
    groups: [
      {
        name: 'web',
        powers: { n1: 1, n2: 1, n3: 1 },
        rules: [{ virtualAddr: '*', port: 80, proto: 'tcp', filter: 'on_port' }],
      },
    ],
    vips: [{ address: '10.0.0.60' }],
    virtualMac: '5a:fe:0a:00:00:3c',
    directed: false,
    scriptControl: true,
    ...overrides,
  };
}

function rulesOf(failoverXml: string): ModuleRuntimeConfig['failover']['rules'] {
  const loaded = loadUserconfig(
    `<!DOCTYPE safe><safe><service mode="light">${failoverXml}</service></safe>`,
    { file: 'test.xml', environment: {}, moduleName: 'web' },
  );
  assert.ok(loaded.ok && loaded.config, JSON.stringify(loaded.problems));
  return compileFailover(loaded.config.checkers, loaded.config.failover).rules;
}

function moduleConfig(overrides: Partial<ModuleRuntimeConfig> = {}): ModuleRuntimeConfig {
  return {
    name: 'web',
    id: 1,
    mode: 'farm',
    boot: 'ignore',
    bootDelayMs: 0,
    maxloop: 3,
    loopIntervalMs: 86_400_000,
    user: {
      nicestopTimeoutMs: 300_000,
      forcestopTimeoutMs: 300_000,
      logging: 'userlog',
      userlogBytesMax: 1,
      vars: {},
    },
    errd: { pollTimerMs: 10_000, watches: [] },
    checkers: [],
    customCheckers: [],
    failover: { periodMs: 5000, handleTimeMs: 0, rules: [] },
    mirror: null,
    farm: farmRuntime(),
    ...overrides,
  };
}

describe('dynamic update plan', () => {
  test('the same configuration read again: nothing to apply, nothing refused', () => {
    assert.deepEqual(dynamicUpdatePlan(moduleConfig(), moduleConfig()), { applied: [], refused: [] });
  });

  test('new powers or rules of a group are applied', () => {
    const next = moduleConfig({
      farm: farmRuntime({
        groups: [
          {
            name: 'web',
            powers: { n1: 2, n2: 1, n3: 1 },
            rules: [{ virtualAddr: '*', port: 80, proto: 'tcp', filter: 'on_port' }],
          },
        ],
      }),
    });
    const plan = dynamicUpdatePlan(moduleConfig(), next);
    assert.equal(plan.refused.length, 0);
    assert.match(plan.applied.join(), /load-balancing groups/);
  });

  test('anything else that changed is refused by name', () => {
    const cases: [Partial<ModuleRuntimeConfig>, RegExp][] = [
      [{ farm: farmRuntime({ vips: [{ address: '10.0.0.61' }] }) }, /virtual addresses/],
      [{ farm: farmRuntime({ peers: ['n2'] }) }, /farm nodes/],
      [{ farm: farmRuntime({ key: Buffer.alloc(32, 2) }) }, /cluster key/],
      [{ farm: farmRuntime({ scriptControl: false }) }, /scriptcontrol/],
      [{ farm: null }, /<farm>/],
      [{ maxloop: 4 }, /maxloop/],
      [{ errd: { pollTimerMs: 10_000, watches: [] }, user: null }, /<user>/],
    ];
    for (const [overrides, expected] of cases) {
      const plan = dynamicUpdatePlan(moduleConfig(), moduleConfig(overrides));
      assert.match(plan.refused.join('; '), expected, JSON.stringify(plan));
    }
  });

  test('a failover rule whose condition changed is seen, though rules are compiled to functions', () => {
    const old = moduleConfig({
      failover: {
        periodMs: 5000,
        handleTimeMs: 0,
        rules: rulesOf('<failover><![CDATA[r1: if (usersetting.errd == down) then stop();]]></failover>'),
      },
    });
    const same = moduleConfig({
      failover: {
        periodMs: 5000,
        handleTimeMs: 0,
        rules: rulesOf('<failover><![CDATA[r1: if (usersetting.errd == down) then stop();]]></failover>'),
      },
    });
    const changed = moduleConfig({
      failover: {
        periodMs: 5000,
        handleTimeMs: 0,
        rules: rulesOf('<failover><![CDATA[r1: if (usersetting.errd == up) then stop();]]></failover>'),
      },
    });
    assert.deepEqual(dynamicUpdatePlan(old, same).refused, []);
    assert.match(dynamicUpdatePlan(old, changed).refused.join(), /<failover>/);
  });
});

describe('when a dynamic update is allowed', () => {
  test('farm and light: UP Ready only; mirror: ALONE Ready only; never with a command in progress', () => {
    assert.equal(updateRefusal('farm', { state: 'UP', readiness: 'Ready', busy: false }), null);
    assert.equal(updateRefusal('light', { state: 'UP', readiness: 'Ready', busy: false }), null);
    assert.equal(updateRefusal('mirror', { state: 'ALONE', readiness: 'Ready', busy: false }), null);
    assert.match(
      updateRefusal('farm', { state: 'UP', readiness: 'Transient', busy: true }) ?? '',
      /only in UP \(Ready\).*UP \(Transient\) with a command in progress/,
    );
    assert.match(
      updateRefusal('farm', { state: 'STOP', readiness: 'NotReady', busy: false }) ?? '',
      /is STOP/,
    );
    assert.match(
      updateRefusal('mirror', { state: 'PRIM', readiness: 'Ready', busy: false }) ?? '',
      /only in ALONE/,
    );
  });
});
