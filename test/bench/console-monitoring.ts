// Benchmark: the console's monitoring view with 32 nodes x 32 modules and 100 state events per
// second, end to end: 32 HTTPS event streams (stand-in agents on 127.0.0.1 speaking the agent's
// API: level, modules, Server-Sent Events, each with its own pinned certificate fingerprint) ->
// console services -> WebSocket -> Svelte matrix in Debian's Chromium. Prints the long tasks seen
// by the page (budget: none over 50 ms) and the event-to-screen latency (agent event time to DOM
// change). Exit code 1 when the budget is missed.
//   node --import tsx test/bench/console-monitoring.ts [--seconds 30] [--rate 100]
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { serveConsole } from '../../main/server/serve.ts';

const repoDir = resolve(import.meta.dirname, '..', '..');
const nodeCount = 32;
const moduleCount = 32;
const argValue = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
};
const seconds = argValue('--seconds', 30);
const ratePerSecond = argValue('--rate', 100);
const longTaskBudgetMs = 50;

interface FakeAgent {
  server: Server;
  port: number;
  clients: Set<ServerResponse>;
  nextId: number;
  states: Map<string, string>;
}

const modules = Array.from({ length: moduleCount }, (_, index) => `app${String(index + 1).padStart(2, '0')}`);

function startAgent(cert: Buffer, key: Buffer, name: string): Promise<FakeAgent> {
  const agent: FakeAgent = {
    server: createServer({ cert, key }),
    port: 0,
    clients: new Set(),
    nextId: 1,
    states: new Map(),
  };
  for (const module of modules) agent.states.set(module, 'Ready');
  agent.server.on('request', (request, response) => {
    const url = new URL(request.url ?? '/', 'https://x');
    const json = (body: unknown) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname === '/api/v1/level') return json({ version: 'bench', node: name, fingerprint: '' });
    if (url.pathname === '/api/v1/modules')
      return json({
        modules: modules.map((module) => ({
          module,
          configured: true,
          state: 'UP',
          readiness: agent.states.get(module),
        })),
      });
    if (url.pathname === '/api/v1/events') {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      response.write('retry: 1000\n\n');
      agent.clients.add(response);
      response.on('close', () => agent.clients.delete(response));
      return undefined;
    }
    response.writeHead(404).end();
    return undefined;
  });
  return new Promise((done) =>
    agent.server.listen(0, '127.0.0.1', () => {
      agent.port = (agent.server.address() as AddressInfo).port;
      done(agent);
    }),
  );
}

function emit(agent: FakeAgent, module: string): void {
  const readiness = agent.states.get(module) === 'Ready' ? 'Transient' : 'Ready';
  agent.states.set(module, readiness);
  const event = {
    id: agent.nextId,
    type: 'state',
    module,
    timeMs: Date.now(),
    data: { state: 'UP', readiness, busy: false, detail: [] },
  };
  const text = `id: ${agent.nextId}\nevent: state\ndata: ${JSON.stringify(event)}\n\n`;
  agent.nextId += 1;
  for (const client of agent.clients) client.write(text);
}

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hakit-bench-console-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=bench',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'));
  const key = readFileSync(join(dir, 'key.pem'));
  const fingerprint = new X509Certificate(cert).fingerprint256;
  const agents = await Promise.all(
    Array.from({ length: nodeCount }, (_, index) => startAgent(cert, key, `n${index + 1}`)),
  );
  process.env.HAKIT_CONSOLE_PASSPHRASE = 'benchmark passphrase';
  const serving = await serveConsole({
    rootDir: repoDir,
    dataDir: join(dir, 'console'),
    forceFileSecrets: true,
    log: () => undefined,
  });
  delete process.env.HAKIT_CONSOLE_PASSPHRASE;
  const services = serving.services;
  const site = await services.createSite({ name: 'bench', notes: '' });
  const cluster = await services.createCluster({ siteId: site.id, name: 'big' });
  for (const [index, agent] of agents.entries()) {
    const node = await services.addNode({
      clusterId: cluster.id,
      node: {
        name: `n${index + 1}`,
        address: '127.0.0.1',
        sshPort: 22,
        sshUser: 'root',
        auth: { kind: 'password', password: 'unused-here' },
      },
    });
    const ref = `bench-token-${index}`;
    await services.secrets.set(ref, `hk_bench_token_${index}_xxxxxxxx`);
    services.store.recordInstall(node.id, {
      agentVersion: 'bench',
      apiFingerprint: fingerprint,
      apiTokenSecret: ref,
      apiPort: agent.port,
    });
  }
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  let code: number;
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.addInitScript(`
      window.longTasks = [];
      new PerformanceObserver((list) => { for (const entry of list.getEntries()) window.longTasks.push({ start: entry.startTime, duration: entry.duration }); })
        .observe({ type: 'longtask', buffered: true });
    `);
    await page.goto(serving.url);
    await page.getByRole('button', { name: /^bench/ }).click();
    await page.getByTestId('tab-Live').click();
    await page.locator('[data-testid=cell-app32-n32][data-colour=green]').waitFor({ timeout: 60_000 });
    await page.waitForTimeout(1000);
    await page.evaluate(`(() => {
      window.latencies = [];
      window.longTasks = [];
      new MutationObserver((records) => {
        const now = Date.now();
        for (const record of records) {
          const at = Number(record.target.getAttribute && record.target.getAttribute('data-at'));
          if (record.attributeName === 'data-at' && at > 0) window.latencies.push(now - at);
        }
      }).observe(document.querySelector('[data-testid=matrix]'), { attributes: true, subtree: true, attributeFilter: ['data-at'] });
    })()`);
    const intervalMs = 1000 / ratePerSecond;
    let sent = 0;
    const startedMs = Date.now();
    await new Promise<void>((done) => {
      const timer = setInterval(
        () => {
          const dueCount = Math.floor(((Date.now() - startedMs) / 1000) * ratePerSecond) - sent;
          for (let index = 0; index < dueCount; index += 1) {
            const agent = agents[Math.floor(Math.random() * agents.length)];
            const module = modules[Math.floor(Math.random() * modules.length)];
            if (agent && module) emit(agent, module);
            sent += 1;
          }
          if (Date.now() - startedMs >= seconds * 1000) {
            clearInterval(timer);
            done();
          }
        },
        Math.max(1, Math.floor(intervalMs)),
      );
    });
    await page.waitForTimeout(500);
    const longTasks = (await page.evaluate('window.longTasks')) as { start: number; duration: number }[];
    const latencies = (await page.evaluate('window.latencies')) as number[];
    const maxLongMs = longTasks.reduce((max, task) => Math.max(max, task.duration), 0);
    const lines = [
      `console monitoring benchmark: ${nodeCount} nodes x ${moduleCount} modules (${nodeCount * moduleCount} cells), ${ratePerSecond} events/s for ${seconds} s (${sent} events)`,
      `  cells updated on screen: ${latencies.length}`,
      `  event-to-screen latency: p50 ${percentile(latencies, 0.5)} ms, p95 ${percentile(latencies, 0.95)} ms, max ${Math.max(...latencies)} ms`,
      `  long tasks (> 50 ms, PerformanceObserver): ${longTasks.length}, longest ${maxLongMs.toFixed(0)} ms`,
    ];
    const pass = maxLongMs < longTaskBudgetMs && latencies.length > 0 && percentile(latencies, 0.95) < 1000;
    lines.push(
      `  budget (no long task over ${longTaskBudgetMs} ms, p95 latency under 1 s): ${pass ? 'met' : 'MISSED'}`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    await page.screenshot({ path: join(repoDir, 'test-results', 'bench-console-monitoring.png') });
    code = pass ? 0 : 1;
  } finally {
    await browser.close();
    await serving.close();
    for (const agent of agents) {
      for (const client of agent.clients) client.destroy();
      agent.server.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`console-monitoring: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
