// Mirror operations on two installed lab nodes, seen from a client (issue 6, tests in the lab that
// need no arbitrator): hakitd killed on the primary, defaultprim's swap back, swap, failover="off",
// and a custom checker's stopstart. Every test prints what it measured.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labExec, labJson, labSkipReason } from './harness.ts';
import { eventually, MirrorLab, type MirrorModuleOptions } from './mirror-lab.ts';

const skip = labSkipReason();
const waitMs = 30_000;
/** On a node: the custom checker turns custom.app down while this file exists. */
const brokenFile = '/var/hakit/test-app-broken';

// A custom checker as the reference runs them (`exec <module> <resource>`): reports up or down
// through `hakit set` whenever its verdict changes.
const appcheck = `last=''
while :; do
  if [ -e ${brokenFile} ]; then verdict=down; else verdict=up; fi
  if [ "$verdict" != "$last" ] && /opt/hakit/hakit set -m "$1" -r "$2" -v "$verdict" -i app; then last=$verdict; fi
  sleep 0.2
done`;

const withChecker: MirrorModuleOptions = {
  serviceXml: '  <check><custom ident="app" when="prim" exec="appcheck" action="stopstart"/></check>',
  scripts: { appcheck },
};

const mirror = new MirrorLab('tmops', { pulseMs: 100, timeoutMs: 1000 }, withChecker);
const lab = mirror.lab;

function other(node: string): string {
  return node === 'n1' ? 'n2' : 'n1';
}

async function waitState(node: string, prefix: string, timeoutMs = waitMs): Promise<number> {
  const startMs = Date.now();
  await eventually(
    async () => (await mirror.state(node)).startsWith(`web: ${prefix}`),
    timeoutMs,
    async () => `${node} in ${prefix}, it is: ${await mirror.state(node)}`,
  );
  return Date.now() - startMs;
}

/** Whether the node has the VIP among its addresses. */
async function holdsVip(node: string): Promise<boolean> {
  const result = await labExec(lab, node, ['ip', '-o', '-4', 'addr', 'show']);
  return result.stdout.includes(` ${mirror.vip}/`);
}

/** Whether the test application (the TCP server of start_prim) runs on the node. */
async function appRuns(node: string): Promise<boolean> {
  return (await labExec(lab, node, ['pgrep', '-f', 'listen\\(8080\\)'])).code === 0;
}

/** What a failed wait shows: states, who holds the VIP, where the application runs. */
async function diagnosis(): Promise<string> {
  const lines: string[] = [];
  for (const node of ['n1', 'n2']) {
    lines.push(
      `${node}: ${await mirror.state(node)}; VIP here: ${await holdsVip(node)}; application here: ${await appRuns(node)}`,
    );
  }
  lines.push(`client reaches: ${await mirror.servedBy()}`);
  return lines.join('\n');
}

async function waitServedBy(node: string, timeoutMs = waitMs): Promise<number> {
  const startMs = Date.now();
  await eventually(
    async () => (await mirror.servedBy()) === node,
    timeoutMs,
    async () => `the VIP served by ${node}\n${await diagnosis()}`,
  );
  return Date.now() - startMs;
}

/** Writes a mark into the module log of both nodes; `logSince` returns what follows it. */
async function mark(what: string): Promise<string> {
  const text = `TEST MARK ${what} ${Date.now()}`;
  for (const node of ['n1', 'n2']) assert.equal((await mirror.cli(node, `printe -m web "${text}"`)).code, 0);
  return text;
}

async function logSince(node: string, text: string): Promise<string> {
  const log = (await mirror.cli(node, 'log -m web -s 1000')).stdout;
  const at = log.lastIndexOf(text);
  assert.ok(at >= 0, `mark "${text}" not in the log of ${node}`);
  return log.slice(at + text.length);
}

/**
 * Brings the pair to `prim` PRIM (Ready) and its peer SECOND (Ready), with the VIP and the
 * application on `prim` only; a no-op when the previous test left it so. Otherwise (a failed
 * test) both are stopped, the secondary first, what a failure left behind (a VIP, the
 * application) is removed, and they are started again with `prim` and `second`.
 */
async function ensurePair(prim: string): Promise<void> {
  const second = other(prim);
  const ok =
    (await mirror.state(prim)).startsWith('web: PRIM (Ready)') &&
    (await mirror.state(second)).startsWith('web: SECOND (Ready)') &&
    (await mirror.servedBy()) === prim &&
    !(await holdsVip(second)) &&
    !(await appRuns(second));
  if (!ok) {
    console.log(`re-forming the pair ${prim}/${second} from:\n${await diagnosis()}`);
    for (const node of [second, prim]) {
      await mirror.cli(node, 'stop -m web');
      await waitState(node, 'STOP');
    }
    for (const node of [second, prim]) {
      await labExec(lab, node, [
        'sh',
        '-c',
        `ip -o -4 addr show to ${mirror.vip}/32 | while read -r _ dev _ cidr _; do ip addr del "$cidr" dev "$dev"; done; pkill -f 'listen\\(8080\\)'; true`,
      ]);
    }
    const started = await mirror.cli(prim, 'prim -m web');
    if (started.code !== 0) assert.equal((await mirror.cli(prim, 'primforce -m web')).code, 0);
    await waitState(prim, 'ALONE (Ready)');
    assert.equal((await mirror.cli(second, 'second -m web')).code, 0);
    await waitState(second, 'SECOND (Ready)');
    await waitState(prim, 'PRIM (Ready)');
  }
  await waitServedBy(prim);
}

describe('mirror operations on two lab nodes', { skip, timeout: 1_800_000 }, () => {
  before(async () => {
    await mirror.setUp();
    assert.equal((await mirror.cli('n1', 'prim -m web')).code, 0);
    await waitState('n1', 'ALONE (Ready)');
    assert.equal((await mirror.cli('n2', 'second -m web')).code, 0);
    await waitState('n2', 'SECOND (Ready)');
    await waitState('n1', 'PRIM (Ready)');
  });
  after(async () => {
    // A failed test must not leave a frozen supervisor behind for the next lab on this name.
    await labJson(['fault', '--name', lab, 'heal']).catch(() => undefined);
    // HAKIT_LAB_KEEP=1 keeps the lab to read the nodes' logs (`hakit-lab exec --name tmops n1 -- ...`).
    if (process.env.HAKIT_LAB_KEEP !== '1') await mirror.tearDown();
  });

  test('hakitd SIGKILLed on the primary: n2 takes over serving the VIP; the supervisor restarts hakitd, which drops what it left and comes back as SECOND', async () => {
    await ensurePair('n1');
    const text = await mark('kill');
    const killMs = Date.now();
    await labJson(['fault', '--name', lab, 'kill', 'n1', 'hakitd\\.cjs']);
    await waitServedBy('n2');
    const servedMs = Date.now() - killMs;
    const secondMs = await waitState('n1', 'SECOND (Ready)');
    await waitState('n2', 'PRIM (Ready)');
    console.log(
      `hakitd killed on n1: VIP answered by n2 after ${servedMs} ms; n1 SECOND (Ready) after ${Date.now() - killMs} ms (${secondMs} ms of waiting)`,
    );
    assert.equal(await mirror.servedBy(), 'n2');
    assert.equal(await holdsVip('n1'), false, 'the VIP is left on n1');
    assert.equal(await appRuns('n1'), false, 'the application is left running on n1');
    const n1Log = await logSince('n1', text);
    assert.match(n1Log, /hakitd restarted while the module was (PRIM|ALONE)/);
    assert.match(n1Log, /left by the dead daemon: unset/);
    assert.match(await logSince('n2', text), /Action alone called by heart: (no heartbeat|remote stop)/);
  });

  test('swap: PRIM and SECOND exchange roles and the VIP moves, with the reference log messages', async () => {
    await ensurePair('n2');
    const text = await mark('swap');
    const swapMs = Date.now();
    const swapped = await mirror.cli('n2', 'swap -m web');
    assert.equal(swapped.code, 0, swapped.stderr + swapped.stdout);
    await waitState('n1', 'PRIM (Ready)');
    const primMs = Date.now() - swapMs;
    await waitState('n2', 'SECOND (Ready)');
    const pairMs = Date.now() - swapMs;
    await waitServedBy('n1');
    console.log(
      `swap: n1 PRIM (Ready) after ${primMs} ms, n2 SECOND (Ready) after ${pairMs} ms, VIP on n1 after ${Date.now() - swapMs} ms`,
    );
    assert.equal(await holdsVip('n2'), false);
    assert.equal(await appRuns('n2'), false);
    const oldPrimary = await logSince('n2', text);
    assert.match(oldPrimary, /Action swap/);
    assert.match(oldPrimary, /Begin of Swap/);
    assert.match(oldPrimary, /Transition SWAP from admin/);
    assert.match(await logSince('n1', text), /Transition SWAP from /);
  });

  test('custom checker with action stopstart fails on the primary: failover to n2, n1 back as SECOND', async () => {
    await ensurePair('n1');
    const text = await mark('checker');
    const brokenMs = Date.now();
    assert.equal((await labExec(lab, 'n1', ['touch', brokenFile])).code, 0);
    try {
      // n2 goes ALONE, then PRIM as soon as n1 is back as SECOND: either shows the failover. The
      // rule fires after the failover machine's period (5 s) and handle_time (15 s): up to 20 s.
      await eventually(
        async () => /^web: (ALONE|PRIM) \(Ready\)/.test(await mirror.state('n2')),
        waitMs + 20_000,
        async () => `n2 primary\n${await diagnosis()}`,
      );
      const primaryMs = Date.now() - brokenMs;
      await waitServedBy('n2');
      console.log(
        `checker down on n1: n2 primary after ${primaryMs} ms, VIP answered by n2 after ${Date.now() - brokenMs} ms`,
      );
    } finally {
      await labExec(lab, 'n1', ['rm', '-f', brokenFile]);
    }
    await waitState('n1', 'SECOND (Ready)');
    await waitState('n2', 'PRIM (Ready)');
    console.log(`checker down on n1: back to n2 PRIM / n1 SECOND after ${Date.now() - brokenMs} ms`);
    assert.equal(await mirror.servedBy(), 'n2');
    assert.equal(await appRuns('n1'), false);
    const n1Log = await logSince('n1', text);
    assert.match(n1Log, /Action stopstart from failover rule c_app/);
    assert.match(await logSince('n2', text), /Action alone called by heart: remote stop/);
  });

  // Reference M10: only `prim` promotes the secondary left in WAIT by failover="off".
  test('failover off (setting): the primary stopped leaves n1 WAIT (NotReady); prim then promotes it', async () => {
    await ensurePair('n2');
    for (const node of ['n1', 'n2']) {
      const set = await mirror.cli(node, 'failover off -m web');
      assert.equal(set.code, 0, set.stderr + set.stdout);
    }
    try {
      assert.equal((await mirror.cli('n1', 'get -m web -r usersetting.failover')).stdout.trim(), 'off');
      const text = await mark('failover-off');
      const stopMs = Date.now();
      assert.equal((await mirror.cli('n2', 'stop -m web')).code, 0);
      await waitState('n1', 'WAIT (NotReady)');
      console.log(`failover off: n1 WAIT (NotReady) ${Date.now() - stopMs} ms after stop on n2`);
      await waitState('n2', 'STOP');
      // It stays there: no failover, nobody serves the VIP.
      await new Promise((done) => setTimeout(done, 3 * mirror.timing.timeoutMs));
      assert.match(await mirror.state('n1'), /^web: WAIT \(NotReady\)/);
      assert.equal(await mirror.servedBy(), null);
      const n1Log = await logSince('n1', text);
      assert.match(n1Log, /Failover-off configured/);
      assert.match(n1Log, /Action stopstart called by failover-off/);
      assert.match(n1Log, /Transition STOPSTART from failover-off/);
      const primMs = Date.now();
      const promoted = await mirror.cli('n1', 'prim -m web');
      assert.equal(promoted.code, 0, promoted.stderr + promoted.stdout);
      await waitState('n1', 'ALONE (Ready)');
      await waitServedBy('n1');
      console.log(`failover off: prim on n1 -> VIP answered by n1 after ${Date.now() - primMs} ms`);
    } finally {
      for (const node of ['n1', 'n2']) await mirror.cli(node, 'failover on -m web');
    }
    assert.equal((await mirror.cli('n2', 'start -m web')).code, 0);
    await waitState('n2', 'SECOND (Ready)');
    await waitState('n1', 'PRIM (Ready)');
  });

  test('defaultprim="n1": n1 back as SECOND of n2 swaps back automatically to PRIM', async () => {
    await mirror.reconfigure({ ...withChecker, defaultprim: 'n1' });
    assert.equal((await mirror.cli('n1', 'prim -m web')).code, 0);
    await waitState('n1', 'ALONE (Ready)');
    assert.equal((await mirror.cli('n2', 'second -m web')).code, 0);
    await waitState('n2', 'SECOND (Ready)');
    await waitState('n1', 'PRIM (Ready)');
    await waitServedBy('n1');
    // n1 leaves: n2 goes ALONE.
    assert.equal((await mirror.cli('n1', 'stop -m web')).code, 0);
    await waitState('n1', 'STOP');
    await waitState('n2', 'ALONE (Ready)');
    await waitServedBy('n2');
    // n1 returns as SECOND, then takes the primary role back.
    const text = await mark('defaultprim');
    const startMs = Date.now();
    assert.equal((await mirror.cli('n1', 'start -m web')).code, 0);
    await waitState('n1', 'PRIM (Ready)');
    const primMs = Date.now() - startMs;
    await waitState('n2', 'SECOND (Ready)');
    await waitServedBy('n1');
    console.log(
      `defaultprim n1: start on n1 -> n1 PRIM (Ready) after ${primMs} ms, VIP on n1 after ${Date.now() - startMs} ms`,
    );
    const n1Log = await logSince('n1', text);
    const n2Log = await logSince('n2', text);
    assert.match(n1Log, /Local state SECOND/, 'n1 went through SECOND before the swap');
    assert.match(n2Log, /Transition SWAP from defaultprim/);
    assert.match(n2Log, /Begin of Swap/);
    assert.equal(await holdsVip('n2'), false);
    assert.equal(await appRuns('n2'), false);
  });

  test('<splitbrain> witness: all heartbeats lost, the node that reaches no witness waits (splitbrain_failure), the other goes ALONE; heal -> SECOND', async () => {
    // The client c is the witness; n2 loses both n1 and c, n1 still reaches c.
    const witness = mirror.node('c').ip;
    await mirror.reconfigure({
      serviceXml: `  <check><splitbrain ident="witness" exec="ping" arg="${witness}"/></check>`,
    });
    assert.equal((await mirror.cli('n1', 'prim -m web')).code, 0);
    await waitState('n1', 'ALONE (Ready)');
    assert.equal((await mirror.cli('n2', 'second -m web')).code, 0);
    await waitState('n2', 'SECOND (Ready)');
    await waitState('n1', 'PRIM (Ready)');
    const text = await mark('splitbrain');
    // The witness first: n2 pings it only once the heartbeats are lost, and with the heartbeat
    // link cut first a slow second `fault` call (loaded host, CI once) let n2 still reach c, and
    // rightly go ALONE.
    await labJson(['fault', '--name', lab, 'partition', 'n2', 'c']);
    const cutMs = Date.now();
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2']);
    try {
      await waitState('n1', 'ALONE (Ready)');
      await waitState('n2', 'WAIT (NotReady)');
      console.log(`splitbrain: n1 ALONE and n2 WAIT (NotReady) ${Date.now() - cutMs} ms after the cut`);
      // It stays so: n2 never takes the primary role while it reaches no witness.
      await new Promise((done) => setTimeout(done, 3 * mirror.timing.timeoutMs));
      assert.match(await mirror.state('n2'), /^web: WAIT \(NotReady\)/);
      assert.equal(await holdsVip('n2'), false);
      assert.equal(await appRuns('n2'), false);
      assert.equal((await mirror.cli('n2', 'get -m web -r splitbrain.witness')).stdout.trim(), 'down');
      assert.match(await logSince('n2', text), /Action wait from failover rule splitbrain_failure/);
      assert.equal(await mirror.servedBy(), 'n1');
    } finally {
      await labJson(['fault', '--name', lab, 'heal']);
    }
    const healMs = Date.now();
    await waitState('n2', 'SECOND (Ready)');
    await waitState('n1', 'PRIM (Ready)');
    console.log(`splitbrain: healed -> n2 SECOND (Ready) after ${Date.now() - healMs} ms`);
    assert.equal((await mirror.cli('n2', 'get -m web -r splitbrain.witness')).stdout.trim(), 'up');
  });
});
