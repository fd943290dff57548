// errd decisions (reference 4.10), pure: which processes match a <proc>, and whether the count
// satisfies atleast/atmax.
import type { ProcessInfo } from './process-table.ts';

export interface ProcWatch {
  name: string;
  /** ERE on the command name; without it the command name must equal `name`. */
  nameRegex: RegExp | null;
  /** ERE on the arguments (argv[1..] joined by spaces). */
  argRegex: RegExp | null;
  atLeast: number;
  /** -1: no upper bound; 0: any running process is an error. */
  atMax: number;
}

/** Linux command names are at most 15 characters (TASK_COMM_LEN - 1). */
export const commCharsMax = 15;

export function matchingProcesses(watch: ProcWatch, table: readonly ProcessInfo[]): ProcessInfo[] {
  const name = watch.name.slice(0, commCharsMax);
  return table.filter((process) => {
    const nameMatches = watch.nameRegex ? watch.nameRegex.test(process.comm) : process.comm === name;
    if (!nameMatches) return false;
    return watch.argRegex ? watch.argRegex.test(process.args.join(' ')) : true;
  });
}

export function countSatisfies(watch: ProcWatch, count: number): boolean {
  if (count < watch.atLeast) return false;
  return watch.atMax < 0 || count <= watch.atMax;
}

export function describeCount(watch: ProcWatch, count: number): string {
  if (count < watch.atLeast)
    return count === 0
      ? `Process ${watch.name} not running`
      : `Process ${watch.name}: ${count} running, at least ${watch.atLeast} expected`;
  return `Process ${watch.name}: ${count} running, at most ${watch.atMax} allowed`;
}
