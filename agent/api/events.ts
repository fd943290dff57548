// The event stream (Server-Sent Events): module state changes, resource changes and log lines.
// Every event gets a sequence id; a client that reconnects with Last-Event-ID gets what it
// missed from a bounded history. Each client has a bounded queue: one that does not read is
// disconnected rather than allowed to grow the daemon's memory.
import type { ServerResponse } from 'node:http';

export interface HakitEvent {
  id: number;
  type: 'state' | 'resource' | 'log';
  module: string;
  timeMs: number;
  data: unknown;
}

export const historyEventsMax = 2048;
export const clientQueueBytesMax = 1024 * 1024;
const keepAliveMs = 15_000;

interface Client {
  response: ServerResponse;
  module: string | null;
  types: ReadonlySet<string> | null;
}

export class EventHub {
  private nextId = 1;
  private readonly history: HakitEvent[] = [];
  private readonly clients = new Set<Client>();
  private readonly keepAlive: NodeJS.Timeout;

  constructor() {
    this.keepAlive = setInterval(() => {
      for (const client of this.clients) this.write(client, ': keep-alive\n\n');
    }, keepAliveMs);
    this.keepAlive.unref();
  }

  publish(event: Omit<HakitEvent, 'id'>): HakitEvent {
    const full: HakitEvent = { ...event, id: this.nextId };
    this.nextId += 1;
    this.history.push(full);
    if (this.history.length > historyEventsMax) this.history.shift();
    for (const client of this.clients) this.send(client, full);
    return full;
  }

  private matches(client: Client, event: HakitEvent): boolean {
    return (
      (client.module === null || client.module === event.module) &&
      (client.types === null || client.types.has(event.type))
    );
  }

  private write(client: Client, text: string): void {
    if (client.response.writableLength > clientQueueBytesMax) {
      // A client this far behind has stopped reading: cut it off; it can resume by id.
      client.response.destroy();
      this.clients.delete(client);
      return;
    }
    client.response.write(text);
  }

  private send(client: Client, event: HakitEvent): void {
    if (!this.matches(client, event)) return;
    this.write(client, `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /** Attaches a client; replays what came after `lastEventId` if the history still holds it. */
  attach(
    response: ServerResponse,
    options: { module: string | null; types: string[] | null; lastEventId: number | null },
  ): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = {
      response,
      module: options.module,
      types: options.types ? new Set(options.types) : null,
    };
    response.write('retry: 1000\n\n');
    if (options.lastEventId !== null) {
      const oldest = this.history[0]?.id ?? this.nextId;
      if (options.lastEventId + 1 < oldest) {
        // Part of what the client missed is gone: tell it to reload the full state.
        response.write(`event: reset\ndata: ${JSON.stringify({ oldestId: oldest })}\n\n`);
      }
      for (const event of this.history) if (event.id > options.lastEventId) this.send(client, event);
    }
    this.clients.add(client);
    response.on('close', () => this.clients.delete(client));
  }

  clientCount(): number {
    return this.clients.size;
  }

  close(): void {
    clearInterval(this.keepAlive);
    for (const client of this.clients) client.response.end();
    this.clients.clear();
  }
}
