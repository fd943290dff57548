// The renderer's only way to the console: the typed console API over the Electron preload bridge
// (`window.hakit`) or, in a browser, over the console server's WebSocket. Calls are bounded in
// time and in number; the WebSocket reconnects with back-off and says so, so views can reload.
import type {
  ClientMessage,
  ConsoleBridge,
  ConsoleEvent,
  MethodName,
  ParamsOf,
  ResultOf,
  ServerMessage,
} from '../../../main/api/contract.ts';

export type Api = { [M in MethodName]: (params: ParamsOf<M>) => Promise<ResultOf<M>> };

const defaultCallTimeoutMs = 60_000;
/** Calls that legitimately run long: installs, the lab, snapshots, deploys. */
const callTimeoutMs: Partial<Record<MethodName, number>> = {
  installNodes: 15 * 60_000,
  tryLocalLab: 20 * 60_000,
  gatherSnapshot: 10 * 60_000,
  deployModule: 5 * 60_000,
  pushCluster: 2 * 60_000,
  preflight: 2 * 60_000,
  clusterPreflight: 2 * 60_000,
  modulePreflight: 2 * 60_000,
  scriptLogs: 2 * 60_000,
  diffModule: 2 * 60_000,
  pullModule: 2 * 60_000,
  unlockSecrets: 2 * 60_000,
};
const pendingCallsMax = 256;
const reconnectMsMax = 10_000;

export class ConsoleCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type ConnectionState = 'connecting' | 'open' | 'closed';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The browser transport: one WebSocket to the console server, reconnected with back-off. */
export class SocketBridge implements ConsoleBridge {
  private socket: WebSocket | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: ConsoleEvent) => void>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private backoffMs = 0;
  private opened: Promise<void>;
  private markOpen: () => void = () => undefined;

  constructor(private readonly url: string) {
    this.opened = new Promise((resolve) => (this.markOpen = resolve));
    this.connect();
  }

  private setState(state: ConnectionState): void {
    for (const listener of this.stateListeners) listener(state);
  }

  onState(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  private connect(): void {
    this.setState('connecting');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.backoffMs = 0;
      this.markOpen();
      this.setState('open');
    };
    socket.onmessage = (message: MessageEvent<string>) => {
      let parsed: ServerMessage;
      try {
        parsed = JSON.parse(message.data) as ServerMessage;
      } catch {
        return;
      }
      if ('event' in parsed) {
        for (const listener of this.listeners) listener(parsed.event);
        return;
      }
      const waiting = this.pending.get(parsed.id);
      if (!waiting) return;
      this.pending.delete(parsed.id);
      clearTimeout(waiting.timer);
      if ('error' in parsed) waiting.reject(new ConsoleCallError(parsed.error.code, parsed.error.message));
      else waiting.resolve(parsed.result);
    };
    socket.onclose = () => {
      for (const [id, waiting] of this.pending) {
        clearTimeout(waiting.timer);
        waiting.reject(
          new ConsoleCallError('unreachable', 'the connection to the console was lost during the call'),
        );
        this.pending.delete(id);
      }
      this.opened = new Promise((resolve) => (this.markOpen = resolve));
      this.setState('closed');
      this.backoffMs = Math.min(reconnectMsMax, Math.max(250, this.backoffMs * 2));
      setTimeout(() => this.connect(), this.backoffMs);
    };
  }

  async call(method: string, params: unknown): Promise<unknown> {
    if (this.pending.size >= pendingCallsMax)
      throw new ConsoleCallError('refused', 'too many console calls at once');
    await this.opened;
    const id = this.nextId++;
    const timeoutMs = callTimeoutMs[method as MethodName] ?? defaultCallTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ConsoleCallError('unreachable', `${method} got no answer within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      const message: ClientMessage = { id, method, params };
      this.socket?.send(JSON.stringify(message));
    });
  }

  onEvent(listener: (event: ConsoleEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

declare global {
  interface Window {
    hakit?: ConsoleBridge;
  }
}

/** The token comes in the URL fragment once; it is kept for this tab and removed from the address bar. */
function serverToken(): string {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('hakit-token', fromHash);
    history.replaceState(null, '', location.pathname + location.search);
    return fromHash;
  }
  return sessionStorage.getItem('hakit-token') ?? '';
}

export function connectBridge(): { bridge: ConsoleBridge; socket: SocketBridge | null } {
  if (window.hakit) return { bridge: window.hakit, socket: null };
  const protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new SocketBridge(
    `${protocol}//${location.host}/rpc?token=${encodeURIComponent(serverToken())}`,
  );
  return { bridge: socket, socket };
}

export function createApi(bridge: ConsoleBridge): Api {
  return new Proxy({} as Api, {
    get: (_target, method: string) => async (params: unknown) => {
      try {
        return await bridge.call(method, params ?? {});
      } catch (error) {
        if (error instanceof ConsoleCallError) throw error;
        const shaped = error as Error;
        throw new ConsoleCallError(shaped.name || 'internal', shaped.message);
      }
    },
  });
}
