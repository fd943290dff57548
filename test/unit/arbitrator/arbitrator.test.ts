// The arbitrator on the wire: the authenticated codec, and the UDP server with real sockets on
// loopback driving the pure lease core (grant, refusal while held, durable state across a restart).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ArbitratorClient } from '../../../agent/arbitrator/client.ts';
import { decodeArbitratorMessage, encodeArbitratorMessage } from '../../../agent/arbitrator/message.ts';
import { ArbitratorServer } from '../../../agent/arbitrator/server.ts';
import { type LeaseReply, type LeaseRequest, leaseTimingFor } from '../../../agent/core/arbitrator-lease.ts';

const key = Buffer.alloc(32, 7);
const otherKey = Buffer.alloc(32, 8);
const clusterId = 'hakit-test';

function request(node: string, seq: number, overrides: Partial<LeaseRequest> = {}): LeaseRequest {
  return {
    type: 'leaseRequest',
    module: 'web',
    node,
    incarnation: 1,
    seq,
    dataGeneration: { counter: 1, node: 'n1' },
    claim: { counter: 1, node: 'n1' },
    force: false,
    witness: false,
    ...overrides,
  };
}

describe('arbitrator messages', () => {
  test('a request round-trips; a wrong key, another cluster, an altered byte or junk are dropped with the reason', () => {
    const message = request('n1', 3);
    const datagram = encodeArbitratorMessage(key, clusterId, message);
    assert.deepEqual(decodeArbitratorMessage(key, clusterId, datagram), { ok: true, message });
    assert.equal(decodeArbitratorMessage(otherKey, clusterId, datagram).ok, false);
    const wrongKey = decodeArbitratorMessage(otherKey, clusterId, datagram);
    assert.equal(!wrongKey.ok && wrongKey.reason, 'badMac');
    const foreign = decodeArbitratorMessage(key, 'hakit-other', datagram);
    assert.equal(!foreign.ok && foreign.reason, 'foreignCluster');
    const altered = Buffer.from(datagram);
    altered[10] = (altered[10] ?? 0) ^ 1;
    const alteredResult = decodeArbitratorMessage(key, clusterId, altered);
    assert.equal(!alteredResult.ok && alteredResult.reason, 'badMac');
    const junk = decodeArbitratorMessage(key, clusterId, Buffer.from('hello'));
    assert.equal(!junk.ok && junk.reason, 'malformed');
    const tooBig = decodeArbitratorMessage(key, clusterId, Buffer.alloc(2000));
    assert.equal(!tooBig.ok && tooBig.reason, 'tooBig');
  });

  test('a well signed message with a field of the wrong type is malformed, not trusted', () => {
    const bad = encodeArbitratorMessage(key, clusterId, {
      ...request('n1', 1),
      seq: -4,
    });
    const result = decodeArbitratorMessage(key, clusterId, bad);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.detail : '', /seq/);
  });
});

describe('arbitrator server over UDP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hakit-arb-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const timing = leaseTimingFor(1500);
  let fakeNowMs = 0;

  async function exchange(port: number, messages: LeaseRequest[]): Promise<LeaseReply[]> {
    const replies: LeaseReply[] = [];
    const client = new ArbitratorClient(
      { key, clusterId, host: '127.0.0.1', port },
      { onReply: (reply) => replies.push(reply), onError: (error) => assert.fail(error) },
    );
    await client.start();
    try {
      for (const message of messages) {
        const before = replies.length;
        client.send(message);
        const deadlineMs = Date.now() + 2000;
        while (replies.length === before && Date.now() < deadlineMs)
          await new Promise((r) => setTimeout(r, 5));
        assert.ok(replies.length > before, `no reply to ${message.node} seq ${message.seq}`);
      }
    } finally {
      await client.stop();
    }
    return replies;
  }

  test('quiet after start, then grants one node and refuses the other while the lease runs; the state survives a restart', async () => {
    const stateFile = join(dir, 'state.json');
    const logs: string[] = [];
    const settings = { key, clusterId, bindAddress: '127.0.0.1', port: 0, timing, stateFile };
    let server = new ArbitratorServer(
      settings,
      (line) => logs.push(line),
      () => fakeNowMs,
    );
    await server.listen();
    const port = server.boundPort();
    const [quiet] = await exchange(port, [request('n1', 1)]);
    assert.equal(quiet?.type === 'leaseRefused' && quiet.reason, 'quiet');
    fakeNowMs = 2000;
    const [granted, held] = await exchange(port, [request('n1', 2), request('n2', 1, { claim: null })]);
    assert.equal(granted?.type, 'leaseGranted');
    assert.equal(held?.type === 'leaseRefused' && held.reason, 'held');
    assert.equal(held?.type === 'leaseRefused' && held.holder, 'n1');
    assert.deepEqual(server.holders().web?.node, 'n1');
    assert.ok(
      logs.some((line) => line.includes('lease granted to n1')),
      logs.join('\n'),
    );
    const durable = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, { registered: unknown }>;
    assert.deepEqual(durable.web?.registered, { counter: 1, node: 'n1' });
    await server.close();

    // Restarted: the registered generation is remembered, so a stale node is refused after the quiet time.
    server = new ArbitratorServer(
      { ...settings, port },
      () => {},
      () => fakeNowMs,
    );
    await server.listen();
    fakeNowMs = 10_000;
    const [stale] = await exchange(port, [
      request('n2', 5, { incarnation: 2, dataGeneration: null, claim: null, witness: true }),
    ]);
    assert.equal(stale?.type === 'leaseRefused' && stale.reason, 'stale');
    assert.equal(server.counters.refused.stale, 1);
    await server.close();
  });

  test('a damaged state file stops the arbitrator with its path instead of forgetting generations', () => {
    const stateFile = join(dir, 'damaged.json');
    writeFileSync(stateFile, '{not json');
    assert.throws(
      () =>
        new ArbitratorServer(
          { key, clusterId, bindAddress: '127.0.0.1', port: 0, timing, stateFile },
          () => {},
        ),
      new RegExp(`${stateFile}: not JSON`),
    );
  });
});
