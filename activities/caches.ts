// The invalidate-caches step of recoverToPointInTime (DESIGN.md §4.1 step
// 13). Runs on the `lifeboat` queue: Redis, purge endpoints and hooks are
// reached over the network (a command hook runs on whichever worker takes
// the task, so it must be installed on every worker of that queue).
import { checkRunbookCaches, invalidateRunbookCaches } from '../src/caches';
import type { CacheResult, EndpointsCheck } from '../src/recovery/contract';
import { loadRunbook } from '../src/runbook/load';
import { cancellableActivity, heartbeat } from './failure';

/**
 * Each cache of the runbook, in runbook order; heartbeats a CacheProgress
 * after each batch. Run twice: purging is idempotent (a key deleted twice is
 * gone; a purge endpoint asked twice purges what is there), so a takeover
 * only repeats the purge; the dead attempt's request may still reach the
 * endpoint, which does no harm.
 */
export async function invalidateCaches(input: { runbook: string }): Promise<CacheResult[]> {
  return cancellableActivity(async (signal) => {
    const runbook = await loadRunbook(input.runbook);
    return invalidateRunbookCaches(runbook, { onProgress: (p) => heartbeat(p), signal });
  });
}

/**
 * Preflight of invalidate-caches, on the queue it runs on: every variable
 * set, every Redis answering PING, every purge endpoint answering a HEAD
 * (any status), every hook's program executable. Changes nothing, so
 * running it twice is harmless. SECRET_MISSING or ENDPOINT_UNREACHABLE
 * (non-retryable) end the run before anything is fenced; an entry marked
 * `preflight: warn` that does not answer comes back as a warning instead.
 */
export async function checkCacheEndpoints(input: { runbook: string }): Promise<EndpointsCheck> {
  return cancellableActivity(async (signal) => {
    const runbook = await loadRunbook(input.runbook);
    return checkRunbookCaches(runbook, { signal, then: 'start the recovery again' });
  });
}
