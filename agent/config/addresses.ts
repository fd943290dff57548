// Address syntax for cluster.xml and userconfig.xml: IPv4, IPv6 (in brackets in cluster.xml),
// DNS names, MAC addresses and netmasks. Pure string checks, no resolver: the configuration core
// runs in the console too, far from the nodes.

export type AddressKind = 'ipv4' | 'ipv6' | 'dns';

export interface ParsedAddress {
  readonly kind: AddressKind;
  /** Without brackets. */
  readonly host: string;
}

export function isIPv4(text: string): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  return parts.every((part) => /^(0|[1-9][0-9]{0,2})$/.test(part) && Number(part) <= 255);
}

export function isIPv6(text: string): boolean {
  if (text.length < 2 || text.length > 45) return false;
  let body = text;
  // An IPv4 tail (::ffff:10.0.0.1) counts as two groups.
  let tailGroups = 0;
  const lastColon = body.lastIndexOf(':');
  const tail = body.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!isIPv4(tail)) return false;
    body = `${body.slice(0, lastColon + 1)}0`;
    tailGroups = 1;
  }
  const halves = body.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (half: string): string[] | undefined => {
    if (half === '') return [];
    const groups = half.split(':');
    return groups.every((group) => /^[0-9a-fA-F]{1,4}$/.test(group)) ? groups : undefined;
  };
  const head = groupsOf(halves[0] ?? '');
  const rest = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  if (head === undefined || rest === undefined) return false;
  const count = head.length + rest.length + tailGroups;
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** RFC 1123 host name; an all-numeric dotted name is rejected (it is a mistyped IPv4 address). */
export function isDnsName(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  const labels = (text.endsWith('.') ? text.slice(0, -1) : text).split('.');
  if (labels.every((label) => /^[0-9]+$/.test(label))) return false;
  return labels.every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

interface AddressFailure {
  readonly ok: false;
  readonly message: string;
  readonly hint?: string;
}

export type AddressResult = { readonly ok: true; readonly address: ParsedAddress } | AddressFailure;

/**
 * An address as cluster.xml writes it: IPv4, `[IPv6]` or a DNS name. With `bracketsForIPv6` false
 * (userconfig.xml virtual addresses) a bare IPv6 address is accepted too.
 */
export function parseAddress(raw: string, bracketsForIPv6: boolean): AddressResult {
  const text = raw.trim();
  if (text.startsWith('[') && text.endsWith(']')) {
    const inner = text.slice(1, -1);
    return isIPv6(inner)
      ? { ok: true, address: { kind: 'ipv6', host: inner } }
      : { ok: false, message: `'${raw}' is not a valid IPv6 address` };
  }
  if (isIPv4(text)) return { ok: true, address: { kind: 'ipv4', host: text } };
  if (isIPv6(text)) {
    return bracketsForIPv6
      ? { ok: false, message: `IPv6 address '${raw}' must be written in brackets`, hint: `write [${text}]` }
      : { ok: true, address: { kind: 'ipv6', host: text } };
  }
  if (/^[0-9.]+$/.test(text)) return { ok: false, message: `'${raw}' is not a valid IPv4 address` };
  if (isDnsName(text)) return { ok: true, address: { kind: 'dns', host: text } };
  return { ok: false, message: `'${raw}' is not an IPv4 address, an IPv6 address or a DNS name` };
}

export function isMacAddress(text: string): boolean {
  return /^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/.test(text);
}

/** A dotted IPv4 mask with contiguous ones (255.255.255.0) or a prefix length (24, /64). */
export function isNetmask(text: string): boolean {
  const prefix = /^\/?([0-9]{1,3})$/.exec(text);
  if (prefix !== null) return Number(prefix[1]) <= 128;
  if (!isIPv4(text)) return false;
  const bits = text
    .split('.')
    .map((part) => Number(part).toString(2).padStart(8, '0'))
    .join('');
  return /^1*0*$/.test(bits);
}
