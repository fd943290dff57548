// The table the golden files of test/golden/mirror/ are written from: each scenario is a list
// of (event) steps on one node; every step's (state before, event) -> (state after, actions) is a
// golden case. `node --import tsx test/unit/core/mirror-golden-scenarios.ts` rewrites the event
// lists (a scenario whose events are unchanged keeps its expected part); `UPDATE_GOLDEN=1` with
// the golden test then records the expected part of new or changed ones, to be reviewed.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  defaultLeaseTiming,
  type MirrorScenarioEvent,
  peer,
  type ScenarioInitial,
  type ScenarioSettings,
} from './mirror-harness.ts';

export interface GoldenScenario {
  name: string;
  description: string;
  settings?: ScenarioSettings;
  initial?: ScenarioInitial;
  events: MirrorScenarioEvent[];
}

/** Our incarnation in every scenario, and the peer's. */
const me = 1;
const them = 7;
const arbitrated: ScenarioSettings = { arbitrator: defaultLeaseTiming };

const run: MirrorScenarioEvent = { type: 'runScripts' };
const cmd = (
  verb: Extract<MirrorScenarioEvent, { type: 'command' }>['verb'],
  extra: object = {},
): MirrorScenarioEvent => ({ type: 'command', verb, ...extra }) as MirrorScenarioEvent;

/** Steps that bring a fresh n1 to ALONE Ready by `prim` with its peer unknown. */
const toAlone: MirrorScenarioEvent[] = [peer.unknown, cmd('prim'), run];
/** ...then to PRIM Ready with n2 (incarnation 7) as confirmed secondary. */
const toPrim: MirrorScenarioEvent[] = [
  ...toAlone,
  peer.second(me, 'Transient'),
  peer.second(me, 'Ready'),
  run,
];
/** n1 (history 1@n2) joins ALONE n2 and is confirmed: SECOND Ready. */
const secondInitial: ScenarioInitial = { persisted: { history: ['1@n2'] } };
const toSecond: MirrorScenarioEvent[] = [
  peer.alone(['1@n2']),
  cmd('start'),
  run,
  { type: 'reintegration', outcome: 'done' },
  peer.prim(['1@n2', '2@n2'], me),
];
/** With an arbitrator: n1 up to date starts ALONE once granted. */
const toAloneLeased: MirrorScenarioEvent[] = [
  peer.unknown,
  cmd('start'),
  run,
  { type: 'lease', answer: 'granted' },
  run,
];

function variants(base: GoldenScenario, withoutScripts = true): GoldenScenario[] {
  const list = [base];
  if (withoutScripts) {
    list.push({
      ...base,
      name: `${base.name}-no-user`,
      description: `${base.description} (no <user>: no scripts)`,
      settings: { ...base.settings, scriptsEnabled: false },
    });
  }
  return list;
}

export const scenarios: GoldenScenario[] = [
  // ---- first start and starts (2.3, M1-M6, M17)
  ...variants({
    name: 'first-start-both-wait',
    description:
      'Fresh mirror: start on both nodes; with no data known good both wait NotReady (notuptodate_server)',
    events: [cmd('start'), run, peer.waiting([]), { type: 'tick' }],
  }),
  {
    name: 'first-start-prim-then-second-peer',
    description:
      'Fresh mirror: prim on n1 (peer unknown) gives ALONE; n2 then joins and n1 becomes PRIM (M7)',
    events: [...toAlone, peer.second(me, 'Transient'), peer.second(me, 'Ready'), run],
  },
  ...variants({
    name: 'first-start-second',
    description:
      'Fresh n1 run with `second` while n2 is ALONE: SECOND Transient, reintegration, SECOND Ready, confirmed',
    events: [
      peer.alone(['1@n2']),
      cmd('second'),
      run,
      { type: 'reintegration', outcome: 'done' },
      peer.prim(['1@n2', '2@n2'], me),
    ],
  }),
  {
    name: 'start-uptodate-remote-unknown',
    description: 'M4: up-to-date node, remote UNKNOWN: ALONE with a new generation',
    initial: { persisted: { history: ['3@n1'], uptodate: true, lastPrim: true } },
    events: [peer.unknown, cmd('start'), run],
  },
  {
    name: 'start-waits-for-remote-heartbeats',
    description:
      'At start, before the heartbeat timeout, the remote is not yet known: WAIT Transient; then UNKNOWN',
    initial: { persisted: { history: ['3@n1'], uptodate: true } },
    events: [cmd('start'), run, peer.unknown, run],
  },
  {
    name: 'start-not-uptodate-waits-then-m17',
    description: 'M4 refused and M17: a stale node waits NotReady; when n2 starts ALONE it becomes SECOND',
    initial: { persisted: { history: ['1@n1'] } },
    events: [
      peer.unknown,
      cmd('start'),
      run,
      peer.alone(['1@n1', '2@n2']),
      run,
      { type: 'reintegration', outcome: 'done' },
    ],
  },
  {
    name: 'start-remote-stopped-uptodate',
    description: 'M4: remote STOP (reachable but stopped) and this node up to date: ALONE',
    initial: { persisted: { history: ['1@n1', '2@n1'], uptodate: true } },
    events: [peer.stopped(['1@n1']), cmd('start'), run],
  },
  {
    name: 'start-remote-stopped-equal-data',
    description: 'Remote STOP with the same data, neither flag set (both crashed): this node may start ALONE',
    initial: { persisted: { history: ['1@n1', '2@n2'] } },
    events: [peer.stopped(['1@n1', '2@n2']), cmd('start'), run],
  },
  {
    name: 'start-remote-stopped-newer-data',
    description: 'Remote STOP with newer data: this node waits for it (notuptodate_server)',
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [peer.stopped(['1@n1', '2@n2']), cmd('start'), run],
  },
  ...variants({
    name: 'election-newer-data-prim',
    description: 'M6: both start together; this node has newer data: elected, WAIT -> PRIM directly',
    initial: { persisted: { history: ['1@n1', '2@n1'] } },
    events: [
      peer.waiting(['1@n1']),
      cmd('start'),
      run,
      peer.second(me, 'Transient'),
      peer.second(me, 'Ready'),
    ],
  }),
  {
    name: 'election-older-data-waits-then-second',
    description: 'M6: the peer has newer data: this node waits for it, then joins it as SECOND',
    initial: { persisted: { history: ['1@n1'] } },
    events: [
      peer.waiting(['1@n1', '2@n2']),
      cmd('start'),
      run,
      peer.prim(['1@n1', '2@n2', '3@n2'], null, { readiness: 'Transient' }),
      peer.prim(['1@n1', '2@n2', '3@n2'], null),
      run,
    ],
  },
  {
    name: 'election-equal-defaultprim-peer',
    description: 'M6 tie-break: same data, defaultprim names n2: n1 waits for n2',
    settings: { defaultPrimary: { kind: 'node', node: 'n2' } },
    initial: { persisted: { history: ['4@n1'], lastPrim: true } },
    events: [peer.waiting(['4@n1']), cmd('start'), run],
  },
  {
    name: 'election-equal-lastprim',
    description: 'M6 tie-break: same data, n1 was primary at its last stop: n1 elected',
    settings: { defaultPrimary: { kind: 'lastprim' } },
    initial: { persisted: { history: ['4@n2'], lastPrim: true } },
    events: [peer.waiting(['4@n2'], { lastPrim: false }), cmd('start'), run],
  },
  {
    name: 'election-equal-name',
    description: 'M6 tie-break: same data, no other preference: the smaller node name (n1) is elected',
    initial: { persisted: { history: ['4@n2'] } },
    events: [peer.waiting(['4@n2']), cmd('start'), run],
  },
  {
    name: 'election-peer-reintegrating',
    description:
      'M6: the peer was stopped during a reintegration; this node has consistent data and is elected',
    initial: { persisted: { history: ['2@n1'] } },
    events: [peer.waiting(['1@n1'], { reintegrating: true }), cmd('start'), run],
  },
  {
    name: 'election-fork-former-primary',
    description:
      'M6 with forked data (a split brain while both were down): the writer of the last common generation wins',
    initial: { persisted: { history: ['1@n1', '2@n1'] } },
    events: [peer.waiting(['1@n1', '2@n2']), cmd('start'), run],
  },
  {
    name: 'peer-starts-as-prim',
    description: 'The peer started with `prim`: this node does not compete and joins it once it is ALONE',
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      peer.waiting(['1@n1'], { intent: 'prim' }),
      cmd('start'),
      run,
      peer.alone(['1@n1', '2@n2']),
      run,
    ],
  },
  // ---- M2 / M3 wait rules
  ...variants({
    name: 'wait-rule-pending-blocked-wakeup',
    description:
      'M2/M3: a wait rule at init keeps WAIT Transient; true gives WAIT NotReady; cleared, the start resumes',
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      peer.unknown,
      { type: 'waitStatus', wait: { status: 'pending' } },
      cmd('start'),
      run,
      { type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } },
      { type: 'waitStatus', wait: { status: 'clear' } },
      run,
    ],
  }),
  // ---- M7 / M8
  ...variants({
    name: 'alone-to-prim',
    description:
      'M7: ALONE serves the joining secondary, then goes PRIM once it is SECOND Ready (stop_sec, transition)',
    events: [...toAlone, peer.second(me, 'Transient'), peer.second(me, 'Ready'), run],
  }),
  ...variants({
    name: 'prim-to-alone-no-heartbeat',
    description:
      'M8: PRIM loses every heartbeat: ALONE ("no heartbeat"), new generation, transition, start_sec',
    events: [...toPrim, peer.unknown, run],
  }),
  {
    name: 'prim-to-alone-remote-stop',
    description: 'M8: the secondary stops: PRIM -> ALONE ("remote stop")',
    events: [...toPrim, peer.second(me, 'Ready', { state: 'WAIT', readiness: 'Transient' }), run],
  },
  {
    name: 'prim-to-alone-remote-restarted',
    description: "M8: the secondary's daemon restarted (new incarnation, STOP): PRIM -> ALONE",
    events: [
      ...toPrim,
      { type: 'peer', set: { incarnation: 8, state: 'STOP', readiness: 'NotReady', secondaryOf: null } },
      run,
    ],
  },
  {
    name: 'prim-to-alone-secondary-lost',
    description:
      'M8 from the data path: the secondary stopped acknowledging (locktimeout); the secondary then resynchronises',
    events: [...toPrim, { type: 'secondaryLost' }, run],
  },
  {
    name: 'prim-drops-stale-secondary',
    description:
      'After going ALONE the dropped attachment does not count again even if its old advert comes back',
    events: [
      ...toPrim,
      { type: 'secondaryLost' },
      run,
      peer.second(me, 'Ready'),
      { type: 'tick' },
      peer.second(me, 'Transient', { attach: 2 }),
    ],
  },
  // ---- M9 / M10 / M11 on the secondary
  ...variants({
    name: 'failover-no-heartbeat',
    description:
      "M9: the confirmed SECOND loses its primary's heartbeats: failover to ALONE (stop_second, transition, start_prim)",
    initial: secondInitial,
    events: [...toSecond, peer.unknown, run],
  }),
  {
    name: 'failover-remote-stop',
    description: 'M9: the primary stops; the SECOND waits for it to release the role, then takes over',
    initial: secondInitial,
    events: [
      ...toSecond,
      peer.prim(['1@n2', '2@n2'], me, { state: 'WAIT', readiness: 'Transient' }),
      peer.stopped(['1@n2', '2@n2']),
      run,
    ],
  },
  {
    name: 'failover-not-confirmed',
    description:
      'A SECOND never confirmed by its primary does not fail over: it goes WAIT and waits for the data owner',
    initial: secondInitial,
    events: [
      peer.alone(['1@n2']),
      cmd('start'),
      run,
      { type: 'reintegration', outcome: 'done' },
      peer.unknown,
      run,
    ],
  },
  ...variants({
    name: 'failover-off',
    description: 'M10: failover="off": the SECOND goes WAIT NotReady by a stopstart from failover-off',
    initial: secondInitial,
    events: [...toSecond, { type: 'failoverSetting', value: 'off' }, peer.unknown, run],
  }),
  {
    name: 'failover-off-then-prim',
    description: 'M10: only `prim` (after stop) promotes the node held by failover-off',
    initial: secondInitial,
    events: [
      ...toSecond,
      { type: 'failoverSetting', value: 'off' },
      peer.unknown,
      run,
      cmd('stop'),
      run,
      cmd('prim'),
      run,
    ],
  },
  {
    name: 'reintegration-interrupted',
    description:
      'M11: the primary is lost during reintegration: WAIT NotReady, prim refused, primforce works',
    initial: secondInitial,
    events: [
      peer.alone(['1@n2', '2@n2']),
      cmd('start'),
      run,
      peer.unknown,
      run,
      cmd('stop'),
      run,
      cmd('prim'),
      cmd('primforce'),
      run,
    ],
  },
  {
    name: 'reintegration-failed',
    description:
      'The replication layer reports a failed reintegration: wait (counted by maxloop as reintegre), then retry',
    initial: secondInitial,
    events: [peer.alone(['1@n2']), cmd('start'), run, { type: 'reintegration', outcome: 'failed' }, run],
  },
  {
    name: 'reintegration-failed-during-transition',
    description:
      'A reintegration failure reported while the start scripts still run is carried out after them',
    initial: secondInitial,
    events: [
      peer.alone(['1@n2']),
      cmd('start'),
      { type: 'scriptDone', script: 'transition' },
      { type: 'scriptDone', script: 'prestart' },
      { type: 'scriptDone', script: 'transition' },
      { type: 'reintegration', outcome: 'failed' },
      run,
    ],
  },
  {
    name: 'probe-arbitrator-when-inconsistent',
    description:
      'Arbitrator: a node held as inconsistent probes the arbitrator (never grantable) and disowns the unused ' +
      'claim of its own the refusal names',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1', '9@n2'], reintegrating: true } },
    events: [
      peer.unknown,
      cmd('start'),
      run,
      { type: 'lease', answer: 'stale', registered: '11@n1' },
      { type: 'tick', atMs: 2000 },
    ],
  },
  {
    name: 'rfs-uptodate-down-on-second',
    description: 'rfs.uptodate goes down on a SECOND: it is marked inconsistent and resynchronises',
    initial: secondInitial,
    events: [...toSecond, { type: 'rfsUptodate', value: 'down' }, run],
  },
  {
    name: 'second-primary-dropped-it',
    description: 'The primary continues ALONE without this SECOND: it resynchronises from WAIT',
    initial: secondInitial,
    events: [
      ...toSecond,
      peer.alone(['1@n2', '2@n2', '3@n2'], { dropped: { incarnation: me, attach: 1 } }),
      run,
    ],
  },
  // ---- M12 swap
  ...variants({
    name: 'swap-on-primary',
    description:
      'M12: swap on PRIM: Begin of Swap, stop_prim, VIP removed, transition, start_second, start_sec; waits for the new primary',
    events: [
      ...toPrim,
      cmd('swap'),
      run,
      peer.prim(['1@n1', '2@n2'], null, { incarnation: them }),
      { type: 'reintegration', outcome: 'done' },
    ],
  }),
  {
    name: 'swap-nosync',
    description: 'M12: swap nosync: the new secondary attaches without resynchronising',
    events: [...toPrim, cmd('swap', { options: { nosync: true } }), run, peer.prim(['1@n1', '2@n2'], null)],
  },
  {
    name: 'swap-asked-on-secondary',
    description: 'M12: swap on the SECOND is asked to the primary through the advert',
    initial: secondInitial,
    events: [...toSecond, cmd('swap')],
  },
  {
    name: 'swap-requested-by-secondary',
    description: 'M12: the SECOND asks for a swap: the primary begins it',
    events: [...toPrim, peer.second(me, 'Ready', { swapRequest: true })],
  },
  ...variants({
    name: 'swap-in',
    description:
      'M12: the primary released its role by swap: this SECOND takes it (stop_sec, stop_second, transition, start_prim)',
    initial: secondInitial,
    events: [
      ...toSecond,
      peer.second(me, 'Transient', { secondaryOf: null, secondaryTenure: null, handover: true }),
      run,
    ],
  }),
  {
    name: 'swap-refused',
    description: 'swap needs PRIM (Ready) and SECOND (Ready)',
    events: [...toAlone, cmd('swap')],
  },
  {
    name: 'defaultprim-swap-back',
    description:
      'M12: defaultprim names the secondary: after its reintegration the pair swaps ("Transition SWAP from defaultprim")',
    settings: { defaultPrimary: { kind: 'node', node: 'n2' } },
    events: [...toAlone, peer.second(me, 'Transient'), peer.second(me, 'Ready'), run],
  },
  // ---- M13 split brain
  {
    name: 'split-brain-staying-alone',
    description: 'M13: both ALONE after a split; this node was primary when it began: "staying alone"',
    initial: { persisted: { history: ['1@n1'] } },
    events: [...toAlone, peer.alone(['1@n1', '2@n2']), { type: 'tick' }],
  },
  ...variants({
    name: 'split-brain-exiting-alone',
    description:
      'M13: both ALONE; this node took over during the split: "exiting alone", its data kept aside, then SECOND',
    initial: { persisted: { history: ['1@n2'] } },
    events: [...toAlone, peer.alone(['1@n2', '2@n2']), run, { type: 'reintegration', outcome: 'done' }],
  }),
  {
    name: 'split-brain-prim-sees-alone',
    description: 'A PRIM sees its peer ALONE (one-way partition): the older primary stays, goes ALONE',
    events: [...toPrim, peer.alone(['1@n1', '2@n2'], { incarnation: them }), run],
  },
  // ---- M14 / M15 / M16
  ...variants({
    name: 'restart-prim',
    description: 'M14: restart in PRIM: stop_prim, stop_both, start_both, start_prim; VIP kept',
    events: [...toPrim, cmd('restart', { identity: 'c_app', rule: 'c_app' }), run],
  }),
  {
    name: 'restart-alone',
    description: 'M14: restart in ALONE: stop_sec, stop_prim, stop_both, start_both, start_prim, start_sec',
    events: [...toAlone, cmd('restart'), run],
  },
  {
    name: 'restart-second',
    description:
      'M14: restart in SECOND: stop_sec, stop_second, stop_both, start_both, start_second, start_sec',
    initial: secondInitial,
    events: [...toSecond, cmd('restart'), run],
  },
  ...variants({
    name: 'stop-prim',
    description:
      'M15: stop on PRIM: stop_prim, stop_both, VIP removed, transition, forced stops, poststop, transition',
    events: [...toPrim, cmd('stop'), run],
  }),
  {
    name: 'stop-alone',
    description: 'M15: stop on ALONE: the data stays up to date (uptodate persisted)',
    events: [...toAlone, cmd('stop'), run],
  },
  {
    name: 'stop-second',
    description: 'M15: stop on SECOND: stop_sec, stop_second, stop_both, transition, forced stops',
    initial: secondInitial,
    events: [...toSecond, cmd('stop'), run],
  },
  {
    name: 'stopstart-prim',
    description:
      'M15: stopstart from a rule on PRIM: stop then start again ("Action start called automatically")',
    events: [
      ...toPrim,
      cmd('stopstart', { identity: 'ip_failure', rule: 'ip_failure' }),
      run,
      peer.alone(['1@n1', '2@n2']),
      run,
    ],
  },
  {
    name: 'wait-action-on-prim',
    description: 'M15: a wait rule fires on PRIM: stopwait into WAIT NotReady, then the wakeup resumes',
    events: [
      ...toPrim,
      { type: 'waitStatus', wait: { status: 'blocked', rule: 'p_gateway' } },
      cmd('wait', { identity: 'p_gateway', rule: 'p_gateway' }),
      run,
      peer.alone(['1@n1', '2@n2']),
      { type: 'waitStatus', wait: { status: 'clear' } },
      run,
    ],
  },
  {
    name: 'maxloop-stops',
    description:
      'M16: the 4th counted action within loop_interval stops the module ("Action stop called by maxloop")',
    events: [
      ...toAlone,
      cmd('restart', { identity: 'errd', who: 'errd' }),
      run,
      cmd('restart', { identity: 'errd', who: 'errd' }),
      run,
      cmd('restart', { identity: 'errd', who: 'errd' }),
      run,
      cmd('restart', { identity: 'errd', who: 'errd' }),
      run,
    ],
  },
  {
    name: 'start-script-fails',
    description: 'A failing start_prim makes the module stopstart (counted by maxloop)',
    events: [peer.unknown, cmd('prim'), { type: 'runScripts', exitCodes: { start_prim: 1 } }],
  },
  {
    name: 'stop-queued-during-start',
    description: 'A stop during the start is queued and interrupts it at the next script boundary',
    events: [peer.unknown, cmd('prim'), cmd('stop'), run],
  },
  {
    name: 'forcestop-kills-script',
    description: 'forcestop during a hung script kills it and goes to STOP through the forced stops',
    events: [
      peer.unknown,
      cmd('prim'),
      { type: 'scriptDone', script: 'transition' },
      cmd('forcestop'),
      { type: 'runScripts', exitCodes: { prestart: 137 } },
    ],
  },
  {
    name: 'commands-refused',
    description: 'prim refused while the peer is primary, second while it is not, restart in STOP',
    events: [
      cmd('restart'),
      peer.alone(['1@n2']),
      cmd('prim'),
      peer.stopped(['1@n2']),
      cmd('second'),
      cmd('stop'),
    ],
  },
  {
    name: 'prim-fullsync',
    description: '`prim fullsync`: the next secondary is told to resynchronise fully',
    events: [peer.unknown, cmd('prim', { options: { fullsync: true } }), run, peer.second(me, 'Transient')],
  },
  // ---- the arbitrator
  {
    name: 'lease-start-granted',
    description:
      'Arbitrator: a node becomes primary only with a lease recording its new generation; then it renews',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [...toAloneLeased, { type: 'tick', atMs: 2000 }, { type: 'lease', answer: 'granted' }],
  },
  {
    name: 'lease-start-refused-held',
    description:
      'Arbitrator: the lease is held by the other node: WAIT NotReady with the reason; retried later',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      peer.unknown,
      cmd('start'),
      run,
      { type: 'lease', answer: 'held', holder: 'n2' },
      { type: 'tick', atMs: 2000 },
    ],
  },
  {
    name: 'lease-witness-not-uptodate',
    description:
      'Arbitrator: a node not up to date by its own flag asks the arbitrator to vouch (witness) and is refused as stale',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'] } },
    events: [peer.unknown, cmd('start'), run, { type: 'lease', answer: 'stale', registered: '2@n2' }],
  },
  {
    name: 'lease-failover-granted',
    description: 'Arbitrator: the SECOND fails over only once granted',
    settings: arbitrated,
    initial: secondInitial,
    events: [...toSecond, peer.unknown, { type: 'lease', answer: 'granted' }, run],
  },
  {
    name: 'lease-failover-refused',
    description: 'Arbitrator: the old primary still holds the lease: the SECOND goes WAIT instead of ALONE',
    settings: arbitrated,
    initial: secondInitial,
    events: [...toSecond, peer.unknown, { type: 'lease', answer: 'held', holder: 'n2' }, run],
  },
  {
    name: 'lease-authority-expires',
    description:
      'Arbitrator: renewals unanswered and no secondary: the VIP goes at the deadline, then the stop scripts',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    // Granted for the request sent at 300 ms: authority until 300 + 2894 = 3194 ms.
    events: [
      ...toAloneLeased,
      { type: 'tick', atMs: 1500 },
      { type: 'tick', atMs: 2600 },
      { type: 'tick', atMs: 3194 },
      run,
    ],
  },
  {
    name: 'lease-promise-extends-authority',
    description:
      "Arbitrator unreachable but the SECOND acknowledges: its promise keeps the primary's authority",
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      ...toAloneLeased,
      { ...peer.second(me, 'Transient'), promiseFromMs: 1000 },
      { ...peer.second(me, 'Ready'), promiseFromMs: 2500 },
      run,
      // The lease ended at 3194 ms; the promise from 2500 ms lasts until 2500 + 2894 ms.
      { type: 'tick', atMs: 3300 },
      { type: 'tick', atMs: 5394 },
    ],
  },
  {
    name: 'lease-prim-to-alone-claims',
    description:
      'Arbitrator: PRIM -> ALONE keeps writes blocked until the arbitrator recorded the new generation',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      ...toAloneLeased,
      peer.second(me, 'Transient'),
      peer.second(me, 'Ready'),
      run,
      peer.unknown,
      run,
      { type: 'lease', answer: 'granted' },
    ],
  },
  {
    name: 'lease-disown-unused-claim',
    description:
      'Arbitrator: refused as stale because it registers 7@n1, a claim of this node it never wrote under ' +
      '(not in its history): the node disowns it and asks again at once',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1', '6@n1'], uptodate: true } },
    events: [
      peer.unknown,
      cmd('start'),
      run,
      { type: 'lease', answer: 'stale', registered: '7@n1' },
      { type: 'lease', answer: 'granted' },
      run,
    ],
  },
  {
    name: 'lease-unused-claim-released',
    description:
      'Arbitrator: the decision changed while the grant was in flight: the unused claim is given back until answered',
    settings: arbitrated,
    initial: { persisted: { history: ['1@n1'], uptodate: true } },
    events: [
      peer.unknown,
      cmd('start'),
      run,
      peer.alone(['1@n1', '2@n2']),
      { type: 'tick', atMs: 2000 },
      { type: 'lease', answer: 'released' },
    ],
  },
];

/** Writes the event lists; a scenario whose events did not change keeps its reviewed expected part. */
function main(): void {
  const dir = resolve(import.meta.dirname, '..', '..', 'golden', 'mirror');
  mkdirSync(dir, { recursive: true });
  const previous = new Map<string, { events: unknown; expected?: unknown }>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.json')) continue;
    const body = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: unknown; expected?: unknown };
    previous.set(file.replace(/^\d+-/, ''), body);
    rmSync(join(dir, file));
  }
  const names = new Set<string>();
  let kept = 0;
  for (const [index, scenario] of scenarios.entries()) {
    if (names.has(scenario.name)) throw new Error(`duplicate scenario ${scenario.name}`);
    names.add(scenario.name);
    const file = join(dir, `${String(index + 1).padStart(3, '0')}-${scenario.name}.json`);
    const body: Record<string, unknown> = {
      description: scenario.description,
      settings: scenario.settings ?? {},
      initial: scenario.initial ?? {},
      events: scenario.events,
    };
    const old = previous.get(`${scenario.name}.json`);
    if (old?.expected !== undefined && JSON.stringify(old.events) === JSON.stringify(body.events)) {
      body.expected = old.expected;
      kept += 1;
    }
    writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  }
  process.stdout.write(
    `${scenarios.length} scenarios written to ${dir} (${kept} kept their expected part)\n`,
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) main();
