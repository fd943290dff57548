// Runs inside a fresh network namespace (`unshare -n`, see farm-filter.test.ts): real nftables,
// real sockets. Puts a VIP on a dummy interface, opens the farm filter with a random half of the
// buckets, and checks from many client addresses and ports which packets get through, against
// what agent/core/farm-buckets.ts predicts. Prints one JSON line with the findings.
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { bucketOf, bucketCount } from '../../../agent/core/farm-buckets.ts';
import { FarmNet, type OwnedBuckets } from '../../../agent/net/farm-filter.ts';
import { runCommand } from '../../../agent/net/command.ts';

const vip = '10.9.9.9';
const clients = 200;
const nftFile = process.argv[2] ?? '/tmp/farm-filter-test.nft';

function randomHalf(seed: number): number[] {
  let state = seed;
  const owned: number[] = [];
  for (let bucket = 0; bucket < bucketCount; bucket += 1) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    if (state >>> 31 === 1) owned.push(bucket);
  }
  return owned;
}

async function udpReceived(port: number): Promise<Set<string>> {
  const received = new Set<string>();
  const server = createSocket('udp4');
  server.on('message', (_message, remote) => received.add(remote.address));
  await new Promise<void>((done) => server.bind(port, vip, done));
  await Promise.all(
    Array.from({ length: clients }, async (_, index) => {
      const source = `10.8.${index >> 8}.${(index & 255) + 1}`;
      const socket = createSocket('udp4');
      await new Promise<void>((done) => socket.bind(0, source, done));
      await new Promise<void>((done) => socket.send('x', port, vip, () => done()));
      socket.close();
    }),
  );
  await new Promise((done) => setTimeout(done, 300));
  server.close();
  return received;
}

async function tcpConnected(port: number): Promise<Set<number>> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.end('ok');
  });
  await new Promise<void>((done) => server.listen(port, vip, done));
  const connected = new Set<number>();
  await Promise.all(
    Array.from({ length: clients }, (_, index) => {
      const localPort = 30_000 + index * 7;
      return new Promise<void>((done) => {
        const socket = connect({ host: vip, port, localAddress: '10.9.0.1', localPort, timeout: 700 });
        socket.on('connect', () => {
          connected.add(localPort);
          socket.destroy();
          done();
        });
        socket.on('timeout', () => {
          socket.destroy();
          done();
        });
        socket.on('error', () => done());
      });
    }),
  );
  server.close();
  return connected;
}

async function main(): Promise<void> {
  await runCommand('ip', ['link', 'set', 'lo', 'up']);
  await runCommand('ip', ['link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1']);
  await runCommand('ip', ['link', 'set', 'd0', 'up']);
  await runCommand('ip', ['addr', 'add', '10.9.0.1/16', 'dev', 'd0']);
  for (let index = 0; index < clients; index += 1)
    await runCommand('ip', ['addr', 'add', `10.8.${index >> 8}.${(index & 255) + 1}/32`, 'dev', 'lo']);
  const farm = new FarmNet({
    moduleId: 3,
    vips: [{ address: vip }],
    groups: [
      { name: 'byaddr', rules: [{ virtualAddr: '*', port: 7000, proto: 'udp', filter: 'on_addr' }] },
      { name: 'byport', rules: [{ virtualAddr: vip, port: 7001, proto: 'tcp', filter: 'on_port' }] },
    ],
    virtualMac: '5a:fe:0a:09:09:09',
    nftFile,
  });
  const results: Record<string, unknown> = {};
  for (const [round, seed] of [
    ['first', 11],
    ['swapped', 12],
  ] as const) {
    const owned: OwnedBuckets = new Map([
      ['byaddr', randomHalf(seed)],
      ['byport', randomHalf(seed + 100)],
    ]);
    if (round === 'first') await farm.open(owned);
    else await farm.update(owned);
    const byAddr = await udpReceived(7000);
    let addrMismatches = 0;
    let addrExpected = 0;
    for (let index = 0; index < clients; index += 1) {
      const source = `10.8.${index >> 8}.${(index & 255) + 1}`;
      const expected = owned.get('byaddr')?.includes(bucketOf('on_addr', { address: source })) ?? false;
      if (expected) addrExpected += 1;
      if (expected !== byAddr.has(source)) addrMismatches += 1;
    }
    const byPort = await tcpConnected(7001);
    let portMismatches = 0;
    let portExpected = 0;
    for (let index = 0; index < clients; index += 1) {
      const localPort = 30_000 + index * 7;
      const expected = owned.get('byport')?.includes(bucketOf('on_port', { port: localPort })) ?? false;
      if (expected) portExpected += 1;
      if (expected !== byPort.has(localPort)) portMismatches += 1;
    }
    results[round] = { addrExpected, addrMismatches, portExpected, portMismatches };
  }
  const ruleset = (await runCommand('nft', ['list', 'ruleset'])).stdout;
  const addresses = (await runCommand('ip', ['-o', 'addr', 'show', 'd0'])).stdout;
  await farm.close();
  const after = (await runCommand('nft', ['list', 'ruleset'])).stdout;
  const addressesAfter = (await runCommand('ip', ['-o', 'addr', 'show', 'd0'])).stdout;
  results.vipWhileOpen = addresses.includes(`${vip}/16`);
  results.vmacRule = ruleset.includes('ether daddr 5a:fe:0a:09:09:09');
  results.arpRule = ruleset.includes('arp saddr ether set 5a:fe:0a:09:09:09');
  results.tablesAfterClose = after.trim();
  results.vipAfterClose = addressesAfter.includes(vip);
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
