// How soon the API's event stream delivers a module state change: the daemon stamps each event
// with the time the state changed; the client notes when it arrives. Same machine, same clock.
// Run: node --import tsx test/bench/event-latency.ts [changes]
import { request } from 'node:https';
import { AgentSandbox } from '../unit/agent/daemon-harness.ts';

const changes = Number(process.argv[2] ?? '100');
const httpsPort = 20000 + (process.pid % 10000);

const sandbox = new AgentSandbox('events-bench');
sandbox.env.HAKIT_HTTPS_PORT = String(httpsPort);
sandbox.env.HAKIT_HTTP_PORT = String(httpsPort + 1);
sandbox.env.HAKIT_BIND = '127.0.0.1';
try {
  await sandbox.startDaemon();
  const dir = sandbox.writeModule('bench', '<!DOCTYPE safe>\n<safe><service mode="light"/></safe>\n', {});
  for (const args of [
    ['module', 'install', dir],
    ['config', '-m', 'bench'],
  ]) {
    const result = sandbox.cli(args);
    if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
  }
  const token = sandbox.cli(['apikey', 'create', 'Monitor', 'bench']).stdout.trim();
  const latencies: number[] = [];
  let pending: ((value: void) => void) | null = null;
  const stream = request({
    host: '127.0.0.1',
    port: httpsPort,
    path: '/api/v1/events?module=bench&types=state',
    headers: { authorization: `Bearer ${token}` },
    rejectUnauthorized: false,
  });
  await new Promise<void>((opened) => {
    stream.on('response', (response) => {
      response.setEncoding('utf8');
      let buffer = '';
      response.on('data', (chunk: string) => {
        const arrivedMs = Date.now();
        buffer += chunk;
        const frames = buffer.split('\n\n');
        buffer = frames.pop() ?? '';
        for (const frame of frames) {
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (!data) continue;
          const event = JSON.parse(data) as { timeMs: number };
          latencies.push(arrivedMs - event.timeMs);
          pending?.();
        }
      });
      opened();
    });
    stream.end();
  });
  for (let index = 0; index < changes; index += 1) {
    const before = latencies.length;
    const waited = new Promise<void>((done) => {
      pending = done;
    });
    sandbox.cli([index % 2 === 0 ? 'start' : 'stop', '-m', 'bench']);
    await waited;
    while (latencies.length === before) await new Promise((done) => setTimeout(done, 1));
  }
  stream.destroy();
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
  console.log(`event stream: ${sorted.length} state events from ${changes} start/stop commands`);
  console.log(
    `state change -> event received: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${sorted.at(-1)} ms (target <= 200 ms)`,
  );
} finally {
  await sandbox.cleanup();
}
