// Browser sessions (cookie `sessionSK`, reference 9.2) and failed-login throttling. In memory:
// a daemon restart logs everyone out, which is the safe direction.
import { randomBytes } from 'node:crypto';
import type { Role } from './credentials.ts';

export const sessionIdleMsMax = 8 * 3600_000;
export const sessionsMax = 10_000;

interface Session {
  user: string;
  role: Role;
  lastUsedMs: number;
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();

  create(user: string, role: Role, nowMs: number): string {
    this.expire(nowMs);
    if (this.sessions.size >= sessionsMax) {
      // Drop the least recently used: a flood of logins cannot grow memory without bound.
      const oldest = [...this.sessions.entries()].sort((a, b) => a[1].lastUsedMs - b[1].lastUsedMs)[0];
      if (oldest) this.sessions.delete(oldest[0]);
    }
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, { user, role, lastUsedMs: nowMs });
    return id;
  }

  check(id: string, nowMs: number): { user: string; role: Role } | null {
    const session = this.sessions.get(id);
    if (!session) return null;
    if (nowMs - session.lastUsedMs > sessionIdleMsMax) {
      this.sessions.delete(id);
      return null;
    }
    session.lastUsedMs = nowMs;
    return { user: session.user, role: session.role };
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  private expire(nowMs: number): void {
    for (const [id, session] of this.sessions) {
      if (nowMs - session.lastUsedMs > sessionIdleMsMax) this.sessions.delete(id);
    }
  }
}

/** After `failuresMax` failed logins from one address within `windowMs`, refuse it for `lockMs`. */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly failuresMax = 5,
    private readonly windowMs = 60_000,
    private readonly lockMs = 60_000,
    private readonly addressesMax = 10_000,
  ) {}

  /** Milliseconds the address must still wait, 0 when it may try. */
  waitMs(address: string, nowMs: number): number {
    const recent = (this.failures.get(address) ?? []).filter(
      (atMs) => nowMs - atMs < Math.max(this.windowMs, this.lockMs),
    );
    if (recent.length < this.failuresMax) return 0;
    const last = recent[recent.length - 1] ?? nowMs;
    return Math.max(0, last + this.lockMs - nowMs);
  }

  fail(address: string, nowMs: number): void {
    if (!this.failures.has(address) && this.failures.size >= this.addressesMax) {
      const first = this.failures.keys().next().value;
      if (first !== undefined) this.failures.delete(first);
    }
    const recent = (this.failures.get(address) ?? []).filter((atMs) => nowMs - atMs < this.windowMs);
    this.failures.set(address, [...recent, nowMs].slice(-this.failuresMax));
  }

  succeed(address: string): void {
    this.failures.delete(address);
  }
}
