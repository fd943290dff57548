// hbctl: runs a heartbeat transport by hand, for the lab tests and for checking a heartbeat lan
// between two nodes before any module runs. One JSON command per stdin line, one JSON answer per
// stdout line (`{"id","ok":true,...}` or `{"id","ok":false,"error"}`). Exits when stdin closes.
//   node --import tsx agent/heartbeat/hbctl.ts
// Ops:
//   start {settings: {clusterId, module, localNode, peerNode, keyHex, lans}, state?}
//   counters                   the transport's counters, their text form, and receive statistics
//   lastSent {lan?}            the last packet sent (on lan), re-encoded (deterministic): hex
//   send {from, to, port, hex} one raw datagram from an ephemeral port of address `from`
//   forge {from, to, port, keyHex, fields}  a packet built from fields (merged over the last sent)
//   stop
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';
import type { ModuleStateName } from '../core/states.ts';
import type { HeartbeatLanEndpoint } from './endpoints.ts';
import { encodeHeartbeat, type HeartbeatFields, newIncarnation, parseClusterKey } from './packet.ts';
import { formatLanCounters, HeartbeatTransport } from './transport.ts';

interface Command {
  id?: unknown;
  op?: unknown;
  [field: string]: unknown;
}

interface StartSettings {
  clusterId: string;
  module: string;
  localNode: string;
  peerNode: string;
  keyHex: string;
  lans: HeartbeatLanEndpoint[];
}

/** Delays kept for statistics; older ones are dropped. */
const delaysMax = 100_000;

let transport: HeartbeatTransport | null = null;
let key: Buffer | null = null;
let lastSent: HeartbeatFields | null = null;
const lastSentByLan = new Map<string, HeartbeatFields>();
const delaysMs: number[] = [];
const arrivalsMs: number[] = [];
let acceptedByLan: Record<string, number> = {};

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function percentile(sorted: readonly number[], fraction: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? null;
}

function statistics(): Record<string, unknown> {
  const sorted = [...delaysMs].sort((a, b) => a - b);
  const spanMs = arrivalsMs.length < 2 ? 0 : (arrivalsMs.at(-1) ?? 0) - (arrivalsMs[0] ?? 0);
  return {
    accepted: arrivalsMs.length,
    acceptedByLan,
    ratePerSec: spanMs > 0 ? ((arrivalsMs.length - 1) * 1000) / spanMs : null,
    delayMsP50: percentile(sorted, 0.5),
    delayMsP99: percentile(sorted, 0.99),
    delayMsMax: sorted.at(-1) ?? null,
  };
}

function sendRaw(from: string, to: string, port: number, data: Buffer): Promise<void> {
  const socket = createSocket(isIP(from) === 6 ? 'udp6' : 'udp4');
  return new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, from, () => {
      socket.send(data, port, to, (error) => (error ? reject(error) : resolve()));
    });
  }).finally(() => socket.close());
}

async function handle(command: Command): Promise<Record<string, unknown>> {
  switch (command.op) {
    case 'start': {
      if (transport !== null) throw new Error('already started');
      const settings = command.settings as StartSettings;
      const state = (command.state ?? 'PRIM') as ModuleStateName;
      key = parseClusterKey(settings.keyHex);
      const incarnation = newIncarnation(Date.now(), Math.floor(Math.random() * 1024));
      let seq = 0;
      delaysMs.length = 0;
      arrivalsMs.length = 0;
      acceptedByLan = {};
      transport = new HeartbeatTransport(
        { ...settings, key },
        {
          nextFields: (lanIdents) => {
            seq += 1;
            lastSent = {
              clusterId: settings.clusterId,
              module: settings.module,
              node: settings.localNode,
              incarnation,
              seq,
              senderTimeMs: Date.now(),
              state,
              readiness: 'Ready',
              uptodate: true,
              generation: { counter: 1, node: settings.localNode },
              ack: null,
              payload: new Uint8Array(0),
            };
            for (const ident of lanIdents) lastSentByLan.set(ident, lastSent);
            return lastSent;
          },
          onHeartbeat: (received) => {
            acceptedByLan[received.lanIdent] = (acceptedByLan[received.lanIdent] ?? 0) + 1;
            if (delaysMs.length >= delaysMax) delaysMs.shift();
            if (arrivalsMs.length >= delaysMax) arrivalsMs.shift();
            delaysMs.push(received.receivedWallMs - received.fields.senderTimeMs);
            arrivalsMs.push(received.receivedAtMs);
          },
          onError: (error) => emit({ event: 'error', error: error.message }),
        },
      );
      await transport.start();
      return { incarnation };
    }
    case 'counters': {
      if (transport === null) throw new Error('not started');
      return {
        counters: transport.counters(),
        text: formatLanCounters(transport.counters()),
        stats: statistics(),
      };
    }
    case 'lastSent': {
      const fields = typeof command.lan === 'string' ? lastSentByLan.get(command.lan) : lastSent;
      if (key === null || fields === undefined || fields === null) throw new Error('nothing sent yet');
      return { hex: encodeHeartbeat(fields, key).toString('hex'), fields: { ...fields, payload: [] } };
    }
    case 'send':
      await sendRaw(
        String(command.from),
        String(command.to),
        Number(command.port),
        Buffer.from(String(command.hex), 'hex'),
      );
      return {};
    case 'forge': {
      if (lastSent === null) throw new Error('nothing sent yet');
      const fields = {
        ...lastSent,
        ...(command.fields as Partial<HeartbeatFields>),
        payload: new Uint8Array(0),
      };
      const data = encodeHeartbeat(fields, parseClusterKey(String(command.keyHex)));
      await sendRaw(String(command.from), String(command.to), Number(command.port), data);
      return {};
    }
    case 'stop':
      await transport?.stop();
      transport = null;
      return {};
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let command: Command;
  try {
    command = JSON.parse(line) as Command;
  } catch (error) {
    emit({ ok: false, error: `not a JSON command: ${(error as Error).message}` });
    return;
  }
  handle(command).then(
    (answer) => emit({ id: command.id, ok: true, ...answer }),
    (error: unknown) => emit({ id: command.id, ok: false, error: (error as Error).message }),
  );
});
lines.on('close', () => {
  void (transport?.stop() ?? Promise.resolve()).then(() => process.exit(0));
});
emit({ event: 'ready', pid: process.pid });
