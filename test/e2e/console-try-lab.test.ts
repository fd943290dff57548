// "Try it on a local lab", end to end in Debian's Chromium: on a first start (master passphrase),
// the button on the welcome page creates lab "console" with hakit-lab, installs the agents over
// SSH with the real installer, pushes cluster.xml, creates a mirror module, runs the agents'
// pre-flight, deploys it, starts it as primary on n1 and secondary on n2, and opens the live view
// with PRIM and SECOND green. Every step is shown on screen as it runs.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { serveConsole, type Serving } from '../../main/server/serve.ts';
import { labName } from '../../main/services/lab/local-lab.ts';
import {
  buildAgentPackage,
  chromiumArgs,
  consoleLabSkipReason,
  labDown,
  repoDir,
  workDirFor,
} from './console-lab.ts';

const chromiumPath = '/usr/bin/chromium';
const shotsDir = join(repoDir, 'test-results', 'e2e');
const rendererBuilt = existsSync(join(repoDir, 'dist', 'renderer', 'index.html'));
const skip =
  consoleLabSkipReason() ??
  (!existsSync(chromiumPath) ? `Debian's Chromium is not installed at ${chromiumPath}` : undefined) ??
  (!rendererBuilt ? 'the renderer is not built (node build.mjs)' : undefined);

describe('Try it on a local lab, from the welcome page', { skip, timeout: 900_000 }, () => {
  let workDir = '';
  let serving: Serving;
  let browser: Browser;
  let page: Page;

  const shot = (name: string) =>
    page.screenshot({ path: join(shotsDir, `try-lab-${name}.png`), fullPage: true });

  before(async () => {
    workDir = workDirFor('try-lab');
    mkdirSync(shotsDir, { recursive: true });
    // The agent package of this tree (dist/ may hold an older one).
    process.env.HAKIT_AGENT_PACKAGE = await buildAgentPackage(workDir);
    serving = await serveConsole({
      rootDir: repoDir,
      dataDir: join(workDir, 'console'),
      forceFileSecrets: true,
      log: () => undefined,
    });
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on('pageerror', (error) => process.stderr.write(`page error: ${error.message}\n`));
  });

  after(async () => {
    await browser?.close();
    await serving?.close();
    delete process.env.HAKIT_AGENT_PACKAGE;
    await labDown(labName);
    rmSync(workDir, { recursive: true, force: true });
  });

  test('one click: lab, install, module, pre-flight, deploy, start; the live view shows PRIM and SECOND', async () => {
    await page.goto(serving.url);
    await page.getByTestId('unlock-dialog').waitFor();
    await page.getByTestId('passphrase').fill('try the lab passphrase');
    await page.getByTestId('unlock').click();
    await page.getByTestId('unlock-dialog').waitFor({ state: 'detached' });
    const button = page.getByTestId('try-lab');
    await button.waitFor();
    assert.equal(await page.getByTestId('lab-unavailable').count(), 0, 'available as root on Linux');
    // Every step's last status as the page showed it (the list goes away with the welcome page).
    await page.evaluate(`(() => {
      const seen = {};
      window.labSeen = seen;
      new MutationObserver(() => {
        for (const item of document.querySelectorAll('[data-testid^="lab-step-"]'))
          seen[item.getAttribute('data-testid').slice('lab-step-'.length)] = item.textContent.trim();
      }).observe(document.body, { childList: true, subtree: true, attributes: true, characterData: true });
    })()`);
    const startedMs = Date.now();
    await button.click();
    // Progress: each step appears while it runs, then says done.
    await page.getByTestId('lab-step-create a two-node lab').waitFor({ timeout: 10_000 });
    assert.equal(
      await page.getByTestId('lab-step-create a two-node lab').getAttribute('data-status'),
      'running',
    );
    await shot('01-creating');
    await page
      .locator('[data-testid="lab-step-install the agents over SSH"][data-status=running]')
      .waitFor({ timeout: 180_000 });
    await shot('02-installing');
    // When the flow ends the console opens the new cluster's live view (the welcome page and its
    // step list go away): follow the steps until then, stop at the first failed one.
    let lastSteps = '';
    let sawInstallTable = false;
    const deadlineMs = Date.now() + 600_000;
    for (;;) {
      if ((await page.locator('[data-testid^=lab-step-][data-status=failed]').count()) > 0) {
        await shot('02b-failed');
        assert.fail(`a step failed:\n${await page.getByTestId('lab-steps').innerText()}`);
      }
      if ((await page.getByTestId('lab-steps').count()) > 0)
        lastSteps = await page
          .getByTestId('lab-steps')
          .innerText()
          .catch(() => lastSteps);
      if ((await page.locator('[data-testid=step-n2-check][data-status=done]').count()) > 0)
        sawInstallTable = true;
      if ((await page.getByTestId('matrix').count()) > 0) break;
      assert.ok(Date.now() < deadlineMs, `no live view after 10 minutes; last steps seen:\n${lastSteps}`);
      await new Promise((done) => setTimeout(done, 250));
    }
    const seen = (await page.evaluate('window.labSeen')) as Record<string, string>;
    lastSteps = Object.values(seen).join('\n');
    process.stdout.write(
      `local lab: live view after ${Date.now() - startedMs} ms; last steps seen:\n${lastSteps}\n`,
    );
    assert.ok(sawInstallTable, 'the per-node, per-step install progress was on screen');
    for (const step of [
      'create a two-node lab: done',
      'install the agents over SSH: done',
      'push cluster.xml and the node trust: done',
      'create a sample mirror module: done',
      'pre-flight on the nodes: done',
      'deploy it: done',
      'start it: primary on n1, secondary on n2: done',
    ])
      assert.ok(lastSteps.includes(step), `${step} in\n${lastSteps}`);
    // The flow ends in the live view of the new cluster.
    await page
      .locator('[data-testid=cell-demo-n1][data-state=PRIM][data-colour=green]')
      .waitFor({ timeout: 30_000 });
    await page
      .locator('[data-testid=cell-demo-n2][data-state=SECOND][data-colour=green]')
      .waitFor({ timeout: 30_000 });
    await shot('03-live');
    const site = (await serving.services.listSites({})).find((candidate) => candidate.name === 'local-lab');
    assert.ok(site, 'the lab site is in the store');
    assert.equal(site.nodeCount, 2);
  });
});
