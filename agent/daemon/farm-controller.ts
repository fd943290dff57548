// Runs the farm side of one module: the membership link, the bucket map of each group computed
// from the agreed view, the node's network state (FarmNet: VIP aliases, nftables filter, virtual
// MAC) and the per-group share resources (`<group>_0 = 50%`, reference 3.2). The module
// supervisor tells it when traffic opens and closes; views come from the link.
import { join } from 'node:path';
import { assignBuckets, bitmapWords, bucketCount, bucketsOf } from '../core/farm-buckets.ts';
import type { FarmView } from '../core/farm-membership.ts';
import type { LogLevel } from '../core/job.ts';
import type { ModuleStateName, Readiness } from '../core/states.ts';
import { type DirectedPlan, FarmNet, type OwnedBuckets } from '../net/farm-filter.ts';
import { Announcer, announceDefaults } from '../net/garp.ts';
import { FarmLink } from './farm-link.ts';
import type { FarmRuntime } from './farm-runtime.ts';

export interface FarmControllerHooks {
  log(level: LogLevel, component: string, message: string): void;
  setResource(resource: string, value: string): void;
  moduleState(): { state: ModuleStateName; readiness: Readiness };
}

export interface FarmShare {
  group: string;
  buckets: number;
  percent: number;
  bitmap: string[];
}

export class FarmController {
  private readonly link: FarmLink;
  private readonly net: FarmNet | null;
  private owned: OwnedBuckets = new Map();
  private trafficOpen = false;
  private directing = false;
  private announcer: Announcer | null = null;
  private lastViewChangeMs = 0;

  constructor(
    private runtime: FarmRuntime,
    private readonly module: string,
    moduleId: number,
    moduleVarDir: string,
    private readonly hooks: FarmControllerHooks,
  ) {
    this.net =
      runtime.vips.length === 0
        ? null
        : new FarmNet({
            moduleId,
            vips: runtime.vips,
            groups: runtime.groups,
            virtualMac: runtime.virtualMac,
            directed: runtime.directed,
            nftFile: join(moduleVarDir, 'farm.nft'),
          });
    this.link = new FarmLink(runtime, module, {
      moduleState: () => hooks.moduleState(),
      onView: (view) => this.onView(view),
      onLanResource: (resource, value) => hooks.setResource(resource, value),
      onError: (error) => hooks.log('I', 'vipd', error.message),
    });
  }

  async start(): Promise<void> {
    // A previous daemon may have died with the traffic open: its filter would keep serving buckets
    // the others take over. The module is not open at daemon start; the recovery reopens it.
    await this.net
      ?.close()
      .catch((error: unknown) =>
        this.hooks.log('E', 'vipd', `farm cleanup at start: ${(error as Error).message}`),
      );
    this.publishShares();
    if (this.runtime.directed && this.net !== null) {
      // Peers forward our buckets to this MAC when they direct.
      const mac = await this.net.localMac().catch((error: unknown) => {
        this.hooks.log('C', 'vipd', `farm vmac_directed: ${(error as Error).message}`);
        return null;
      });
      if (mac !== null) this.link.setLocalMac(mac);
    }
    await this.link.start();
  }

  async stop(): Promise<void> {
    this.announcer?.cancel();
    await this.link.stop();
  }

  /** Whether this node's share of the traffic is open (asked for, even if the open failed). */
  get isOpen(): boolean {
    return this.trafficOpen;
  }

  /**
   * Opens (before start_both) or closes (after stop_both, or when scripts say so with
   * scriptcontrol) this node's share of the traffic. False when the network could not be set.
   */
  async traffic(open: boolean): Promise<boolean> {
    if (open === this.trafficOpen) return true;
    this.trafficOpen = open;
    try {
      if (open) {
        // The filter with what we own now (nothing yet), then join the view.
        const plan = this.directedPlan();
        await this.net?.open(this.ownedNow(), plan);
        this.announceIfDirector(plan);
        this.hooks.log(
          'I',
          'vipd',
          `farm traffic opened${this.net ? ` (VIP ${this.runtime.vips.map((vip) => vip.address).join(' ')})` : ''}`,
        );
        this.link.setOpen(true);
      } else {
        // Leave the view first so the others take our buckets, then drop the VIP and filter.
        this.link.setOpen(false);
        this.announceIfDirector(undefined);
        await this.net?.close();
        this.hooks.log('I', 'vipd', 'farm traffic closed');
      }
    } catch (error) {
      // A failed open never reached link.setOpen(true): the others keep this node's buckets.
      this.hooks.log(
        'C',
        'vipd',
        `farm traffic ${open ? 'open failed, this node takes no traffic' : 'close'}: ${(error as Error).message}`,
      );
      this.publishShares();
      return false;
    }
    this.publishShares();
    return true;
  }

  /**
   * A dynamic update: new load-balancing groups (powers, rules) from the same membership
   * (farm-update.ts refuses anything else). Every node computes its map from its own copy of the
   * powers, so until each node has the update the maps may disagree on the buckets that move.
   */
  async reconfigure(runtime: FarmRuntime): Promise<void> {
    await this.net?.setGroups(runtime.groups);
    this.runtime = runtime;
    this.owned = this.ownedNow();
    if (this.trafficOpen && this.net !== null) await this.net.update(this.owned, this.directedPlan());
    this.publishShares();
    for (const share of this.shares())
      this.hooks.log(
        'I',
        'vipd',
        `farm load after update: ${share.buckets}/${bucketCount} (group ${share.group})`,
      );
  }

  private ownedNow(): OwnedBuckets {
    const members = this.link.view.members;
    const owned = new Map<string, number[]>();
    for (const group of this.runtime.groups) {
      const map = assignBuckets(members.map((node) => ({ node, power: group.powers[node] ?? 0 })));
      owned.set(group.name, this.trafficOpen ? bucketsOf(map, this.runtime.localNode) : []);
    }
    return owned;
  }

  /** vmac_directed: the view's first member directs; everyone needs the maps and the MACs. */
  private directedPlan(): DirectedPlan | undefined {
    if (!this.runtime.directed) return undefined;
    const members = this.link.view.members;
    const owners = new Map<string, (string | null)[]>();
    for (const group of this.runtime.groups) {
      const map = assignBuckets(members.map((node) => ({ node, power: group.powers[node] ?? 0 })));
      owners.set(group.name, [...map.owners]);
    }
    const macs = new Map<string, string>();
    for (const node of members) {
      const mac = this.link.macOf(node);
      if (mac !== undefined) macs.set(node, mac);
    }
    return {
      director: this.trafficOpen && members[0] === this.runtime.localNode,
      owners,
      macs,
      localNode: this.runtime.localNode,
    };
  }

  /**
   * A new director tells the clients and switches where the VIP is now (gratuitous ARP). A
   * director that stays one announces again when the view changes: nodes that come back may
   * have directed while cut off (each side of a partition directs), and the clients follow the
   * last announcement they heard.
   */
  private announceIfDirector(plan: DirectedPlan | undefined, viewChanged = false): void {
    const director = plan?.director === true;
    if (director === this.directing && !(director && viewChanged)) return;
    const newly = director && !this.directing;
    this.directing = director;
    this.announcer?.cancel();
    this.announcer = null;
    const interfaceName = this.net?.interfaceName ?? null;
    if (!director || interfaceName === null) return;
    const vips = this.runtime.vips.map((vip) => vip.address).join(' ');
    this.hooks.log(
      'I',
      'vipd',
      newly ? `farm director for ${vips}` : `farm director for ${vips}: view changed, announcing again`,
    );
    for (const vip of this.runtime.vips.filter((entry) => !entry.address.includes(':'))) {
      const announcer = new Announcer({ interfaceName, address: vip.address }, announceDefaults, {
        onError: (error) =>
          this.hooks.log('E', 'vipd', `gratuitous ARP for ${vip.address}: ${error.message}`),
      });
      announcer.start();
      this.announcer = announcer;
    }
  }

  private onView(view: FarmView): void {
    this.lastViewChangeMs = Date.now();
    for (const group of this.runtime.groups)
      this.hooks.log(
        'I',
        'vipd',
        `farm membership: ${view.members.join(' ') || '(none)'} (group ${group.name})${view.agreed ? '' : ' (adopted without agreement)'}`,
      );
    if (this.runtime.groups.length === 0)
      this.hooks.log('I', 'vipd', `farm membership: ${view.members.join(' ') || '(none)'}`);
    this.owned = this.ownedNow();
    if (this.trafficOpen && this.net !== null) {
      const plan = this.directedPlan();
      void this.net
        .update(this.owned, plan)
        .then(() => this.announceIfDirector(plan, true))
        .catch((error: unknown) =>
          this.hooks.log('C', 'vipd', `farm bucket map update: ${(error as Error).message}`),
        );
    }
    this.publishShares();
    for (const share of this.shares())
      this.hooks.log('I', 'vipd', `farm load: ${share.buckets}/${bucketCount} (group ${share.group})`);
  }

  private publishShares(): void {
    this.owned = this.ownedNow();
    for (const share of this.shares()) {
      this.hooks.setResource(
        `farm.${share.group.replace(/[^A-Za-z0-9_.:@%-]/g, '_')}_0`,
        `${share.percent}%`,
      );
    }
  }

  shares(): FarmShare[] {
    return this.runtime.groups.map((group) => {
      const buckets = this.owned.get(group.name) ?? [];
      return {
        group: group.name,
        buckets: buckets.length,
        percent: Math.round((buckets.length * 100) / bucketCount),
        bitmap: bitmapWords(buckets),
      };
    });
  }

  /** Detail lines for `hakit state`. */
  detail(): string[] {
    const view = this.link.view;
    const lines = [`membership ${view.members.join(' ') || '(none)'}`];
    for (const share of this.shares())
      lines.push(`load ${share.buckets}/${bucketCount} (group ${share.group})`);
    return lines;
  }

  get viewChangedAtMs(): number {
    return this.lastViewChangeMs;
  }

  get moduleName(): string {
    return this.module;
  }
}
