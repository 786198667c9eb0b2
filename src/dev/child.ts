// Stopping a server we started: SIGTERM, then SIGKILL if it has not exited
// within the grace period, so a teardown never hangs on a stuck process.
import type { ChildProcess } from 'node:child_process';

export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
