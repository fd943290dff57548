// The kernel's half of the arbitrator's guarantee (issue 6): a primary may serve its virtual IPs
// only until the end of its authority, even if hakitd is frozen (SIGSTOP, a stalled VM) and cannot
// demote itself. nftables does the counting: the VIPs of a module pass only while they are in a
// set whose elements carry a timeout, so the kernel stops answering ARP for them, stops accepting
// packets to them and stops sending from them the moment authority ends, daemon or not. Address
// lifetimes (`ip addr ... valid_lft`) would do the same only to the second, and late.
//
// Per module: `table arp hakit_fence_<module>` (ARP requests for, and ARP from, a VIP) and
// `table inet hakit_fence_<module>` (IPv4 to and from a VIP), each with a set `authority`.
// IPv6 VIPs are not fenced by this version (docs/mirror.md says so). Every change is one nft
// command line, which nft applies as one transaction.
import { writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { type CommandRunner, runCommand } from './command.ts';

/** Coalesces renewals: the kernel timeout is moved only when it grows by at least this. */
export const fenceRenewStepMs = 250;
const nftTimeoutMs = 5_000;

function tableName(module: string): string {
  if (!/^[A-Za-z0-9_]{1,48}$/.test(module)) throw new Error(`fence: module name ${module} unusable in nft`);
  return `hakit_fence_${module}`;
}

/** The nft text that (re)creates both tables with empty sets: every VIP blocked until authorized. */
export function fenceRuleset(module: string, vips: readonly string[]): string {
  const table = tableName(module);
  for (const vip of vips) if (!isIPv4(vip)) throw new Error(`fence: ${vip} is not an IPv4 address`);
  const list = `{ ${vips.join(', ')} }`;
  const set = ['  set authority {', '    type ipv4_addr', '    flags timeout', '  }'];
  const chain = (name: string, priority: number, match: string) => [
    `  chain ${name} {`,
    `    type filter hook ${name} priority ${priority}; policy accept;`,
    `    ${match} ${list} ${match} != @authority drop`,
    '  }',
  ];
  return [
    `add table arp ${table}`,
    `delete table arp ${table}`,
    `add table inet ${table}`,
    `delete table inet ${table}`,
    `table arp ${table} {`,
    ...set,
    ...chain('input', 0, 'arp daddr ip'),
    ...chain('output', 0, 'arp saddr ip'),
    '}',
    `table inet ${table} {`,
    ...set,
    ...chain('input', -150, 'ip daddr'),
    ...chain('output', -150, 'ip saddr'),
    '}',
    '',
  ].join('\n');
}

export function fenceAuthorizeCommands(module: string, vips: readonly string[], timeoutMs: number): string {
  const table = tableName(module);
  const elements = `{ ${vips.map((vip) => `${vip} timeout ${timeoutMs}ms`).join(', ')} }`;
  return [
    `flush set arp ${table} authority`,
    `add element arp ${table} authority ${elements}`,
    `flush set inet ${table} authority`,
    `add element inet ${table} authority ${elements}`,
  ].join('; ');
}

export class AuthorityFence {
  private readonly vips: string[];
  private installedUntilMs: number | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly module: string,
    vips: readonly string[],
    /** Where the ruleset file is written for `nft -f` (the daemon's run directory). */
    private readonly scratchDir: string,
    private readonly nowMs: () => number,
    private readonly onError: (error: Error) => void,
    private readonly run: CommandRunner = runCommand,
  ) {
    this.vips = vips.filter((vip) => isIPv4(vip));
    tableName(module);
  }

  /** IPv6 VIPs the kernel fence does not cover. */
  static unfenced(vips: readonly string[]): string[] {
    return vips.filter((vip) => !isIPv4(vip));
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(work).catch((error: unknown) => {
      this.onError(error instanceof Error ? error : new Error(String(error)));
    });
    return this.chain;
  }

  /** Creates the tables with nothing authorized. */
  install(): Promise<void> {
    if (this.vips.length === 0) return Promise.resolve();
    return this.enqueue(async () => {
      const file = join(this.scratchDir, `${tableName(this.module)}.nft`);
      await writeFile(file, fenceRuleset(this.module, this.vips), { mode: 0o600 });
      await this.run('nft', ['-f', file], { timeoutMs: nftTimeoutMs });
      this.installedUntilMs = null;
    });
  }

  /** The VIPs may be served until `untilMs` (the caller's clock), unless renewed. */
  authorize(untilMs: number): Promise<void> {
    if (this.vips.length === 0) return Promise.resolve();
    if (this.installedUntilMs !== null && untilMs < this.installedUntilMs + fenceRenewStepMs)
      return this.chain;
    return this.enqueue(async () => {
      // Counted from now, when the kernel gets it: the element ends no later than untilMs plus
      // the few ms nft takes, which the lease margin covers.
      const timeoutMs = Math.floor(untilMs - this.nowMs());
      if (timeoutMs <= 0) return;
      await this.run('nft', [fenceAuthorizeCommands(this.module, this.vips, timeoutMs)], {
        timeoutMs: nftTimeoutMs,
      });
      this.installedUntilMs = untilMs;
    });
  }

  /** Nothing authorized any more (demotion, stop). */
  revoke(): Promise<void> {
    if (this.vips.length === 0) return Promise.resolve();
    return this.enqueue(async () => {
      const table = tableName(this.module);
      await this.run('nft', [`flush set arp ${table} authority; flush set inet ${table} authority`], {
        timeoutMs: nftTimeoutMs,
      });
      this.installedUntilMs = null;
    });
  }

  /** Removes both tables (module closed, or its arbitrator removed from cluster.xml). */
  remove(): Promise<void> {
    return this.enqueue(async () => {
      await removeFence(this.module, this.run);
      this.installedUntilMs = null;
    });
  }

  /** Resolves once every change asked so far reached the kernel (or failed and was reported). */
  settled(): Promise<void> {
    return this.chain;
  }
}

/** Removes a module's fence tables if present (a module run without arbitrator must have none). */
export async function removeFence(module: string, run: CommandRunner = runCommand): Promise<void> {
  const table = tableName(module);
  await run(
    'nft',
    [
      `add table arp ${table}; delete table arp ${table}; add table inet ${table}; delete table inet ${table}`,
    ],
    { timeoutMs: nftTimeoutMs },
  );
}
