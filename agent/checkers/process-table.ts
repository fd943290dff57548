// Reads the node's process table from /proc: pid, command name (comm, at most 15 characters)
// and arguments. Processes that exit while being read are skipped, as ps does.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessInfo {
  pid: number;
  /** The kernel's command name, truncated to 15 characters. */
  comm: string;
  /** argv[1..], empty for kernel threads. */
  args: string[];
}

/** A node has a bounded number of processes; reading more than this means something is wrong. */
export const processesMax = 1_000_000;

export function readProcessTable(procDir = '/proc'): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync(procDir)) {
    if (!/^\d+$/.test(entry)) continue;
    if (processes.length >= processesMax)
      throw new Error(`more than ${processesMax} processes in ${procDir}`);
    try {
      const stat = parseStat(readFileSync(`${procDir}/${entry}/stat`, 'utf8'));
      // A zombie has exited: it only waits for its parent to reap it.
      if (stat.state === 'Z' || stat.state === 'X') continue;
      const comm = stat.comm;
      const cmdline = readFileSync(`${procDir}/${entry}/cmdline`, 'utf8');
      const argv = cmdline.length > 0 ? cmdline.replace(/\0$/, '').split('\0') : [];
      processes.push({ pid: Number(entry), comm, args: argv.slice(1) });
    } catch {
      // The process exited between readdir and read.
    }
  }
  return processes;
}

/**
 * `comm`, state letter and start time (field 22, clock ticks since boot; undefined if unreadable)
 * from /proc/PID/stat; comm is in parentheses and may hold anything.
 */
export function parseStat(stat: string): { comm: string; state: string; startTicks: number | undefined } {
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error('unreadable /proc stat line');
  // After the comm, fields[0] is field 3 (state), so field 22 is fields[19].
  const startTicks = Number(stat.slice(close + 2).split(' ')[19]);
  return {
    comm: stat.slice(open + 1, close),
    state: stat.slice(close + 2, close + 3),
    startTicks: Number.isInteger(startTicks) ? startTicks : undefined,
  };
}

/** Whether a pid runs (zombies do not), read from one small file: cheap enough to poll. */
export function processExists(pid: number, procDir = '/proc'): boolean {
  try {
    const { state } = parseStat(readFileSync(`${procDir}/${pid}/stat`, 'utf8'));
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * A process's start time (clock ticks since boot, field 22 of /proc/PID/stat): with the pid it
 * names one process, so a pid reused since cannot be mistaken for it. Undefined when it is gone.
 */
export function processStartTicks(pid: number, procDir = '/proc'): number | undefined {
  try {
    return parseStat(readFileSync(`${procDir}/${pid}/stat`, 'utf8')).startTicks;
  } catch {
    return undefined;
  }
}
