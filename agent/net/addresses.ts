// The addresses configured on this node, as `ip -j addr show` reports them, and the pure
// address arithmetic the VIP needs: families, canonical forms, prefixes, which interface's
// subnet holds an address. No I/O.
import { isIP } from 'node:net';

export type IpFamily = 4 | 6;

export interface InterfaceAddress {
  readonly address: string;
  readonly prefixLength: number;
  readonly family: IpFamily;
  readonly label: string | null;
  /** IPv6 duplicate address detection still running. */
  readonly tentative: boolean;
  /** IPv6 duplicate address detection found another holder. */
  readonly dadFailed: boolean;
  /** Seconds, or null for forever. */
  readonly validLifetimeSec: number | null;
}

export interface InterfaceInfo {
  readonly name: string;
  readonly mac: string | null;
  readonly up: boolean;
  readonly addresses: readonly InterfaceAddress[];
}

/** The kernel's "forever" lifetime. */
const foreverSec = 4_294_967_295;

export function familyOf(address: string): IpFamily {
  const family = isIP(address);
  if (family !== 4 && family !== 6) throw new Error(`${JSON.stringify(address)} is not an IP address`);
  return family;
}

/** Sixteen (IPv6) or four (IPv4) bytes. */
export function addressBytes(address: string): number[] {
  const family = familyOf(address);
  if (family === 4) return address.split('.').map(Number);
  let text = address.split('%')[0] ?? address;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = addressBytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill('0'), ...restGroups].map((group) =>
    Number.parseInt(group, 16),
  );
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** One spelling per address, for comparisons (IPv6 fully expanded, lower case). */
export function canonicalAddress(address: string): string {
  const bytes = addressBytes(address);
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let index = 0; index < 16; index += 2)
    groups.push((((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0)).toString(16).padStart(4, '0'));
  return groups.join(':');
}

export function sameAddress(a: string, b: string): boolean {
  return isIP(a) !== 0 && isIP(b) !== 0 && canonicalAddress(a) === canonicalAddress(b);
}

export function inSubnet(address: string, network: string, prefixLength: number): boolean {
  const a = addressBytes(address);
  const b = addressBytes(network);
  if (a.length !== b.length) return false;
  for (let bit = 0; bit < prefixLength; bit += 1) {
    const index = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((a[index] ?? 0) & mask) !== ((b[index] ?? 0) & mask)) return false;
  }
  return true;
}

/** `255.255.255.0` -> 24; a plain number is taken as a prefix length. */
export function prefixLengthOf(netmask: string, family: IpFamily): number {
  const maxBits = family === 4 ? 32 : 128;
  if (/^\d{1,3}$/.test(netmask)) {
    const bits = Number(netmask);
    if (bits > maxBits) throw new Error(`netmask /${bits} is longer than ${maxBits} bits`);
    return bits;
  }
  if (family !== 4 || isIP(netmask) !== 4) throw new Error(`netmask ${JSON.stringify(netmask)} is not valid`);
  const bits = addressBytes(netmask)
    .map((byte) => byte.toString(2).padStart(8, '0'))
    .join('');
  if (!/^1*0*$/.test(bits)) throw new Error(`netmask ${netmask} is not contiguous`);
  return bits.indexOf('0') === -1 ? 32 : bits.indexOf('0');
}

interface RawAddrInfo {
  family?: unknown;
  local?: unknown;
  prefixlen?: unknown;
  label?: unknown;
  tentative?: unknown;
  dadfailed?: unknown;
  valid_life_time?: unknown;
}

interface RawLink {
  ifname?: unknown;
  address?: unknown;
  flags?: unknown;
  addr_info?: unknown;
}

/** Parses `ip -j addr show [dev IF]`; throws with what was wrong when the output is not that. */
export function parseIpAddrJson(text: string): InterfaceInfo[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text === '' ? '[]' : text);
  } catch (error) {
    throw new Error(`ip -j addr: output is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (!Array.isArray(raw)) throw new Error('ip -j addr: output is not a list');
  return raw.map((entry: RawLink) => {
    if (typeof entry.ifname !== 'string') throw new Error('ip -j addr: an interface has no name');
    const flags = Array.isArray(entry.flags) ? entry.flags : [];
    const infos = Array.isArray(entry.addr_info) ? (entry.addr_info as RawAddrInfo[]) : [];
    return {
      name: entry.ifname,
      mac: typeof entry.address === 'string' ? entry.address.toLowerCase() : null,
      up: flags.includes('UP') && flags.includes('LOWER_UP'),
      addresses: infos
        .filter(
          (info) => (info.family === 'inet' || info.family === 'inet6') && typeof info.local === 'string',
        )
        .map((info) => ({
          address: String(info.local),
          prefixLength: Number(info.prefixlen),
          family: info.family === 'inet' ? (4 as const) : (6 as const),
          label: typeof info.label === 'string' ? info.label : null,
          tentative: info.tentative === true,
          dadFailed: info.dadfailed === true,
          validLifetimeSec:
            typeof info.valid_life_time === 'number' && info.valid_life_time !== foreverSec
              ? info.valid_life_time
              : null,
        })),
    };
  });
}

export function findAddress(
  interfaces: readonly InterfaceInfo[],
  address: string,
  interfaceName?: string,
): { readonly interface: InterfaceInfo; readonly address: InterfaceAddress } | undefined {
  for (const info of interfaces) {
    if (interfaceName !== undefined && info.name !== interfaceName) continue;
    const found = info.addresses.find((entry) => sameAddress(entry.address, address));
    if (found !== undefined) return { interface: info, address: found };
  }
  return undefined;
}

/**
 * The interface and prefix for a VIP: the interface whose own address's subnet holds it (the
 * reference requires the VIP in a node subnet). The VIP itself, if present, does not count.
 */
export function placementFor(
  interfaces: readonly InterfaceInfo[],
  vip: string,
  interfaceName?: string,
): { readonly interfaceName: string; readonly prefixLength: number } | undefined {
  for (const info of interfaces) {
    if (interfaceName !== undefined && info.name !== interfaceName) continue;
    for (const entry of info.addresses) {
      if (entry.family !== familyOf(vip) || sameAddress(entry.address, vip)) continue;
      if (entry.family === 6 && entry.address.toLowerCase().startsWith('fe80')) continue;
      if (inSubnet(vip, entry.address, entry.prefixLength))
        return { interfaceName: info.name, prefixLength: entry.prefixLength };
    }
  }
  return undefined;
}
