// netctl: drives the VIP adapters by hand, for the lab tests, the takeover benchmark and manual
// diagnosis on a node. One JSON command per stdin line, one JSON answer per stdout line
// (`{"id","ok":true,...}` or `{"id","ok":false,"error"}`); background events (a connection
// reset, an announcement error) are lines with `"event"`. Exits when stdin closes.
//   node --import tsx agent/net/netctl.ts
//   {"id":1,"op":"acquire","spec":{"address":"10.0.0.50","where":"one_side_alias","tcpreset":true}}
// Ops: acquire {spec, lifetimeSec?}, release, renew {lifetimeSec}, check, probe {interfaceName,
// address}, serve {port, reply ($peer: the caller's address)}, connect {address, port, timeoutMs}, poll {address, port, want,
// intervalMs, timeoutMs}, neigh {address}.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { probeIpv4 } from './arp-probe.ts';
import { runCommand } from './command.ts';
import { type VipSpec, VirtualIp } from './vip.ts';

interface Command {
  id?: unknown;
  op?: unknown;
  [field: string]: unknown;
}

const connectionsMax = 64;
const pollInFlightMax = 8;
const lineBytesMax = 64 * 1024;

let vip: VirtualIp | null = null;
const servers: Server[] = [];
const connections = new Map<number, Socket>();
let nextConnectionId = 1;

/** Wall clock with sub-millisecond resolution: lab nodes share one kernel clock. */
function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function text(command: Command, field: string): string {
  const value = command[field];
  if (typeof value !== 'string') throw new Error(`${String(command.op)}: ${field} must be a string`);
  return value;
}

function integer(command: Command, field: string, fallback?: number): number {
  const value = command[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new Error(`${String(command.op)}: ${field} must be an integer`);
  return value;
}

function requireVip(): VirtualIp {
  if (vip === null) throw new Error('no VIP: send acquire first');
  return vip;
}

/** One TCP connection that reads the server's first line; keeps it open and reports its end. */
function openConnection(
  address: string,
  port: number,
  timeoutMs: number,
): Promise<{ connection: number; reply: string }> {
  return new Promise((resolve, reject) => {
    if (connections.size >= connectionsMax) {
      reject(new Error(`more than ${connectionsMax} connections open`));
      return;
    }
    const socket = connect({ host: address, port });
    const id = nextConnectionId++;
    let buffered = '';
    let answered = false;
    const timer = setTimeout(() => {
      socket.destroy();
      if (!answered) reject(new Error(`no answer from ${address}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      answered = true;
      clearTimeout(timer);
      connections.set(id, socket);
      resolve({ connection: id, reply: buffered.slice(0, newline) });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!answered) reject(error);
      else emit({ event: 'closed', connection: id, error: error.code ?? error.message, atWallMs: wallMs() });
    });
    socket.on('close', () => {
      if (answered && connections.delete(id)) emit({ event: 'closed', connection: id, atWallMs: wallMs() });
    });
  });
}

/** Connects again and again until the answer is `want`: the moment the VIP is reached there. */
function poll(address: string, port: number, want: string, intervalMs: number, timeoutMs: number) {
  const startedMs = performance.now();
  return new Promise<{ reachedWallMs: number; attempts: number; elapsedMs: number }>((resolve, reject) => {
    let attempts = 0;
    let inFlight = 0;
    let done = false;
    const tick = () => {
      if (done) return;
      if (performance.now() - startedMs > timeoutMs) {
        done = true;
        clearInterval(timer);
        reject(
          new Error(
            `${address}:${port} did not answer ${want} within ${timeoutMs} ms (${attempts} attempts)`,
          ),
        );
        return;
      }
      if (inFlight >= pollInFlightMax) return;
      inFlight += 1;
      attempts += 1;
      const socket = connect({ host: address, port });
      socket.setEncoding('utf8');
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        socket.destroy();
        inFlight -= 1;
      };
      const attemptTimer = setTimeout(close, Math.max(intervalMs * pollInFlightMax, 100));
      socket.on('data', (chunk: string) => {
        clearTimeout(attemptTimer);
        if (!done && chunk.split('\n')[0] === want) {
          done = true;
          clearInterval(timer);
          resolve({ reachedWallMs: wallMs(), attempts, elapsedMs: performance.now() - startedMs });
        }
        close();
      });
      socket.on('error', () => {
        clearTimeout(attemptTimer);
        close();
      });
    };
    const timer = setInterval(tick, intervalMs);
    tick();
  });
}

async function neighbour(address: string): Promise<{ mac: string | null; state: string[] }> {
  const { stdout } = await runCommand('ip', ['-j', 'neigh', 'show', address]);
  const entries = JSON.parse(stdout === '' ? '[]' : stdout) as { lladdr?: string; state?: string[] }[];
  const entry = entries[0];
  return { mac: entry?.lladdr?.toLowerCase() ?? null, state: entry?.state ?? [] };
}

async function handle(command: Command): Promise<Record<string, unknown>> {
  switch (command.op) {
    case 'acquire': {
      const spec = command.spec as VipSpec;
      vip?.stopAnnouncing();
      vip = new VirtualIp(spec, { onError: (error) => emit({ event: 'error', error: error.message }) });
      const lifetimeSec = command.lifetimeSec === undefined ? undefined : integer(command, 'lifetimeSec');
      const startedWallMs = wallMs();
      const result = await vip.acquire({ lifetimeSec });
      return { result, startedWallMs, atWallMs: wallMs() };
    }
    case 'release': {
      const startedWallMs = wallMs();
      const result = await requireVip().release();
      return { result, startedWallMs, atWallMs: wallMs() };
    }
    case 'renew':
      return { result: await requireVip().renew(integer(command, 'lifetimeSec')) };
    case 'check':
      return { result: await requireVip().check() };
    case 'probe':
      return { result: await probeIpv4(text(command, 'interfaceName'), text(command, 'address')) };
    case 'serve': {
      const reply = text(command, 'reply');
      const server = createServer((socket) => {
        socket.on('error', () => undefined);
        // `$peer` answers with the address the connection came from (one_side source checks).
        socket.write(`${reply === '$peer' ? (socket.remoteAddress ?? '') : reply}\n`);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(integer(command, 'port'), resolve);
      });
      servers.push(server);
      return {};
    }
    case 'connect':
      return await openConnection(
        text(command, 'address'),
        integer(command, 'port'),
        integer(command, 'timeoutMs', 2000),
      );
    case 'poll':
      return await poll(
        text(command, 'address'),
        integer(command, 'port'),
        text(command, 'want'),
        integer(command, 'intervalMs', 10),
        integer(command, 'timeoutMs', 10_000),
      );
    case 'neigh':
      return await neighbour(text(command, 'address'));
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let command: Command;
  try {
    if (line.length > lineBytesMax) throw new Error(`command line over ${lineBytesMax} bytes`);
    command = JSON.parse(line) as Command;
  } catch (error) {
    emit({ ok: false, error: `not a JSON command: ${(error as Error).message}` });
    return;
  }
  // Commands run concurrently (a poll waits while a release and an acquire happen elsewhere).
  handle(command).then(
    (answer) => emit({ id: command.id, ok: true, ...answer }),
    (error: unknown) => emit({ id: command.id, ok: false, error: (error as Error).message }),
  );
});
lines.on('close', () => {
  vip?.stopAnnouncing();
  for (const server of servers) server.close();
  for (const socket of connections.values()) socket.destroy();
  // Announcements already running finish by themselves (each command is bounded).
  setTimeout(() => process.exit(0), 100).unref();
});
emit({ event: 'ready', pid: process.pid });
