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
      const comm = readFileSync(`${procDir}/${entry}/comm`, 'utf8').replace(/\n$/, '');
      const cmdline = readFileSync(`${procDir}/${entry}/cmdline`, 'utf8');
      const argv = cmdline.length > 0 ? cmdline.replace(/\0$/, '').split('\0') : [];
      processes.push({ pid: Number(entry), comm, args: argv.slice(1) });
    } catch {
      // The process exited between readdir and read.
    }
  }
  return processes;
}

/** Whether a pid still exists (cheap: one stat-like syscall), for fast death detection. */
export function processExists(pid: number, procDir = '/proc'): boolean {
  try {
    readFileSync(`${procDir}/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}
