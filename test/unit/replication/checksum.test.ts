// CRC-32C: the native addon (SSE 4.2 where the CPU has it) and the JavaScript fallback agree with
// the standard check value and with each other, on any length, any alignment, chained or whole.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { crc32c, crc32cImplementation, crc32cPortable } from '../../../agent/replication/checksum.ts';
import { loadFuseAddon } from '../../../agent/replication/fuse/addon.ts';

const check = Buffer.from('123456789');

test('the check value of "123456789" is 0xe3069283 (RFC 3720), and an empty input keeps the CRC', () => {
  assert.equal(crc32cPortable(check), 0xe3069283);
  assert.equal(crc32c(check), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0), 0x1234), 0x1234);
  assert.equal(crc32cPortable(Buffer.alloc(0), 0x1234), 0x1234);
  // 32 bytes of zeros, from RFC 3720 B.4.
  assert.equal(crc32cPortable(Buffer.alloc(32)), 0x8a9136aa);
});

test('native and portable agree on every length 0..300 at every alignment 0..7, and chain', () => {
  const data = randomBytes(400);
  for (let offset = 0; offset < 8; offset += 1) {
    for (let length = 0; length <= 300; length += 1) {
      const view = data.subarray(offset, offset + length);
      const whole = crc32cPortable(view);
      assert.equal(crc32c(view), whole, `offset ${offset} length ${length}`);
      const cut = length >> 1;
      assert.equal(crc32c(view.subarray(cut), crc32c(view.subarray(0, cut))), whole);
      assert.equal(crc32cPortable(view.subarray(cut), crc32cPortable(view.subarray(0, cut))), whole);
    }
  }
  const large = randomBytes(1024 * 1024 + 13);
  assert.equal(crc32c(large), crc32cPortable(large));
});

test('the native implementation is the one used wherever the addon loads', () => {
  const load = loadFuseAddon();
  if (!load.ok) {
    assert.equal(crc32cImplementation(), 'javascript table');
    return;
  }
  assert.equal(typeof load.addon['hakit_crc32c'], 'function', 'a built addon exports hakit_crc32c');
  assert.equal(crc32cImplementation(), 'sse4.2 or table (native addon)');
});
