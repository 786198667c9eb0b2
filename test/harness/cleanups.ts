// What a test started, to be stopped in afterAll in reverse order (a worker
// before the cluster it polls, the cluster before its directories).
export type Cleanups = Array<() => Promise<unknown> | unknown>;

/**
 * Runs every cleanup, newest first, each even when an earlier one failed
 * (a server that already stopped, a run that already ended): one failed
 * stop must not leave the rest running.
 */
export async function runCleanups(cleanups: Cleanups): Promise<void> {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
}
