// Durable storage of the change journal and of the activity log, in the module's state directory.
// journal.log: one JSON record per line, appended in operation order while the peer is away; it
// is fdatasync'd whenever the application fsyncs (so fsync'd data always has a durable record)
// and survives an agent restart through the page cache. state.json says whether the last run
// ended cleanly and on which boot: after a machine crash with unsynced appends the journal may
// miss records, so the caller falls back to comparing files modified since the last sync.
// activity.log: paths the primary touched while connected, each fdatasync'd before the first
// local change to that path in an epoch, so a crashed primary that comes back as secondary tells
// the new primary exactly which paths it may have changed alone.
import { existsSync, readFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalRecord } from './journal.ts';
import { ChangeJournal, formatJournalRecord, parseJournalLine } from './journal.ts';

export interface DataPathState {
  /** Epoch ms of the last moment both sides were known identical (end of a sync, or live). */
  lastSyncMs: number;
  /** The peer missed changes recorded in journal.log since `journalSinceMs`. */
  journalActive: boolean;
  journalSinceMs: number;
  /** Whether the process that wrote this state stopped cleanly. */
  clean: boolean;
  bootId: string;
  /** On a secondary: a reintegration started and did not finish (data inconsistent). */
  syncInProgress: boolean;
  /** On a secondary: data known identical to the primary's at the last syncEnd. */
  upToDate: boolean;
}

export const journalBytesCompactAt = 64 * 1024 * 1024;
export const activityPathsPerEpochMax = 10_000;

export function currentBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

const initialState = (): DataPathState => ({
  lastSyncMs: 0,
  journalActive: false,
  journalSinceMs: 0,
  clean: true,
  bootId: currentBootId(),
  syncInProgress: false,
  upToDate: false,
});

export async function writeFileDurable(file: string, text: string): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await fsp.open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(temporary, file);
}

export class StateFile {
  private constructor(
    readonly file: string,
    public state: DataPathState,
    /** The state as found on disk at open (before this run marked itself unclean). */
    readonly previous: DataPathState,
  ) {}

  static async open(dir: string): Promise<StateFile> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, 'state.json');
    let previous = initialState();
    if (existsSync(file)) {
      try {
        previous = {
          ...initialState(),
          ...(JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<DataPathState>),
        };
      } catch (error) {
        throw new Error(`replication state ${file} is unreadable: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const state = { ...previous, clean: false, bootId: currentBootId() };
    const stateFile = new StateFile(file, state, previous);
    await stateFile.save();
    return stateFile;
  }

  /** Whether the journal written by the previous run can be trusted as complete. */
  get journalTrusted(): boolean {
    return this.previous.clean || this.previous.bootId === currentBootId();
  }

  async update(change: Partial<DataPathState>): Promise<void> {
    this.state = { ...this.state, ...change };
    await this.save();
  }

  /**
   * Saves one at a time, each writing the state as it is when its turn comes: concurrent saves
   * shared one temporary file, so one rename failed (ENOENT) and an older state could land last.
   */
  save(): Promise<void> {
    const saved = this.saving.then(() =>
      writeFileDurable(this.file, `${JSON.stringify(this.state, null, 2)}\n`),
    );
    this.saving = saved.catch(() => undefined);
    return saved;
  }

  private saving: Promise<void> = Promise.resolve();
}

/** Append-only record file with an in-memory ChangeJournal mirror. Appends are serialised. */
export class JournalFile {
  private handle: FileHandle | undefined;
  private bytes = 0;
  private tail: Promise<void> = Promise.resolve();
  journal = new ChangeJournal();

  private constructor(readonly file: string) {}

  static async open(dir: string): Promise<JournalFile> {
    const journalFile = new JournalFile(join(dir, 'journal.log'));
    if (existsSync(journalFile.file)) {
      const text = await fsp.readFile(journalFile.file, 'utf8');
      journalFile.bytes = Buffer.byteLength(text);
      for (const line of text.split('\n')) {
        const record = parseJournalLine(line);
        if (record !== undefined) journalFile.journal.apply(record);
      }
    }
    journalFile.handle = await fsp.open(journalFile.file, 'a', 0o600);
    return journalFile;
  }

  /** Appends in call order; resolves once the records are in the file (page cache). */
  append(records: readonly JournalRecord[]): Promise<void> {
    if (records.length === 0) return this.tail;
    for (const record of records) this.journal.apply(record);
    const text = records.map(formatJournalRecord).join('');
    const run = this.tail.then(async () => {
      const handle = this.handle;
      if (handle === undefined) throw new Error(`journal ${this.file} is closed`);
      await handle.write(text);
      this.bytes += Buffer.byteLength(text);
      if (this.bytes > journalBytesCompactAt) await this.compact();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  sync(): Promise<void> {
    const run = this.tail.then(async () => {
      await this.handle?.datasync();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Rewrites the file as the journal's snapshot (bounded size). */
  private async compact(): Promise<void> {
    const text = this.journal.snapshot().map(formatJournalRecord).join('');
    await this.handle?.close();
    await writeFileDurable(this.file, text);
    this.handle = await fsp.open(this.file, 'a', 0o600);
    this.bytes = Buffer.byteLength(text);
  }

  /** Empties the journal (after a successful reintegration). */
  async reset(): Promise<void> {
    await this.tail;
    await this.handle?.close();
    await writeFileDurable(this.file, '');
    this.handle = await fsp.open(this.file, 'a', 0o600);
    this.bytes = 0;
    this.journal = new ChangeJournal();
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle?.datasync();
    await this.handle?.close();
    this.handle = undefined;
  }
}

/** Paths touched while connected, durable before the first local change of each in an epoch. */
export class ActivityLog {
  private handle: FileHandle | undefined;
  private readonly touched = new Set<string>();
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    readonly previousPaths: readonly string[],
  ) {}

  static async open(dir: string): Promise<ActivityLog> {
    const file = join(dir, 'activity.log');
    const previous = existsSync(file)
      ? (await fsp.readFile(file, 'utf8')).split('\n').filter((line) => line.startsWith('/'))
      : [];
    const log = new ActivityLog(file, [...new Set(previous)]);
    return log;
  }

  /** Starts a new epoch: forgets what was acknowledged by the peer (everything, when called). */
  async newEpoch(): Promise<void> {
    await this.tail;
    await this.handle?.close();
    await writeFileDurable(this.file, '');
    this.handle = await fsp.open(this.file, 'a', 0o600);
    this.touched.clear();
  }

  get size(): number {
    return this.touched.size;
  }

  /** Resolves when `paths` are durably recorded (immediately for paths already in this epoch). */
  touch(paths: readonly string[]): Promise<void> {
    const fresh = paths.filter((path) => !this.touched.has(path));
    if (fresh.length === 0) return Promise.resolve();
    for (const path of fresh) this.touched.add(path);
    const run = this.tail.then(async () => {
      const handle = this.handle;
      if (handle === undefined) throw new Error(`activity log ${this.file} is not open`);
      await handle.write(fresh.map((path) => `${path}\n`).join(''));
      await handle.datasync();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  async close(clear: boolean): Promise<void> {
    await this.tail;
    await this.handle?.close();
    this.handle = undefined;
    if (clear) await writeFileDurable(this.file, '');
  }
}
