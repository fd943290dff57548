// The farm's 256 load-balancing buckets (reference 3.3), pure and deterministic: every node
// computes the same bucket map from the same agreed view, with no leader.
//
// Bucket of a packet: the kernel's Jenkins hash (`jhash`, lib/jhash.h) of the filter field as it
// sits in the packet (network byte order: 4 bytes of the IPv4 source address for on_addr, 16 for
// IPv6, 2 bytes of the source port for on_port, 2 bytes of the IP id for on_ipid), seeded with
// `bucketSeed`, scaled to 256 the way nft does (`reciprocal_scale`: the top 8 bits). That is
// exactly what nftables computes with `jhash ip saddr mod 256 seed 0x5afe`, so the filter of
// agent/net/farm-filter.ts and this file agree on every packet (checked against real nft in
// test/unit/net/farm-filter.test.ts).
//
// Bucket map: each member with power > 0 gets a quota proportional to its power (largest
// remainder, exact total 256); a member whose power is at most 1/64 of the highest available
// power gets nothing, which gives the reference's cascade with powers 1, 64, 4096. Buckets go to
// members by rendezvous scores: (bucket, node) pairs in decreasing score order, a bucket taken by
// the first member that still has room. Scores depend only on (bucket, node name), so a change of
// membership moves few buckets besides those of the member that left or joined.

export const bucketCount = 256;
/** `seed` of the nft jhash expression; any constant works as long as both sides use it. */
export const bucketSeed = 0x5afe;
/** A member whose power times this is at most the highest available power receives nothing. */
export const cascadeFactor = 64;
export const powerMax = 2 ** 30;

export type FilterKind = 'on_addr' | 'on_port' | 'on_ipid';

const jhashInitval = 0xdeadbeef;

function rol32(value: number, shift: number): number {
  return ((value << shift) | (value >>> (32 - shift))) >>> 0;
}

/** lib/jhash.h jhash(): little-endian 32-bit loads for whole words (x86, arm64), bytes after. */
export function jhash(bytes: Uint8Array, seed: number): number {
  let length = bytes.length;
  let a = (jhashInitval + length + seed) >>> 0;
  let b = a;
  let c = a;
  let offset = 0;
  const word = (at: number) =>
    ((bytes[at] ?? 0) |
      ((bytes[at + 1] ?? 0) << 8) |
      ((bytes[at + 2] ?? 0) << 16) |
      ((bytes[at + 3] ?? 0) << 24)) >>>
    0;
  while (length > 12) {
    a = (a + word(offset)) >>> 0;
    b = (b + word(offset + 4)) >>> 0;
    c = (c + word(offset + 8)) >>> 0;
    // __jhash_mix
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol32(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol32(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol32(b, 4)) >>> 0;
    b = (b + a) >>> 0;
    length -= 12;
    offset += 12;
  }
  if (length === 0) return c;
  const byte = (index: number) => bytes[offset + index] ?? 0;
  // The tail: byte k of each word goes to bits 8k (the kernel's switch with fallthrough).
  for (let index = length - 1; index >= 0; index -= 1) {
    const value = (byte(index) << (8 * (index % 4))) >>> 0;
    if (index >= 8) c = (c + value) >>> 0;
    else if (index >= 4) b = (b + value) >>> 0;
    else a = (a + value) >>> 0;
  }
  // __jhash_final
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 14)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 11)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 25)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 16)) >>> 0;
  a = (a ^ c) >>> 0;
  a = (a - rol32(c, 4)) >>> 0;
  b = (b ^ a) >>> 0;
  b = (b - rol32(a, 14)) >>> 0;
  c = (c ^ b) >>> 0;
  c = (c - rol32(b, 24)) >>> 0;
  return c;
}

/** nft `jhash <field> mod 256 seed bucketSeed`: reciprocal_scale keeps the top 8 bits. */
export function bucketOfBytes(bytes: Uint8Array): number {
  return jhash(bytes, bucketSeed) >>> 24;
}

/** Bytes of an IPv4 or IPv6 literal as they sit in the packet. */
export function addressBytes(address: string): Uint8Array {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((part) => part > 255)) throw new Error(`bucket: ${address} is not an IPv4 address`);
    return Uint8Array.from(parts);
  }
  if (!address.includes(':')) throw new Error(`bucket: ${address} is not an IP address`);
  const [head = '', tail, extra] = address.split('::');
  if (extra !== undefined) throw new Error(`bucket: ${address} is not an IPv6 address`);
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const missing = 8 - left.length - right.length;
  if ((tail === undefined && missing !== 0) || missing < 0)
    throw new Error(`bucket: ${address} is not an IPv6 address`);
  const all = [...left, ...Array<string>(missing).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((group, index) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) throw new Error(`bucket: ${address} is not an IPv6 address`);
    const value = parseInt(group, 16);
    bytes[index * 2] = value >> 8;
    bytes[index * 2 + 1] = value & 0xff;
  });
  return bytes;
}

function u16Bytes(value: number, what: string): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new Error(`bucket: ${what} ${value}`);
  return Uint8Array.from([value >> 8, value & 0xff]);
}

/** The bucket of a client, as the filter of this kind sees it. */
export function bucketOf(
  filter: FilterKind,
  client: { address?: string; port?: number; ipId?: number },
): number {
  switch (filter) {
    case 'on_addr':
      if (client.address === undefined) throw new Error('bucket: on_addr needs the client address');
      return bucketOfBytes(addressBytes(client.address));
    case 'on_port':
      return bucketOfBytes(u16Bytes(client.port ?? -1, 'client port'));
    case 'on_ipid':
      return bucketOfBytes(u16Bytes(client.ipId ?? -1, 'IP id'));
  }
}

export interface BucketMember {
  readonly node: string;
  /** `<host power>`; 0 = never any traffic. */
  readonly power: number;
}

/** owners[bucket] = node name, or null when no member can take traffic. */
export interface BucketMap {
  readonly owners: readonly (string | null)[];
}

/** FNV-1a then a murmur3 finaliser: a well-spread 32-bit score, the same on every node. */
function score(node: string, bucket: number): number {
  let hash = 0x811c9dc5;
  const text = `${node}\u0000${bucket}`;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

const scoreTable = new Map<string, Uint32Array>();
const scoreTableNodesMax = 1024;

function scoresOf(node: string): Uint32Array {
  let scores = scoreTable.get(node);
  if (scores === undefined) {
    scores = new Uint32Array(bucketCount);
    for (let bucket = 0; bucket < bucketCount; bucket += 1) scores[bucket] = score(node, bucket);
    // Bounded cache: names come from cluster.xml, but a long-lived daemon must not grow forever.
    if (scoreTable.size >= scoreTableNodesMax) scoreTable.clear();
    scoreTable.set(node, scores);
  }
  return scores;
}

/** Buckets per member: proportional to power, exact total, cascade below 1/64 of the top power. */
export function bucketQuotas(members: readonly BucketMember[]): Map<string, number> {
  const quotas = new Map<string, number>();
  for (const member of members) {
    if (!Number.isInteger(member.power) || member.power < 0 || member.power > powerMax)
      throw new Error(`farm: power ${member.power} of ${member.node} must be an integer 0..${powerMax}`);
    quotas.set(member.node, 0);
  }
  const top = Math.max(0, ...members.map((member) => member.power));
  const eligible = members
    .filter((member) => member.power > 0 && member.power * cascadeFactor > top)
    .sort((left, right) => (left.node < right.node ? -1 : left.node > right.node ? 1 : 0));
  const total = eligible.reduce((sum, member) => sum + member.power, 0);
  if (total === 0) return quotas;
  let given = 0;
  const remainders: { node: string; remainder: number }[] = [];
  for (const member of eligible) {
    const exact = (bucketCount * member.power) / total;
    const whole = Math.floor(exact);
    quotas.set(member.node, whole);
    given += whole;
    remainders.push({ node: member.node, remainder: exact - whole });
  }
  // Largest remainder; ties by name (the sort is stable over name order).
  remainders.sort((left, right) => right.remainder - left.remainder);
  for (const { node } of remainders.slice(0, bucketCount - given))
    quotas.set(node, (quotas.get(node) ?? 0) + 1);
  return quotas;
}

/** The bucket map of a view. Same members (in any order) -> same map, on every node. */
export function assignBuckets(members: readonly BucketMember[]): BucketMap {
  const names = new Set<string>();
  for (const member of members) {
    if (names.has(member.node)) throw new Error(`farm: node ${member.node} is twice in the view`);
    names.add(member.node);
  }
  const quotas = bucketQuotas(members);
  const owners: (string | null)[] = Array<string | null>(bucketCount).fill(null);
  const takers = [...quotas.entries()].filter(([, quota]) => quota > 0).map(([node]) => node);
  if (takers.length === 0) return { owners };
  const pairs: { bucket: number; node: string; score: number }[] = [];
  for (const node of takers) {
    const scores = scoresOf(node);
    for (let bucket = 0; bucket < bucketCount; bucket += 1)
      pairs.push({ bucket, node, score: scores[bucket] ?? 0 });
  }
  pairs.sort(
    (left, right) =>
      right.score - left.score ||
      left.bucket - right.bucket ||
      (left.node < right.node ? -1 : left.node > right.node ? 1 : 0),
  );
  const room = new Map(quotas);
  let left = bucketCount;
  for (const pair of pairs) {
    if (left === 0) break;
    if (owners[pair.bucket] !== null) continue;
    const free = room.get(pair.node) ?? 0;
    if (free === 0) continue;
    owners[pair.bucket] = pair.node;
    room.set(pair.node, free - 1);
    left -= 1;
  }
  return { owners };
}

/** The buckets a node owns, in increasing order. */
export function bucketsOf(map: BucketMap, node: string): number[] {
  const owned: number[] = [];
  map.owners.forEach((owner, bucket) => {
    if (owner === node) owned.push(bucket);
  });
  return owned;
}

/** Contiguous ranges [first, last] of sorted buckets: what the nft set holds. */
export function bucketRanges(buckets: readonly number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const bucket of buckets) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last[1] === bucket - 1) last[1] = bucket;
    else ranges.push([bucket, bucket]);
  }
  return ranges;
}

/** The reference's debug form (`vip_if_ctrl -l`): eight 32-bit hex words, bucket 0 = bit 0 of word 0. */
export function bitmapWords(buckets: readonly number[]): string[] {
  const words = new Array<number>(bucketCount / 32).fill(0);
  for (const bucket of buckets) {
    const index = Math.floor(bucket / 32);
    words[index] = ((words[index] ?? 0) | (1 << (bucket % 32))) >>> 0;
  }
  return words.map((word) => word.toString(16).padStart(8, '0'));
}

/** Buckets whose owner differs between two maps. */
export function movedBuckets(before: BucketMap, after: BucketMap): number {
  let moved = 0;
  for (let bucket = 0; bucket < bucketCount; bucket += 1)
    if (before.owners[bucket] !== after.owners[bucket]) moved += 1;
  return moved;
}
