// Whether a process named in a pid or lock file still runs: the read-ahead
// pusher, spool locks and the prefetch follower all decide by this.
// Kept apart from its users so archive-get loads nothing more for it.

import { readFileSync } from 'node:fs';

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it runs, as another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/**
 * A process that has exited and waits for its parent to collect it: signal 0
 * still reaches it. A prefetcher whose runuser parent left before it is
 * reparented to PID 1, which in a container (or a VM's init that is not a
 * reaper) may never collect it, so it would look alive for as long as that
 * lasts. Read from /proc; elsewhere, alive as signal 0 said.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** isAlive for the text of a pid file ('' or garbage: not alive). */
export function pidTextAlive(text: string): boolean {
  return isAlive(Number(text.trim()));
}
