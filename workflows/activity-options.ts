// What the workflows' proxyActivities calls are made of, so that each
// proxy reads as one line: how long one attempt may run, how many attempts.
//
// Every activity heartbeats every 2 s while it runs, whatever it waits on
// (activities/failure.ts keepBeating), so each has a heartbeatTimeout: a
// worker that dies mid-step (SIGKILL, OOM, a lost host) is noticed within it
// and the activity retried on another worker, instead of waiting out the
// start-to-close timeout, which only bounds a wait that never ends (a lock
// never released, a hung endpoint).
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';

type Duration = NonNullable<ActivityOptions['startToCloseTimeout']>;

/** SQL, HTTP or a short command: a dead worker is noticed within 10 s. */
export const SQL_HEARTBEAT = '10 seconds';

/**
 * An attempt of at most `startToCloseTimeout`, `retry`'s attempts, the
 * 10-second heartbeat unless `more` says otherwise (with the task queue, a
 * scheduleToStartTimeout...).
 */
export function bounded(
  startToCloseTimeout: Duration,
  retry: RetryPolicy,
  more: ActivityOptions = {},
): ActivityOptions {
  return { startToCloseTimeout, heartbeatTimeout: SQL_HEARTBEAT, retry, ...more };
}

/** The audit log and the evidence must not be lost to a short outage of the store. */
export const BOOKKEEPING: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: SQL_HEARTBEAT,
  retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
};

/** `maximumAttempts` attempts, the first retry after `initialInterval` (Temporal's 1 s when absent). */
export function tries(maximumAttempts: number, initialInterval?: Duration, more: RetryPolicy = {}): RetryPolicy {
  return { maximumAttempts, ...(initialInterval !== undefined ? { initialInterval } : {}), ...more };
}
