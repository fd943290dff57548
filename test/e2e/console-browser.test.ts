// The console as a person uses it: console server mode in Debian's Chromium (Playwright) against
// two lab nodes. Create a site and a cluster, add two nodes, install the agents over SSH with the
// progress on screen, push cluster.xml after the agents' network pre-flight (which blocks the push
// while the nodes are cut from each other, until overridden), create a module from a template, deploy it, start it and see it green on both
// nodes, stop it from a node's shell and see the change on screen within a second, kill a node's
// agent and see the node shown unreachable then back, read the merged log, gather a snapshot and
// open it. Screenshots are kept in test-results/e2e/.
// The module is a light one: the agent does not run mirror modules yet (they show as soon as it
// reports them).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { serveConsole, type Serving } from '../../main/server/serve.ts';
import { labExec, labJson } from '../lab/harness.ts';
import type { LabNode } from '../lab/lab.ts';
import {
  buildAgentPackage,
  chromiumArgs,
  consoleLabSkipReason,
  labDown,
  labUp,
  repoDir,
  workDirFor,
} from './console-lab.ts';

const lab = 'tcbr';
const chromiumPath = '/usr/bin/chromium';
const shotsDir = join(repoDir, 'test-results', 'e2e');
const rendererBuilt = existsSync(join(repoDir, 'dist', 'renderer', 'index.html'));
const skip =
  consoleLabSkipReason() ??
  (!existsSync(chromiumPath) ? `Debian's Chromium is not installed at ${chromiumPath}` : undefined) ??
  (!rendererBuilt ? 'the renderer is not built (node build.mjs)' : undefined);

describe('console in a browser against the lab', { skip, timeout: 600_000 }, () => {
  let workDir = '';
  let nodes: LabNode[] = [];
  let serving: Serving;
  let browser: Browser;
  let page: Page;

  const shot = (name: string) => page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });

  before(async () => {
    workDir = workDirFor('browser');
    mkdirSync(shotsDir, { recursive: true });
    const [packageFile, up] = await Promise.all([buildAgentPackage(workDir), labUp(lab, 2)]);
    nodes = up;
    process.env.HAKIT_AGENT_PACKAGE = packageFile;
    serving = await serveConsole({
      rootDir: repoDir,
      dataDir: join(workDir, 'console'),
      forceFileSecrets: true,
      log: () => undefined,
    });
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    page = await browser.newPage({ viewport: { width: 1440, height: 960 } });
    page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`));
  });

  after(async () => {
    await browser?.close();
    await serving?.close();
    delete process.env.HAKIT_AGENT_PACKAGE;
    await labDown(lab);
    rmSync(workDir, { recursive: true, force: true });
  });

  test('the token is required: without it the console API is refused', async () => {
    const response = await fetch(serving.url.replace(/#.*/, ''));
    assert.equal(response.status, 200, 'the page itself loads');
    const refused = await new Promise<string>((resolve) => {
      const socket = new WebSocket(`${serving.server.origin.replace('http', 'ws')}/rpc?token=wrong`, {
        origin: serving.server.origin,
      });
      socket.on('error', () => resolve('refused'));
      socket.on('open', () => resolve('opened'));
    });
    assert.equal(refused, 'refused');
  });

  test('first start: choose the master passphrase, create a site and a cluster, add two nodes', async () => {
    await page.goto(serving.url);
    await page.getByTestId('unlock-dialog').waitFor();
    await shot('01-passphrase');
    await page.getByTestId('passphrase').fill('browser e2e passphrase');
    await page.getByTestId('unlock').click();
    await page.getByTestId('unlock-dialog').waitFor({ state: 'detached' });
    await page.getByTestId('new-site-name').fill('branch-lyon');
    await page.getByTestId('new-site').click();
    await page.getByTestId('new-cluster-name').fill('erp');
    await page.getByTestId('new-cluster').click();
    await page.getByTestId('cluster-erp').waitFor();
    for (const node of nodes) {
      await page.getByTestId('node-name').fill(node.name);
      await page.getByTestId('node-address').fill(node.ip);
      await page.getByTestId('node-auth').selectOption('key');
      await page.getByTestId('node-key').fill(readFileSync(node.ssh.keyFile, 'utf8'));
      await page.getByTestId('add-node-submit').click();
      await page.getByTestId(`node-row-${node.name}`).waitFor();
    }
    await shot('02-nodes');
  });

  test('installs the agents over SSH with per-node, per-step progress on screen', async () => {
    for (const node of nodes) await page.getByTestId(`select-${node.name}`).check();
    await page.getByLabel('link /usr/local/bin/hakit').uncheck();
    await page.getByTestId('install').click();
    await page.getByTestId('install-progress').waitFor();
    await page
      .getByTestId('step-n1-upload')
      .and(page.locator('[data-status="done"]'))
      .waitFor({ timeout: 120_000 });
    await shot('03-install-progress');
    await page.getByTestId('install-result').waitFor({ timeout: 180_000 });
    assert.match(await page.getByTestId('install-result').innerText(), /Installed on every node/);
    for (const node of nodes) {
      assert.equal(await page.getByTestId(`step-${node.name}-check`).getAttribute('data-status'), 'done');
      assert.match(await page.getByTestId(`agent-${node.name}`).innerText(), /\d+\.\d+\.\d+/);
    }
    await page.getByTestId('push-cluster').click();
    await page.getByTestId('push-results').waitFor();
    assert.doesNotMatch(await page.getByTestId('push-results').innerText(), /failed/);
    // The agents' network pre-flight ran first and shows its table: every path ok.
    assert.equal(await page.getByTestId('cluster-preflight-results').getAttribute('data-ok'), 'true');
    assert.equal(await page.getByTestId('path-n1-n2-default').getAttribute('data-ok'), 'true');
    assert.equal(await page.getByTestId('path-n2-n1-default').innerText(), 'ok');
    await shot('04-installed');
  });

  test('the nodes cut from each other: the network pre-flight shows it and blocks the push until overridden', async () => {
    await labJson(['fault', '--name', lab, 'partition', 'n1', 'n2']);
    try {
      await page.getByTestId('push-cluster').click();
      await page.getByTestId('push-blocked').waitFor({ timeout: 60_000 });
      assert.equal(await page.getByTestId('cluster-preflight-results').getAttribute('data-ok'), 'false');
      for (const [from, to] of [
        ['n1', 'n2'],
        ['n2', 'n1'],
      ]) {
        const path = page.getByTestId(`path-${from}-${to}-default`);
        assert.equal(await path.getAttribute('data-ok'), 'false');
        assert.match(await path.innerText(), /^unreachable · TCP \S+ port 9453 \(agent API\): unreachable/);
      }
      assert.equal(await page.getByTestId('push-results').count(), 0, 'nothing pushed');
      await shot('04b-push-blocked');
      let asked = '';
      page.once('dialog', (dialog) => {
        asked = dialog.message();
        void dialog.accept();
      });
      await page.getByTestId('push-anyway').click();
      await page.getByTestId('push-results').waitFor({ timeout: 60_000 });
      assert.match(asked, /both nodes of a mirror module become primary/);
      assert.doesNotMatch(await page.getByTestId('push-results').innerText(), /failed/);
    } finally {
      await labJson(['fault', '--name', lab, 'heal', 'n1', 'n2']);
    }
  });

  test('creates a module from a template, sees the validator at work, and deploys it', async () => {
    await page.getByTestId('tab-Modules').click();
    await page.getByTestId('template').selectOption('generic-light');
    await page.getByTestId('module-name').fill('web');
    await page.getByTestId('create-module').click();
    await page.getByTestId('module-editor').waitFor();
    await page.getByTestId('diagnostics').getByText('No problem found').waitFor({ timeout: 10_000 });
    // A mistake typed into the XML shows up with its line.
    const editor = page.getByTestId('userconfig-editor');
    await editor.click();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('\n<oops');
    await page
      .getByTestId('diagnostics')
      .getByText(/line \d+, column \d+/)
      .first()
      .waitFor({ timeout: 10_000 });
    await shot('05-validator');
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    await page.getByTestId('diagnostics').getByText('No problem found').waitFor({ timeout: 10_000 });
    await page.getByTestId('deploy').click();
    await page.getByTestId('deploy-results').waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('[data-testid=deploy-results] [data-outcome=deployed]').count(), 2);
    await shot('06-deployed');
  });

  test('starts it from the live view with a confirmation and the CLI command; both nodes turn green', async () => {
    await page.getByTestId('tab-Live').click();
    await page.getByTestId('cell-web-n1').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid=cell-web-n1][data-state=STOP]').waitFor({ timeout: 15_000 });
    assert.equal(await page.getByTestId('cell-web-n1').getAttribute('data-colour'), 'red');
    await page.getByRole('button', { name: 'web', exact: true }).click();
    await page.getByTestId('action-start').click();
    await page.getByTestId('cli').waitFor();
    assert.match(await page.getByTestId('cli').innerText(), /hakit -H "n1,n2" start -m web/);
    await shot('07-confirm-start');
    await page.getByTestId('confirm-action').click();
    for (const name of ['n1', 'n2'])
      await page
        .locator(`[data-testid=cell-web-${name}][data-state=UP][data-colour=green]`)
        .waitFor({ timeout: 30_000 })
        .catch(async (error: unknown) => {
          await shot('08b-not-green');
          const clusterId = (await serving.services.listSites({}))[0]
            ? (await serving.services.getSite({ siteId: (await serving.services.listSites({}))[0]!.id }))
                .clusters[0]!.id
            : 0;
          const log = await serving.services.moduleLog({
            clusterId,
            module: 'web',
            nodeIds: [],
            lines: 100,
            verbose: true,
          });
          throw new Error(
            `${(error as Error).message}\nmodule log:\n${log.map((entry) => `${entry.node} ${entry.level} ${entry.component} ${entry.message}`).join('\n')}`,
          );
        });
    await page.getByTestId('tasks').getByText('done').first().waitFor({ timeout: 30_000 });
    await shot('08-both-green');
  });

  test('a state change made on a node reaches the screen within a second', async () => {
    // In the page (plain JavaScript: this file is type-checked without the DOM library).
    await page.evaluate(`(() => {
      const seen = [];
      window.seenStates = seen;
      const table = document.querySelector('[data-testid=matrix]');
      new MutationObserver(() => {
        const cell = document.querySelector('[data-testid=cell-web-n2]');
        seen.push({ state: cell?.getAttribute('data-state') ?? '', atMs: Number(cell?.getAttribute('data-at')), seenMs: Date.now() });
      }).observe(table, { attributes: true, subtree: true, attributeFilter: ['data-state', 'data-at'] });
    })()`);
    const stopped = await labExec(lab, 'n2', ['/opt/hakit/hakit', 'stop', '-m', 'web']);
    assert.equal(stopped.code, 0, stopped.stderr);
    await page.locator('[data-testid=cell-web-n2][data-state=STOP]').waitFor({ timeout: 5_000 });
    const seen = (await page.evaluate('window.seenStates')) as {
      state: string;
      atMs: number;
      seenMs: number;
    }[];
    const latencies = seen.filter((entry) => entry.atMs > 0).map((entry) => entry.seenMs - entry.atMs);
    assert.ok(latencies.length > 0, JSON.stringify(seen));
    const worstMs = Math.max(...latencies);
    process.stdout.write(
      `event-to-screen latency (agent event time to DOM change): ${latencies.map((ms) => `${ms} ms`).join(', ')}\n`,
    );
    assert.ok(worstMs < 1000, `a state change took ${worstMs} ms to reach the screen`);
    await shot('09-n2-stopped');
  });

  test('a killed agent shows its node unreachable, then back when its supervisor restarts it', async () => {
    await labJson(['fault', '--name', lab, 'kill', 'n1', 'hakitd\\.cjs']);
    await page.locator('[data-testid=node-n1][data-status=unreachable]').waitFor({ timeout: 10_000 });
    assert.equal(await page.getByTestId('cell-web-n1').getAttribute('data-colour'), 'red');
    await shot('10-n1-unreachable');
    await page.locator('[data-testid=node-n1][data-status=connected]').waitFor({ timeout: 40_000 });
    await page
      .locator('[data-testid=cell-web-n1][data-colour=green]')
      .waitFor({ timeout: 40_000 })
      .catch(async (error: unknown) => {
        await shot('10b-n1-not-green');
        throw error;
      });
  });

  test('reads the merged log of both nodes, gathers a snapshot and opens it', async () => {
    await page.getByTestId('tab-Logs').click();
    await page.getByTestId('load-log').click();
    await page
      .getByTestId('module-log')
      .getByText('start_both: starting the application on n1')
      .first()
      .waitFor({ timeout: 15_000 });
    await page
      .getByTestId('module-log')
      .getByText('start_both: starting the application on n2')
      .first()
      .waitFor();
    await shot('11-merged-log');
    await page.getByTestId('tab-Snapshots').click();
    await page.getByTestId('gather').click();
    await page.locator('[data-testid^=open-snapshot-]').first().waitFor({ timeout: 60_000 });
    await page.locator('[data-testid^=open-snapshot-]').first().click();
    await page
      .getByTestId('snapshot-view')
      .or(page.getByTestId('notice-error'))
      .first()
      .waitFor({ timeout: 30_000 })
      .catch(async (error: unknown) => {
        await shot('12b-snapshot-not-open');
        throw error;
      });
    if (await page.getByTestId('notice-error').count())
      assert.fail(await page.getByTestId('notice-error').first().innerText());
    assert.match(
      await page.getByTestId('snapshot-view').innerText(),
      /merged timeline of n1, n2|merged timeline of n2, n1/,
    );
    await page.getByTestId('snapshot-log').getByText('stop_both').first().waitFor();
    await shot('12-snapshot');
    await page.getByTestId('tab-Audit').click();
    await page.getByTestId('audit').getByText('hakit -H "n1,n2" start -m web').waitFor();
  });
});
