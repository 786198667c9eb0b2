// The activities recoverToPointInTime calls, with the queue and timeouts each
// needs (DESIGN.md §3). Shared-queue activities run on the workflow's own task
// queue; activities on the restore host's disk and postmaster run on
// `lifeboat-host-<host>`.
//
// Retries are bounded on purpose: when an activity keeps failing, the step
// parks in `failed` and a person decides (retry, skip, abort). Codes that no
// retry can fix are non-retryable at the source (src/errors.ts).
import { proxyActivities } from '@temporalio/workflow';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import { hostQueue, type Runbook } from '../../src/runbook/schema';
import { trafficHost } from '../../src/traffic/host';

const shared = proxyActivities<RecoveryActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

// The audit log and the evidence must not be lost to a short outage of the store.
const bookkeeping = proxyActivities<RecoveryActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

const caches = proxyActivities<RecoveryActivities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '5 seconds' },
});

export function sharedActivities() {
  return {
    preflight: shared.preflight,
    captureForensics: shared.captureForensics,
    setPrimaryGate: shared.setGate,
    invalidateCaches: caches.invalidateCaches,
    appendAudit: bookkeeping.appendAudit,
    writeEvidence: bookkeeping.writeEvidence,
    notifyEscalation: shared.notifyEscalation,
  };
}

/**
 * Activities on the restore host. The heartbeat timeout is what notices a
 * worker that died mid-restore or mid-replay (SIGKILL, a lost host): the
 * activity is then retried on the next worker of that queue, and both
 * restore and replay pick up what is already there.
 */
export function hostActivities(runbook: Runbook) {
  const taskQueue = hostQueue(runbook.restore.host);
  const long = proxyActivities<RecoveryActivities>({
    taskQueue,
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: '30 seconds',
    retry: { maximumAttempts: 5, initialInterval: '5 seconds' },
  });
  const short = proxyActivities<RecoveryActivities>({
    taskQueue,
    startToCloseTimeout: '15 minutes',
    retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
  });
  const traffic = proxyActivities<RecoveryActivities>({
    taskQueue: hostQueue(trafficHost(runbook)),
    startToCloseTimeout: '10 minutes',
    retry: { maximumAttempts: 3, initialInterval: '5 seconds' },
  });
  return {
    restoreBaseBackup: long.restoreBaseBackup,
    replayWal: long.replayWal,
    runInvariants: short.runInvariants,
    promoteRestored: short.promoteRestored,
    stopRestored: short.stopRestored,
    setRestoredGate: short.setGate,
    reconcileOutbox: short.reconcileOutbox,
    resumeTraffic: traffic.resumeTraffic,
  };
}
