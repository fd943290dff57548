// Talks to a JSON-lines control tool (netctl.ts, ../heartbeat/hbctl.ts) running as a child
// process, possibly inside a lab node (`hakit-lab exec NODE -- node --import tsx TOOL`): sends
// one command per line, matches answers by id, keeps background events. Every wait is bounded.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface CtlAnswer {
  readonly id?: number;
  readonly ok?: boolean;
  readonly error?: string;
  readonly event?: string;
  readonly [field: string]: unknown;
}

const eventsMax = 10_000;
const stderrBytesMax = 64 * 1024;

export class CtlClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting = new Map<number, (answer: CtlAnswer) => void>();
  private nextId = 1;
  private stderr = '';
  private exited: string | null = null;
  private readyResolve: () => void = () => undefined;
  private readonly ready: Promise<void>;
  readonly events: CtlAnswer[] = [];

  constructor(
    readonly name: string,
    file: string,
    args: readonly string[],
  ) {
    this.ready = new Promise((resolve) => {
      this.readyResolve = resolve;
    });
    this.child = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => {
      if (this.stderr.length < stderrBytesMax) this.stderr += chunk.toString();
    });
    this.child.on('exit', (code, signal) => {
      this.exited = `${name} exited (${code ?? signal}): ${this.stderr.trim()}`;
      for (const resolve of this.waiting.values()) resolve({ ok: false, error: this.exited });
      this.waiting.clear();
      this.readyResolve();
    });
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      let answer: CtlAnswer;
      try {
        answer = JSON.parse(line) as CtlAnswer;
      } catch {
        return; // Not ours (a tool's stray output).
      }
      if (answer.event === 'ready') this.readyResolve();
      if (typeof answer.id === 'number' && this.waiting.has(answer.id)) {
        this.waiting.get(answer.id)?.(answer);
        this.waiting.delete(answer.id);
      } else if (answer.event !== undefined && this.events.length < eventsMax) this.events.push(answer);
    });
  }

  async waitReady(timeoutMs = 20_000): Promise<void> {
    await this.within(this.ready, timeoutMs, 'to start');
    if (this.exited !== null) throw new Error(this.exited);
  }

  /** Sends a command and returns its answer; a failed command throws with the tool's error. */
  async call<T extends CtlAnswer = CtlAnswer>(
    op: string,
    fields: Record<string, unknown> = {},
    timeoutMs = 20_000,
  ): Promise<T> {
    if (this.exited !== null) throw new Error(this.exited);
    const id = this.nextId++;
    const answered = new Promise<CtlAnswer>((resolve) => this.waiting.set(id, resolve));
    this.child.stdin.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    const answer = await this.within(answered, timeoutMs, `to answer ${op}`).finally(() =>
      this.waiting.delete(id),
    );
    if (answer.ok !== true) throw new Error(`${this.name} ${op}: ${answer.error ?? 'failed'}`);
    return answer as T;
  }

  private within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} took over ${timeoutMs} ms ${what}`)),
        timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Closes stdin (the tool exits) and waits for the exit, killing it past the bound. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.exited !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}
