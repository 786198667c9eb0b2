// The activities recoverToPointInTime calls, with the queue and timeouts each
// needs (DESIGN.md §3). Shared-queue activities run on the workflow's own task
// queue; activities on the restore host's disk and postmaster run on
// `lifeboat-host-<host>`.
//
// Retries are bounded on purpose: when an activity keeps failing, the step
// parks in `failed` and a person decides (retry, skip, abort). Codes that no
// retry can fix are non-retryable at the source (src/errors.ts).
//
// Every activity has a heartbeatTimeout (../activity-options.ts); the
// start-to-close timeouts only bound a wait that never ends (a lock never
// released, a hung endpoint). Each activity says in its comment why running
// it twice is safe: after a takeover, the dead worker's SQL may still
// complete on the server.
import { proxyActivities } from '@temporalio/workflow';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import { hostQueue, type Runbook } from '../../src/runbook/schema';
import { trafficHost } from '../../src/traffic/host';
import { BOOKKEEPING, bounded, tries } from '../activity-options';

// preflight lists the repository's WAL (large archives take minutes); capture runs the runbook's queries.
const shared = proxyActivities<RecoveryActivities>(bounded('10 minutes', tries(3, '2 seconds')));
// A gate is a few statements; what can make it long is a row lock or a
// session that will not end, and that deserves a retry and then a person.
const gates = proxyActivities<RecoveryActivities>(bounded('5 minutes', tries(3, '2 seconds')));
const bookkeeping = proxyActivities<RecoveryActivities>(BOOKKEEPING);
const caches = proxyActivities<RecoveryActivities>(bounded('30 minutes', tries(3, '5 seconds')));
// Preflight's endpoint probes: seconds; a refusal is non-retryable and ends the run.
const probe = proxyActivities<RecoveryActivities>(bounded('2 minutes', tries(3, '2 seconds')));

export function sharedActivities() {
  return {
    preflight: shared.preflight,
    // Lists runs in Temporal's visibility; waits up to 15 s for its own run to be listed.
    checkNoOtherRecovery: shared.checkNoOtherRecovery,
    captureForensics: shared.captureForensics,
    setGate: gates.setGate,
    invalidateCaches: caches.invalidateCaches,
    // Preflight: PING, HEAD, a program's path; each probe gives up after 10 s.
    checkCacheEndpoints: probe.checkCacheEndpoints,
    appendAudit: bookkeeping.appendAudit,
    writeEvidence: bookkeeping.writeEvidence,
    notifyEscalation: shared.notifyEscalation,
    announceApproval: shared.announceApproval,
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
  // 15 s rather than 10: pg_ctl, tar and zstd share the host's CPU with the
  // worker, and a missed beat here costs a restart of a long step.
  const long = proxyActivities<RecoveryActivities>(
    bounded('24 hours', tries(5, '5 seconds'), { taskQueue, heartbeatTimeout: '15 seconds' }),
  );
  // Invariants and the outbox reconciliation are queries over the whole
  // copy's tables: minutes on a large one.
  const short = proxyActivities<RecoveryActivities>(bounded('15 minutes', tries(3, '2 seconds'), { taskQueue }));
  // pg_ctl promote waits 60 s at most; a gate is a few statements; pg_ctl stop a minute.
  const quick = proxyActivities<RecoveryActivities>(bounded('5 minutes', tries(3, '2 seconds'), { taskQueue }));
  const onTrafficHost = { taskQueue: hostQueue(trafficHost(runbook)) };
  const traffic = proxyActivities<RecoveryActivities>(bounded('10 minutes', tries(3, '5 seconds'), onTrafficHost));
  const trafficProbe = proxyActivities<RecoveryActivities>(bounded('2 minutes', tries(3, '2 seconds'), onTrafficHost));
  return {
    restoreBaseBackup: long.restoreBaseBackup,
    // Pause, stop and a rename: seconds; a restore point target reads the archive after the standby's position.
    useStandby: short.useStandby,
    replayWal: long.replayWal,
    // Reads statfs and du over kept copies: seconds, minutes on a huge volume.
    checkRestoreSite: quick.checkRestoreSite,
    runInvariants: short.runInvariants,
    promoteRestored: quick.promoteRestored,
    // A history file and a small JSON object into the repository.
    recordPrimary: quick.recordPrimary,
    stopRestored: quick.stopRestored,
    setGate: quick.setGate,
    reconcileOutbox: short.reconcileOutbox,
    resumeTraffic: traffic.resumeTraffic,
    // Preflight, on the same host as resume-traffic: the console or the hook's program.
    checkTrafficEndpoint: trafficProbe.checkTrafficEndpoint,
  };
}

export type SharedActivities = ReturnType<typeof sharedActivities>;
export type HostActivities = ReturnType<typeof hostActivities>;
