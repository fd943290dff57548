// The VIP adapter's command sequences against a fake runner: what it runs, in which order, and
// what it never does (add after a conflict, re-add on renew, keep a VIP whose reset failed).
// The lab test runs the same against real namespaces.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CommandOptions, type CommandResult, NetCommandError } from '../../../agent/net/command.ts';
import { Announcer } from '../../../agent/net/garp.ts';
import { type VipSpec, VirtualIp } from '../../../agent/net/vip.ts';

type Handler = (args: readonly string[]) => Partial<CommandResult> | Error;

class FakeNode {
  readonly calls: string[] = [];
  addresses: {
    family: string;
    local: string;
    prefixlen: number;
    tentative?: boolean;
    dadfailed?: boolean;
  }[] = [
    { family: 'inet', local: '10.0.0.1', prefixlen: 24 },
    { family: 'inet6', local: 'fd00::1', prefixlen: 64 },
  ];
  holderMac: string | null = null;
  dadFails = false;
  handlers = new Map<string, Handler>();

  readonly run = async (file: string, args: readonly string[], options: CommandOptions = {}) => {
    const line = [file, ...args].join(' ');
    this.calls.push(line);
    const custom = this.handlers.get(file)?.(args);
    if (custom instanceof Error) throw custom;
    if (custom !== undefined) return { code: 0, stdout: '', stderr: '', elapsedMs: 1, ...custom };
    let stdout = '';
    let code = 0;
    if (file === 'ip' && args.includes('-j') && args.includes('addr')) {
      stdout = JSON.stringify([
        {
          ifname: 'eth0',
          flags: ['UP', 'LOWER_UP'],
          address: 'aa:aa:aa:aa:aa:01',
          addr_info: this.addresses,
        },
      ]);
    } else if (file === 'ip' && args[0] === 'addr' && args[1] === 'add') {
      const [address = '', prefix = ''] = (args[2] ?? '').split('/');
      const v6 = address.includes(':');
      this.addresses.push({
        family: v6 ? 'inet6' : 'inet',
        local: address,
        prefixlen: Number(prefix),
        ...(v6 && this.dadFails ? { tentative: true, dadfailed: true } : {}),
      });
    } else if (file === 'ip' && args[0] === 'addr' && args[1] === 'del') {
      const before = this.addresses.length;
      this.addresses = this.addresses.filter((entry) => `${entry.local}/${entry.prefixlen}` !== args[2]);
      if (this.addresses.length === before)
        throw new NetCommandError(line, 2, 'Error: ipv4: Address not found.', `${line}: exited 2`);
    } else if (file === 'arping' && args[0] === '-D') {
      if (this.holderMac !== null) {
        stdout = `Unicast reply from 10.0.0.50 [${this.holderMac.toUpperCase()}]  0.5ms\n`;
        options.onStdout?.(stdout);
        code = 1;
      }
    } else if (file === 'ss') {
      stdout = 'ESTAB 0 0 10.0.0.50:80 10.0.0.9:5555\n';
    }
    return { code, stdout, stderr: '', elapsedMs: 1 };
  };
}

const fast = {
  probe: { probes: 2, probeIntervalMs: 5, listenMs: 20 },
  announce: {
    burstCount: 2,
    burstIntervalMs: 1,
    repeatDelaysMs: [],
    refreshIntervalMs: 0,
    refreshElapseMs: 0,
    arpMode: 'request' as const,
  },
  dadWaitMs: 500,
};

function vipOn(node: FakeNode, extra: Partial<VipSpec> = {}, errors: string[] = []): VirtualIp {
  return new VirtualIp(
    { address: '10.0.0.50', where: 'one_side_alias', tcpreset: true, ...fast, ...extra },
    { onError: (error) => errors.push(error.message) },
    node.run,
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('VirtualIp (fake commands)', () => {
  test('acquire: probe, then add with the label, then gratuitous ARPs', async () => {
    const node = new FakeNode();
    const result = await vipOn(node).acquire();
    assert.equal(result.status, 'added');
    // The announcements run in the background: wait for both (bounded; a loaded host is slow).
    const deadlineMs = Date.now() + 5000;
    while (node.calls.length < 6 && Date.now() < deadlineMs) await sleep(10);
    await sleep(30);
    assert.deepEqual(node.calls, [
      'ip -j addr show',
      'arping -D -c 1 -w 1 -I eth0 10.0.0.50',
      'arping -D -c 1 -w 1 -I eth0 10.0.0.50',
      'ip addr add 10.0.0.50/24 dev eth0 label eth0:hakit',
      'arping -U -c 1 -I eth0 10.0.0.50',
      'arping -U -c 1 -I eth0 10.0.0.50',
    ]);
  });

  test('acquire refuses an address someone answers for and adds nothing', async () => {
    const node = new FakeNode();
    node.holderMac = 'bb:bb:bb:bb:bb:02';
    const result = await vipOn(node).acquire();
    assert.deepEqual(
      { status: result.status, macs: result.status === 'conflict' ? result.macs : [] },
      { status: 'conflict', macs: ['bb:bb:bb:bb:bb:02'] },
    );
    assert.ok(!node.calls.some((call) => call.startsWith('ip addr add')), node.calls.join('\n'));
  });

  test('acquire with a lifetime passes it to the kernel; the netmask overrides the subnet', async () => {
    const node = new FakeNode();
    await vipOn(node, { netmask: '255.255.255.128' }).acquire({ lifetimeSec: 9 });
    assert.ok(
      node.calls.includes('ip addr add 10.0.0.50/25 dev eth0 label eth0:hakit valid_lft 9 preferred_lft 9'),
      node.calls.join('\n'),
    );
    await assert.rejects(vipOn(node).acquire({ lifetimeSec: 0 }), /lifetime 0 s/);
    await assert.rejects(vipOn(node, { where: 'one_side' }).acquire({ lifetimeSec: 9 }), /one_side/);
  });

  test('acquire of an address already here announces it again without probing', async () => {
    const node = new FakeNode();
    node.addresses.push({ family: 'inet', local: '10.0.0.50', prefixlen: 24 });
    const result = await vipOn(node).acquire();
    assert.equal(result.status, 'present');
    assert.ok(!node.calls.some((call) => call.startsWith('arping -D')));
  });

  test('acquire outside every subnet without an interface name is refused with the reason', async () => {
    const node = new FakeNode();
    await assert.rejects(
      vipOn(node, { address: '192.168.7.7' }).acquire(),
      /no interface of this node has an address in its subnet/,
    );
  });

  test('release: reset, remove, reset again; a failed reset does not keep the address', async () => {
    const node = new FakeNode();
    const errors: string[] = [];
    const vip = vipOn(node, {}, errors);
    await vip.acquire();
    node.calls.length = 0;
    node.handlers.set(
      'ss',
      () => new NetCommandError('ss -K', 1, 'SOCK_DESTROY: Operation not supported', 'ss -K: exited 1'),
    );
    const result = await vip.release();
    assert.deepEqual(result, { removed: true, connectionsReset: 0 });
    assert.equal(errors.length, 2);
    assert.match(errors[0] ?? '', /VIP 10\.0\.0\.50 on eth0: tcpreset: ss -K: exited 1/);
    assert.deepEqual(node.calls, [
      'ip -j addr show',
      'ss -K -t -n -H src 10.0.0.50',
      'ip addr del 10.0.0.50/24 dev eth0',
      'ss -K -t -n -H src 10.0.0.50',
    ]);
  });

  test('release counts reset connections and is idempotent', async () => {
    const node = new FakeNode();
    const vip = vipOn(node);
    await vip.acquire();
    assert.deepEqual(await vip.release(), { removed: true, connectionsReset: 2 });
    assert.deepEqual(await vip.release(), { removed: false, connectionsReset: 2 });
    const noReset = vipOn(node, { tcpreset: false });
    await noReset.acquire();
    node.calls.length = 0;
    assert.deepEqual(await noReset.release(), { removed: true, connectionsReset: 0 });
    assert.ok(!node.calls.some((call) => call.startsWith('ss')));
  });

  test('renew changes the lifetime of a held VIP and never adds a missing one', async () => {
    const node = new FakeNode();
    const vip = vipOn(node);
    await vip.acquire();
    assert.equal(await vip.renew(5), 'renewed');
    assert.ok(node.calls.includes('ip addr change 10.0.0.50/24 dev eth0 valid_lft 5 preferred_lft 5'));
    node.addresses = node.addresses.filter((entry) => entry.local !== '10.0.0.50');
    node.calls.length = 0;
    assert.equal(await vip.renew(5), 'missing');
    assert.deepEqual(node.calls, ['ip -j addr show']);
  });

  test('check: ok, missing, and a conflict with the other MAC', async () => {
    const node = new FakeNode();
    const vip = vipOn(node);
    await vip.acquire();
    assert.equal((await vip.check()).status, 'ok');
    node.holderMac = 'cc:cc:cc:cc:cc:03';
    const conflict = await vip.check();
    assert.ok(conflict.status === 'conflict' && conflict.macs[0] === 'cc:cc:cc:cc:cc:03');
    node.addresses = node.addresses.filter((entry) => entry.local !== '10.0.0.50');
    assert.equal((await vip.check()).status, 'missing');
  });

  test('IPv6: ndisc_notify, add without nodad, DAD waited for; a failed DAD removes the address', async () => {
    const node = new FakeNode();
    const vip = vipOn(node, { address: 'fd00::50' });
    assert.equal((await vip.acquire()).status, 'added');
    assert.deepEqual(node.calls.slice(0, 4), [
      'ip -j addr show',
      'sysctl -q -w net.ipv6.conf.eth0.ndisc_notify=1',
      'ip addr add fd00::50/64 dev eth0',
      'ip -j -6 addr show dev eth0',
    ]);
    const other = new FakeNode();
    other.dadFails = true;
    const refused = await vipOn(other, { address: 'fd00::50' }).acquire();
    assert.equal(refused.status, 'conflict');
    assert.ok(other.calls.includes('ip addr del fd00::50/64 dev eth0'));
    assert.ok(!other.addresses.some((entry) => entry.local === 'fd00::50'));
  });

  test('one_side: routes get the VIP as source and are restored before removal', async () => {
    const node = new FakeNode();
    node.handlers.set('ip', (args) =>
      args.includes('route') && args.includes('show')
        ? {
            stdout: JSON.stringify([
              { dst: '10.0.0.0/24', protocol: 'kernel', scope: 'link', prefsrc: '10.0.0.1' },
            ]),
          }
        : (undefined as unknown as Partial<CommandResult>),
    );
    const vip = vipOn(node, { where: 'one_side' });
    await vip.acquire();
    assert.ok(
      node.calls.includes('ip -4 route replace 10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.50'),
    );
    node.calls.length = 0;
    await vip.release();
    const restore = node.calls.indexOf(
      'ip -4 route replace 10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.1',
    );
    const remove = node.calls.indexOf('ip addr del 10.0.0.50/24 dev eth0');
    assert.ok(restore >= 0 && remove > restore, node.calls.join('\n'));
  });

  test('operations are serialised: a release during an acquire runs after it', async () => {
    const node = new FakeNode();
    const vip = vipOn(node);
    const acquired = vip.acquire();
    const released = vip.release();
    assert.equal((await acquired).status, 'added');
    assert.equal((await released).removed, true);
  });
});

describe('Announcer (fake commands)', () => {
  test('bursts now and at each repeat, then the refresh stops at arpelapse', async () => {
    const node = new FakeNode();
    const announcer = new Announcer(
      { interfaceName: 'eth0', address: '10.0.0.50' },
      { ...fast.announce, burstCount: 3, repeatDelaysMs: [20], refreshIntervalMs: 1_000, refreshElapseMs: 0 },
      { onError: (error) => assert.fail(error.message) },
      node.run,
    );
    announcer.start();
    assert.deepEqual(await announcer.done, { sent: 6, failed: 0, skipped: 0 });
    assert.ok(node.calls.every((call) => call === 'arping -U -c 1 -I eth0 10.0.0.50'));
  });

  test('cancel stops what is not sent; a missing ndptool is reported once', async () => {
    const node = new FakeNode();
    node.handlers.set(
      'ndptool',
      () => new NetCommandError('ndptool', 'ENOENT', '', 'ndptool is not installed'),
    );
    const errors: string[] = [];
    const announcer = new Announcer(
      { interfaceName: 'eth0', address: 'fd00::50' },
      { ...fast.announce, burstCount: 4, burstIntervalMs: 10, repeatDelaysMs: [5_000] },
      { onError: (error) => errors.push(error.message) },
      node.run,
    );
    announcer.start();
    await sleep(50);
    announcer.cancel();
    const report = await announcer.done;
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /announcing fd00::50 on eth0: ndptool is not installed/);
    assert.equal(report.sent, 0);
    assert.equal(report.failed + report.skipped, 8);
  });

  test('settings out of bounds are refused', () => {
    const node = new FakeNode();
    const make = (overrides: object) =>
      new Announcer(
        { interfaceName: 'eth0', address: '10.0.0.50' },
        { ...fast.announce, ...overrides },
        { onError: () => undefined },
        node.run,
      );
    assert.throws(() => make({ burstCount: 0 }), /burst of 1 to/);
    assert.throws(() => make({ refreshIntervalMs: 10 }), /at least 1 s/);
    assert.throws(() => make({ repeatDelaysMs: Array<number>(11).fill(1) }), /repeats/);
  });
});
