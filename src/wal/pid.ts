// Whether a process named in a pid or lock file still runs: the read-ahead
// pusher, spool locks and the prefetch follower all decide by this.
// Kept apart from its users so archive-get loads nothing more for it.

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** isAlive for the text of a pid file ('' or garbage: not alive). */
export function pidTextAlive(text: string): boolean {
  return isAlive(Number(text.trim()));
}
