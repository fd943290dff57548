// One hakitd per node: the pid file names the live daemon; a stale one (dead pid, or a pid now
// used by another program) is taken over.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export class DaemonAlreadyRunningError extends Error {
  override name = 'DaemonAlreadyRunningError';
}

function isHakitdProcess(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hakitd');
  } catch {
    return false;
  }
}

export function acquirePidLock(pidFile: string): () => void {
  mkdirSync(dirname(pidFile), { recursive: true, mode: 0o755 });
  if (existsSync(pidFile)) {
    const holderPid = Number(readFileSync(pidFile, 'utf8').trim());
    if (
      Number.isInteger(holderPid) &&
      holderPid > 0 &&
      holderPid !== process.pid &&
      isHakitdProcess(holderPid)
    ) {
      throw new DaemonAlreadyRunningError(`hakitd is already running (pid ${holderPid}, ${pidFile})`);
    }
  }
  writeFileSync(pidFile, `${process.pid}\n`, { mode: 0o644 });
  return () => {
    try {
      if (Number(readFileSync(pidFile, 'utf8').trim()) === process.pid) rmSync(pidFile);
    } catch {
      // Already removed: nothing to release.
    }
  };
}
