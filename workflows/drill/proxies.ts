// The activities restoreDrill calls, with the queue and timeouts each needs.
// Everything that touches the drill copy runs on the drill host's queue
// (`lifeboat-host-<drill.host>`), including the invariants: the copy listens
// on that host's loopback only. The primary is only read (pg_stat_archiver,
// in preflight); nothing here can reach a gate or traffic.
//
// Retries are few on purpose: a drill that needs many is a finding, and it
// runs again at its next schedule. scheduleToStart bounds how long a drill
// waits for a worker on the drill host, so a missing worker is a failed
// drill that notifies rather than one that waits forever. Every activity has
// a heartbeatTimeout (../activity-options.ts).
import { proxyActivities } from '@temporalio/workflow';
import type * as backupActivities from '../../activities/backup';
import type * as notifyActivities from '../../activities/notify';
import type * as standbyActivities from '../../activities/standby';
import type { DrillActivities } from '../../src/drill/contract';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import { hostQueue } from '../../src/runbook/schema';
import { BOOKKEEPING, bounded, tries } from '../activity-options';

type Both = RecoveryActivities & DrillActivities;

export function sharedActivities() {
  const shared = proxyActivities<RecoveryActivities & typeof backupActivities>(
    bounded('10 minutes', tries(3, '2 seconds')),
  );
  const bookkeeping = proxyActivities<RecoveryActivities>(BOOKKEEPING);
  // A notifier that keeps failing must not hold up or fail the drill: a few quick tries, then the outcome is noted.
  const notifier = proxyActivities<typeof notifyActivities>(
    bounded('30 seconds', tries(3, '1 second', { backoffCoefficient: 2 })),
  );
  return {
    resolveRunbook: shared.resolveRunbook,
    preflight: shared.preflight,
    writeEvidence: bookkeeping.writeEvidence,
    notify: notifier.notify,
  };
}

export function drillHostActivities(drillHost: string) {
  const taskQueue = hostQueue(drillHost);
  const onHost = { taskQueue, scheduleToStartTimeout: '15 minutes' } as const;
  const short = proxyActivities<Both>(bounded('15 minutes', tries(3, '2 seconds'), onHost));
  // The heartbeat timeout notices a worker that died mid-restore or mid-replay.
  const long = proxyActivities<Both>(
    bounded('24 hours', tries(3, '5 seconds'), { ...onHost, heartbeatTimeout: '15 seconds' }),
  );
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
  const read = proxyActivities<typeof standbyActivities>(
    bounded('2 minutes', tries(2, '2 seconds'), {
      taskQueue: hostQueue(standbyHost),
      scheduleToStartTimeout: '5 minutes',
    }),
  );
  return { standbyStatus: read.standbyStatus };
}
