// One line per step, as the checklist, status and the evidence show it once
// the step is done: what the step found or changed, in an operator's words.
// Kept here so that each step of the two runbook workflows
// (recover-to-point-in-time.ts, repair-from-point-in-time.ts) reads as one
// short line, and the steps they share say the same thing in both.
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { RepairActivities } from '../../src/repair/contract';
import { movedAsideNote } from './restore-summary';

type Recovery<K extends keyof RecoveryActivities> = Awaited<ReturnType<RecoveryActivities[K]>>;
type Repair<K extends keyof RepairActivities> = Awaited<ReturnType<RepairActivities[K]>>;

const MiB = 1048576;

export function planned(plan: Recovery<'preflight'>): string {
  const rtoMinutes = Math.round(plan.rtoEstimateSeconds / 60);
  return `backup ${plan.backup.backupId}, ${plan.walSegmentsAvailable} WAL segments from ${plan.walFrom}, RTO estimate ${rtoMinutes} min`;
}

export function captured(forensics: Recovery<'captureForensics'>): string {
  return forensics.primaryReachable
    ? `high-water mark ${forensics.outboxHighWater ?? '(none)'}, ${forensics.captures.length} capture(s)`
    : 'primary did not answer: nothing captured';
}

export function writersFenced(gate: Recovery<'setGate'>): string {
  return gate.proof ?? 'writers fenced';
}

/** `rebuildStandby`: the command that builds the consumed standby again. */
export function restored(copy: Recovery<'restoreBaseBackup'>, runbook: string): string {
  const standby = copy.standby;
  if (standby) {
    const lastCommit = standby.lastReplayTime ? `, last commit ${standby.lastReplayTime}` : '';
    return `standby: ${standby.from} (replayed to ${standby.replayLsn}${lastCommit}) taken over into ${copy.dataDir}; the standby is consumed, rebuild it: lifeboat standby build --runbook ${runbook}`;
  }
  const config = copy.configNotes ? `; ${copy.configNotes.join('; ')}` : '';
  return `${Math.round(copy.bytes / MiB)} MiB into ${copy.dataDir}${movedAsideNote(copy)}${config}`;
}

/** A repair's copy, restored where the drills restore. */
export function restoredForRepair(copy: Recovery<'restoreBaseBackup'>): string {
  return `${Math.round(copy.bytes / MiB)} MiB into ${copy.dataDir}${movedAsideNote(copy, "an earlier drill's directory")}`;
}

export function pausedAt(replay: Recovery<'replayWal'>): string {
  return `paused at ${replay.lsn}${replay.time ? `, last commit ${replay.time}` : ''}`;
}

export function invariantsPassed(results: Recovery<'runInvariants'>): string {
  return `${results.filter((invariant) => invariant.passed).length} of ${results.length} passed`;
}

export function promoted(
  copy: Recovery<'promoteRestored'>,
  gates: boolean,
  primary: Recovery<'recordPrimary'> | undefined,
): string {
  const repointed = primary?.repointed
    ? `; primary re-pointed to ${primary.host}:${primary.port} in the repository`
    : '';
  return `promoted on timeline ${copy.timeline} at ${copy.promotedAt}${gates ? '; gates re-asserted' : ''}${repointed}`;
}

export function outboxReconciled(outbox: Recovery<'reconcileOutbox'>): string {
  return outbox.skippedReason ?? `${outbox.markedPublished} row(s) marked published (at or below ${outbox.highWater})`;
}

export function cachesInvalidated(caches: Recovery<'invalidateCaches'>): string {
  return caches
    .map((cache) => `${cache.target}${cache.deleted !== undefined ? `: ${cache.deleted} deleted` : ''}`)
    .join('; ');
}

export function trafficResumed(traffic: Recovery<'resumeTraffic'>, writersOn: boolean): string {
  return `${traffic.kind}${traffic.pointedAt ? ` now points at ${traffic.pointedAt}` : ''}${writersOn ? '; writers on' : ''}`;
}

export function evidenceWritten(written: Recovery<'writeEvidence'>): string {
  return `${written.repository}/${written.key}`;
}

export function snapshotTaken(snapshot: Repair<'snapshotRepairCopy'>): string {
  return snapshot.tables.map((table) => `${table.table}: ${table.rows} rows`).join('; ');
}

export function repairApplied(applied: Repair<'applyRepair'>): string {
  return applied
    .map(
      (table) =>
        `${table.table}: ${table.alreadyApplied ? 'already applied: ' : ''}${table.updated} updated, ${table.inserted} inserted, ${table.skipped} skipped; rows locked ${table.lockedMs} ms`,
    )
    .join('; ');
}

export function copyTornDown(teardown: Repair<'teardownRepairCopy'>): string {
  const removed = teardown.removed
    ? `stopped${teardown.stopped ? '' : ' (was not running)'}, ${teardown.removed} removed`
    : (teardown.left ?? 'nothing of this run to remove');
  return `${removed}${teardown.workDirRemoved ? `; work files ${teardown.workDirRemoved} removed` : ''}`;
}
