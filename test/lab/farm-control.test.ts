// Script-controlled farm traffic, the update script and the mosaic page on three installed lab
// nodes and a client (module `farmctl`, see FarmControlLab): with <vip scriptcontrol="on"> the
// traffic stays closed after start until `hakit vip traffic open` (each node answering for its
// buckets once open), `hakit vip traffic close` takes a node out, a configuration applied while UP
// runs the update script with `UP UP`, which reopens the traffic (reference SETGROUPS form), and
// the new powers show in the mosaic: tiles fetched through the VIP, each on a new connection, come
// from the owner of their client port's bucket, spread by power. The page itself is loaded in
// Debian's Chromium inside the client's namespaces; its screenshot is kept in test-results/lab/.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assignBuckets, bucketOf, type BucketMap } from '../../agent/core/farm-buckets.ts';
import { nodeColour } from '../../agent/api/mosaic.ts';
import { FarmControlLab, type FarmConnection } from './farm-lab.ts';
import { labExec, labSkipReason } from './harness.ts';
import { eventually } from './mirror-lab.ts';

const skip = labSkipReason();
const farm = new FarmControlLab('tfctl');
const lab = farm.lab;
const repoDir = resolve(import.meta.dirname, '..', '..');
const shotsDir = join(repoDir, 'test-results', 'lab');
const chromiumPath = '/usr/bin/chromium';

function mapOf(members: string[], powers: Record<string, number> = {}): BucketMap {
  return assignBuckets(members.map((node) => ({ node, power: powers[node] ?? 1 })));
}

function ownerOf(map: BucketMap, port: number): string | null {
  return map.owners[bucketOf('on_port', { port })] ?? null;
}

function countBy(values: readonly (string | null)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value ?? 'none'] = (counts[value ?? 'none'] ?? 0) + 1;
  return counts;
}

function readyStatus(ip: string): Promise<number> {
  return new Promise((resolvePromise) => {
    request({ host: ip, port: 9010, path: '/var/modules/farmctl/ready.txt', timeout: 5000 }, (response) => {
      response.resume();
      resolvePromise(response.statusCode ?? 0);
    })
      .on('error', () => resolvePromise(0))
      .end();
  });
}

async function membership(name: string): Promise<string> {
  return /membership ([^,\n]*)/.exec(await farm.state(name, 'farmctl'))?.[1]?.trim() ?? '';
}

async function allSeeMembers(names: string[], members: string): Promise<boolean> {
  for (const name of names) if ((await membership(name)) !== members) return false;
  return true;
}

const ports = () => farm.freshPorts(() => true, 150).map((port) => ['', port] as const);

function wrongOwners(connections: readonly FarmConnection[], map: BucketMap): FarmConnection[] {
  return connections.filter((connection) => connection.servedBy !== ownerOf(map, connection.port));
}

describe(
  'farm scriptcontrol, update script and mosaic on three lab nodes',
  { skip, timeout: 900_000 },
  () => {
    before(() => farm.setUp());
    after(() => farm.tearDown());

    test('started with scriptcontrol on: UP Ready everywhere, but the traffic stays closed', async () => {
      for (const name of ['n1', 'n2', 'n3']) assert.equal((await farm.cli(name, 'start -m farmctl')).code, 0);
      for (const name of ['n1', 'n2', 'n3'])
        await eventually(
          async () => (await farm.state(name, 'farmctl')).startsWith('farmctl: UP (Ready)'),
          30_000,
          () => farm.state(name, 'farmctl'),
        );
      // The health check answers for UP Ready, whether or not the traffic is open.
      for (const name of ['n1', 'n2', 'n3']) assert.equal(await readyStatus(farm.node(name).ip), 200);
      assert.equal(await readyStatus(farm.node('n1').ip.replace(/\.\d+$/, '.254')), 0);
      for (const name of ['n1', 'n2', 'n3']) assert.equal(await membership(name), '(none)');
      const connections = await farm.connect(8080, ports().slice(0, 20));
      assert.deepEqual(countBy(connections.map((connection) => connection.servedBy)), { none: 20 });
    });

    test('vip traffic open on each node: each answers for its buckets; close takes n3 out', async () => {
      assert.equal((await farm.cli('n1', 'vip traffic open -m farmctl')).code, 0);
      await eventually(
        () => allSeeMembers(['n1'], 'n1'),
        10_000,
        () => farm.state('n1', 'farmctl'),
      );
      const alone = await farm.connect(8080, ports().slice(0, 40));
      assert.deepEqual(countBy(alone.map((connection) => connection.servedBy)), { n1: 40 });
      // The reference's form, module from -m.
      const opened = await farm.cli('n2', '-r saferpc_send vipd SETGROUPS all all all -m farmctl');
      assert.equal(opened.code, 0, opened.stderr);
      assert.equal((await farm.cli('n3', 'vip traffic open -m farmctl')).code, 0);
      await eventually(
        () => allSeeMembers(['n1', 'n2', 'n3'], 'n1 n2 n3'),
        15_000,
        () => farm.state('n3', 'farmctl'),
      );
      const three = await farm.connect(8080, ports());
      console.log(`scriptcontrol, all open: ${JSON.stringify(countBy(three.map((c) => c.servedBy)))}`);
      assert.deepEqual(wrongOwners(three, mapOf(['n1', 'n2', 'n3'])), []);
      const closed = await farm.cli('n3', 'vip traffic close -m farmctl');
      assert.equal(closed.code, 0, closed.stderr);
      await eventually(
        () => allSeeMembers(['n1', 'n2', 'n3'], 'n1 n2'),
        15_000,
        () => farm.state('n3', 'farmctl'),
      );
      const two = await farm.connect(8080, ports());
      console.log(`scriptcontrol, n3 closed: ${JSON.stringify(countBy(two.map((c) => c.servedBy)))}`);
      assert.deepEqual(wrongOwners(two, mapOf(['n1', 'n2'])), []);
      // n3 is still UP (Ready): only its traffic is closed.
      assert.match(await farm.state('n3', 'farmctl'), /^farmctl: UP \(Ready\)/);
    });

    test('configuration applied while UP: update script called with UP UP reopens n3; new powers in force', async () => {
      const results = await farm.reconfigure({ n1: 2, n2: 1, n3: 1 });
      for (const result of results) {
        assert.equal(result.code, 0, result.stderr + result.stdout);
        assert.match(result.stdout, /configured while running: updated \(load-balancing groups/);
      }
      for (const name of ['n1', 'n2', 'n3']) {
        const logged = await labExec(lab, name, ['sh', '-c', 'cat /var/hakit/modules/farmctl/update.log']);
        assert.equal(logged.stdout.trim(), 'update UP UP', `${name}: ${logged.stdout}${logged.stderr}`);
      }
      await eventually(
        () => allSeeMembers(['n1', 'n2', 'n3'], 'n1 n2 n3'),
        15_000,
        () => farm.state('n3', 'farmctl'),
      );
      const log = (await farm.cli('n1', 'log -m farmctl -s 300 -A')).stdout;
      // n1's update came while n3 was out (powers 2:1 of n1 n2), then n3 came back (2:1:1).
      assert.match(
        log,
        /farm load after update: 171\/256 \(group mosaic\)[\s\S]*farm load: 128\/256 \(group mosaic\)/,
      );
      const three = await farm.connect(8080, ports());
      assert.deepEqual(wrongOwners(three, mapOf(['n1', 'n2', 'n3'])), []);
    });

    test('mosaic through the VIP: 120 tiles, each on a new connection, from the owner of its port, by power', async () => {
      const page = await labExec(lab, 'c', [
        process.execPath,
        '-e',
        `require('http').get('http://${farm.vip}:9010/hakit/mosaic.html?tiles=60',r=>{let b='';r.on('data',c=>b+=c);r.on('end',()=>process.stdout.write(r.statusCode+' '+b))})`,
      ]);
      assert.match(page.stdout, /^200 [\s\S]*data-tiles="60"/);
      const tiles = await farm.tiles(120);
      const map = mapOf(['n1', 'n2', 'n3'], farm.mosaicPowers);
      const counts = countBy(tiles.map((tile) => tile?.node ?? null));
      console.log(`mosaic tiles by node (powers 2/1/1): ${JSON.stringify(counts)}`);
      assert.equal(counts.none ?? 0, 0);
      for (const tile of tiles) {
        assert.ok(tile !== null);
        assert.equal(tile.node, ownerOf(map, tile.clientPort), JSON.stringify(tile));
        assert.equal(tile.colour, nodeColour(tile.node));
      }
      assert.equal(new Set(tiles.map((tile) => tile?.clientPort)).size, 120, 'a new connection per tile');
      const expected: Record<string, number> = { n1: 0.5, n2: 0.25, n3: 0.25 };
      for (const [node, share] of Object.entries(expected)) {
        const got = (counts[node] ?? 0) / tiles.length;
        assert.ok(Math.abs(got - share) <= 0.15, `${node}: ${(got * 100).toFixed(0)} % of the tiles`);
      }
    });

    test(
      'the mosaic page in Chromium inside the client: tiles painted by all three nodes; screenshot kept',
      {
        skip: existsSync(chromiumPath) ? undefined : `Debian's Chromium is not installed at ${chromiumPath}`,
      },
      async () => {
        const url = `http://${farm.vip}:9010/hakit/mosaic.html?tiles=60&repeat=0`;
        const shot = `${farm.workDir}/mosaic.png`;
        const flags = [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--user-data-dir=/tmp/hakit-chromium',
          '--window-size=1000,900',
          '--virtual-time-budget=10000',
        ];
        const dom = await labExec(lab, 'c', [chromiumPath, ...flags, '--dump-dom', url]);
        assert.equal(dom.code, 0, dom.stderr.slice(-2000));
        const nodes = [...dom.stdout.matchAll(/data-node="([^"]*)"/g)].map((match) => match[1] ?? '');
        console.log(`Chromium mosaic: ${JSON.stringify(countBy(nodes.map((node) => node || null)))}`);
        assert.equal(nodes.length, 60, dom.stdout.slice(0, 2000));
        assert.deepEqual([...new Set(nodes)].sort(), ['n1', 'n2', 'n3']);
        const screenshot = await labExec(lab, 'c', [chromiumPath, ...flags, `--screenshot=${shot}`, url]);
        assert.equal(screenshot.code, 0, screenshot.stderr.slice(-2000));
        mkdirSync(shotsDir, { recursive: true });
        copyFileSync(shot, join(shotsDir, 'farm-mosaic.png'));
      },
    );

    test('stop: stop_both closes the traffic with SETGROUPS; the health check says 404', async () => {
      assert.equal((await farm.cli('n2', 'stop -m farmctl')).code, 0);
      await eventually(
        async () => (await farm.state('n2', 'farmctl')).startsWith('farmctl: STOP'),
        30_000,
        () => farm.state('n2', 'farmctl'),
      );
      const log = (await farm.cli('n2', 'log -m farmctl -s 300 -A')).stdout;
      assert.match(log, /farm traffic close asked by .*\(scriptcontrol\)/);
      assert.doesNotMatch(log, /the stop scripts did not close it/);
      assert.equal(await readyStatus(farm.node('n2').ip), 404);
      await eventually(
        () => allSeeMembers(['n1', 'n3'], 'n1 n3'),
        15_000,
        () => farm.state('n1', 'farmctl'),
      );
      const two = await farm.connect(8080, ports());
      assert.deepEqual(wrongOwners(two, mapOf(['n1', 'n3'])), []);
      // Not a farm with scriptcontrol off here, but the refusals of a stopped module are clear.
      const refused = await farm.cli('n2', 'vip traffic open -m farmctl');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /farmctl is STOP.*opens only while the module is UP/);
      const update = await farm.cli('n2', 'update -m farmctl');
      assert.equal(update.code, 1);
      assert.match(update.stderr, /only in UP \(Ready\)/);
    });
  },
);
