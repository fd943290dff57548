import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allSystemPackages, labSystemPackages, missingSystemPackages } from '../system-packages.ts';

test('the package list names what the issue requires', () => {
  const names = allSystemPackages.map((p) => p.name);
  for (const required of [
    'iproute2',
    'nftables',
    'openssh-server',
    'iputils-ping',
    'iputils-arping',
    'fuse',
    'libfuse-dev',
    'chromium',
  ]) {
    assert.ok(names.includes(required), `${required} is checked`);
  }
  assert.ok(labSystemPackages.every((p) => names.includes(p.name)));
});

test('dpkg is asked, and a package that does not exist is reported missing', () => {
  const missing = missingSystemPackages([
    { name: 'coreutils', why: 'always installed on Debian' },
    { name: 'hakit-no-such-package', why: 'does not exist' },
  ]);
  assert.deepEqual(
    missing.map((p) => p.name),
    ['hakit-no-such-package'],
  );
});
