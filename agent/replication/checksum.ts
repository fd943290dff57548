// CRC-32C (Castagnoli), the checksum of the replication stream's frames after the handshake. The
// vendored addon computes it with the SSE 4.2 instruction (about 6 GB/s here against 3.5 GB/s
// for zlib's CRC-32, and a write's CRC is on the writer's round trip); where the addon cannot load
// (no libfuse: such a node cannot be a primary) a table in JavaScript gives the same values, slower.
// `crc32c(data, previous)` chains like zlib's `crc32`: `previous` is the CRC of what came before.
import { loadFuseAddon } from './fuse/addon.ts';

type Crc32c = (data: Uint8Array, previous: number) => number;

/** Slicing-by-8 tables of the reflected polynomial 0x82F63B78. */
const tables: Uint32Array[] = (() => {
  const first = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    first[n] = c >>> 0;
  }
  const all = [first];
  for (let t = 1; t < 8; t += 1) {
    const previous = all[t - 1] as Uint32Array;
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n += 1) {
      const value = previous[n] as number;
      next[n] = ((first[value & 0xff] as number) ^ (value >>> 8)) >>> 0;
    }
    all.push(next);
  }
  return all;
})();

/** The JavaScript fallback (also what the tests compare the native one with). */
export function crc32cPortable(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = ~previous >>> 0;
  let at = 0;
  const end8 = data.length - (data.length % 8);
  while (at < end8) {
    const low =
      (crc ^
        ((data[at] as number) |
          ((data[at + 1] as number) << 8) |
          ((data[at + 2] as number) << 16) |
          ((data[at + 3] as number) << 24))) >>>
      0;
    crc =
      (t7[low & 0xff] as number) ^
      (t6[(low >>> 8) & 0xff] as number) ^
      (t5[(low >>> 16) & 0xff] as number) ^
      (t4[low >>> 24] as number) ^
      (t3[data[at + 4] as number] as number) ^
      (t2[data[at + 5] as number] as number) ^
      (t1[data[at + 6] as number] as number) ^
      (t0[data[at + 7] as number] as number);
    at += 8;
  }
  while (at < data.length) {
    crc = (t0[(crc ^ (data[at] as number)) & 0xff] as number) ^ (crc >>> 8);
    at += 1;
  }
  return ~crc >>> 0;
}

let implementation: Crc32c | undefined;

function chosen(): Crc32c {
  if (implementation !== undefined) return implementation;
  const load = loadFuseAddon();
  const native = load.ok ? load.addon['hakit_crc32c'] : undefined;
  implementation = typeof native === 'function' ? (native as Crc32c) : crc32cPortable;
  return implementation;
}

export function crc32c(data: Uint8Array, previous = 0): number {
  return chosen()(data, previous >>> 0);
}

/** Which implementation runs here (for status and the benchmark). */
export function crc32cImplementation(): 'sse4.2 or table (native addon)' | 'javascript table' {
  return chosen() === crc32cPortable ? 'javascript table' : 'sse4.2 or table (native addon)';
}
