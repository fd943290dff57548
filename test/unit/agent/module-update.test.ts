// Dynamic updates and script-controlled farm traffic on a real hakitd with the real hakit CLI:
// `hakit update` runs the update script with the reference's arguments only in UP (Ready),
// `hakit config` of a running module takes dynamic changes and refuses the others by name,
// `vip traffic open|close` (and the reference's `-r saferpc_send vipd SETGROUPS ...`) joins and
// leaves the farm's membership on a farm module with scriptcontrol="on", refused elsewhere.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentSandbox, eventually, hakitFile } from './daemon-harness.ts';

const userSection = `<user logging="userlog" nicestoptimeout="5" forcestoptimeout="5">
    <var name="HAKIT_CLI" value="${hakitFile}"/>
    <var name="NODE_BIN" value="${process.execPath}"/>
  </user>`;

const record = 'echo "$(basename "$0") $*" >> "$SAFEUSERVAR/calls"';

function lightConfig(maxloop: number): string {
  return `<!DOCTYPE safe>
<safe>
<service mode="light" maxloop="${maxloop}">
  ${userSection}
</service>
</safe>
`;
}

/** A farm module on this host alone (lan on loopback), scriptcontrol on, no VIP: the cloud mode. */
function farmConfig(scriptcontrol: 'on' | 'off', power: number): string {
  return `<!DOCTYPE safe>
<safe>
<service mode="farm">
  <farm pulse="100ms" mlost_count="5" slost_count="3"><lan name="default"/></farm>
  <vip scriptcontrol="${scriptcontrol}">
    <loadbalancing_list>
      <group name="web">
        <cluster><host name="solo" power="${power}"/></cluster>
        <rule port="8080" proto="tcp" filter="on_port"/>
      </group>
    </loadbalancing_list>
  </vip>
  ${userSection}
</service>
</safe>
`;
}

describe('dynamic update and script-controlled traffic on a real hakitd', { timeout: 120_000 }, () => {
  const sandbox = new AgentSandbox('update');
  const calls = (module: string) => sandbox.readIfExists(sandbox.moduleVar(module, 'calls'));
  const log = (module: string) => sandbox.cli(['log', '-m', module, '-s', '500', '-A']).stdout;
  let lightDir = '';
  let farmDir = '';

  before(async () => {
    await sandbox.startDaemon();
    lightDir = sandbox.writeModule('demo', lightConfig(3), {
      update: `${record}\n[ -e "$SAFEUSERVAR/fail-update" ] && exit 3\nexit 0`,
      start_both: record,
      stop_both: record,
    });
    for (const args of [
      ['module', 'install', lightDir],
      ['config', '-m', 'demo'],
    ]) {
      const result = sandbox.cli(args);
      assert.equal(result.code, 0, result.stderr);
    }
    const clusterFile = join(sandbox.root, 'cluster.xml');
    writeFileSync(
      clusterFile,
      '<cluster><lans><lan name="default"><node name="solo" addr="127.0.0.1"/><node name="peer" addr="127.0.0.2"/></lan></lans></cluster>\n',
    );
    for (const args of [
      ['cluster', 'config', clusterFile],
      ['cluster', 'genkey'],
    ]) {
      const result = sandbox.cli(args);
      assert.equal(result.code, 0, result.stderr);
    }
    farmDir = sandbox.writeModule('web', farmConfig('on', 1), {
      // The reference's scripts: traffic opened at the end of start_both, closed by stop_both.
      start_both: `${record}\n[ -e "$SAFEUSERVAR/no-open" ] && exit 0\n"$NODE_BIN" "$HAKIT_CLI" -r saferpc_send vipd SETGROUPS all all all >> "$SAFEUSERVAR/calls" 2>&1`,
      stop_both: `${record}\n"$NODE_BIN" "$HAKIT_CLI" -r saferpc_send vipd SETGROUPS none none none >> "$SAFEUSERVAR/calls" 2>&1`,
      update: `${record}\n"$NODE_BIN" "$HAKIT_CLI" -r saferpc_send vipd SETGROUPS all all all >> "$SAFEUSERVAR/calls" 2>&1`,
    });
    for (const args of [
      ['module', 'install', farmDir],
      ['config', '-m', 'web'],
    ]) {
      const result = sandbox.cli(args);
      assert.equal(result.code, 0, result.stderr + result.stdout);
    }
  });

  after(async () => {
    for (const module of ['demo', 'web']) {
      sandbox.cli(['stop', '-m', module]);
      sandbox.cli(['waitstop', '-m', module, '-t', '20']);
    }
    await sandbox.cleanup();
  });

  test('update is refused outside UP (Ready); in UP it runs the update script with UP UP', () => {
    const stopped = sandbox.cli(['update', '-m', 'demo']);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stderr, /update refused: a dynamic update runs only in UP \(Ready\).*is STOP/);
    assert.doesNotMatch(calls('demo'), /^update/m);
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '20']).code, 0);
    const updated = sandbox.cli(['update', '-m', 'demo']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(updated.stdout, /demo: updated \(no configuration change\); update script done/);
    assert.match(calls('demo'), /^update UP UP$/m);
    assert.match(log('demo'), /Dynamic update asked by .*: nothing changed/);
    assert.equal(sandbox.cli(['update', '-m', 'demo', 'now']).code, 2);
  });

  test('a failing update script makes update fail, with the exit code', () => {
    writeFileSync(sandbox.moduleVar('demo', 'fail-update'), '');
    const failed = sandbox.cli(['update', '-m', 'demo']);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the update script failed \(exit 3\)/);
    assert.match(log('demo'), /Script update UP UP failed \(exit 3\)/);
  });

  test('config of a running module: a non-dynamic change is refused by name and nothing is replaced', () => {
    const runtimeConfig = join(sandbox.root, 'opt', 'private', 'modules', 'demo', 'conf', 'userconfig.xml');
    const before = readFileSync(runtimeConfig, 'utf8');
    writeFileSync(join(sandbox.root, 'opt', 'modules', 'demo', 'conf', 'userconfig.xml'), lightConfig(7));
    const refused = sandbox.cli(['config', '-m', 'demo']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /needs a stop.*maxloop/);
    assert.equal(readFileSync(runtimeConfig, 'utf8'), before);
    assert.equal(sandbox.cli(['state', '-m', 'demo', '-lq']).stdout.trim(), 'UP (Ready)');
  });

  test('vip traffic is refused on a module that is not a farm, in both forms', () => {
    const direct = sandbox.cli(['vip', 'traffic', 'open', '-m', 'demo']);
    assert.equal(direct.code, 1);
    assert.match(direct.stderr, /demo is a light module: vip traffic is for farm modules/);
    const reference = sandbox.cli(['-r', 'saferpc_send', 'vipd', 'SETGROUPS', 'all', 'all', 'all'], {
      SAFEMODULE: 'demo',
    });
    assert.equal(reference.code, 1);
    assert.match(reference.stderr, /vip traffic is for farm modules/);
    const bad = sandbox.cli(['-r', 'saferpc_send', 'vipd', 'SETGROUPS', 'some'], { SAFEMODULE: 'demo' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /SETGROUPS some: use -r saferpc_send vipd SETGROUPS all all all/);
    assert.equal(sandbox.cli(['vip', 'traffic', 'sideways', '-m', 'demo']).code, 2);
  });

  test('scriptcontrol on: start_both opens the traffic with SETGROUPS, the CLI closes and opens it', async () => {
    const opened = sandbox.cli(['vip', 'traffic', 'open', '-m', 'web']);
    assert.equal(opened.code, 1);
    assert.match(opened.stderr, /web is STOP.*opens only while the module is UP/);
    assert.equal(sandbox.cli(['start', '-m', 'web']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'web', '-t', '20']).code, 0);
    const state = () => sandbox.cli(['state', '-m', 'web']).stdout;
    await eventually(() => /membership solo, load 256\/256/.test(state()), 5000, 'solo in the view');
    assert.match(calls('web'), /^start_both WAIT UP start\nweb: farm traffic opened$/m);
    const closed = sandbox.cli(['vip', 'traffic', 'close', '-m', 'web']);
    assert.equal(closed.code, 0, closed.stderr);
    await eventually(() => /membership \(none\), load 0\/256/.test(state()), 5000, 'solo out of the view');
    assert.match(sandbox.cli(['vip', 'traffic', 'close', '-m', 'web']).stdout, /already closed/);
    assert.match(log('web'), /farm traffic close asked by .* \(scriptcontrol\)/);
    assert.equal(sandbox.cli(['vip', 'traffic', 'open', '-m', 'web']).code, 0);
    await eventually(() => /membership solo, load 256\/256/.test(state()), 5000, 'solo back in the view');
  });

  test('config while UP: new powers applied at once, then the update script (UP UP) reopens the traffic', async () => {
    const state = () => sandbox.cli(['state', '-m', 'web']).stdout;
    assert.equal(sandbox.cli(['vip', 'traffic', 'close', '-m', 'web']).code, 0);
    await eventually(() => /load 0\/256/.test(state()), 5000, 'closed');
    // Power 0: this node takes no bucket, though its traffic is open again after the update.
    writeFileSync(join(sandbox.root, 'opt', 'modules', 'web', 'conf', 'userconfig.xml'), farmConfig('on', 0));
    const configured = sandbox.cli(['config', '-m', 'web']);
    assert.equal(configured.code, 0, configured.stderr);
    assert.match(configured.stdout, /configured while running: updated \(load-balancing groups/);
    assert.match(calls('web'), /^update UP UP\nweb: farm traffic opened$/m);
    await eventually(() => /membership solo, load 0\/256/.test(state()), 5000, 'open with power 0');
    assert.match(log('web'), /farm load after update: 0\/256 \(group web\)/);
    // scriptcontrol is not dynamic.
    writeFileSync(
      join(sandbox.root, 'opt', 'modules', 'web', 'conf', 'userconfig.xml'),
      farmConfig('off', 0),
    );
    const refused = sandbox.cli(['config', '-m', 'web']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /<vip scriptcontrol>/);
  });

  test('stop: stop_both closes the traffic with SETGROUPS none none none', async () => {
    assert.equal(sandbox.cli(['stop', '-m', 'web']).code, 0);
    assert.equal(sandbox.cli(['waitstop', '-m', 'web', '-t', '20']).code, 0);
    assert.match(calls('web'), /^stop_both UP WAIT stop\nweb: farm traffic closed$/m);
    assert.doesNotMatch(log('web'), /the stop scripts did not close it/);
  });
});
