// The evidence record every recovery, drill and repair writes (DESIGN.md §7):
// what was restored, to where, how fast, what was checked, who decided what.
//
// Types only (re-exported by contract.ts, erased from the workflow bundle):
// no Node builtins, no values.
import type { RepairStatus } from '../repair/contract';
import type {
  CacheResult,
  CaptureResult,
  InvariantResult,
  OutboxResult,
  PrimaryRecord,
  RestoreSource,
  TrafficResult,
} from './activity-io';
import type { RepositorySources } from './repository-sources';
import type { StepState } from './steps';
import type { Target } from './target';

export interface Evidence {
  runId: string;
  workflowId: string;
  kind: 'recovery' | 'drill' | 'repair';
  runbook: string;
  cluster: string;
  /** Extension (issue 18): the backup engine that held the backup and WAL (runbook engine:); absent in records written before it, and where no runbook was loaded. */
  engine?: 'lifeboat' | 'pgbackrest';
  incident?: string;
  reason?: string;
  dryRun?: boolean;
  mode?: 'side-by-side' | 'in-place';
  backupId?: string;
  target: Target;
  startedAt: string;
  promotedAt?: string;
  finishedAt: string;
  rtoObservedSeconds?: number;
  rpoObservedSeconds?: number;
  rtoPhases?: Record<string, number>;
  replayedToLsn?: string;
  replayedToTime?: string;
  walSegmentsReplayed?: number;
  walBytesReplayed?: number;
  baseBackupBytes?: number;
  invariants: InvariantResult[];
  invariantOverride?: { by: string; reason: string };
  approvals: Array<{ step: string; by: string; at: string; decision: string; comment?: string }>;
  steps: Array<{
    id: string;
    state: StepState;
    startedAt?: string;
    finishedAt?: string;
    summary?: string;
    error?: string;
  }>;
  forensics?: CaptureResult;
  outbox?: OutboxResult;
  caches?: CacheResult[];
  traffic?: TrafficResult;
  /** Where the recovery re-pointed the cluster's primary (recoveries that promoted, since patch record-primary-overlay). */
  primary?: PrimaryRecord;
  /** Extension (DESIGN.md §4.4): whether restore-base-backup took over the warm standby or restored a backup, and why. */
  restoreSource?: RestoreSource;
  /** Extension (runbook repositories:): what repositories other than the first served, and why (src/recovery/repository-sources.ts). */
  repositories?: RepositorySources;
  objectives?: { rpoSeconds: number; rtoSeconds: number; rpoMet?: boolean; rtoMet?: boolean };
  validationStatus: 'passed' | 'failed' | 'aborted' | 'rejected';
  notes: string[];
  /** kind repair: per table the counts, the classes applied, what was restored and skipped, the approvers. */
  repair?: RepairStatus;
}
