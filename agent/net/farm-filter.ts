// The farm's data path on one node (reference 3.3), with nftables instead of a kernel module:
//
//   inet  hakit_farm_<id>       prerouting, priority raw (before conntrack): a packet for a VIP
//                               matching a `<rule>` is dropped unless its bucket (nft `jhash` of
//                               the rule's field, see agent/core/farm-buckets.ts) is one of this
//                               node's. Other packets for the VIPs are split on the client address
//                               with the first group's map, so a ping gets one answer.
//   netdev hakit_farm_<id>_vmac ingress of the VIP interface (vmac_invisible): frames for the
//                               virtual MAC are delivered as if sent to this node's own MAC.
//   arp   hakit_farm_<id>_arp   output (vmac_invisible): ARP from a VIP carries the virtual MAC as
//                               sender hardware address; the Ethernet source stays the real MAC,
//                               so switches never learn the virtual MAC and flood it to all nodes.
//
// Every change is one `nft -f` file (add, delete, add each table): the kernel applies it as one
// transaction, so a packet sees the old bucket set or the new one, never none. Values put in the
// file are checked (IP literals, integers, MAC, interface names) before: nothing from the
// configuration reaches nft unchecked. The VIP is an alias on every node whose traffic is open
// (no ARP probe: every UP node holds it).
import { writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { bucketRanges, bucketSeed, type FilterKind } from '../core/farm-buckets.ts';
import {
  familyOf,
  findAddress,
  type InterfaceInfo,
  parseIpAddrJson,
  placementFor,
  prefixLengthOf,
} from './addresses.ts';
import { type CommandRunner, NetCommandError, runCommand } from './command.ts';
import { labelFor } from './vip.ts';

export interface FarmRuleSpec {
  /** '*' = every VIP of the module. */
  readonly virtualAddr: string;
  readonly port: number | '*';
  readonly proto: 'tcp' | 'udp';
  readonly filter: FilterKind;
}

export interface FarmGroupSpec {
  readonly name: string;
  readonly rules: readonly FarmRuleSpec[];
}

export interface FarmVipSpec {
  readonly address: string;
  readonly interfaceName?: string;
  readonly netmask?: string;
}

export interface FarmFilterSpec {
  readonly moduleId: number;
  readonly vips: readonly FarmVipSpec[];
  readonly groups: readonly FarmGroupSpec[];
  /** vmac_invisible: the virtual MAC (5A:FE:<vip> by default); null for no virtual MAC. */
  readonly virtualMac: string | null;
  /** vmac_directed: one node (the director) answers ARP for the VIP and forwards other buckets. */
  readonly directed?: boolean;
  /** Where the nft file is written before `nft -f`. */
  readonly nftFile: string;
}

/** Buckets this node owns per group name; a missing group owns nothing. */
export type OwnedBuckets = ReadonlyMap<string, readonly number[]>;

/** vmac_directed: what a node needs beyond its own buckets. */
export interface DirectedPlan {
  /** This node answers ARP for the VIPs and forwards the other members' buckets to them. */
  readonly director: boolean;
  /** Per group, the owner of each bucket (the map of the agreed view). */
  readonly owners: ReadonlyMap<string, readonly (string | null)[]>;
  /** Each member's MAC on the VIP's segment; a member without one gets nothing forwarded. */
  readonly macs: ReadonlyMap<string, string>;
  readonly localNode: string;
}

export interface OpenTraffic {
  readonly open: true;
  readonly owned: OwnedBuckets;
  readonly interfaceName: string;
  readonly ownMac: string;
  /** This node's own IPv4 address on the VIP interface (vmac_directed ARP rewrite). */
  readonly ownAddress?: string;
  readonly directed?: DirectedPlan;
}

const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const interfacePattern = /^[\w.-]{1,15}$/;

/** The reference's default virtual MAC: 5A:FE then the IPv4 VIP's four bytes. */
export function defaultVirtualMac(vip: string): string {
  if (isIP(vip) !== 4)
    throw new Error(`farm: vmac_invisible needs an IPv4 VIP or an explicit addr, not ${vip}`);
  return ['5a', 'fe', ...vip.split('.').map((part) => Number(part).toString(16).padStart(2, '0'))].join(':');
}

export function normaliseMac(mac: string): string {
  const lower = mac.trim().toLowerCase().replaceAll('-', ':');
  if (!macPattern.test(lower)) throw new Error(`farm: ${JSON.stringify(mac)} is not a MAC address`);
  // A virtual MAC must be unicast (I/G bit clear), or switches treat it as multicast.
  if ((parseInt(lower.slice(0, 2), 16) & 1) === 1) throw new Error(`farm: virtual MAC ${lower} is multicast`);
  return lower;
}

export function farmTableName(moduleId: number): string {
  if (!Number.isInteger(moduleId) || moduleId < 1 || moduleId > 255)
    throw new Error(`farm: module id ${moduleId} out of 1..255`);
  return `hakit_farm_${moduleId}`;
}

function checkSpec(spec: FarmFilterSpec): void {
  farmTableName(spec.moduleId);
  if (spec.vips.length === 0) throw new Error('farm: no virtual address to balance');
  for (const vip of spec.vips) familyOf(vip.address);
  for (const group of spec.groups) {
    for (const rule of group.rules) {
      if (rule.virtualAddr !== '*' && isIP(rule.virtualAddr) === 0)
        throw new Error(
          `farm group ${group.name}: rule virtual_addr ${rule.virtualAddr} is not an IP address`,
        );
      if (rule.port !== '*' && (!Number.isInteger(rule.port) || rule.port < 1 || rule.port > 65535))
        throw new Error(`farm group ${group.name}: rule port ${rule.port} out of 1..65535`);
    }
  }
  if (spec.virtualMac !== null) normaliseMac(spec.virtualMac);
}

function setOf(buckets: readonly number[]): string {
  return `{ ${bucketRanges(buckets)
    .map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`))
    .join(', ')} }`;
}

function hashField(rule: FarmRuleSpec, family: 4 | 6): string {
  switch (rule.filter) {
    case 'on_addr':
      return family === 4 ? 'ip saddr' : 'ip6 saddr';
    case 'on_port':
      return `${rule.proto} sport`;
    case 'on_ipid':
      if (family === 6) throw new Error('farm: filter on_ipid has no meaning for IPv6');
      return 'ip id';
  }
}

/** `drop` unless the bucket is owned; nothing owned: drop all; everything owned: nothing to do. */
function bucketTest(field: string, owned: readonly number[]): string | null {
  if (owned.length === 256) return null;
  if (owned.length === 0) return 'drop';
  return `jhash ${field} mod 256 seed 0x${bucketSeed.toString(16)} != ${setOf(owned)} drop`;
}

/** The inet table's chain body for the current owned buckets. Pure, for tests and logs. */
export function balanceRules(spec: FarmFilterSpec, owned: OwnedBuckets): string[] {
  checkSpec(spec);
  const lines: string[] = [];
  for (const vip of spec.vips) {
    const family = familyOf(vip.address);
    const daddr = `${family === 4 ? 'ip' : 'ip6'} daddr ${vip.address}`;
    for (const group of spec.groups) {
      const buckets = owned.get(group.name) ?? [];
      for (const rule of group.rules) {
        if (rule.virtualAddr !== '*' && rule.virtualAddr !== vip.address) continue;
        const match = `${daddr} ${rule.proto === 'tcp' ? 'tcp' : 'udp'} dport ${rule.port === '*' ? '1-65535' : rule.port}`;
        const test = bucketTest(hashField(rule, family), buckets);
        // A packet of a rule is decided by that rule: the catch-all below must not see it.
        if (test !== null) lines.push(`${match} ${test}`);
        if (test !== 'drop') lines.push(`${match} accept`);
      }
    }
    const first = spec.groups[0];
    const test = bucketTest(
      family === 4 ? 'ip saddr' : 'ip6 saddr',
      first ? (owned.get(first.name) ?? []) : [],
    );
    if (test !== null) lines.push(`${daddr} ${test}`);
  }
  return lines;
}

function jhashOf(field: string): string {
  return `jhash ${field} mod 256 seed 0x${bucketSeed.toString(16)}`;
}

function rangeText([first, last]: [number, number]): string {
  return first === last ? `${first}` : `${first}-${last}`;
}

/**
 * The director's netdev ingress rules (vmac_directed): its own buckets go up the stack, every
 * other member's are sent back out to that member's MAC, with the director's MAC as source so
 * switches keep learning the client's MAC on the client's port. Pure.
 */
export function directorRules(
  spec: FarmFilterSpec,
  plan: DirectedPlan,
  interfaceName: string,
  ownMac: string,
): string[] {
  checkSpec(spec);
  if (!interfacePattern.test(interfaceName))
    throw new Error(`farm: interface name ${JSON.stringify(interfaceName)} is not valid`);
  const source = normaliseMac(ownMac);
  const lines: string[] = [];
  const forward = (match: string, field: string, owners: readonly (string | null)[]) => {
    const own: number[] = [];
    const byNode = new Map<string, number[]>();
    owners.forEach((owner, bucket) => {
      if (owner === plan.localNode) own.push(bucket);
      else if (owner !== null && plan.macs.has(owner))
        byNode.set(owner, [...(byNode.get(owner) ?? []), bucket]);
    });
    if (own.length === 256) lines.push(`${match} accept`);
    else if (own.length > 0) lines.push(`${match} ${jhashOf(field)} ${setOf(own)} accept`);
    const entries = [...byNode.entries()].flatMap(([node, buckets]) => {
      const mac = normaliseMac(plan.macs.get(node) ?? '');
      return bucketRanges(buckets).map((range) => `${rangeText(range)} : ${mac}`);
    });
    if (entries.length > 0)
      lines.push(
        `${match} ether saddr set ${source} ether daddr set ${jhashOf(field)} map { ${entries.join(', ')} } fwd to "${interfaceName}"`,
      );
  };
  for (const vip of spec.vips) {
    const family = familyOf(vip.address);
    const daddr = `${family === 4 ? 'ip' : 'ip6'} daddr ${vip.address}`;
    for (const group of spec.groups) {
      for (const rule of group.rules) {
        if (rule.virtualAddr !== '*' && rule.virtualAddr !== vip.address) continue;
        const match = `${daddr} ${rule.proto === 'tcp' ? 'tcp' : 'udp'} dport ${rule.port === '*' ? '1-65535' : rule.port}`;
        forward(match, hashField(rule, family), plan.owners.get(group.name) ?? []);
      }
    }
    const first = spec.groups[0];
    if (first !== undefined)
      forward(daddr, family === 4 ? 'ip saddr' : 'ip6 saddr', plan.owners.get(first.name) ?? []);
  }
  return lines;
}

/** The whole transaction: open with the owned buckets, or closed (tables removed). */
export function renderFarmNft(spec: FarmFilterSpec, traffic: { open: false } | OpenTraffic): string {
  checkSpec(spec);
  const table = farmTableName(spec.moduleId);
  const out: string[] = [];
  // add + delete makes the delete succeed whether or not the table exists.
  out.push(`add table inet ${table}`, `delete table inet ${table}`);
  out.push(`add table netdev ${table}_vmac`, `delete table netdev ${table}_vmac`);
  out.push(`add table arp ${table}_arp`, `delete table arp ${table}_arp`);
  if (traffic.open) {
    out.push(
      `table inet ${table} {`,
      '  chain balance {',
      '    type filter hook prerouting priority raw; policy accept;',
    );
    for (const line of balanceRules(spec, traffic.owned)) out.push(`    ${line}`);
    out.push('  }', '}');
    if (spec.virtualMac !== null) {
      if (!interfacePattern.test(traffic.interfaceName))
        throw new Error(`farm: interface name ${JSON.stringify(traffic.interfaceName)} is not valid`);
      const virtualMac = normaliseMac(spec.virtualMac);
      const ownMac = normaliseMac(traffic.ownMac);
      out.push(
        `table netdev ${table}_vmac {`,
        '  chain ingress {',
        `    type filter hook ingress device "${traffic.interfaceName}" priority -500; policy accept;`,
        `    ether daddr ${virtualMac} ether daddr set ${ownMac} meta pkttype set host`,
        '  }',
        '}',
        `table arp ${table}_arp {`,
        '  chain output {',
        '    type filter hook output priority filter; policy accept;',
        ...spec.vips
          .filter((vip) => familyOf(vip.address) === 4)
          .map((vip) => `    arp saddr ip ${vip.address} arp saddr ether set ${virtualMac}`),
        '  }',
        '}',
      );
    }
    if (spec.directed === true) {
      const plan = traffic.directed;
      const ownAddress = traffic.ownAddress;
      if (plan === undefined || ownAddress === undefined || isIP(ownAddress) !== 4)
        throw new Error("farm: vmac_directed needs the bucket map and this node's own IPv4 address");
      const vips4 = spec.vips.filter((vip) => familyOf(vip.address) === 4);
      out.push(
        `table arp ${table}_arp {`,
        // Only the director answers ARP for the VIPs; nobody's ARP requests carry a VIP as sender.
        ...(plan.director
          ? []
          : [
              '  chain input {',
              '    type filter hook input priority filter; policy accept;',
              ...vips4.map((vip) => `    arp operation request arp daddr ip ${vip.address} drop`),
              '  }',
            ]),
        '  chain output {',
        '    type filter hook output priority filter; policy accept;',
        ...vips4.map(
          (vip) => `    arp operation request arp saddr ip ${vip.address} arp saddr ip set ${ownAddress}`,
        ),
        '  }',
        '}',
      );
      if (plan.director) {
        out.push(
          `table netdev ${table}_vmac {`,
          '  chain ingress {',
          `    type filter hook ingress device "${traffic.interfaceName}" priority -500; policy accept;`,
          ...directorRules(spec, plan, traffic.interfaceName, traffic.ownMac).map((line) => `    ${line}`),
          '  }',
          '}',
        );
      }
    }
  }
  return `${out.join('\n')}\n`;
}

export interface FarmNetHooks {
  onError(error: Error): void;
}

/**
 * The farm's network state on this node: VIP aliases, filter, virtual MAC. Operations are
 * serialised; each leaves the node in the requested state or throws with the command that failed.
 */
export class FarmNet {
  private chain: Promise<unknown> = Promise.resolve();
  private placed: { interfaceName: string; ownMac: string; ownAddress?: string } | null = null;
  private opened = false;

  private current: FarmFilterSpec;

  constructor(
    spec: FarmFilterSpec,
    private readonly run: CommandRunner = runCommand,
  ) {
    checkSpec(spec);
    this.current = spec;
  }

  get spec(): FarmFilterSpec {
    return this.current;
  }

  /**
   * New load-balancing groups (a dynamic update of the module): checked, then used from the
   * next open or update on, in order with the operations already asked for.
   */
  setGroups(groups: readonly FarmGroupSpec[]): Promise<void> {
    const spec = { ...this.current, groups };
    checkSpec(spec);
    return this.serial(async () => {
      this.current = spec;
    });
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Sets the VIPs and the filter with the buckets owned now (or swaps the bucket sets). */
  open(owned: OwnedBuckets, directed?: DirectedPlan): Promise<void> {
    return this.serial(async () => {
      const interfaces = await this.interfaces();
      const placement = this.placement(interfaces);
      // The filter goes first: a VIP without it would accept every bucket.
      await this.apply(
        renderFarmNft(this.spec, { open: true, owned, ...placement, ...(directed ? { directed } : {}) }),
      );
      this.opened = true;
      for (const vip of this.spec.vips) await this.addVip(interfaces, vip, placement.interfaceName);
    });
  }

  /** Swaps the owned buckets in one transaction; nothing else changes. */
  update(owned: OwnedBuckets, directed?: DirectedPlan): Promise<void> {
    return this.serial(async () => {
      if (!this.opened || this.placed === null) return;
      await this.apply(
        renderFarmNft(this.spec, { open: true, owned, ...this.placed, ...(directed ? { directed } : {}) }),
      );
    });
  }

  /** This node's MAC on the VIP interface (advertised to the director in vmac_directed). */
  localMac(): Promise<string | null> {
    return this.serial(async () => {
      const placed = this.placement(await this.interfaces());
      return placed.ownMac === '00:00:00:00:00:00' ? null : placed.ownMac;
    });
  }

  get interfaceName(): string | null {
    return this.placed?.interfaceName ?? null;
  }

  /** Removes the VIPs, then the filter. */
  close(): Promise<void> {
    return this.serial(async () => {
      const interfaces = await this.interfaces();
      for (const vip of this.spec.vips) {
        const held = findAddress(interfaces, vip.address);
        if (held === undefined) continue;
        const cidr = `${vip.address}/${held.address.prefixLength}`;
        await this.run('ip', ['addr', 'del', cidr, 'dev', held.interface.name]).catch((error: unknown) => {
          if (!(error instanceof NetCommandError && /Cannot assign|not found/i.test(error.message)))
            throw error;
        });
      }
      await this.apply(renderFarmNft(this.spec, { open: false }));
      this.opened = false;
    });
  }

  private serial<T>(operation: () => Promise<T>): Promise<T> {
    const next = this.chain.then(operation, operation);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async interfaces(): Promise<InterfaceInfo[]> {
    const { stdout } = await this.run('ip', ['-j', 'addr', 'show']);
    return parseIpAddrJson(stdout);
  }

  private placement(interfaces: readonly InterfaceInfo[]): {
    interfaceName: string;
    ownMac: string;
    ownAddress?: string;
  } {
    const first = this.spec.vips[0];
    if (first === undefined) throw new Error('farm: no virtual address');
    const found =
      placementFor(interfaces, first.address, first.interfaceName) ??
      (() => {
        const held = findAddress(interfaces, first.address, first.interfaceName);
        return held ? { interfaceName: held.interface.name } : undefined;
      })();
    const interfaceName = first.interfaceName ?? found?.interfaceName;
    if (interfaceName === undefined)
      throw new Error(
        `farm VIP ${first.address}: no interface has an address in its subnet; set <interface name>`,
      );
    const mac = interfaces.find((info) => info.name === interfaceName)?.mac ?? null;
    if (mac === null && this.spec.virtualMac !== null)
      throw new Error(`farm VIP ${first.address}: interface ${interfaceName} has no MAC address`);
    if (mac === null && this.spec.directed === true)
      throw new Error(`farm VIP ${first.address}: interface ${interfaceName} has no MAC address`);
    const ownAddress = interfaces
      .find((info) => info.name === interfaceName)
      ?.addresses.find(
        (entry) => entry.family === 4 && !this.spec.vips.some((vip) => vip.address === entry.address),
      )?.address;
    this.placed = {
      interfaceName,
      ownMac: mac ?? '00:00:00:00:00:00',
      ...(ownAddress ? { ownAddress } : {}),
    };
    return this.placed;
  }

  private async addVip(
    interfaces: readonly InterfaceInfo[],
    vip: FarmVipSpec,
    fallback: string,
  ): Promise<void> {
    if (findAddress(interfaces, vip.address) !== undefined) return;
    const family = familyOf(vip.address);
    const found = placementFor(interfaces, vip.address, vip.interfaceName);
    const interfaceName = vip.interfaceName ?? found?.interfaceName ?? fallback;
    const prefixLength =
      vip.netmask !== undefined
        ? prefixLengthOf(vip.netmask, family)
        : (found?.prefixLength ?? (family === 4 ? 32 : 128));
    const label = family === 4 ? labelFor(interfaceName) : undefined;
    const args = ['addr', 'add', `${vip.address}/${prefixLength}`, 'dev', interfaceName];
    // IPv6: every node holds the same address on purpose; duplicate detection would disable it.
    if (family === 6) args.push('nodad');
    if (label !== undefined) args.push('label', label);
    await this.run('ip', args).catch((error: unknown) => {
      if (!(error instanceof NetCommandError && /File exists|already assigned/i.test(error.message)))
        throw error;
    });
  }

  private async apply(text: string): Promise<void> {
    mkdirSync(dirname(this.spec.nftFile), { recursive: true });
    const temporary = `${this.spec.nftFile}.tmp`;
    writeFileSync(temporary, text, { mode: 0o600 });
    renameSync(temporary, this.spec.nftFile);
    await this.run('nft', ['-f', this.spec.nftFile], { timeoutMs: 10_000 });
  }
}
