// The node's command audit log (reference 7.9, `hakit cmdlog`): one JSON line when a command
// starts and one when it ends, with its exit code; bounded by rotation.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ControlRequest, ControlResponse } from './control-protocol.ts';

export const auditFileBytesMax = 8 * 1024 * 1024;

export interface AuditEntry {
  timeMs: number;
  phase: 'START' | 'END';
  verb: string;
  module: string | null;
  caller: string;
  args: string[];
  exitCode?: number;
}

export class CommandAudit {
  private sequence = 0;

  constructor(private readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
  }

  private append(entry: AuditEntry & { id: number }): void {
    if (existsSync(this.file) && statSync(this.file).size > auditFileBytesMax)
      renameSync(this.file, `${this.file}.1`);
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`, { mode: 0o640 });
  }

  async around(request: ControlRequest, work: () => Promise<ControlResponse>): Promise<ControlResponse> {
    this.sequence += 1;
    const id = this.sequence;
    const base = {
      id,
      verb: request.verb,
      module: request.module ?? null,
      caller: request.caller,
      args: request.args,
    };
    // Reads that run every second (state polling) would drown the log: only actions are audited.
    const audited = !['ping', 'state', 'get', 'log'].includes(request.verb);
    if (audited) this.append({ ...base, timeMs: Date.now(), phase: 'START' });
    const response = await work();
    if (audited) this.append({ ...base, timeMs: Date.now(), phase: 'END', exitCode: response.exitCode });
    return response;
  }

  tail(count: number): AuditEntry[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .slice(-count)
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as AuditEntry];
        } catch {
          return [];
        }
      });
  }
}
