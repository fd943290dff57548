// One-shot probes used by the periodic checkers: TCP connect, ICMP ping (iputils ping, no shell),
// and whether a local address is configured on an interface whose link is up.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';

export interface ProbeResult {
  up: boolean;
  detail: string;
  /** Module checkers: how many times the watched module has become Ready (restarts, failovers). */
  readyGeneration?: number;
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () => done({ up: false, detail: `no answer from ${host}:${port} within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once('connect', () => done({ up: true, detail: `${host}:${port} accepts connections` }));
    socket.once('error', (error) => done({ up: false, detail: `${host}:${port}: ${error.message}` }));
  });
}

export function pingProbe(host: string, timeoutMs: number): Promise<ProbeResult> {
  const waitSeconds = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const family = host.includes(':') ? '-6' : '-4';
  return new Promise((resolve) => {
    execFile(
      'ping',
      [family, '-n', '-q', '-c', '1', '-W', waitSeconds, host],
      { timeout: timeoutMs + 1000 },
      (error) => {
        resolve(
          error
            ? { up: false, detail: `${host} does not answer ping` }
            : { up: true, detail: `${host} answers ping` },
        );
      },
    );
  });
}

/** Whether `address` is configured on an interface whose carrier is up. */
export function interfaceProbe(address: string, sysClassNet = '/sys/class/net'): ProbeResult {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (!addresses?.some((entry) => entry.address === address)) continue;
    let carrier = '1';
    try {
      carrier = readFileSync(`${sysClassNet}/${name}/carrier`, 'utf8').trim();
    } catch {
      // Interfaces without carrier information (lo) count as up.
    }
    return carrier === '1'
      ? { up: true, detail: `${address} on ${name}, link up` }
      : { up: false, detail: `${address} on ${name}, link down` };
  }
  return { up: false, detail: `${address} is not configured on any interface` };
}
