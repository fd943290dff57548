// The preload bridge: exposes one object, `window.hakit`, with `call(method, params)` and
// `onEvent(listener)`, and nothing else of Electron or Node to the page.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import type { ConsoleBridge, ConsoleErrorShape, ConsoleEvent } from '../api/contract.ts';

type Reply = { ok: true; result: unknown } | { ok: false; error: ConsoleErrorShape };

const bridge: ConsoleBridge = {
  async call(method: string, params: unknown): Promise<unknown> {
    const reply = (await ipcRenderer.invoke('hakit:call', method, params)) as Reply;
    if (reply.ok) return reply.result;
    const error = new Error(reply.error.message);
    error.name = reply.error.code;
    throw error;
  },
  onEvent(listener: (event: ConsoleEvent) => void): () => void {
    const handler = (_event: IpcRendererEvent, payload: ConsoleEvent) => listener(payload);
    ipcRenderer.on('hakit:event', handler);
    return () => ipcRenderer.removeListener('hakit:event', handler);
  },
};

contextBridge.exposeInMainWorld('hakit', bridge);
