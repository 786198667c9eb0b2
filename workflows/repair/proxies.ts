// The activities repairFromPointInTime calls, with the queue and timeouts
// each needs. The copy is the drill's (instance 'drill' on drill.host), so
// everything that touches it or its files runs on the drill host's queue;
// bookkeeping and the primary's catalog check run on `lifeboat`.
//
// The apply is retried after a lost worker or connection like any step: it
// is idempotent by repair id and table (lifeboat_repair_audit), so a retry
// either finds the committed transaction ("already applied") or applies it.
import { proxyActivities } from '@temporalio/workflow';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { RepairActivities } from '../../src/repair/contract';
import { hostQueue } from '../../src/runbook/schema';
import { BOOKKEEPING, bounded, tries } from '../activity-options';

type All = RecoveryActivities & RepairActivities;

export function sharedActivities() {
  const shared = proxyActivities<All>(bounded('10 minutes', tries(3, '2 seconds')));
  const bookkeeping = proxyActivities<All>(BOOKKEEPING);
  return {
    preflight: shared.preflight,
    checkRepairTables: shared.checkRepairTables,
    checkCacheEndpoints: shared.checkCacheEndpoints,
    notifyEscalation: shared.notifyEscalation,
    announceApproval: shared.announceApproval,
    appendAudit: bookkeeping.appendAudit,
    writeEvidence: bookkeeping.writeEvidence,
  };
}

export function copyHostActivities(drillHost: string) {
  const taskQueue = hostQueue(drillHost);
  // Restore, replay, snapshots, diff and apply can take long on a big table; the heartbeat notices a dead worker.
  const long = proxyActivities<All>(
    bounded('24 hours', tries(5, '5 seconds'), { taskQueue, heartbeatTimeout: '15 seconds' }),
  );
  const short = proxyActivities<All>(bounded('15 minutes', tries(3, '2 seconds'), { taskQueue }));
  return {
    checkRestoreSite: short.checkRestoreSite,
    restoreBaseBackup: long.restoreBaseBackup,
    replayWal: long.replayWal,
    snapshotRepairCopy: long.snapshotRepairCopy,
    diffRepair: long.diffRepair,
    applyRepair: long.applyRepair,
    invalidateRepairCaches: long.invalidateRepairCaches,
    teardownRepairCopy: short.teardownRepairCopy,
  };
}
