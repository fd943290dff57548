// Tells the LAN that an address moved here: gratuitous ARP (IPv4, iputils `arping -U`) or
// unsolicited neighbour advertisements (IPv6, libndp's `ndptool -t na -U`). On takeover a burst,
// repeated a few times (a switch or host that missed the first one, or a Linux host inside its
// one-second `locktime`, gets the next); then, when `arpreroute` is on, one announcement every
// `arpinterval` for `arpelapse` (reference 4.6), which also repairs caches poisoned during a
// split brain (keepalived issue 166).
//
// For IPv6 the kernel itself sends one unsolicited NA when DAD completes if the interface has
// `ndisc_notify` set (vip.ts sets it); ndptool adds the repeats and is optional: without it the
// kernel's single NA is all that is sent, and that is reported once.
import { familyOf } from './addresses.ts';
import { type CommandRunner, NetCommandError, runCommand } from './command.ts';

export interface AnnounceSettings {
  /** Announcements per burst. */
  readonly burstCount: number;
  readonly burstIntervalMs: number;
  /** Bursts again after these delays from the start. */
  readonly repeatDelaysMs: readonly number[];
  /** `arpreroute`: one announcement every interval until `refreshElapseMs`; 0 disables it. */
  readonly refreshIntervalMs: number;
  readonly refreshElapseMs: number;
  /** ARP request (`-U`, what keepalived sends) or ARP reply (`-A`). IPv4 only. */
  readonly arpMode: 'request' | 'reply';
}

/** IPaddr2's 5 at 200 ms, keepalived's repeat after 5 s, plus one after 1 s (past locktime). */
export const announceDefaults: AnnounceSettings = {
  burstCount: 5,
  burstIntervalMs: 200,
  repeatDelaysMs: [1_000, 5_000],
  refreshIntervalMs: 0,
  refreshElapseMs: 0,
  arpMode: 'request',
};

export const burstCountMax = 20;
export const repeatsMax = 10;
/** Announcement commands running at once; more are skipped and counted. */
export const announcementsInFlightMax = 16;

export interface AnnounceTarget {
  readonly interfaceName: string;
  readonly address: string;
}

export interface AnnounceReport {
  readonly sent: number;
  readonly failed: number;
  readonly skipped: number;
}

export interface AnnounceHooks {
  onError(error: Error): void;
}

/** Sends one announcement for the address; resolves when the command has finished. */
export async function announceOnce(
  target: AnnounceTarget,
  arpMode: AnnounceSettings['arpMode'] = 'request',
  run: CommandRunner = runCommand,
): Promise<void> {
  if (familyOf(target.address) === 4) {
    await run(
      'arping',
      [arpMode === 'request' ? '-U' : '-A', '-c', '1', '-I', target.interfaceName, target.address],
      {
        timeoutMs: 3_000,
      },
    );
  } else {
    await run('ndptool', ['-t', 'na', '-U', '-i', target.interfaceName, '-T', target.address, 'send'], {
      timeoutMs: 3_000,
    });
  }
}

function validate(settings: AnnounceSettings): void {
  const { burstCount, burstIntervalMs, repeatDelaysMs, refreshIntervalMs, refreshElapseMs } = settings;
  if (!Number.isInteger(burstCount) || burstCount < 1 || burstCount > burstCountMax)
    throw new Error(`announce: burst of 1 to ${burstCountMax}, got ${burstCount}`);
  if (burstIntervalMs < 0 || repeatDelaysMs.some((delay) => delay < 0) || repeatDelaysMs.length > repeatsMax)
    throw new Error(`announce: negative delays or more than ${repeatsMax} repeats`);
  if (refreshIntervalMs < 0 || refreshElapseMs < 0 || (refreshIntervalMs > 0 && refreshIntervalMs < 1_000))
    throw new Error('announce: the refresh interval must be 0 (off) or at least 1 s');
}

/**
 * Announces an address: bursts now and at each repeat delay, then the periodic refresh. Errors
 * go to hooks.onError (never thrown); a missing ndptool is reported once and stops the IPv6
 * repeats, since the kernel's NA already went out.
 */
export class Announcer {
  private readonly timers = new Set<NodeJS.Timeout>();
  private started = false;
  private inFlight = 0;
  private sent = 0;
  private failed = 0;
  private skipped = 0;
  private cancelled = false;
  private toolMissing = false;
  private resolveDone: (report: AnnounceReport) => void = () => undefined;
  private pending = 0;
  readonly done: Promise<AnnounceReport>;

  constructor(
    private readonly target: AnnounceTarget,
    private readonly settings: AnnounceSettings,
    private readonly hooks: AnnounceHooks,
    private readonly run: CommandRunner = runCommand,
  ) {
    familyOf(target.address);
    validate(settings);
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  start(): void {
    if (this.started) throw new Error('announcer already started');
    this.started = true;
    const { burstCount, burstIntervalMs, repeatDelaysMs, refreshIntervalMs, refreshElapseMs } = this.settings;
    for (const burstAtMs of [0, ...repeatDelaysMs]) {
      for (let index = 0; index < burstCount; index += 1) this.at(burstAtMs + index * burstIntervalMs);
    }
    if (refreshIntervalMs > 0) {
      for (let atMs = refreshIntervalMs; atMs <= refreshElapseMs; atMs += refreshIntervalMs) this.at(atMs);
    }
  }

  /** Stops every announcement not yet sent (the VIP is being released). */
  cancel(): void {
    this.cancelled = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.pending -= this.timers.size;
    this.skipped += this.timers.size;
    this.timers.clear();
    this.settleIfDone();
  }

  private at(delayMs: number): void {
    this.pending += 1;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.fire();
    }, delayMs);
    this.timers.add(timer);
  }

  private settleIfDone(): void {
    if (this.pending === 0 && this.inFlight === 0)
      this.resolveDone({ sent: this.sent, failed: this.failed, skipped: this.skipped });
  }

  private fire(): void {
    this.pending -= 1;
    if (this.cancelled || this.toolMissing || this.inFlight >= announcementsInFlightMax) {
      this.skipped += 1;
      this.settleIfDone();
      return;
    }
    this.inFlight += 1;
    announceOnce(this.target, this.settings.arpMode, this.run)
      .then(
        () => {
          this.sent += 1;
        },
        (error: unknown) => {
          this.failed += 1;
          if (error instanceof NetCommandError && error.code === 'ENOENT') {
            if (this.toolMissing) return;
            this.toolMissing = true;
          }
          const { interfaceName, address } = this.target;
          this.hooks.onError(
            new Error(`announcing ${address} on ${interfaceName}: ${(error as Error).message}`, {
              cause: error,
            }),
          );
        },
      )
      .finally(() => {
        this.inFlight -= 1;
        this.settleIfDone();
      });
  }
}
