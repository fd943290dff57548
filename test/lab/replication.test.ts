// Synchronous file replication between two real lab nodes (issue 7): n1 primary with the FUSE
// interception over /srv/data, n2 secondary with a read-only /srv/data, the stream over the lab
// bridge. Writes are on n2 when the call returns; namespace and metadata operations are
// replicated; the secondary refuses application writes (EROFS); a killed or partitioned secondary
// is dropped after locktimeout/sendtimeout, the primary goes on ALONE and journals, and on return
// only the changed ranges are sent; a busy unmount names the holder.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CtlAnswer } from '../../agent/net/ctl-client.ts';
import type { Difference } from '../../agent/replication/compare.ts';
import { labJson } from './harness.ts';
import { buildFuseAddon, dataDir, RepLab, replicationSkipReason, sleep } from './replication-lab.ts';

const skip = replicationSkipReason();
// async="none": the secondary acknowledges after applying, so "on n2 when the call returns" is
// observable from outside; the default async="second" acknowledges on receipt.
const lab = new RepLab('trep', { asyncMode: 'none' });
const mib = 1024 * 1024;

interface PwriteAnswer extends CtlAnswer {
  ms?: number;
  errno?: string;
}

/** `find` listing of the tree with type, mode, size, owner, mtime, link target and content digest. */
async function treeOf(name: string): Promise<string> {
  const answer = await lab.sh(
    name,
    `cd ${dataDir} && find . -printf '%p %y %m %s %U:%G %T@ %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`,
  );
  assert.equal(answer.code, 0, `tree of ${name}: ${answer.stderr}`);
  return answer.stdout;
}

async function verify(): Promise<Difference[]> {
  return (await lab.ctl('n1').call<CtlAnswer & { differences: Difference[] }>('verify', {}, 120_000))
    .differences;
}

async function pwrite(name: string, path: string, offset: number, text: string, create = false) {
  return lab.ctl(name).call<PwriteAnswer>('pwrite', { path, offset, text, fsync: true, create }, 30_000);
}

/** Waits for the link on n1 to be connected and the secondary reported up to date after `mark`. */
async function waitReintegrated(mark: number, timeoutMs = 60_000): Promise<void> {
  await lab.waitEvent('n1', mark, (event) => event.event === 'secondary-up-to-date', timeoutMs);
}

describe('replication between two lab nodes', { skip, timeout: 300_000 }, () => {
  before(async () => {
    buildFuseAddon();
    await lab.up();
    // Existing data on the primary: the first connection is a full sync.
    const seeded = await lab.sh(
      'n1',
      `cd ${dataDir} && echo existing > pre && mkdir -p old/deep && head -c 3000000 /dev/urandom > old/deep/blob && chmod 600 old/deep/blob`,
    );
    assert.equal(seeded.code, 0, seeded.stderr);
    await lab.startPair();
  });

  after(async () => {
    await lab.down();
  });

  test('the first connection copies the existing tree; a write is on n2 when the call returns', async () => {
    assert.deepEqual(await verify(), []);
    assert.equal(await treeOf('n2'), await treeOf('n1'));
    const mount = await lab.sh('n1', `grep ' ${dataDir} ' /proc/self/mounts`);
    assert.match(mount.stdout, /fuse/, 'n1 serves /srv/data through FUSE');
    for (let index = 0; index < 20; index += 1) {
      const text = `value-${index}-${Date.now()}`;
      const written = await pwrite('n1', `${dataDir}/w${index % 3}`, index * 10, text, index < 3);
      assert.equal(written.errno, undefined);
      const seen = await lab.sh(
        'n2',
        `dd if=${dataDir}/w${index % 3} bs=1 skip=${index * 10} count=${text.length} status=none`,
      );
      assert.equal(seen.stdout, text, `write ${index} on n2 once acknowledged`);
    }
  });

  test('rename, unlink, mkdir, symlink, chmod, truncate, hard link, rmdir and fsync are replicated', async () => {
    const ops = await lab.sh(
      'n1',
      [
        `cd ${dataDir}`,
        'mkdir -p d/e',
        'echo hello > d/e/f',
        'mv d/e/f d/g',
        'ln -s ../pre d/link',
        'ln d/g d/hard',
        'chmod 640 d/g',
        'head -c 500000 /dev/urandom > t && truncate -s 1234 t',
        'truncate -s 2000000 sparse',
        'echo gone > victim && rm victim',
        'mkdir gone-dir && rmdir gone-dir',
        'mv old renamed-dir',
        'touch -d "2020-01-02 03:04:05" pre',
        'dd if=/dev/urandom of=big bs=1M count=8 conv=fsync status=none',
        'echo over > w0 && mv w0 w1',
      ].join(' && '),
    );
    assert.equal(ops.code, 0, ops.stderr);
    assert.deepEqual(await verify(), []);
    // Known limit: through n1's FUSE mount, a hard link's cached attributes (mode, size) stay
    // stale for up to attr_timeout (1 s, libfuse 2 high-level) after a change made through
    // another name of the same file; the real trees (verify above) are identical at once.
    await sleep(1_100);
    assert.equal(await treeOf('n2'), await treeOf('n1'));
    const link = await lab.sh('n2', `readlink ${dataDir}/d/link && stat -c '%a %h' ${dataDir}/d/g`);
    assert.equal(link.stdout, '../pre\n640 2\n');
  });

  test("the secondary's directory is read-only to applications (EROFS)", async () => {
    const touched = await lab.sh('n2', `touch ${dataDir}/intruder`);
    assert.notEqual(touched.code, 0);
    assert.match(touched.stderr, /Read-only file system/);
    assert.equal((await pwrite('n2', `${dataDir}/pre`, 0, 'x')).errno, 'EROFS');
    assert.equal((await pwrite('n2', `${dataDir}/new`, 0, 'x', true)).errno, 'EROFS');
    const mounts = await lab.sh('n2', `grep ' ${dataDir} ' /proc/self/mounts`);
    assert.match(mounts.stdout, /\bro\b/);
  });

  test('a killed secondary is dropped; the primary goes on alone; on return only changed ranges are sent', async () => {
    // A large file replicated while connected, then changed in a small part while alone.
    assert.equal((await lab.sh('n1', `head -c ${32 * mib} /dev/urandom > ${dataDir}/large`)).code, 0);
    const mark = lab.mark('n1');
    await labJson(['fault', '--name', lab.lab, 'kill', 'n2', 'replication/child']);
    const started = performance.now();
    const written = await pwrite('n1', `${dataDir}/large`, 5 * mib, 'changed while the secondary was dead');
    const waitedMs = performance.now() - started;
    assert.equal(written.errno, undefined);
    assert.ok(waitedMs < 10_000, `the write returned after ${waitedMs.toFixed(0)} ms`);
    await lab.waitEvent('n1', mark, (event) => event.event === 'peer-lost', 10_000);
    // Writes while alone return at local speed.
    const alone = await pwrite('n1', `${dataDir}/large`, 20 * mib, 'second change');
    assert.ok((alone.ms ?? Infinity) < 1_000, `a write while alone took ${alone.ms} ms`);
    assert.equal(
      (await lab.sh('n1', `cd ${dataDir} && echo new > alone-file && mv w1 w1-renamed && rm w2`)).code,
      0,
    );
    const status = await lab.status('n1');
    assert.equal(status.journalActive, true, 'the primary journals while alone');
    assert.ok(status.journalPaths >= 3, `journal paths ${status.journalPaths}`);
    console.log(
      `killed secondary: the pending write returned after ${waitedMs.toFixed(0)} ms (${status.lastDropReason})`,
    );

    // The secondary comes back: incremental reintegration.
    const back = lab.mark('n1');
    await lab.spawnCtl('n2');
    await lab.startSecondary();
    await waitReintegrated(back);
    const after = await lab.status('n1');
    assert.equal(after.counters['lastResyncFull'], 'false', 'an incremental reintegration');
    const sent = Number(after.counters['lastResyncBytesSent']);
    assert.ok(sent < mib, `reintegration sent ${sent} bytes of a 32 MiB file with two small changes`);
    console.log(`reintegration after a kill: ${sent} bytes sent in ${after.counters['lastResyncMs']} ms`);
    assert.deepEqual(await verify(), []);
    assert.equal(await treeOf('n2'), await treeOf('n1'));
  });

  test('a partitioned secondary is dropped after the timeouts and reintegrated after heal', async () => {
    const mark = lab.mark('n1');
    await labJson(['fault', '--name', lab.lab, 'partition', 'n1', 'n2']);
    let waitedMs: number | undefined;
    try {
      const started = performance.now();
      const written = await pwrite('n1', `${dataDir}/large`, 9 * mib, 'written during the partition');
      waitedMs = performance.now() - started;
      assert.equal(written.errno, undefined);
      assert.ok(waitedMs < 10_000, `the write returned after ${waitedMs.toFixed(0)} ms`);
      await lab.waitEvent('n1', mark, (event) => event.event === 'peer-lost', 10_000);
      assert.equal((await lab.sh('n1', `cd ${dataDir} && mkdir during && echo p > during/f`)).code, 0);
      assert.equal((await lab.status('n1')).journalActive, true);
    } finally {
      await labJson(['fault', '--name', lab.lab, 'heal', 'n1', 'n2']);
    }
    console.log(
      `partition: the pending write returned after ${waitedMs?.toFixed(0)} ms (${(await lab.status('n1')).lastDropReason})`,
    );
    await waitReintegrated(mark);
    const after = await lab.status('n1');
    assert.equal(after.counters['lastResyncFull'], 'false');
    assert.ok(Number(after.counters['lastResyncBytesSent']) < mib);
    assert.equal(after.journalActive, false);
    assert.deepEqual(await verify(), []);
    assert.equal(await treeOf('n2'), await treeOf('n1'));
  });

  test('a busy unmount reports the process holding a file, then stops once released', async () => {
    await lab.ctl('n1').call('hold', { path: `${dataDir}/pre` });
    await assert.rejects(lab.ctl('n1').call('stop', { force: false }, 60_000), (error: Error) => {
      assert.match(error.message, /busy/);
      assert.match(error.message, /node.*fd \d+ \/srv\/data\/pre/);
      return true;
    });
    assert.equal((await lab.status('n1')).role, 'primary', 'still primary after a refused stop');
    await lab.ctl('n1').call('release');
    await lab.ctl('n1').call('stop', { force: false }, 60_000);
    const mounts = await lab.sh('n1', `grep -c fuse.hakit /proc/self/mounts || true`);
    assert.equal(mounts.stdout.trim(), '0', 'no FUSE mount left');
    await lab.ctl('n2').call('stop', { force: false }, 60_000);
    const roLeft = await lab.sh('n2', `grep ' ${dataDir} ' /proc/self/mounts || true`);
    assert.equal(roLeft.stdout.trim(), '', 'the read-only mount is gone');
  });

  test('the primary crashes: n2 takes over alone; n1 returns as secondary and its suspect paths are corrected', async () => {
    for (const name of ['n1', 'n2']) await lab.ctl(name).call('close');
    await lab.startPair(false);
    // Written through n1's mount while connected: in n1's activity log.
    assert.equal(
      (await pwrite('n1', `${dataDir}/suspect`, 0, 'acknowledged-version', true)).errno,
      undefined,
    );
    const lostOnN2 = lab.mark('n2');
    await labJson(['fault', '--name', lab.lab, 'kill', 'n1', 'replication/child']);
    await lab.waitEvent('n2', lostOnN2, (event) => event.event === 'peer-lost', 15_000);
    const dead = await lab.sh('n1', `ls ${dataDir}`);
    assert.match(dead.stderr, /Transport endpoint is not connected/, 'n1 keeps a dead FUSE mount');
    // A write n1 applied locally but never sent before it died (simulated on its real data).
    assert.equal(
      (await lab.sh('n1', `printf 'UNSENT-local-only-version' > /srv/rep-state/real/0/suspect`)).code,
      0,
    );

    // Failover: n2 primary, alone; writes go on there.
    await lab.ctl('n2').call('stop', { force: false }, 60_000);
    await lab.ctl('n2').call('close');
    await lab.ctl('n2').call('init', { config: lab.config('n2') });
    const onN2 = lab.mark('n2');
    await lab.ctl('n2').call('startPrimary', { peerHost: lab.node('n1').ip, fullSync: false }, 60_000);
    assert.equal(
      (await pwrite('n2', `${dataDir}/after-failover`, 0, 'written on n2', true)).errno,
      undefined,
    );

    // n1 returns as secondary: the dead FUSE mount is cleared, its suspect paths compared.
    await lab.spawnCtl('n1');
    await lab.ctl('n1').call('init', { config: lab.config('n1') });
    await lab.ctl('n1').call('startSecondary', { listenHost: lab.node('n1').ip });
    await lab.waitEvent('n2', onN2, (event) => event.event === 'secondary-up-to-date', 60_000);
    const status = await lab.status('n2');
    console.log(
      `failback: reintegration full=${status.counters['lastResyncFull']}, ${status.counters['lastResyncBytesSent']} bytes sent`,
    );
    const differences = (
      await lab.ctl('n2').call<CtlAnswer & { differences: Difference[] }>('verify', {}, 120_000)
    ).differences;
    assert.deepEqual(differences, []);
    const seen = await lab.sh('n1', `cat ${dataDir}/suspect ${dataDir}/after-failover`);
    assert.equal(seen.stdout, 'acknowledged-versionwritten on n2');
    const mounts = await lab.sh('n1', `grep ' ${dataDir} ' /proc/self/mounts`);
    assert.doesNotMatch(mounts.stdout, /fuse/, 'no FUSE mount left on n1');
    assert.match(mounts.stdout, /\bro\b/);
  });
});
