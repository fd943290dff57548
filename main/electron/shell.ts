// The Electron shell, and the only file (with the preload) that imports Electron: one window,
// sandboxed, context-isolated, no Node in the page, a strict CSP, navigation and new windows
// refused, and one IPC channel into the same console services server mode uses.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  type MenuItemConstructorOptions,
  session,
} from 'electron';
import type { ConsoleEvent } from '../api/contract.ts';
import type { ConsoleServices } from '../services/console-services.ts';
import { createConsole } from '../services/create-console.ts';
import { dispatch, RpcError } from '../server/rpc.ts';

// Bundled to dist/main/electron.cjs (development) or app.asar/dist/main (packaged).
const distDir = resolve(import.meta.dirname, '..');
const rendererIndex = join(distDir, 'renderer', 'index.html');
const csp = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

let services: ConsoleServices | null = null;

function menu(): Menu {
  const template: MenuItemConstructorOptions[] = [
    { label: 'File', submenu: [{ role: 'quit' }] },
    {
      label: 'Edit',
      submenu: [
        { role: 'undo' },
        { role: 'redo' },
        { type: 'separator' },
        { role: 'cut' },
        { role: 'copy' },
        { role: 'paste' },
        { role: 'selectAll' },
      ],
    },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        { role: 'toggleDevTools' },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
      ],
    },
    {
      label: 'Help',
      submenu: [
        {
          label: 'About hakit console',
          click: () =>
            void dialog.showMessageBox({
              message: `hakit console ${app.getVersion()}`,
              detail: 'Open high-availability cluster kit',
            }),
        },
      ],
    },
  ];
  return Menu.buildFromTemplate(template);
}

function createWindow(api: ConsoleServices): BrowserWindow {
  const created = new BrowserWindow({
    width: 1360,
    height: 880,
    title: 'hakit console',
    show: false,
    webPreferences: {
      preload: join(distDir, 'main', 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      webviewTag: false,
      spellcheck: false,
    },
  });
  created.once('ready-to-show', () => created.show());
  created.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  created.webContents.on('will-navigate', (event) => event.preventDefault());
  const forward = (event: ConsoleEvent) => {
    if (!created.isDestroyed()) created.webContents.send('hakit:event', event);
  };
  const unsubscribe = api.onEvent(forward);
  created.on('closed', unsubscribe);
  void created.loadFile(rendererIndex);
  return created;
}

async function start(): Promise<void> {
  await app.whenReady();
  // The CSP also as a header (the page carries it as a meta tag too).
  session.defaultSession.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } }),
  );
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  const resourcesDir = app.isPackaged ? process.resourcesPath : resolve(distDir, '..', 'resources');
  services = await createConsole({
    transport: 'electron',
    dataDir: process.env.HAKIT_CONSOLE_DIR ?? join(app.getPath('userData'), 'console'),
    resourcesDir,
    agentPackageDirs: app.isPackaged ? [join(process.resourcesPath, 'agent-package')] : [distDir],
    labCli: app.isPackaged ? null : join(distDir, 'lab', 'hakit-lab.cjs'),
    repoDir: app.isPackaged ? null : resolve(distDir, '..'),
  });
  const api = services;
  const expectedUrl = pathToFileURL(rendererIndex).href;
  ipcMain.handle('hakit:call', async (event, method: unknown, params: unknown) => {
    // Only our own page may call: not a frame, not a page navigated elsewhere.
    if (event.senderFrame?.url !== expectedUrl)
      throw new Error('console API refused: caller is not the console page');
    try {
      return {
        ok: true,
        result:
          (await dispatch(api, method, params, (text) => api.secrets.redact(text), console.error)) ?? null,
      };
    } catch (error) {
      return {
        ok: false,
        error: error instanceof RpcError ? error.shape : { code: 'internal', message: String(error) },
      };
    }
  });
  Menu.setApplicationMenu(menu());
  createWindow(api);
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow(api);
  });
}

app.on('window-all-closed', () => {
  services?.close();
  services = null;
  app.quit();
});

start().catch((error: unknown) => {
  dialog.showErrorBox('hakit console cannot start', error instanceof Error ? error.message : String(error));
  app.exit(1);
});
