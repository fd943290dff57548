// A light module run end to end by the real hakitd and hakit CLI, with real scripts and
// processes: lifecycle, script argv and environment, errd restart and maxloop, custom checker,
// stop timeouts, the module log, `state -lq` codes, and recovery after the daemon is killed.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { processExists, readProcessTable } from '../../../agent/checkers/process-table.ts';
import { AgentSandbox, eventually, hakitFile } from './daemon-harness.ts';

const tag = `${process.pid}${Date.now() % 100000}`;
const appPattern = `^sleep 1000\\.${tag}$`;

function userconfig(extra = ''): string {
  return `<!DOCTYPE safe>
<safe>
<service mode="light" maxloop="3" loop_interval="24">
  <user logging="userlog" nicestoptimeout="1" forcestoptimeout="2">
    <var name="GREETING" value="hello world"/>
    <var name="HAKIT_CLI" value="${hakitFile}"/>
    <var name="NODE_BIN" value="${process.execPath}"/>
  </user>
  <errd polltimer="10">
    <proc name="sleep" argregex="^1000\\.${tag}$" atleast="1" action="restart" class="both"/>
  </errd>
  <check>
    <custom ident="appcheck" when="both" exec="appcheck" action="stopstart"/>
  </check>
  <failover period="100ms" handle_time="200ms"/>
  ${extra}
</service>
</safe>
`;
}

const record = 'echo "$(basename "$0") $*" >> "$SAFEUSERVAR/calls"';
const scripts: Record<string, string> = {
  transition: record,
  prestart: record,
  poststop: record,
  start_prim: `${record}\nenv | grep -E '^(SAFE|GREETING)' | sort > "$SAFEUSERVAR/env"`,
  stop_prim: `${record}\n[ -e "$SAFEUSERVAR/hang-stop" ] && [ "$1" != force ] && sleep 100\nexit 0`,
  start_both: `${record}\nsetsid sleep 1000.${tag} </dev/null >/dev/null 2>&1 &\necho started`,
  stop_both: `${record}\npkill -f '${appPattern}'\nexit 0`,
  // The custom checker: reports down while the flag file exists, up otherwise.
  appcheck: [
    'state=',
    'while true; do',
    '  if [ -e "$SAFEUSERVAR/app-broken" ]; then next=down; else next=up; fi',
    '  if [ "$next" != "$state" ]; then "$NODE_BIN" "$HAKIT_CLI" set -m "$1" -r "$2" -v "$next" -i appcheck; state=$next; fi',
    '  sleep 0.05',
    'done',
  ].join('\n'),
};

/** This sandbox's appcheck custom checkers (bash running the module's bin/appcheck). */
function checkerPids(root: string): number[] {
  return readProcessTable()
    .filter((process) => process.args[0] === `${root}/opt/private/modules/demo/bin/appcheck`)
    .map((process) => process.pid);
}

function appPids(): number[] {
  return readProcessTable()
    .filter((process) => process.comm === 'sleep' && process.args.join(' ') === `1000.${tag}`)
    .map((process) => process.pid);
}

describe('light module on a real hakitd', { timeout: 120_000 }, () => {
  const sandbox = new AgentSandbox('light');
  const calls = () => sandbox.readIfExists(sandbox.moduleVar('demo', 'calls'));
  const log = () => sandbox.cli(['log', '-m', 'demo', '-s', '500']).stdout;
  const state = () => sandbox.cli(['state', '-m', 'demo', '-lq']);

  before(async () => {
    await sandbox.startDaemon();
    const dir = sandbox.writeModule('demo', userconfig(), scripts);
    const installed = sandbox.cli(['module', 'install', dir]);
    assert.equal(installed.code, 0, installed.stderr);
    const configured = sandbox.cli(['config', '-m', 'demo']);
    assert.equal(configured.code, 0, configured.stderr);
  });

  after(async () => {
    sandbox.cli(['stop', '-m', 'demo']);
    sandbox.cli(['waitstop', '-m', 'demo', '-t', '20']);
    for (const pid of appPids()) process.kill(pid, 'SIGKILL');
    await sandbox.cleanup();
  });

  test('state -lq is 0 in STOP; start reaches UP Ready with the scripts in order', () => {
    assert.equal(state().code, 0);
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    const waited = sandbox.cli(['waitstart', '-m', 'demo', '-t', '20']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(state().code, 2);
    assert.equal(state().stdout.trim(), 'UP (Ready)');
    assert.deepEqual(calls().trim().split('\n'), [
      'transition STOP WAIT start',
      'prestart STOP WAIT start',
      'transition WAIT UP start',
      'start_both WAIT UP start',
      'start_prim WAIT UP start',
    ]);
    assert.equal(appPids().length, 1, 'the application runs');
  });

  test('scripts get the module environment and every <var>', () => {
    const env = sandbox.readIfExists(sandbox.moduleVar('demo', 'env'));
    assert.match(env, /^GREETING=hello world$/m);
    assert.match(env, /^SAFEMODULE=demo$/m);
    assert.match(env, new RegExp(`^SAFE=${sandbox.root}/opt$`, 'm'));
    assert.match(env, new RegExp(`^SAFEBIN=${sandbox.root}/opt/private/bin$`, 'm'));
    assert.match(env, new RegExp(`^SAFEUSERBIN=${sandbox.root}/opt/private/modules/demo/bin$`, 'm'));
    assert.match(env, new RegExp(`^SAFEUSERCONF=${sandbox.root}/opt/private/modules/demo/conf$`, 'm'));
    assert.match(env, new RegExp(`^SAFEUSERVAR=${sandbox.root}/var/modules/demo$`, 'm'));
    assert.match(env, new RegExp(`^SAFEVAR=${sandbox.root}/var$`, 'm'));
  });

  test('killing the application makes errd restart it, logged, within a second', async () => {
    const [pid] = appPids();
    assert.ok(pid);
    const killedMs = Date.now();
    process.kill(pid, 'SIGKILL');
    await eventually(() => appPids().some((candidate) => candidate !== pid), 5000, 'the application back');
    const restartMs = Date.now() - killedMs;
    assert.ok(restartMs < 1000, `restarted in ${restartMs} ms`);
    assert.match(log(), /Process sleep not running/);
    assert.match(log(), /Action restart called by errd/);
    await eventually(() => state().code === 2 && state().stdout.includes('Ready'), 5000, 'UP Ready again');
  });

  test('printe from outside and from a script lands in the module log', () => {
    assert.equal(sandbox.cli(['printe', '-m', 'demo', 'message from the CLI']).code, 0);
    // Inside scripts -m is optional: $SAFEMODULE names the module.
    assert.equal(sandbox.cli(['printe', 'message with SAFEMODULE'], { SAFEMODULE: 'demo' }).code, 0);
    assert.match(log(), /\| user \| E \| message from the CLI/);
    assert.match(log(), /message with SAFEMODULE/);
  });

  test('the 4th error within loop_interval stops the module; an admin start resets the count', async () => {
    // The previous test used one restart: two more are allowed, the next detection stops.
    for (let round = 0; round < 2; round += 1) {
      const [pid] = appPids();
      assert.ok(pid, `application running before kill ${round}`);
      process.kill(pid, 'SIGKILL');
      await eventually(() => appPids().some((candidate) => candidate !== pid), 5000, `restart ${round}`);
      await eventually(() => state().stdout.trim() === 'UP (Ready)', 5000, 'UP Ready');
    }
    const [pid] = appPids();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await eventually(() => state().code === 0, 10_000, 'STOP after maxloop');
    assert.match(log(), /Action stop called by maxloop/);
    assert.equal(appPids().length, 0);
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '20']).code, 0);
    const [fresh] = appPids();
    assert.ok(fresh);
    process.kill(fresh, 'SIGKILL');
    await eventually(() => appPids().some((candidate) => candidate !== fresh), 5000, 'restart after reset');
    await eventually(() => state().stdout.trim() === 'UP (Ready)', 5000, 'UP Ready after reset');
  });

  test('a custom checker going down fires its rule (stopstart)', async () => {
    const before = calls().split('\n').length;
    sandbox.cli(['resetloop', '-m', 'demo']);
    writeFileSync(sandbox.moduleVar('demo', 'app-broken'), '');
    await eventually(
      () => /Action stopstart from failover rule c_appcheck/.test(log()),
      10_000,
      'the c_appcheck rule',
    );
    rmSync(sandbox.moduleVar('demo', 'app-broken'), { force: true });
    await eventually(() => state().stdout.trim() === 'UP (Ready)', 20_000, 'UP Ready after stopstart');
    const after = calls()
      .split('\n')
      .slice(before - 1);
    assert.ok(after.includes('stop_prim force WAIT STOP stopstart'), after.join('\n'));
    assert.ok(after.includes('transition STOP WAIT start'));
  });

  test('a hanging stop script is killed at nicestoptimeout, and the stop completes with force calls', async () => {
    writeFileSync(sandbox.moduleVar('demo', 'hang-stop'), '');
    const startedMs = Date.now();
    assert.equal(sandbox.cli(['stop', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstop', '-m', 'demo', '-t', '30']).code, 0);
    const stopMs = Date.now() - startedMs;
    rmSync(sandbox.moduleVar('demo', 'hang-stop'), { force: true });
    assert.ok(stopMs >= 900 && stopMs < 10_000, `stop took ${stopMs} ms with a 1 s nicestoptimeout`);
    assert.match(log(), /Script stop_prim timed out and was killed/);
    const lines = calls().trim().split('\n');
    assert.ok(lines.includes('stop_prim force WAIT STOP stop'), 'the forced call ran after the timeout');
    assert.equal(state().code, 0);
  });

  test('after a SIGKILL of the daemon the module is brought back to UP Ready and the log says why', async () => {
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '20']).code, 0);
    const [appBefore] = appPids();
    assert.ok(appBefore);
    await sandbox.killDaemon();
    assert.equal(sandbox.cli(['state', '-m', 'demo', '-lq']).code, 10, 'no daemon: exit 10');
    await sandbox.startDaemon();
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '30']).code, 0);
    assert.equal(state().stdout.trim(), 'UP (Ready)');
    assert.match(
      log(),
      /hakitd restarted while the module was UP: stopping it with force, then starting again/,
    );
    assert.equal(processExists(appBefore), false, 'the old application instance was stopped');
    assert.equal(appPids().length, 1, 'exactly one instance runs');
    // The killed daemon's custom checker (its own process group) is stopped by the new one.
    await eventually(() => checkerPids(sandbox.root).length === 1, 5_000, 'exactly one appcheck checker');
    assert.match(log(), /Custom checker appcheck left running by a previous hakitd \(pid \d+\): stopped/);
  });

  test('logsave writes the log to a file and cmdlog shows the commands with their exit codes', () => {
    const file = `${sandbox.root}/saved.log`;
    assert.equal(sandbox.cli(['logsave', '-m', 'demo', file]).code, 0);
    assert.match(sandbox.readIfExists(file), /Action start called by/);
    assert.equal(sandbox.cli(['logsave', '-m', 'demo']).code, 2, 'no file: usage error');
    const audit = sandbox.cli(['cmdlog', '-s', '500']).stdout;
    assert.match(audit, /\| demo \| \S+ \| START start/);
    assert.match(audit, /\| demo \| \S+ \| END 0/);
  });

  test('a module checker holds a dependent module in WAIT until the module it watches is Ready', async () => {
    sandbox.cli(['stop', '-m', 'demo']);
    assert.equal(sandbox.cli(['waitstop', '-m', 'demo', '-t', '30']).code, 0);
    const dependent = `<!DOCTYPE safe>
<safe>
<service mode="light">
  <check><module name="demo"><to interval="1"/></module></check>
  <failover period="100ms" handle_time="200ms"/>
</service>
</safe>
`;
    const dir = sandbox.writeModule('dependent', dependent, {});
    assert.equal(sandbox.cli(['module', 'install', dir]).code, 0);
    assert.equal(
      sandbox.cli(['config', '-m', 'dependent']).code,
      0,
      sandbox.cli(['config', '-m', 'dependent']).stderr,
    );
    assert.equal(sandbox.cli(['start', '-m', 'dependent']).code, 0);
    const dependentState = () => sandbox.cli(['state', '-m', 'dependent']).stdout.trim();
    // The first module checker probe runs at once: demo is stopped, so module_failure blocks.
    await eventually(
      () => dependentState().startsWith('dependent: WAIT (NotReady) module_failure'),
      15_000,
      'WAIT NotReady',
    );
    assert.equal(sandbox.cli(['start', '-m', 'demo']).code, 0);
    assert.equal(sandbox.cli(['waitstart', '-m', 'demo', '-t', '30']).code, 0);
    await eventually(
      () => dependentState() === 'dependent: UP (Ready)',
      30_000,
      'dependent UP once demo is Ready',
    );
    assert.match(
      sandbox.cli(['log', '-m', 'dependent']).stdout,
      /Action wakeup from failover rule Implicit_wakeup/,
    );
    // The watched module restarts: the dependent one is stopped and started again.
    assert.equal(sandbox.cli(['restart', '-m', 'demo']).code, 0);
    await eventually(
      () => /Action stopstart called by modulecheck/.test(sandbox.cli(['log', '-m', 'dependent']).stdout),
      15_000,
      'the dependent module stopstarted by modulecheck',
    );
    await eventually(() => dependentState() === 'dependent: UP (Ready)', 30_000, 'dependent UP again').catch(
      (error: Error) => {
        throw new Error(
          `${error.message}\n${dependentState()}\n${sandbox.cli(['log', '-m', 'dependent', '-A', '-s', '60']).stdout}`,
        );
      },
    );
    sandbox.cli(['stop', '-m', 'dependent']);
  });

  test('configuration errors are refused with file and line, and nothing is replaced', () => {
    const dir = sandbox.writeModule('broken', userconfig().replace('maxloop="3"', 'maxloop="lots"'), {});
    assert.equal(sandbox.cli(['module', 'install', dir]).code, 0);
    const refused = sandbox.cli(['config', '-m', 'broken']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /userconfig\.xml:3:\d+: error: .*maxloop/);
    assert.match(sandbox.cli(['state', '-m', 'broken']).stderr, /not configured/);
    const unknownVerb = sandbox.cli(['frobnicate']);
    assert.equal(unknownVerb.code, 2);
  });
});
