// The activities restoreDrill calls, with the queue and timeouts each needs.
// Everything that touches the drill copy runs on the drill host's queue
// (`lifeboat-host-<drill.host>`), including the invariants: the copy listens
// on that host's loopback only. The primary is only read (pg_stat_archiver,
// in preflight); nothing here can reach a gate or traffic.
//
// Retries are few on purpose: a drill that needs many is a finding, and it
// runs again at its next schedule. scheduleToStart bounds how long a drill
// waits for a worker on the drill host, so a missing worker is a failed
// drill that notifies rather than one that waits forever. Every activity
// heartbeats every 2 s while it runs (activities/failure.ts keepBeating), so
// each has a heartbeatTimeout: a worker that dies mid-step is noticed within
// it, not at the start-to-close timeout.
import { proxyActivities } from '@temporalio/workflow';
import type * as backupActivities from '../../activities/backup';
import type * as notifyActivities from '../../activities/notify';
import type * as standbyActivities from '../../activities/standby';
import type { DrillActivities } from '../../src/drill/contract';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import { hostQueue } from '../../src/runbook/schema';

type Both = RecoveryActivities & DrillActivities;

export function sharedActivities() {
  const shared = proxyActivities<RecoveryActivities & typeof backupActivities>({
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
  });
  // The evidence must not be lost to a short outage of the store.
  const bookkeeping = proxyActivities<RecoveryActivities>({
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
  });
  // A notifier that keeps failing must not hold up or fail the drill: a few quick tries, then the outcome is noted.
  const notifier = proxyActivities<typeof notifyActivities>({
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 3, initialInterval: '1 second', backoffCoefficient: 2 },
  });
  return {
    resolveRunbook: shared.resolveRunbook,
    preflight: shared.preflight,
    writeEvidence: bookkeeping.writeEvidence,
    notify: notifier.notify,
  };
}

export function drillHostActivities(drillHost: string) {
  const taskQueue = hostQueue(drillHost);
  // The heartbeat timeout notices a worker that died mid-restore or mid-replay.
  const long = proxyActivities<Both>({
    taskQueue,
    startToCloseTimeout: '24 hours',
    scheduleToStartTimeout: '15 minutes',
    heartbeatTimeout: '15 seconds',
    retry: { maximumAttempts: 3, initialInterval: '5 seconds' },
  });
  const short = proxyActivities<Both>({
    taskQueue,
    startToCloseTimeout: '15 minutes',
    scheduleToStartTimeout: '15 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
  });
  return {
    pickDrillTarget: short.pickDrillTarget,
    checkRestoreSite: short.checkRestoreSite,
    restoreBaseBackup: long.restoreBaseBackup,
    cloneStandbyForDrill: long.cloneStandbyForDrill,
    replayWal: long.replayWal,
    runInvariants: short.runInvariants,
    promoteRestored: short.promoteRestored,
    smokeWrite: short.smokeWrite,
    teardownDrill: short.teardownDrill,
  };
}

/** The warm standby's status, read on its host's queue (a drill only reads it: it never takes the standby). */
export function standbyHostActivities(standbyHost: string) {
  const read = proxyActivities<typeof standbyActivities>({
    taskQueue: hostQueue(standbyHost),
    startToCloseTimeout: '2 minutes',
    scheduleToStartTimeout: '5 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 2, initialInterval: '2 seconds' },
  });
  return { standbyStatus: read.standbyStatus };
}
