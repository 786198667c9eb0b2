// What the `status` query answers (DESIGN.md §4.2) and the lines of the
// audit log: the run's steps, decisions, pending approval and outcome.
//
// Types only (re-exported by contract.ts, erased from the workflow bundle):
// no Node builtins, no values.
import type { RepairStatus } from '../repair/contract';
import type { BackupChoice, InvariantResult } from './activity-io';
import type { DecisionRecord, IgnoredMessage, PendingDecision } from './decisions';
import type { Evidence } from './evidence-record';
import type { StepRecord } from './steps';
import type { Target } from './target';

export interface ReplayPosition {
  lsn: string;
  /** Last replayed commit time. */
  time?: string;
  paused: boolean;
}

export interface RecoveryStatus {
  workflow: 'recoverToPointInTime' | 'repairFromPointInTime';
  runbook: string;
  cluster?: string;
  incident?: string;
  reason?: string;
  target: Target;
  mode: 'side-by-side' | 'in-place';
  dryRun: boolean;
  /** failed: ended by a failure no decision could fix (a non-retryable preflight failure). */
  phase: 'running' | 'waiting' | 'finished' | 'aborted' | 'rejected' | 'failed';
  startedAt: string;
  steps: StepRecord[];
  decisions: DecisionRecord[];
  ignored: IgnoredMessage[];
  pending?: PendingDecision;
  backup?: BackupChoice;
  replay?: ReplayPosition;
  invariants?: InvariantResult[];
  rpoObservedSeconds?: number;
  evidenceKey?: string;
  /** Extension: how an ended run ended, from its evidence record (the checklist's first line then). */
  outcome?: {
    verdict: Evidence['validationStatus'];
    rtoObservedSeconds?: number;
    rpoObservedSeconds?: number;
    promotedAt?: string;
  };
  /** Extension: workflow time of this status (the checklist says when it was written). */
  asOf?: string;
  /** repairFromPointInTime only: tables, targets, the diff's counts and samples, what was applied. */
  repair?: RepairStatus;
}

/** One line of `<cluster>/audit/<runId>.jsonl`. */
export interface AuditLine {
  at: string;
  event: 'decision' | 'ignored' | 'step';
  decision?: DecisionRecord;
  ignored?: IgnoredMessage;
  note?: string;
}
