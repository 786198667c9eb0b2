// The step ids of recoverToPointInTime and repairFromPointInTime (DESIGN.md
// §4, §4.3), their titles in the checklist, and the record kept of each step.
// Operators type these ids (approve, retry, skip): extend, never rename.
//
// Bundled into workflow code with contract.ts: zod only, no Node builtins.
import { z } from 'zod';
import type { ErrorCode } from '../errors';

/** The steps of recoverToPointInTime, in order. */
export const STEP_IDS = [
  'preflight',
  'capture-forensics',
  'approve-fence',
  'disable-writers',
  'disable-background-jobs',
  'pause-outbox',
  'restore-base-backup',
  'replay-wal',
  'run-invariants',
  'approve-promote',
  'promote',
  'reconcile-outbox',
  'invalidate-caches',
  'approve-resume',
  'resume-traffic',
  'enable-background-jobs',
  'resume-outbox',
  'record-evidence',
] as const;
/** repairFromPointInTime's own steps from the first snapshot to the repair applied on the primary. */
const REPAIR_DIFF_STEP_IDS = [
  'snapshot-before',
  'replay-wal-after',
  'snapshot-after',
  'diff',
  'approve-repair',
  'apply-repair',
] as const;
/** Steps only repairFromPointInTime has (DESIGN.md §4.3); its other steps are the recovery's, meaning the same. */
export const REPAIR_ONLY_STEP_IDS = [...REPAIR_DIFF_STEP_IDS, 'teardown'] as const;
export type StepId = (typeof STEP_IDS)[number] | (typeof REPAIR_ONLY_STEP_IDS)[number];
/** The steps of repairFromPointInTime, in order. */
export const REPAIR_STEP_IDS: readonly StepId[] = [
  'preflight',
  'approve-fence',
  'restore-base-backup',
  'replay-wal',
  ...REPAIR_DIFF_STEP_IDS,
  'invalidate-caches',
  'teardown',
  'record-evidence',
];
export const StepIdSchema = z.enum([...STEP_IDS, ...REPAIR_ONLY_STEP_IDS], {
  error: `expected a step id: ${STEP_IDS.join(', ')} (repairs also: ${REPAIR_ONLY_STEP_IDS.join(', ')})`,
});

export const STEP_TITLES: Record<StepId, string> = {
  preflight: 'Preflight: backup chosen, WAL chain checked',
  'capture-forensics': 'Capture what the restore will erase',
  'approve-fence': 'Approve fencing the primary',
  'disable-writers': 'Fence writers (proven by a refused write)',
  'disable-background-jobs': 'Stop background jobs',
  'pause-outbox': 'Pause the outbox publisher',
  'restore-base-backup': 'Restore the base backup',
  'replay-wal': 'Replay WAL to the target and pause',
  'run-invariants': 'Check invariants on the paused copy',
  'approve-promote': 'Approve promotion',
  promote: 'Promote and re-assert the gates',
  'reconcile-outbox': 'Reconcile the outbox',
  'invalidate-caches': 'Invalidate caches',
  'approve-resume': 'Approve resuming traffic',
  'resume-traffic': 'Resume traffic, writers on',
  'enable-background-jobs': 'Background jobs on',
  'resume-outbox': 'Outbox publisher on',
  'record-evidence': 'Record the evidence',
  'snapshot-before': 'Snapshot the rows on the copy at the before target',
  'replay-wal-after': 'Continue replay to the after target and pause',
  'snapshot-after': 'Snapshot the rows on the copy at the after target',
  diff: 'Compare with the live primary and classify every key',
  'approve-repair': 'Approve the repair',
  'apply-repair': 'Apply the repair on the primary (one audited transaction per table)',
  teardown: 'Tear the copy down',
};

export type StepState = 'pending' | 'running' | 'awaiting-approval' | 'done' | 'skipped' | 'failed';

export interface StepError {
  /** A code of the closed catalogue (src/errors.ts); UNEXPECTED for anything else. */
  type: ErrorCode;
  message: string;
  hints: string[];
}

export interface StepRecord {
  id: StepId;
  title: string;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  /** How many times the step body ran (retries and retargets run it again). */
  runs: number;
  error?: StepError;
  /** Why it was skipped, and by whom. */
  skipped?: { by: string; reason: string };
  /** A one-line outcome, shown in the checklist. */
  summary?: string;
}
