// userconfig.xml: the reference's defaults, macro expansion and every validation the issue lists,
// each checked at the line and column the user has to fix.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadClusterXml } from '../../../agent/config/cluster-config.ts';
import type { ClusterConfig, ModuleConfig } from '../../../agent/config/model.ts';
import { type LoadUserconfigOptions, loadUserconfig } from '../../../agent/config/userconfig.ts';
import { errors, findProblem, lineOf, mirror, twoNodeCluster, warnings } from './helpers.ts';

function load(text: string, options: LoadUserconfigOptions = {}) {
  return loadUserconfig(text, { file: 'test.xml', ...options });
}

function config(text: string, options: LoadUserconfigOptions = {}): ModuleConfig {
  const loaded = load(text, options);
  assert.deepEqual(
    errors(loaded.problems).map((problem) => problem.message),
    [],
    'the document loads without errors',
  );
  assert.ok(loaded.config);
  return loaded.config;
}

function cluster(text: string): ClusterConfig {
  const loaded = loadClusterXml(text);
  assert.ok(loaded.ok && loaded.cluster);
  return loaded.cluster;
}

const farmCluster = cluster(`<cluster><lans><lan name="default">
  <node name="n1" addr="10.0.0.1"/><node name="n2" addr="10.0.0.2"/><node name="n3" addr="10.0.0.3"/>
</lan></lans></cluster>`);

describe('defaults (reference section 4)', () => {
  test('service, heart, rfs, user and errd defaults', () => {
    const loaded = config(
      mirror(`<rfs><replicated dir="/data"/></rfs>
  <user/>
  <errd><proc name="app"/></errd>`),
    );
    assert.deepEqual(loaded.service, {
      boot: 'ignore',
      bootDelaySec: 0,
      failover: 'on',
      defaultPrimary: { kind: 'alone' },
      maxloop: 3,
      loopIntervalHours: 24,
      automaticReboot: 'off',
    });
    assert.equal(loaded.heart?.portUdp, undefined, 'the port derives from the module id');
    assert.equal(loaded.heart?.pulseMs, 700);
    assert.equal(loaded.heart?.timeoutMs, 30_000);
    assert.equal(loaded.heart?.permanentArp, 'on');
    const heartbeat = loaded.heart?.heartbeats[0];
    assert.deepEqual(
      [heartbeat?.lan, heartbeat?.ident, heartbeat?.pulseMs, heartbeat?.timeoutMs],
      ['default', 'default', 700, 30_000],
    );
    const rfs = loaded.rfs;
    assert.ok(rfs);
    assert.deepEqual(
      [
        rfs.acl,
        rfs.async,
        rfs.locktimeoutSec,
        rfs.sendtimeoutSec,
        rfs.iotimeoutSec,
        rfs.roflags,
        rfs.nbrei,
        rfs.reitimeoutSec,
      ],
      ['off', 'second', 100, 30, 300, 0x10, 6, 150],
    );
    assert.deepEqual(
      [
        rfs.reidetail,
        rfs.reicommit,
        rfs.packetsizeBytes,
        rfs.reipacketsizeBytes,
        rfs.ruzoneBlocksizeBytes,
        rfs.namespacepolicy,
      ],
      ['off', 0, undefined, 8_388_608, 8_388_608, 4],
    );
    assert.deepEqual(
      [
        rfs.allocthresholdGb,
        rfs.nbremconn,
        rfs.checktimeMs,
        rfs.checkintvSec,
        rfs.nfsboxOptions,
        rfs.scripts,
        rfs.syncdeltaMin,
      ],
      [0, 1, 220_000, 120, 'cross', 'off', 0],
    );
    assert.deepEqual(
      [rfs.reiallowedbwKBps, rfs.syncat, rfs.mountoversuffix],
      [undefined, undefined, '_For_SafeKit_Replication'],
    );
    assert.deepEqual(rfs.replicated[0]?.readOnly, false);
    assert.deepEqual(
      [
        loaded.user?.nicestoptimeoutSec,
        loaded.user?.forcestoptimeoutSec,
        loaded.user?.logging,
        loaded.user?.userlogsizeKB,
      ],
      [300, 300, 'userlog', 2048],
    );
    assert.equal(loaded.errd?.polltimerSec, 30);
    const proc = loaded.errd?.processes[0];
    assert.deepEqual(
      [proc?.service, proc?.atleast, proc?.atmax, proc?.action, proc?.resource],
      [false, 1, -1, 'stopstart', 'proc.app'],
    );
  });

  test('heartbeats inherit pulse and timeout from <heart> unless they set their own', () => {
    const loaded = config(`<!DOCTYPE safe><safe><service mode="mirror">
  <heart pulse="1s" timeout="20s"><heartbeat name="a"/><heartbeat name="b" ident="flow" pulse="300"/></heart>
  <rfs><replicated dir="/d"/></rfs></service></safe>`);
    assert.deepEqual(
      loaded.heart?.heartbeats.map((heartbeat) => [heartbeat.ident, heartbeat.pulseMs, heartbeat.timeoutMs]),
      [
        ['a', 1000, 20_000],
        ['flow', 300, 20_000],
      ],
    );
  });

  test('vip, farm and checker defaults', () => {
    const loaded = config(
      `<!DOCTYPE safe><safe><service mode="farm">
  <farm><lan name="default"/></farm>
  <vip><interface_list><interface><virtual_interface type="vmac_directed"><virtual_addr addr="10.0.0.9"/></virtual_interface></interface></interface_list>
    <loadbalancing_list><group name="G"><rule proto="tcp" filter="on_addr"/></group></loadbalancing_list></vip>
  <check>
    <tcp ident="t" when="both"><to addr="10.0.0.9" port="80"/></tcp>
    <tcp ident="tp" when="pre"><to addr="10.0.0.8" port="80"/></tcp>
    <ping ident="p"><to addr="10.0.0.1"/></ping>
    <custom ident="c" when="both" exec="/bin/true" action="restart"/>
    <module name="other"/>
  </check>
  <failover/>
</service></safe>`,
      { cluster: farmCluster },
    );
    assert.deepEqual([loaded.farm?.pulseMs, loaded.farm?.mlostCount, loaded.farm?.slostCount], [100, 20, 10]);
    assert.deepEqual([loaded.vip?.tcpreset, loaded.vip?.scriptcontrol], ['on', 'off']);
    const entry = loaded.vip?.interfaces[0];
    assert.deepEqual(
      [entry?.check, entry?.arpreroute, entry?.arpintervalSec, entry?.arpelapseSec],
      ['on', 'off', 60, 1200],
    );
    const address = entry?.virtualInterfaces[0]?.addresses[0];
    assert.deepEqual([address?.where, address?.check, address?.connections], ['alias', 'on', 'off']);
    assert.deepEqual(loaded.vip?.groups[0]?.rules[0]?.port, '*');
    const byIdent = new Map(loaded.checkers.map((checker) => [checker.resource, checker]));
    const tcp = byIdent.get('tcp.t');
    assert.ok(tcp?.type === 'tcp');
    assert.deepEqual(
      [tcp.action, tcp.targets[0]?.intervalSec, tcp.targets[0]?.timeoutSec],
      ['restart', 10, 5],
    );
    const tcpPre = byIdent.get('tcp.tp');
    assert.ok(tcpPre?.type === 'tcp');
    assert.equal(tcpPre.action, 'wait', 'a pre tcp checker waits by default');
    const ping = byIdent.get('ping.p');
    assert.ok(ping?.type === 'ping');
    assert.deepEqual([ping.when, ping.action], ['pre', 'wait']);
    const module = byIdent.get('module.other_localhost');
    assert.ok(module?.type === 'module', 'a module checker without ident is module.<name>_<addr>');
    const generated = byIdent.get('ip.10.0.0.9');
    assert.ok(
      generated?.type === 'ip' && generated.generated,
      'virtual_addr check="on" generates an ip checker',
    );
    assert.equal(generated.when, 'both', 'a farm VIP is on every node');
    assert.deepEqual(
      [loaded.failover?.extends, loaded.failover?.periodMs, loaded.failover?.handleTimeMs],
      [true, 5000, 15_000],
    );
  });

  test('the module id fills the derived ports', () => {
    const loaded = config(mirror(''), { moduleId: 3 });
    assert.equal(loaded.heart?.portUdp, 8888 + 2);
  });
});

describe('macros and environment', () => {
  test('macros expand first, then the environment; a macro may use earlier macros', () => {
    const loaded = config(
      `<!DOCTYPE safe><safe>
<macro name="BASE" value="/srv"/>
<macro name="DIR" value="%BASE%/%APP%"/>
<macro name="HOME" value="/macro-home"/>
<service mode="mirror"><heart><heartbeat name="default"/></heart>
  <rfs><replicated dir="%DIR%"/></rfs>
  <user><var name="H" value="%HOME%"/><var name="P" value="%PATHX%:%APP%"/></user>
</service></safe>`,
      { environment: { APP: 'shop', HOME: '/env-home', PATHX: '/usr/bin' } },
    );
    assert.equal(loaded.rfs?.replicated[0]?.dir, '/srv/shop');
    assert.deepEqual(
      loaded.user?.vars.map((variable) => variable.value),
      ['/macro-home', '/usr/bin:shop'],
    );
    assert.deepEqual(
      loaded.macros.map((macro) => [macro.name, macro.value]),
      [
        ['BASE', '/srv'],
        ['DIR', '/srv/shop'],
        ['HOME', '/macro-home'],
      ],
    );
  });

  test('an undefined name is a warning with a suggestion, and stays as written', () => {
    const text = `<!DOCTYPE safe><safe>
<macro name="SERVICES" value="httpd"/>
<service mode="mirror"><heart><heartbeat name="default"/></heart>
  <user><var name="S" value="%SERVICE%"/></user>
</service></safe>`;
    const loaded = load(text);
    const problem = findProblem(
      loaded.problems,
      'undefined-macro',
      /%SERVICE% is neither a macro nor an environment variable/,
    );
    assert.equal(problem.severity, 'warning');
    assert.equal(problem.hint, 'did you mean %SERVICES%?');
    assert.equal(problem.line, lineOf(text, 'value="%SERVICE%"'));
    assert.equal(loaded.config?.user?.vars[0]?.value, '%SERVICE%');
  });
});

describe('validation', () => {
  test('an unknown attribute is a warning with the nearest name', () => {
    const text = mirror('', '').replace('<heart>', '<heart plse="500">');
    const problem = findProblem(
      load(text).problems,
      'unknown-attribute',
      /unknown attribute plse in <heart>/,
    );
    assert.equal(problem.severity, 'warning');
    assert.equal(problem.hint, 'did you mean pulse?');
    assert.deepEqual([problem.line, problem.column], [4, (text.split('\n')[3]?.indexOf('plse') ?? 0) + 1]);
    assert.equal(problem.path, 'safe/service/heart');
  });

  test('an unknown element is a warning with the nearest name; a misplaced one says where it belongs', () => {
    const text = mirror('  <rsf/>\n  <heartbeat name="x"/>');
    const problems = load(text).problems;
    const unknown = findProblem(problems, 'unknown-element', /unknown element <rsf> in <service>/);
    assert.equal(unknown.hint, 'did you mean <rfs>?');
    assert.equal(unknown.line, lineOf(text, '<rsf/>'));
    const misplaced = findProblem(problems, 'misplaced-element', /<heartbeat> is not valid inside <service>/);
    assert.equal(misplaced.hint, '<heartbeat> belongs inside <heart>');
    assert.equal(misplaced.severity, 'warning');
  });

  test('a bad value or unit is an error at the value', () => {
    const text = mirror('', ' boot="yes" boot_delay="500ms"').replace('<heart>', '<heart pulse="fast">');
    const problems = load(text).problems;
    const boot = findProblem(
      problems,
      'invalid-value',
      /invalid value 'yes' for the attribute boot \(expected on, off, auto or ignore\)/,
    );
    assert.equal(boot.column, (text.split('\n')[2]?.indexOf('yes') ?? 0) + 1);
    findProblem(
      problems,
      'invalid-value',
      /^invalid value '500ms' for the attribute boot_delay \(expected time unit: 's'\)$/,
    );
    findProblem(problems, 'invalid-value', /invalid value 'fast' for the attribute pulse/);
    assert.equal(errors(problems).length, 3);
  });

  test('a missing required value is an error naming what to set', () => {
    const text = '<!DOCTYPE safe><safe><service><user/></service></safe>';
    const problem = findProblem(
      load(text).problems,
      'missing-value',
      /missing attribute mode in <service>: set mirror, farm or light/,
    );
    assert.equal(problem.severity, 'error');
  });

  test('an empty placeholder is an error at its line telling what to set', () => {
    const text = mirror(`  <vip><interface_list><interface><real_interface>
        <virtual_addr addr="" where="one_side_alias"/>
  </real_interface></interface></interface_list></vip>`);
    const problem = findProblem(
      load(text).problems,
      'empty-placeholder',
      /<virtual_addr> addr is empty: set the virtual IP address/,
    );
    assert.equal(problem.line, lineOf(text, 'addr=""'));
    assert.equal(problem.severity, 'error');
  });

  test('an empty macro used where a value is needed is reported at the macro', () => {
    const text = `<!DOCTYPE safe><safe>
<macro name="VIRTUAL_IP" value=""/>
<service mode="mirror"><heart><heartbeat name="default"/></heart>
  <vip><interface_list><interface><real_interface>
    <virtual_addr addr="%VIRTUAL_IP%" where="one_side_alias"/>
  </real_interface></interface></interface_list></vip>
</service></safe>`;
    const problem = findProblem(load(text).problems, 'empty-placeholder', /macro VIRTUAL_IP is empty/);
    assert.equal(problem.line, lineOf(text, 'value=""'));
    assert.match(
      problem.message,
      new RegExp(`\\(line ${lineOf(text, 'addr="%VIRTUAL_IP%"')}\\).*set the virtual IP address`),
    );
  });

  test('heartbeat and farm lan names must exist in cluster.xml', () => {
    const twoNodes = cluster(twoNodeCluster);
    const text = mirror('').replace('name="default"', 'name="defautl"');
    const problem = findProblem(
      load(text, { cluster: twoNodes }).problems,
      'unknown-lan',
      /heartbeat name defautl is not a lan of cluster.xml/,
    );
    assert.equal(problem.hint, 'did you mean default?');
    assert.equal(problem.line, lineOf(text, 'defautl'));
    const farm =
      '<!DOCTYPE safe><safe><service mode="farm"><farm><lan name="admin"/></farm></service></safe>';
    findProblem(
      load(farm, { cluster: twoNodes }).problems,
      'unknown-lan',
      /farm lan name admin is not a lan of cluster.xml \(lans: default, repli\)/,
    );
  });

  test('a mirror needs exactly 2 nodes and a farm at least 2', () => {
    const three = cluster(`<cluster><lans><lan name="default">
      <node name="a" addr="10.0.0.1"/><node name="b" addr="10.0.0.2"/><node name="c" addr="10.0.0.3"/></lan></lans></cluster>`);
    findProblem(
      load(mirror(''), { cluster: three }).problems,
      'node-count',
      /a mirror module runs on exactly 2 nodes; its lans have 3 \(a, b, c\)/,
    );
    const one = cluster(
      '<cluster><lans><lan name="default"><node name="a" addr="10.0.0.1"/></lan></lans></cluster>',
    );
    const farm =
      '<!DOCTYPE safe><safe><service mode="farm"><farm><lan name="default"/></farm></service></safe>';
    findProblem(
      load(farm, { cluster: one }).problems,
      'node-count',
      /a farm module needs at least 2 nodes; its lans have 1/,
    );
    assert.equal(load(farm, { cluster: three }).ok, true);
    assert.equal(load(mirror(''), { cluster: cluster(twoNodeCluster) }).ok, true);
  });

  test('a heartbeat lan missing one of the two mirror nodes is an error', () => {
    const partial = cluster(`<cluster><lans>
      <lan name="default"><node name="a" addr="10.0.0.1"/><node name="b" addr="10.0.0.2"/></lan>
      <lan name="repli"><node name="a" addr="10.1.0.1"/></lan></lans></cluster>`);
    const text = mirror('').replace(
      '<heartbeat name="default"/>',
      '<heartbeat name="default"/><heartbeat name="repli"/>',
    );
    findProblem(load(text, { cluster: partial }).problems, 'node-count', /lan repli has no address for b/);
  });

  test('replicated directories: absolute, not /, not nested, not duplicated', () => {
    const text = mirror(`  <rfs>
    <replicated dir="data"/>
    <replicated dir="/"/>
    <replicated dir="/srv/app"/>
    <replicated dir="/srv/app/db"/>
    <replicated dir="/srv/app/"/>
    <replicated dir="/var/../etc"/>
  </rfs>`);
    const problems = load(text).problems;
    assert.equal(
      findProblem(problems, 'replicated-dir', /data is not an absolute path/).line,
      lineOf(text, 'dir="data"'),
    );
    assert.equal(
      findProblem(problems, 'replicated-dir', /the root directory \/ cannot be replicated/).line,
      lineOf(text, 'dir="/"'),
    );
    const nested = findProblem(problems, 'replicated-dir', /\/srv\/app\/db is inside \/srv\/app/);
    assert.equal(nested.line, lineOf(text, 'dir="/srv/app/db"'));
    assert.equal(
      findProblem(problems, 'replicated-dir', /\/srv\/app\/ is listed twice/).line,
      lineOf(text, 'dir="/srv/app/"'),
    );
    findProblem(problems, 'replicated-dir', /\/var\/..\/etc contains '..'/);
    assert.equal(errors(problems).length, 5);
  });

  test('notreplicated and tocheck paths stay inside the directory', () => {
    const text = mirror(`  <rfs><replicated dir="/srv">
    <notreplicated path="../etc"/>
    <notreplicated regexpath="([a-z"/>
    <notreplicated/>
    <tocheck path="/abs"/>
  </replicated></rfs>`);
    const problems = load(text).problems;
    findProblem(problems, 'replicated-dir', /notreplicated path must stay inside the replicated directory/);
    findProblem(problems, 'invalid-value', /regexpath is not a valid regular expression/);
    findProblem(problems, 'missing-value', /<notreplicated> needs path="..." or regexpath="..."/);
    findProblem(problems, 'replicated-dir', /tocheck path \/abs must be relative/);
  });

  test('duplicate checker idents are errors', () => {
    const text = mirror(`  <check>
    <tcp ident="app" when="prim"><to addr="10.0.0.5" port="80"/></tcp>
    <tcp ident="app" when="prim"><to addr="10.0.0.5" port="81"/></tcp>
    <ping ident="app"><to addr="10.0.0.1"/></ping>
  </check>`);
    const problems = load(text).problems;
    const problem = findProblem(problems, 'duplicate-name', /two checkers define tcp.app/);
    assert.equal(problem.line, lineOf(text, 'port="81"'));
    assert.equal(errors(problems).length, 1, 'ping.app is another resource');
  });

  test('ident="flow" without <rfs> is an error', () => {
    const text = mirror('').replace(
      '<heartbeat name="default"/>',
      '<heartbeat name="default" ident="flow"/>',
    );
    const problem = findProblem(
      load(text).problems,
      'flow-without-rfs',
      /ident="flow" marks the replication network/,
    );
    assert.equal(problem.line, lineOf(text, 'ident="flow"'));
    assert.equal(load(text.replace('</service>', '<rfs><replicated dir="/d"/></rfs></service>')).ok, true);
  });

  test('failover rules may only use resources the module has', () => {
    const text = mirror(`  <check><ping ident="gw"><to addr="10.0.0.1"/></ping></check>
  <failover><![CDATA[
ok_rule: if (ping.gw == down && heartbeat.default == up) then wait();
typo: if (ping.gateway == down) then wait();
badclass: if (pnig.gw == down) then wait();
]]></failover>`);
    const problems = load(text).problems;
    const typo = findProblem(
      problems,
      'unknown-resource',
      /rule typo uses ping.gateway, but this module has no such resource/,
    );
    assert.equal(typo.line, lineOf(text, 'ping.gateway'));
    assert.equal(typo.column, (text.split('\n')[typo.line - 1]?.indexOf('ping.gateway') ?? 0) + 1);
    const badClass = findProblem(problems, 'unknown-resource', /there is no resource class pnig/);
    assert.equal(badClass.hint, 'did you mean ping?');
    assert.equal(errors(problems).length, 2);
  });

  test('Lua failover blocks are kept verbatim and reported as not supported', () => {
    const lua = `--Lua Rules
     Rules = Rules + { lbl=if_then("custom.X","down",Action.stopstart), _group="checker" }`;
    const text = mirror(`  <failover><![CDATA[ ${lua} ]]></failover>`);
    const loaded = load(text);
    const problem = findProblem(loaded.problems, 'lua-unsupported', /Lua failover rules are not supported/);
    assert.equal(problem.line, lineOf(text, '--Lua'));
    assert.equal(loaded.config?.failover?.luaBlocks[0]?.text, ` ${lua} `);
  });

  test('rules using macros are expanded; their problems point at the block', () => {
    const text = `<!DOCTYPE safe><safe>
<macro name="GW" value="gateway"/>
<service mode="mirror"><heart><heartbeat name="default"/></heart>
  <check><ping ident="gateway"><to addr="10.0.0.1"/></ping></check>
  <failover><![CDATA[
gw: if (ping.%GW% == down) then wait();
typo: if (ping.%GW%x == down) then wait();
]]></failover>
</service></safe>`;
    const loaded = load(text);
    assert.deepEqual(
      loaded.config?.failover?.rules.map((rule) => rule.label),
      ['gw', 'typo'],
    );
    const problem = findProblem(loaded.problems, 'unknown-resource', /rule typo uses ping.gatewayx/);
    assert.equal(problem.line, lineOf(text, '<![CDATA['));
  });

  test('rule syntax errors point into the CDATA', () => {
    const text = mirror('  <failover><![CDATA[\nr1: if (ping.x == down then wait();\n]]></failover>');
    const problem = findProblem(
      load(text).problems,
      'rule-syntax',
      /expected '\)' closing the condition, found 'then'/,
    );
    assert.equal(problem.line, lineOf(text, 'then wait'));
  });

  test('element and mode rules: mirror-only elements in a farm, errd without user, two <heart>', () => {
    const farm = `<!DOCTYPE safe><safe><service mode="farm"><farm><lan name="default"/></farm>
  <rfs><replicated dir="/d"/></rfs><errd><proc name="x"/></errd></service></safe>`;
    const problems = load(farm).problems;
    findProblem(problems, 'mode-mismatch', /<rfs> is only valid in mirror modules; this module is farm/);
    findProblem(problems, 'missing-value', /<errd> needs <user\/>/);
    const twice = mirror('  <heart><heartbeat name="repli"/></heart>');
    findProblem(load(twice).problems, 'duplicate-element', /only one <heart> allowed in <service>/);
  });

  test('template hints: PROCESS_NAME, handlers and executables missing from bin/', () => {
    const text = mirror(`  <user/>
  <errd><proc name="PROCESS_NAME" action="restart"/><proc name="db" action="dbhandler"/></errd>
  <check><custom ident="c" when="prim" exec="mycheck" action="restart"/></check>`);
    const problems = load(text, { packageFiles: ['bin/start_prim', 'bin/stop_prim'] }).problems;
    assert.equal(findProblem(problems, 'template-placeholder', /PROCESS_NAME/).severity, 'warning');
    findProblem(problems, 'missing-file', /action handler bin\/dbhandler is not in the module/);
    findProblem(problems, 'missing-file', /checker executable bin\/mycheck is not in the module/);
    const present = load(text, { packageFiles: ['bin/dbhandler', 'bin/mycheck'] }).problems;
    assert.equal(errors(present).length, 0);
  });

  test('reserved variable names and the default primary node', () => {
    const text = mirror('  <user><var name="SAFE" value="/x"/></user>', ' defaultprim="node3"');
    const problems = load(text, { cluster: cluster(twoNodeCluster) }).problems;
    findProblem(problems, 'invalid-value', /SAFE is set by the agent/);
    const primary = findProblem(problems, 'unknown-node', /defaultprim node3 is not a node of this module/);
    assert.equal(primary.hint, 'did you mean node1?');
    const legacy = config(mirror('', ' defaultprim="hostname node2"'), { cluster: cluster(twoNodeCluster) });
    assert.deepEqual(legacy.service.defaultPrimary, { kind: 'node', node: 'node2' });
  });

  test('a document without a safe root or a service is reported, not thrown', () => {
    assert.match(load('<cluster/>').problems[0]?.message ?? '', /the root element must be <safe>/);
    assert.match(errors(load('<!DOCTYPE safe><safe/>').problems)[0]?.message ?? '', /no <service> element/);
    assert.match(errors(load('').problems)[0]?.message ?? '', /no <safe> element/);
    assert.equal(
      warnings(load('<safe><service mode="light"/></safe>').problems)[0]?.message,
      'missing <!DOCTYPE safe> before <safe>',
    );
  });
});
