// A mirror module's virtual IP on a `<real_interface>` (reference 4.6): added on the primary after
// making sure no one else answers for it, announced to the LAN, removed on leaving with
// `tcpreset`, and checked by the `ip` checker. Only I/O: when to hold the VIP is the automaton's
// decision (actions `vip set|unset`, `authority`).
//
//   one_side_alias: the VIP is a secondary address (label IF:hakit); the node keeps its own
//                   address as source for outgoing traffic.
//   one_side:       the same, and the routes of the main table on that interface get the VIP as
//                   preferred source, so outgoing connections come from the VIP; the original
//                   routes are put back before the VIP is removed.
//
// Operations on one VIP are serialised: a release issued during an acquire runs after it.
import {
  findAddress,
  familyOf,
  type InterfaceInfo,
  parseIpAddrJson,
  placementFor,
  prefixLengthOf,
  sameAddress,
} from './addresses.ts';
import {
  arpProbeDefaults,
  type ArpProbeSettings,
  awaitIpv6Dad,
  dadWaitMsDefault,
  probeIpv4,
} from './arp-probe.ts';
import { type CommandRunner, NetCommandError, runCommand } from './command.ts';
import { announceDefaults, Announcer, type AnnounceSettings } from './garp.ts';

export type VipPlacement = 'one_side_alias' | 'one_side';

export interface VipSpec {
  readonly address: string;
  /** `<interface name>`; when absent, the interface whose subnet holds the address. */
  readonly interfaceName?: string;
  /** `<virtual_addr netmask>`; when absent, the prefix of that interface's own address. */
  readonly netmask?: string;
  readonly where: VipPlacement;
  /** `<vip tcpreset>`: reset the connections of the VIP when it is removed. */
  readonly tcpreset: boolean;
  readonly probe?: ArpProbeSettings;
  readonly announce?: AnnounceSettings;
  readonly dadWaitMs?: number;
}

export interface VipHooks {
  /** Errors of background work (announcements): reported, never thrown. */
  onError(error: Error): void;
}

export type AcquireResult =
  | {
      readonly status: 'added';
      readonly interfaceName: string;
      readonly prefixLength: number;
      /** Duplicate detection (ARP probe, or IPv6 DAD) and the whole acquire. */
      readonly probeMs: number;
      readonly totalMs: number;
    }
  /** Already on this node: announced again, nothing added. */
  | { readonly status: 'present'; readonly interfaceName: string; readonly prefixLength: number }
  /** Someone else answers for it: not added (IPv6: added, failed DAD, removed again). */
  | {
      readonly status: 'conflict';
      readonly interfaceName: string;
      readonly macs: readonly string[];
      readonly probeMs: number;
    };

export interface ReleaseResult {
  /** False when the address was not on this node any more. */
  readonly removed: boolean;
  readonly connectionsReset: number;
}

export type VipCheck =
  | { readonly status: 'ok'; readonly detail: string }
  | { readonly status: 'missing'; readonly detail: string }
  | { readonly status: 'conflict'; readonly detail: string; readonly macs: readonly string[] }
  /** IPv6 DAD still running: neither held nor lost yet. */
  | { readonly status: 'tentative'; readonly detail: string };

/** Lifetimes the kernel enforces by itself, so a frozen daemon cannot hold the VIP forever. */
export const lifetimeSecMax = 86_400;
const routesMax = 64;
const labelSuffix = ':hakit';
const interfaceNameBytesMax = 15;

interface RouteEntry {
  readonly dst: string;
  readonly gateway?: string;
  readonly protocol?: string;
  readonly scope?: string;
  readonly metric?: number;
  readonly prefsrc?: string;
  readonly type?: string;
}

const absentPattern = /Address not found|Cannot assign requested address|No such file or directory/i;
const existsPattern = /already assigned|File exists/i;

/** `ip addr` label for the VIP: IFNAMSIZ bounds it, and it must start with the interface name. */
export function labelFor(interfaceName: string): string | undefined {
  for (const suffix of [labelSuffix, ':h']) {
    if (interfaceName.length + suffix.length <= interfaceNameBytesMax) return `${interfaceName}${suffix}`;
  }
  return undefined;
}

function routeArgs(route: RouteEntry, interfaceName: string, source: string | undefined): string[] {
  const args = [route.dst];
  if (route.gateway !== undefined) args.push('via', route.gateway);
  args.push('dev', interfaceName);
  if (route.protocol !== undefined) args.push('proto', route.protocol);
  if (route.scope !== undefined) args.push('scope', route.scope);
  if (route.metric !== undefined) args.push('metric', String(route.metric));
  if (source !== undefined) args.push('src', source);
  return args;
}

export class VirtualIp {
  private chain: Promise<unknown> = Promise.resolve();
  private announcer: Announcer | null = null;
  private placement: { interfaceName: string; prefixLength: number } | null = null;
  private savedRoutes: RouteEntry[] = [];
  private readonly family: 4 | 6;

  constructor(
    readonly spec: VipSpec,
    private readonly hooks: VipHooks,
    private readonly run: CommandRunner = runCommand,
  ) {
    this.family = familyOf(spec.address);
    if (spec.interfaceName !== undefined && !/^[\w.-]{1,15}$/.test(spec.interfaceName))
      throw new Error(
        `VIP ${spec.address}: interface name ${JSON.stringify(spec.interfaceName)} is not valid`,
      );
    if (spec.netmask !== undefined) prefixLengthOf(spec.netmask, this.family);
  }

  /** Probes, adds and announces the VIP; `lifetimeSec` makes the kernel drop it unless renewed. */
  acquire(options: { lifetimeSec?: number } = {}): Promise<AcquireResult> {
    return this.serial(() => this.doAcquire(options.lifetimeSec));
  }

  release(): Promise<ReleaseResult> {
    return this.serial(() => this.doRelease());
  }

  /** Extends the kernel lifetime of a VIP this node holds; never adds it back ('missing'). */
  renew(lifetimeSec: number): Promise<'renewed' | 'missing'> {
    return this.serial(() => this.doRenew(lifetimeSec));
  }

  /** The `ip` checker: is the VIP on this node, and does no other MAC answer for it? */
  check(): Promise<VipCheck> {
    return this.serial(() => this.doCheck());
  }

  /** Stops announcing (the daemon is shutting down without releasing). */
  stopAnnouncing(): void {
    this.announcer?.cancel();
    this.announcer = null;
  }

  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const next = this.chain.then(operation, operation);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private where(): string {
    return `VIP ${this.spec.address}${this.placement === null ? '' : ` on ${this.placement.interfaceName}`}`;
  }

  private async interfaces(): Promise<InterfaceInfo[]> {
    const { stdout } = await this.run('ip', ['-j', 'addr', 'show']);
    return parseIpAddrJson(stdout);
  }

  private async resolvePlacement(
    interfaces: readonly InterfaceInfo[],
  ): Promise<{ interfaceName: string; prefixLength: number }> {
    const held = findAddress(interfaces, this.spec.address, this.spec.interfaceName);
    const found = placementFor(interfaces, this.spec.address, this.spec.interfaceName);
    const interfaceName = this.spec.interfaceName ?? found?.interfaceName ?? held?.interface.name;
    if (interfaceName === undefined)
      throw new Error(
        `${this.where()}: no interface of this node has an address in its subnet; set <interface name>`,
      );
    const prefixLength =
      this.spec.netmask !== undefined
        ? prefixLengthOf(this.spec.netmask, this.family)
        : (found?.prefixLength ?? held?.address.prefixLength);
    if (prefixLength === undefined)
      throw new Error(`${this.where()}: no address of ${interfaceName} holds it; set <virtual_addr netmask>`);
    this.placement = { interfaceName, prefixLength };
    return this.placement;
  }

  private async doAcquire(lifetimeSec: number | undefined): Promise<AcquireResult> {
    if (
      lifetimeSec !== undefined &&
      (!Number.isInteger(lifetimeSec) || lifetimeSec < 1 || lifetimeSec > lifetimeSecMax)
    )
      throw new Error(`${this.where()}: lifetime ${lifetimeSec} s out of 1..${lifetimeSecMax}`);
    // When a VIP expires the kernel also deletes the routes that prefer it as source, which in
    // one_side mode are the interface's own routes: never let the kernel do that alone.
    if (lifetimeSec !== undefined && this.spec.where === 'one_side')
      throw new Error(`${this.where()}: a lifetime cannot be used with where="one_side"`);
    const startedMs = performance.now();
    const interfaces = await this.interfaces();
    const { interfaceName, prefixLength } = await this.resolvePlacement(interfaces);
    const held = findAddress(interfaces, this.spec.address, interfaceName);
    if (held !== undefined && !held.address.dadFailed && !held.address.tentative) {
      if (this.spec.where === 'one_side') await this.preferVipAsSource(interfaceName);
      this.startAnnouncing(interfaceName);
      return { status: 'present', interfaceName, prefixLength };
    }
    const cidr = `${this.spec.address}/${prefixLength}`;
    const lifetimeArgs =
      lifetimeSec === undefined
        ? []
        : ['valid_lft', String(lifetimeSec), 'preferred_lft', String(lifetimeSec)];
    let probeMs: number;
    if (this.family === 4) {
      const probe = await probeIpv4(
        interfaceName,
        this.spec.address,
        this.spec.probe ?? arpProbeDefaults,
        this.run,
      );
      probeMs = probe.elapsedMs;
      if (probe.status === 'taken') return { status: 'conflict', interfaceName, macs: probe.macs, probeMs };
      const label = labelFor(interfaceName);
      await this.addAddress([
        cidr,
        'dev',
        interfaceName,
        ...(label === undefined ? [] : ['label', label]),
        ...lifetimeArgs,
      ]);
    } else {
      // The kernel announces the address itself (unsolicited NA) when DAD completes.
      await this.run('sysctl', ['-q', '-w', `net.ipv6.conf.${interfaceName}.ndisc_notify=1`]);
      if (held?.address.dadFailed === true) await this.deleteAddress(cidr, interfaceName);
      const dadStartedMs = performance.now();
      await this.addAddress([cidr, 'dev', interfaceName, ...lifetimeArgs]);
      const dad = await awaitIpv6Dad(
        interfaceName,
        this.spec.address,
        this.spec.dadWaitMs ?? dadWaitMsDefault,
        this.run,
      );
      probeMs = performance.now() - dadStartedMs;
      if (dad.status === 'failed') {
        await this.deleteAddress(cidr, interfaceName);
        return { status: 'conflict', interfaceName, macs: [], probeMs };
      }
      if (dad.status === 'missing') throw new Error(`${this.where()}: the address vanished during DAD`);
    }
    if (this.spec.where === 'one_side') await this.preferVipAsSource(interfaceName);
    this.startAnnouncing(interfaceName);
    return { status: 'added', interfaceName, prefixLength, probeMs, totalMs: performance.now() - startedMs };
  }

  private async addAddress(args: readonly string[]): Promise<void> {
    try {
      await this.run('ip', ['addr', 'add', ...args]);
    } catch (error) {
      // Added between our look and now (by a previous attempt): it is ours to keep.
      if (error instanceof NetCommandError && existsPattern.test(error.stderr)) return;
      throw error;
    }
  }

  /** True when removed, false when it was not there. */
  private async deleteAddress(cidr: string, interfaceName: string): Promise<boolean> {
    try {
      await this.run('ip', ['addr', 'del', cidr, 'dev', interfaceName]);
      return true;
    } catch (error) {
      if (error instanceof NetCommandError && absentPattern.test(error.stderr)) return false;
      throw error;
    }
  }

  private startAnnouncing(interfaceName: string): void {
    this.announcer?.cancel();
    this.announcer = new Announcer(
      { interfaceName, address: this.spec.address },
      this.spec.announce ?? announceDefaults,
      { onError: (error) => this.hooks.onError(error) },
      this.run,
    );
    this.announcer.start();
  }

  private async preferVipAsSource(interfaceName: string): Promise<void> {
    const { stdout } = await this.run('ip', [
      '-j',
      `-${this.family}`,
      'route',
      'show',
      'table',
      'main',
      'dev',
      interfaceName,
    ]);
    const routes = (JSON.parse(stdout === '' ? '[]' : stdout) as RouteEntry[]).filter(
      (route) => typeof route.dst === 'string' && (route.type === undefined || route.type === 'unicast'),
    );
    if (routes.length > routesMax)
      throw new Error(`${this.where()}: more than ${routesMax} routes on ${interfaceName}`);
    for (const route of routes) {
      if (route.prefsrc !== undefined && sameAddress(route.prefsrc, this.spec.address)) continue;
      await this.run('ip', [
        `-${this.family}`,
        'route',
        'replace',
        ...routeArgs(route, interfaceName, this.spec.address),
      ]);
      this.savedRoutes.push(route);
    }
  }

  private async restoreRoutes(interfaceName: string): Promise<void> {
    const failures: string[] = [];
    for (const route of this.savedRoutes.splice(0)) {
      try {
        await this.run('ip', [
          `-${this.family}`,
          'route',
          'replace',
          ...routeArgs(route, interfaceName, route.prefsrc),
        ]);
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    if (failures.length > 0) throw new Error(`${this.where()}: routes not restored: ${failures.join('; ')}`);
  }

  /** `ss -K`: kills the TCP sockets whose local address is the VIP; the peers get a reset. */
  private async resetConnections(): Promise<number> {
    const source = this.family === 6 ? `[${this.spec.address}]` : this.spec.address;
    const { stdout } = await this.run('ss', ['-K', '-t', '-n', '-H', 'src', source], { timeoutMs: 10_000 });
    return stdout.split('\n').filter((line) => line.trim() !== '').length;
  }

  private async doRelease(): Promise<ReleaseResult> {
    this.stopAnnouncing();
    const interfaces = await this.interfaces();
    const { interfaceName, prefixLength } = this.placement ?? (await this.resolvePlacement(interfaces));
    let restoreError: Error | undefined;
    if (this.savedRoutes.length > 0) {
      // Before the address goes: the kernel deletes routes whose preferred source disappears.
      try {
        await this.restoreRoutes(interfaceName);
      } catch (error) {
        restoreError = error as Error;
      }
    }
    let connectionsReset = 0;
    // A failed reset must not keep the address here: reported, and the removal goes on.
    const reset = async () => {
      if (!this.spec.tcpreset) return;
      try {
        connectionsReset += await this.resetConnections();
      } catch (error) {
        this.hooks.onError(
          new Error(`${this.where()}: tcpreset: ${(error as Error).message}`, { cause: error }),
        );
      }
    };
    // Reset first (a reset needs the address to leave with it), then remove, then reset again
    // for connections accepted in between, which no longer have anywhere to go.
    await reset();
    const held = findAddress(interfaces, this.spec.address, interfaceName);
    const cidr = `${this.spec.address}/${held?.address.prefixLength ?? prefixLength}`;
    const removed = held === undefined ? false : await this.deleteAddress(cidr, interfaceName);
    await reset();
    if (restoreError !== undefined) throw restoreError;
    return { removed, connectionsReset };
  }

  private async doRenew(lifetimeSec: number): Promise<'renewed' | 'missing'> {
    if (!Number.isInteger(lifetimeSec) || lifetimeSec < 1 || lifetimeSec > lifetimeSecMax)
      throw new Error(`${this.where()}: lifetime ${lifetimeSec} s out of 1..${lifetimeSecMax}`);
    const interfaces = await this.interfaces();
    const { interfaceName } = this.placement ?? (await this.resolvePlacement(interfaces));
    const held = findAddress(interfaces, this.spec.address, interfaceName);
    // `ip addr change` would create a missing address without any probe: never do that.
    if (held === undefined) return 'missing';
    const life = String(lifetimeSec);
    await this.run('ip', [
      'addr',
      'change',
      `${this.spec.address}/${held.address.prefixLength}`,
      'dev',
      interfaceName,
      'valid_lft',
      life,
      'preferred_lft',
      life,
    ]);
    return 'renewed';
  }

  private async doCheck(): Promise<VipCheck> {
    const interfaces = await this.interfaces();
    const { interfaceName } = this.placement ?? (await this.resolvePlacement(interfaces));
    const held = findAddress(interfaces, this.spec.address);
    if (held === undefined) return { status: 'missing', detail: `${this.spec.address} is not on this node` };
    if (held.interface.name !== interfaceName)
      return {
        status: 'missing',
        detail: `${this.spec.address} is on ${held.interface.name}, not ${interfaceName}`,
      };
    if (held.address.dadFailed)
      return {
        status: 'conflict',
        detail: `${this.spec.address}: IPv6 duplicate address detection failed`,
        macs: [],
      };
    if (held.address.tentative)
      return {
        status: 'tentative',
        detail: `${this.spec.address}: IPv6 duplicate address detection running`,
      };
    if (this.family === 4) {
      // Our own kernel does not answer our probe: any reply is another holder.
      const probe = await probeIpv4(
        interfaceName,
        this.spec.address,
        this.spec.probe ?? arpProbeDefaults,
        this.run,
      );
      if (probe.status === 'taken')
        return {
          status: 'conflict',
          detail: `${this.spec.address} is also answered by ${probe.macs.join(', ')}`,
          macs: probe.macs,
        };
    }
    return { status: 'ok', detail: `${this.spec.address} on ${interfaceName}` };
  }
}
