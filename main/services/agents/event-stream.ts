// One node's live connection: the agent's Server-Sent Events over HTTPS with the pinned
// certificate, the full module list loaded once the stream is open (and again after a `reset`),
// reconnection with bounded exponential back-off resuming from Last-Event-ID. Callers get state,
// log and connection-status callbacks; nothing here knows about the UI.
import type { IncomingMessage } from 'node:http';
import type { ClientRequest } from 'node:http';
import { type AgentEndpoint, agentJson, openAgentRequest } from './pinned-https.ts';

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export const sseLineBytesMax = 1024 * 1024;

/** Incremental SSE parser (pure): feed text, get whole messages. */
export class SseParser {
  private buffer = '';
  private id: string | null = null;
  private event = '';
  private data: string[] = [];

  feed(text: string): SseMessage[] {
    this.buffer += text;
    if (this.buffer.length > sseLineBytesMax && !this.buffer.includes('\n'))
      throw new Error(`event stream line longer than ${sseLineBytesMax} bytes`);
    const messages: SseMessage[] = [];
    let newline = this.buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') {
        if (this.data.length > 0 || this.event !== '')
          messages.push({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
      } else if (!line.startsWith(':')) {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') this.data.push(value);
        else if (field === 'event') this.event = value;
        else if (field === 'id') this.id = value;
      }
      newline = this.buffer.indexOf('\n');
    }
    return messages;
  }
}

export interface AgentModuleState {
  module: string;
  configured: boolean;
  state: string | null;
  readiness: string | null;
  detail: string[];
  /** Extra fields some modules report (mirror: uptodate, degraded, reintegration). */
  extra: Record<string, unknown>;
  atMs: number;
}

export interface AgentLogEntry {
  module: string;
  timeMs: number;
  level: string;
  component: string;
  message: string;
}

export interface NodeStreamListener {
  status(
    status: 'connecting' | 'connected' | 'unreachable',
    detail: string,
    info: { version: string | null; clockSkewMs: number | null },
  ): void;
  /** The full list (after connect or reset): modules missing from it are gone from the node. */
  fullState(modules: AgentModuleState[]): void;
  state(update: AgentModuleState): void;
  log(entry: AgentLogEntry): void;
}

export const backoffMsMin = 500;
export const backoffMsMax = 10_000;
/** No byte for this long (the agent sends keep-alives every 15 s): the connection is dead. */
export const silenceMsMax = 40_000;
export const pendingEventsMax = 10_000;

export function nextBackoffMs(previousMs: number): number {
  return Math.min(backoffMsMax, Math.max(backoffMsMin, previousMs * 2));
}

export function clockSkewOf(dateHeader: string | undefined, localMs: number): number | null {
  if (!dateHeader) return null;
  const remoteMs = Date.parse(dateHeader);
  if (Number.isNaN(remoteMs)) return null;
  // The header has one-second resolution: round the difference to whole seconds.
  return Math.round((remoteMs - localMs) / 1000) * 1000;
}

function toModuleState(raw: Record<string, unknown>, module: string, atMs: number): AgentModuleState {
  const { state, readiness, detail, configured, ...extra } = raw;
  delete extra.busy;
  delete extra.module;
  return {
    module,
    configured: configured !== false,
    state: typeof state === 'string' ? state : null,
    readiness: typeof readiness === 'string' ? readiness : null,
    detail: Array.isArray(detail) ? detail.filter((item): item is string => typeof item === 'string') : [],
    extra,
    atMs,
  };
}

export class NodeStream {
  private request: ClientRequest | null = null;
  private timer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private lastEventId: string | null = null;
  private closed = false;
  private version: string | null = null;
  /** Events that arrive while the full list loads, applied after it (so the newest wins). */
  private pending: SseMessage[] | null = null;

  constructor(
    private readonly endpoint: AgentEndpoint,
    private readonly listener: NodeStreamListener,
    private readonly options: { withLogs: boolean },
  ) {}

  start(): void {
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.request?.destroy();
    this.request = null;
  }

  private scheduleReconnect(detail: string): void {
    if (this.closed) return;
    this.request = null;
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.backoffMs = nextBackoffMs(this.backoffMs);
    this.listener.status('unreachable', `${detail}; retrying in ${(this.backoffMs / 1000).toFixed(1)} s`, {
      version: this.version,
      clockSkewMs: null,
    });
    this.timer = setTimeout(() => this.connect(), this.backoffMs);
  }

  private armSilence(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      this.request?.destroy(new Error(`no data for ${silenceMsMax / 1000} s`));
    }, silenceMsMax);
  }

  private async loadFull(fail: (detail: string) => void): Promise<void> {
    const atMs = Date.now();
    this.pending = [];
    try {
      const answer = await agentJson<{ modules: Record<string, unknown>[] }>(
        this.endpoint,
        'GET',
        '/api/v1/modules',
        undefined,
        15_000,
      );
      if (this.closed) return;
      this.listener.fullState(
        answer.modules.map((raw) =>
          toModuleState(raw, typeof raw.module === 'string' ? raw.module : '?', atMs),
        ),
      );
    } finally {
      const replay = this.pending ?? [];
      this.pending = null;
      for (const message of replay) this.dispatch(message, fail);
    }
  }

  private connect(): void {
    if (this.closed) return;
    this.pending = null;
    this.listener.status('connecting', `https://${this.endpoint.host}:${this.endpoint.port}`, {
      version: this.version,
      clockSkewMs: null,
    });
    const types = this.options.withLogs ? 'state,log' : 'state';
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.lastEventId !== null) headers['last-event-id'] = this.lastEventId;
    const request = openAgentRequest(this.endpoint, 'GET', `/api/v1/events?types=${types}`, headers, 15_000);
    this.request = request;
    let failed = false;
    const fail = (detail: string) => {
      if (failed || this.request !== request) return;
      failed = true;
      request.destroy();
      this.scheduleReconnect(detail);
    };
    request.on('response', (response: IncomingMessage) => {
      if (response.statusCode !== 200) {
        response.resume();
        fail(`event stream answered ${response.statusCode}`);
        return;
      }
      // The stream is open: from now on nothing is missed, so the full state loaded now is current.
      request.setTimeout(0);
      this.armSilence();
      const skew = clockSkewOf(response.headers.date, Date.now());
      void this.loadLevelAndFull(skew, fail).catch((error: unknown) =>
        fail(`loading the module list: ${(error as Error).message}`),
      );
      const parser = new SseParser();
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        this.armSilence();
        let messages: SseMessage[];
        try {
          messages = parser.feed(chunk);
        } catch (error) {
          fail((error as Error).message);
          return;
        }
        for (const message of messages) this.dispatch(message, fail);
      });
      response.on('end', () => fail('the agent closed the event stream'));
      response.on('error', (error) => fail(error.message));
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 15 s')));
    request.on('error', (error: Error) => fail(error.message));
    request.end();
  }

  private async loadLevelAndFull(clockSkewMs: number | null, fail: (detail: string) => void): Promise<void> {
    this.pending = [];
    const level = await agentJson<{ version: string }>(
      this.endpoint,
      'GET',
      '/api/v1/level',
      undefined,
      15_000,
    );
    this.version = level.version;
    await this.loadFull(fail);
    if (this.closed) return;
    this.backoffMs = 0;
    this.listener.status('connected', `agent ${level.version}`, { version: level.version, clockSkewMs });
  }

  private dispatch(message: SseMessage, fail: (detail: string) => void): void {
    if (this.pending !== null) {
      if (this.pending.length >= pendingEventsMax) {
        fail(`more than ${pendingEventsMax} events while the module list loaded`);
        return;
      }
      this.pending.push(message);
      return;
    }
    if (message.id !== null) this.lastEventId = message.id;
    if (message.event === 'reset') {
      void this.loadFull(fail).catch((error: unknown) =>
        fail(`reloading after reset: ${(error as Error).message}`),
      );
      return;
    }
    let event: { module?: unknown; timeMs?: unknown; data?: unknown };
    try {
      event = JSON.parse(message.data) as typeof event;
    } catch {
      return;
    }
    const module = typeof event.module === 'string' ? event.module : null;
    const timeMs = typeof event.timeMs === 'number' ? event.timeMs : Date.now();
    if (module === null || typeof event.data !== 'object' || event.data === null) return;
    const data = event.data as Record<string, unknown>;
    if (message.event === 'state') this.listener.state(toModuleState(data, module, timeMs));
    else if (message.event === 'log') {
      this.listener.log({
        module,
        timeMs: typeof data.timeMs === 'number' ? data.timeMs : timeMs,
        level: typeof data.level === 'string' ? data.level : '?',
        component: typeof data.component === 'string' ? data.component : '',
        message: typeof data.message === 'string' ? data.message : '',
      });
    }
  }
}
