// One line per step, as the checklist, status and the evidence show it once
// the step is done: what the step found or changed, in an operator's words.
// Kept here so that each step of the two runbook workflows
// (recover-to-point-in-time.ts, repair-from-point-in-time.ts) and of
// restoreDrill reads as one short line, and the steps they share say the
// same thing in all.
import type { DrillActivities } from '../../src/drill/contract';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { RepairActivities } from '../../src/repair/contract';
import { movedAsideNote } from './restore-summary';

type Recovery<K extends keyof RecoveryActivities> = Awaited<ReturnType<RecoveryActivities[K]>>;
type Repair<K extends keyof RepairActivities> = Awaited<ReturnType<RepairActivities[K]>>;
type Drill<K extends keyof DrillActivities> = Awaited<ReturnType<DrillActivities[K]>>;

const MiB = 1048576;

/** "backup 20260604-120000F, 42 WAL segments from 000000010000000000000003": how every preflight begins. */
function backupAndWal(plan: Recovery<'preflight'>): string {
  return `backup ${plan.backup.backupId}, ${plan.walSegmentsAvailable} WAL segments from ${plan.walFrom}`;
}

export function planned(plan: Recovery<'preflight'>): string {
  return `${backupAndWal(plan)}, RTO estimate ${Math.round(plan.rtoEstimateSeconds / 60)} min`;
}

/** A repair's preflight: the backup, and each table with its key. */
export function plannedForRepair(
  plan: Recovery<'preflight'>,
  checked: Repair<'checkRepairTables'> | undefined,
): string {
  const tables = checked?.map((t) => `${t.table} (key ${t.keyColumns.join(', ')})`).join(', ');
  return `${backupAndWal(plan)}; ${tables}`;
}

/** A drill's preflight: the backup, and how the primary's archiver looked. */
export function plannedForDrill(plan: Recovery<'preflight'>): string {
  return `${backupAndWal(plan)}; archiver ${plan.archiver ?? 'not read'}`;
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
    return (
      `standby: ${standby.from} (replayed to ${standby.replayLsn}${lastCommit}) taken over into ${copy.dataDir}; ` +
      `the standby is consumed, rebuild it: lifeboat standby build --runbook ${runbook}`
    );
  }
  const config = copy.configNotes ? `; ${copy.configNotes.join('; ')}` : '';
  return `${Math.round(copy.bytes / MiB)} MiB into ${copy.dataDir}${movedAsideNote(copy)}${config}`;
}

/** A repair's copy, restored where the drills restore. */
export function restoredForRepair(copy: Recovery<'restoreBaseBackup'>): string {
  const aside = movedAsideNote(copy, "an earlier drill's directory");
  return `${Math.round(copy.bytes / MiB)} MiB into ${copy.dataDir}${aside}`;
}

/** A drill's copy: restored from a backup like a repair's, or cloned from the warm standby. */
export function restoredForDrill(copy: Recovery<'restoreBaseBackup'>): string {
  if (!copy.standby) return restoredForRepair(copy);
  const from = `${copy.standby.from} (pg_basebackup from the standby, which kept replaying)`;
  return `standby clone: ${Math.round(copy.bytes / MiB)} MiB from ${from} into ${copy.dataDir}`;
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
  const pointed = traffic.pointedAt ? ` now points at ${traffic.pointedAt}` : '';
  return `${traffic.kind}${pointed}${writersOn ? '; writers on' : ''}`;
}

export function evidenceWritten(written: Recovery<'writeEvidence'>): string {
  return `${written.repository}/${written.key}`;
}

export function snapshotTaken(snapshot: Repair<'snapshotRepairCopy'>): string {
  return snapshot.tables.map((table) => `${table.table}: ${table.rows} rows`).join('; ');
}

export function repairApplied(applied: Repair<'applyRepair'>): string {
  return applied
    .map((table) => {
      const again = table.alreadyApplied ? 'already applied: ' : '';
      const counts = `${table.updated} updated, ${table.inserted} inserted, ${table.skipped} skipped`;
      return `${table.table}: ${again}${counts}; rows locked ${table.lockedMs} ms`;
    })
    .join('; ');
}

export function copyTornDown(teardown: Repair<'teardownRepairCopy'>): string {
  const removed = teardown.removed
    ? `stopped${teardown.stopped ? '' : ' (was not running)'}, ${teardown.removed} removed`
    : (teardown.left ?? 'nothing of this run to remove');
  return `${removed}${teardown.workDirRemoved ? `; work files ${teardown.workDirRemoved} removed` : ''}`;
}

export function drillTornDown(teardown: Drill<'teardownDrill'>): string {
  return teardown.removed
    ? `stopped${teardown.stopped ? '' : ' (was not running)'}, ${teardown.removed} removed`
    : (teardown.left ?? 'nothing of this drill to remove');
}
