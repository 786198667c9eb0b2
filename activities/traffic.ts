// The resume-traffic step of recoverToPointInTime (DESIGN.md §4.1 step 15).
// Runs on the queue of trafficHost(runbook) (src/traffic/host.ts:
// traffic.pgbouncer.host, else restore.host), because it rewrites the
// pgbouncer databases file on that host's disk.
import type { EndpointsCheck, TrafficResult } from '../src/recovery/contract';
import { loadRunbook } from '../src/runbook/load';
import { checkRunbookTraffic, switchRunbookTraffic } from '../src/traffic';
import { cancellableActivity, heartbeat, lifeboatActivity } from './failure';

/**
 * Step 15: clients pointed at the promoted copy. Run twice: the switchers
 * check before acting (src/traffic/pgbouncer.ts): a retry finds the
 * databases file or pgbouncer already pointing at the copy and does only
 * what is left, at least a RESUME of a database a dead attempt left paused.
 */
export async function resumeTraffic(input: { runbook: string }): Promise<TrafficResult> {
  return cancellableActivity(async (signal) => {
    const runbook = await loadRunbook(input.runbook);
    return switchRunbookTraffic(runbook, { progress: (p) => heartbeat(p), signal });
  });
}

/**
 * Preflight of resume-traffic, on the traffic host's queue: the admin URL
 * set, pgbouncer's console answering SHOW VERSION and listing the database,
 * its databases file readable with one line for it; or the hook's program
 * executable. Changes nothing (no PAUSE, no RELOAD), so running it twice is
 * harmless.
 */
export async function checkTrafficEndpoint(input: { runbook: string }): Promise<EndpointsCheck> {
  return lifeboatActivity(async () =>
    checkRunbookTraffic(await loadRunbook(input.runbook), 'start the recovery again'),
  );
}
