// Is anyone else answering for an address? IPv4: ARP probes of duplicate address detection
// (RFC 5227: sender 0.0.0.0, so no neighbour cache is disturbed) with iputils `arping -D`; a
// reply names the holder's MAC. IPv6: the kernel's own DAD, read from the address flags
// (`tentative`, `dadfailed`) after the address is added.
//
// iputils arping takes whole seconds for -w and -i, which would make every takeover wait a
// second or more. So each probe is its own `arping -D -c 1` started `probeIntervalMs` apart, and
// we stop listening `listenMs` after the last one; a reply ends the probe at once.
import { familyOf, findAddress, parseIpAddrJson } from './addresses.ts';
import { type CommandRunner, NetCommandError, runCommand } from './command.ts';

export interface ArpProbeSettings {
  readonly probes: number;
  readonly probeIntervalMs: number;
  /** How long to wait for a reply after the last probe. */
  readonly listenMs: number;
}

/** Three probes in 200 ms, then 200 ms of listening: a LAN answers in well under a millisecond. */
export const arpProbeDefaults: ArpProbeSettings = { probes: 3, probeIntervalMs: 100, listenMs: 200 };
export const arpProbesMax = 10;
const probeWaitMsMax = 10_000;

export type ProbeResult =
  | { readonly status: 'free'; readonly probesSent: number; readonly elapsedMs: number }
  | { readonly status: 'taken'; readonly macs: readonly string[]; readonly elapsedMs: number };

const replyPattern = /reply from (\S+) \[([0-9A-Fa-f:]{17})\]/g;

function macsIn(text: string): string[] {
  return [...text.matchAll(replyPattern)].map((match) => (match[2] ?? '').toLowerCase());
}

/** Sends ARP probes for an IPv4 address on an interface; `taken` carries the answering MACs. */
export function probeIpv4(
  interfaceName: string,
  address: string,
  settings: ArpProbeSettings = arpProbeDefaults,
  run: CommandRunner = runCommand,
): Promise<ProbeResult> {
  if (familyOf(address) !== 4) throw new Error(`ARP probe: ${address} is not IPv4`);
  const { probes, probeIntervalMs, listenMs } = settings;
  if (!Number.isInteger(probes) || probes < 1 || probes > arpProbesMax)
    throw new Error(`ARP probe: 1 to ${arpProbesMax} probes, got ${probes}`);
  const totalMs = (probes - 1) * probeIntervalMs + listenMs;
  if (probeIntervalMs < 0 || listenMs < 1 || totalMs > probeWaitMsMax)
    throw new Error(`ARP probe: intervals out of range (${totalMs} ms in all, at most ${probeWaitMsMax})`);

  const startedMs = performance.now();
  const abort = new AbortController();
  const macs = new Set<string>();
  let probesSent = 0;
  const timers: NodeJS.Timeout[] = [];
  return new Promise<ProbeResult>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: ProbeResult | Error) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      abort.abort();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const seen = (text: string) => {
      for (const mac of macsIn(text)) macs.add(mac);
      if (macs.size > 0)
        finish({ status: 'taken', macs: [...macs], elapsedMs: performance.now() - startedMs });
    };
    const probe = () => {
      if (settled) return;
      probesSent += 1;
      run('arping', ['-D', '-c', '1', '-w', '1', '-I', interfaceName, address], {
        timeoutMs: 3_000,
        okCodes: [0, 1],
        onStdout: seen,
        signal: abort.signal,
      }).then(
        (result) => {
          seen(result.stdout);
          // Exit 1 without a reply is arping failing (bad interface, no permission).
          if (result.code === 1 && macs.size === 0)
            finish(
              new NetCommandError(
                `arping -D -I ${interfaceName} ${address}`,
                1,
                result.stderr,
                `arping -D -c 1 -w 1 -I ${interfaceName} ${address}: exited 1 without a reply: ${result.stderr.trim()}`,
              ),
            );
        },
        (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
      );
    };
    for (let index = 0; index < probes; index += 1) timers.push(setTimeout(probe, index * probeIntervalMs));
    timers.push(
      setTimeout(
        () => finish({ status: 'free', probesSent, elapsedMs: performance.now() - startedMs }),
        totalMs,
      ),
    );
  });
}

export type DadResult =
  | { readonly status: 'done'; readonly elapsedMs: number }
  | { readonly status: 'failed'; readonly elapsedMs: number }
  | { readonly status: 'missing'; readonly elapsedMs: number };

export const dadWaitMsDefault = 5_000;
const dadPollMs = 50;

/**
 * Waits for the kernel's IPv6 duplicate address detection of an address just added: `done`
 * when it is no longer tentative, `failed` when another node holds it (flag dadfailed).
 */
export async function awaitIpv6Dad(
  interfaceName: string,
  address: string,
  waitMs = dadWaitMsDefault,
  run: CommandRunner = runCommand,
): Promise<DadResult> {
  if (familyOf(address) !== 6) throw new Error(`DAD: ${address} is not IPv6`);
  const startedMs = performance.now();
  for (;;) {
    const { stdout } = await run('ip', ['-j', '-6', 'addr', 'show', 'dev', interfaceName]);
    const found = findAddress(parseIpAddrJson(stdout), address, interfaceName);
    const elapsedMs = performance.now() - startedMs;
    if (found === undefined) return { status: 'missing', elapsedMs };
    if (found.address.dadFailed) return { status: 'failed', elapsedMs };
    if (!found.address.tentative) return { status: 'done', elapsedMs };
    if (elapsedMs >= waitMs)
      throw new Error(
        `DAD of ${address} on ${interfaceName} still running after ${Math.round(elapsedMs)} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, dadPollMs));
  }
}
