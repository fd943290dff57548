// The Electron shell: the window opens on the console page, the page has no Node (no require, no
// process), and the preload's one bridge reaches the same services (transport "electron").
// Electron's binary cannot be downloaded on every machine: without it this test skips and says so.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { _electron as electron } from 'playwright-core';
import { electronBinary } from '../../main/electron-binary.ts';
import { repoDir } from './console-lab.ts';

const binary = electronBinary(repoDir);
const shell = join(repoDir, 'dist', 'main', 'electron.cjs');
const skip =
  binary.path === null
    ? `${binary.reason}: Electron cannot be launched here (its download needs a network this machine does not have)`
    : !existsSync(shell)
      ? `the shell is not built (${shell}); run node build.mjs`
      : undefined;

describe('Electron shell', () => {
  test('opens the console window with a sandboxed page and one bridge', { skip }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'hakit-electron-'));
    const app = await electron.launch({
      executablePath: binary.path ?? '',
      args: ['--no-sandbox', shell],
      env: { ...process.env, HAKIT_CONSOLE_DIR: dataDir, HAKIT_CONSOLE_SECRETS: 'file' },
    });
    try {
      const window = await app.firstWindow();
      assert.equal(await window.title(), 'hakit console');
      const page = await window.evaluate(async () => ({
        require: typeof (globalThis as { require?: unknown }).require,
        process: typeof (globalThis as { process?: unknown }).process,
        bridge: Object.keys((window as unknown as { hakit: object }).hakit).sort(),
        transport: (
          (await (
            window as unknown as { hakit: { call(m: string, p: unknown): Promise<{ transport: string }> } }
          ).hakit.call('consoleInfo', {})) as { transport: string }
        ).transport,
      }));
      assert.deepEqual(page, {
        require: 'undefined',
        process: 'undefined',
        bridge: ['call', 'onEvent'],
        transport: 'electron',
      });
    } finally {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
