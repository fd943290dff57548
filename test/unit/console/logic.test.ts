// Pure console logic: push conflict detection by signature, signatures, action plans, the event
// stream parser, the live matrix and its colours, the line diff, install detection.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LiveCell } from '../../../main/api/contract.ts';
import { planAction, type PlanNode } from '../../../main/services/actions/action-plan.ts';
import { clockSkewOf, nextBackoffMs, SseParser } from '../../../main/services/agents/event-stream.ts';
import { parseDetect } from '../../../main/services/installer/installer.ts';
import { cellColour, LiveMatrixState } from '../../../main/services/live/live-matrix.ts';
import { decidePush, lineDiff } from '../../../main/services/modules/module-config.ts';
import {
  modulePackageOf,
  packageSignedFiles,
  signatureOf,
  storedSignature,
} from '../../../main/services/modules/signature.ts';
import { readSafeBuffer, writeSafeBuffer } from '../../../agent/config/package-io.ts';
import { decideHostKey } from '../../../main/services/store/host-keys.ts';

describe('push conflict detection', () => {
  const base = { node: 'n1', module: 'web', local: 'L', force: false };
  test('deploys where the node still runs what the console last pushed or pulled', () => {
    assert.equal(decidePush({ ...base, onNode: 'A', recorded: 'A' }).kind, 'deploy');
    assert.equal(decidePush({ ...base, onNode: null, recorded: null }).kind, 'deploy');
    assert.equal(decidePush({ ...base, onNode: null, recorded: 'A' }).kind, 'deploy');
  });
  test('refuses to overwrite a configuration changed on the node since, unless forced', () => {
    const changed = decidePush({ ...base, onNode: 'B', recorded: 'A' });
    assert.equal(changed.kind, 'conflict');
    assert.match(changed.reason, /changed since the last push or pull/);
    assert.equal(decidePush({ ...base, onNode: 'B', recorded: null }).kind, 'conflict');
    assert.equal(decidePush({ ...base, onNode: 'B', recorded: 'A', force: true }).kind, 'deploy');
  });
  test('nothing to do when the node already runs the console configuration', () => {
    assert.equal(decidePush({ ...base, onNode: 'L', recorded: 'X' }).kind, 'unchanged');
  });
});

describe('module signature', () => {
  test('the console copy and the package a node sends back sign the same; any file change differs', async () => {
    const userconfig = '<safe><service mode="light"/></safe>\n';
    const files = [{ path: 'bin/start_both', text: '#!/bin/sh\nexit 0\n', executable: true }];
    const local = storedSignature(userconfig, files);
    const roundTrip = await readSafeBuffer(await writeSafeBuffer(modulePackageOf(userconfig, files)));
    assert.equal(signatureOf(packageSignedFiles(roundTrip)), local);
    assert.notEqual(storedSignature(userconfig, [{ ...files[0]!, executable: false }]), local);
    assert.notEqual(storedSignature(`${userconfig} `, files), local);
  });
});

describe('host keys', () => {
  test('first use pins, the same key matches, another key is refused with both fingerprints', () => {
    const key = Buffer.from('key-one');
    assert.equal(decideHostKey(null, key).kind, 'pin-first-use');
    assert.equal(decideHostKey(key.toString('base64'), key).kind, 'match');
    const changed = decideHostKey(key.toString('base64'), Buffer.from('key-two'));
    assert.equal(changed.kind, 'changed');
    assert.ok(changed.kind === 'changed' && changed.pinnedFingerprint !== changed.fingerprint);
  });
});

function cell(
  nodeId: number,
  state: LiveCell['state'],
  readiness: LiveCell['readiness'],
  badges: string[] = [],
): LiveCell {
  return { nodeId, module: 'web', state, readiness, badges, atMs: 0 };
}

function node(nodeId: number, name: string, value?: LiveCell): PlanNode {
  return {
    nodeId,
    node: name,
    cell: value,
    live: { nodeId, node: name, status: 'connected', detail: '', agentVersion: '1', clockSkewMs: 0, atMs: 0 },
  };
}

describe('action plans', () => {
  test('stopping the primary warns of a failover; with no ready secondary, of an outage', () => {
    const prim = node(1, 'n1', cell(1, 'PRIM', 'Ready'));
    const second = node(2, 'n2', cell(2, 'SECOND', 'Ready'));
    const plan = planAction('web', 'stop', [prim], [prim, second]);
    assert.match(plan.risks.join(), /moves to the other node/);
    assert.deepEqual(plan.cli, ['hakit -H n1 stop -m web', 'n1# hakit stop -m web']);
    const alone = planAction('web', 'stop', [prim], [prim, node(2, 'n2', cell(2, 'STOP', 'NotReady'))]);
    assert.match(alone.risks.join(), /no other node is ready/);
  });
  test('prim on a node that is not up to date explains the risk', () => {
    const stale = node(2, 'n2', cell(2, 'WAIT', 'NotReady', ['not uptodate']));
    const plan = planAction('web', 'prim', [stale], [node(1, 'n1', cell(1, 'STOP', 'NotReady')), stale]);
    assert.match(plan.risks.join(), /not up to date/);
  });
  test('a stop of both nodes stops the secondary first', () => {
    const prim = node(1, 'n1', cell(1, 'PRIM', 'Ready'));
    const second = node(2, 'n2', cell(2, 'SECOND', 'Ready'));
    const plan = planAction('web', 'stop', [prim, second], [prim, second]);
    assert.deepEqual(plan.nodeOrder, [2, 1]);
    assert.equal(plan.cli[0], 'hakit -H "n2,n1" stop -m web');
  });
  test('start of a stopped module carries no risk; failover off and boot words map to the CLI', () => {
    const stopped = node(1, 'n1', cell(1, 'STOP', 'NotReady'));
    assert.deepEqual(planAction('web', 'start', [stopped], [stopped]).risks, []);
    assert.equal(
      planAction('web', 'failover-off', [stopped], [stopped]).cli[0],
      'hakit -H n1 failover off -m web',
    );
    assert.equal(planAction('web', 'boot-on', [stopped], [stopped]).cli[1], 'n1# hakit boot on -m web');
  });
});

describe('event stream parser', () => {
  test('messages split across chunks, comments and CRLF are handled', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.feed('retry: 1000\n\n: keep-alive\n\nid: 7\nevent: st'), []);
    const messages = parser.feed('ate\r\ndata: {"a":1}\n\nid: 8\nevent: reset\ndata: {}\n\n');
    assert.deepEqual(messages, [
      { id: '7', event: 'state', data: '{"a":1}' },
      { id: '8', event: 'reset', data: '{}' },
    ]);
  });
  test('back-off doubles up to its bound; clock skew is rounded to the Date header resolution', () => {
    let delay = 0;
    const seen: number[] = [];
    for (let attempt = 0; attempt < 8; attempt += 1) seen.push((delay = nextBackoffMs(delay)));
    assert.deepEqual(seen, [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    assert.equal(clockSkewOf(new Date(10_000).toUTCString(), 7_400), 3000);
    assert.equal(clockSkewOf('garbage', 0), null);
  });
});

describe('live matrix', () => {
  test('colours follow the original: Ready green, Transient orange, NotReady red, not configured grey, unreachable red', () => {
    assert.equal(cellColour(cell(1, 'PRIM', 'Ready'), true), 'green');
    assert.equal(cellColour(cell(1, 'SECOND', 'Transient'), true), 'orange');
    assert.equal(cellColour(cell(1, 'STOP', 'NotReady'), true), 'red');
    assert.equal(cellColour(cell(1, null, null), true), 'grey');
    assert.equal(cellColour(undefined, true), 'grey');
    assert.equal(cellColour(cell(1, 'PRIM', 'Ready'), false), 'red');
  });
  test('changes are batched: many updates of one cell flush as one; vanished modules come back grey', () => {
    const matrix = new LiveMatrixState(1);
    const update = (state: string, atMs: number) => ({
      module: 'web',
      configured: true,
      state,
      readiness: 'Ready',
      detail: [],
      extra: { uptodate: true },
      atMs,
    });
    matrix.setFull(1, [update('STOP', 1)]);
    for (let index = 0; index < 100; index += 1) matrix.setCell(1, update(index % 2 ? 'UP' : 'STOP', index));
    const changes = matrix.takeChanges();
    assert.equal(changes.cells.length, 1);
    assert.deepEqual(changes.cells[0]?.badges, ['uptodate']);
    assert.equal(matrix.hasChanges(), false);
    matrix.setFull(1, []);
    const removed = matrix.takeChanges();
    assert.equal(removed.cells[0]?.state, null);
    assert.deepEqual(removed.modules, []);
  });
});

describe('line diff and install detection', () => {
  test('the diff keeps common lines and marks the rest', () => {
    assert.deepEqual(lineDiff('a\nb\nc', 'a\nx\nc'), [
      { kind: 'same', text: 'a' },
      { kind: 'removed', text: 'b' },
      { kind: 'added', text: 'x' },
      { kind: 'same', text: 'c' },
    ]);
  });
  test('the detect step reads OS, architecture, init, missing commands, warnings and an agent already there', () => {
    const detected = parseDetect(
      'os=Linux\narch=x86_64\ninit=systemd\nuid=0\ndistro=Debian GNU/Linux 12\nmissing=flock\nwarning=libfuse3-3 is not installed\ninstalled=0.1.0\n',
    );
    assert.deepEqual(detected, {
      os: 'Linux',
      arch: 'x86_64',
      init: 'systemd',
      uid: 0,
      distro: 'Debian GNU/Linux 12',
      missing: ['flock'],
      warnings: ['libfuse3-3 is not installed'],
      installedVersion: '0.1.0',
    });
    assert.equal(parseDetect('os=Linux\ninstalled=\n').installedVersion, null);
  });
});
