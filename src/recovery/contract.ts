// The recovery runbook's public contract (shared/DESIGN.md §4, §4.1, §4.2, §7):
// the input of `recoverToPointInTime`, its step ids, the shapes of its
// signals, update and query, and what each activity takes and returns.
// Operators type these names into the Temporal UI and bots send them: extend,
// never rename.
//
// Imported by workflow code (zod works in the sandbox) and by activities and
// the CLI: keep it free of Node builtins.
import type { BackupRepositorySource, RepositorySources, WalRepositorySource } from './repository-sources';
import { z } from 'zod';
import type { ErrorCode } from '../errors';
import type { Runbook } from '../runbook/schema';
import type { RepairStatus } from '../repair/contract';

// ---------------------------------------------------------------- target

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/;
const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** Exactly one of time, name, lsn, xid or latest (DESIGN.md §4). */
export const Target = z.union(
  [
    z.strictObject({
      time: z
        .string({ error: 'expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"' })
        .regex(ISO_WITH_ZONE, { error: 'expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"' })
        .refine((s) => !Number.isNaN(Date.parse(s)), { error: 'expected a real date and time' }),
    }),
    z.strictObject({
      name: z
        .string()
        .min(1, { error: 'expected the restore point name' })
        .max(63, { error: 'restore point names are at most 63 bytes' }),
    }),
    z.strictObject({ lsn: z.string().regex(LSN_RE, { error: 'expected an LSN such as "0/3000060"' }) }),
    z.strictObject({
      xid: z
        .union([z.string().regex(/^\d+$/), z.number().int().positive()], {
          error: 'expected a transaction id (a positive integer)',
        })
        .transform(String),
    }),
    z.strictObject({ latest: z.literal(true, { error: 'expected true' }) }),
  ],
  {
    error:
      'expected exactly one of { "time": "..." }, { "name": "..." }, { "lsn": "..." }, { "xid": "..." } or { "latest": true }',
  },
);
export type Target = z.output<typeof Target>;

export function describeTarget(t: Target): string {
  if ('time' in t) return `time ${t.time}`;
  if ('name' in t) return `restore point "${t.name}"`;
  if ('lsn' in t) return `LSN ${t.lsn}`;
  if ('xid' in t) return `transaction ${t.xid}`;
  return 'the end of the archive';
}

// ---------------------------------------------------------------- input

export const RecoveryInput = z.strictObject({
  runbook: z
    .string({ error: 'expected the runbook name, e.g. "orders"' })
    .min(1, { error: 'expected the runbook name' }),
  target: Target,
  incident: z.string({ error: 'expected the incident reference, e.g. "INC-1234"' }).max(200).optional(),
  reason: z.string({ error: 'expected a short reason' }).max(2000).optional(),
  mode: z.enum(['side-by-side', 'in-place'], { error: 'expected "side-by-side" or "in-place"' }).optional(),
  dryRun: z.boolean({ error: 'expected true or false' }).optional(),
  /** Extension: restore this backup instead of the one preflight would choose. */
  backupId: z
    .string()
    .regex(/^\d{8}T\d{6}Z(?:-[a-z0-9]{1,8})?$/, { error: 'expected a backup id such as 20261121T190102Z' })
    .optional(),
  /**
   * Extension: run even while another recovery of the runbook runs. Without
   * it a later start is refused with RECOVERY_ALREADY_RUNNING naming the
   * running one (activities/one-recovery.ts).
   */
  concurrent: z.boolean({ error: 'expected true or false' }).optional(),
  /**
   * Extension (runbook repositories:): restore from this repository only, by
   * its name or its position from 1, instead of the first that serves.
   */
  repository: z.string({ error: 'expected a repository name or its position from 1' }).min(1).optional(),
});
export type RecoveryInput = z.input<typeof RecoveryInput>;

// ---------------------------------------------------------------- steps

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
/** Steps only repairFromPointInTime has (DESIGN.md §4.3); its other steps are the recovery's, meaning the same. */
export const REPAIR_ONLY_STEP_IDS = [
  'snapshot-before',
  'replay-wal-after',
  'snapshot-after',
  'diff',
  'approve-repair',
  'apply-repair',
  'teardown',
] as const;
export type StepId = (typeof STEP_IDS)[number] | (typeof REPAIR_ONLY_STEP_IDS)[number];
/** The steps of repairFromPointInTime, in order. */
export const REPAIR_STEP_IDS: readonly StepId[] = [
  'preflight',
  'approve-fence',
  'restore-base-backup',
  'replay-wal',
  'snapshot-before',
  'replay-wal-after',
  'snapshot-after',
  'diff',
  'approve-repair',
  'apply-repair',
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

// ---------------------------------------------------------------- messages

const who = z
  .string({ error: 'expected who decides, e.g. "alice"' })
  .trim()
  .min(1, { error: 'expected who decides, e.g. "alice"' })
  .max(100);

export const ApproveSignal = z.object({
  step: StepIdSchema,
  by: who,
  comment: z.string().max(2000).optional(),
  /** approve-promote after a failed invariant: must be true, with the reason in comment. */
  override: z.boolean().optional(),
  /** approve-repair: classes restored besides the safe ones (conflicts are excluded unless named here). */
  include: z
    .array(z.enum(['changedSince', 'candidate'], { error: 'expected "changedSince" or "candidate"' }))
    .optional(),
});
export const RejectSignal = z.object({ step: StepIdSchema, by: who, reason: z.string().max(2000).optional() });
export const StepSignal = z.object({ step: StepIdSchema, by: who, reason: z.string().max(2000).optional() });
export const RetargetSignal = z.object({ by: who, target: Target, comment: z.string().max(2000).optional() });

export const DECISIONS = ['approve', 'reject', 'retry', 'skip', 'abort'] as const;
export type DecisionKind = (typeof DECISIONS)[number];

export const DecideUpdate = z.object({
  step: StepIdSchema,
  decision: z.enum(DECISIONS, { error: `expected one of ${DECISIONS.join(', ')}` }),
  by: who,
  comment: z.string().max(2000).optional(),
  /** approve-promote after a failed invariant: must be true, with the reason in comment. */
  override: z.boolean().optional(),
  /** approve-repair: classes restored besides the safe ones (conflicts are excluded unless named here). */
  include: z
    .array(z.enum(['changedSince', 'candidate'], { error: 'expected "changedSince" or "candidate"' }))
    .optional(),
});
export type DecideUpdate = z.infer<typeof DecideUpdate>;

/** An accepted decision, as kept in status, the audit log and the evidence. */
export interface DecisionRecord {
  step: StepId;
  by: string;
  at: string;
  decision: DecisionKind | 'retarget';
  comment?: string;
  /** approve-promote given although an invariant failed. */
  override?: boolean;
  /** For retarget: the new target. */
  target?: Target;
  /** approve-repair: the classes this approver included besides the safe ones. */
  include?: Array<'changedSince' | 'candidate'>;
  /** signal or update. */
  via: 'signal' | 'update';
}

/** A message that was not acted on, listed in status (and the audit log). */
export interface IgnoredMessage {
  at: string;
  via: 'signal' | 'update';
  name: string;
  by?: string;
  step?: string;
  why: string;
}

export interface PendingDecision {
  step: StepId;
  kind: 'approval' | 'failed';
  since: string;
  /** Who may decide; empty means anyone named. */
  approvers: string[];
  min: number;
  approvedBy: string[];
  /** How to give the decision, in words an operator can copy. */
  how: string[];
}

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

// ---------------------------------------------------------------- activity I/O

/** Every activity names the runbook; workers load it from their runbooks directory. */
export interface RunbookRef {
  runbook: string;
  /** Extension (runbook repositories:): only this repository, by name or position from 1 (--repo-index). */
  repository?: string;
}

/**
 * Which instance a restore activity acts on: the runbook's `restore` (the
 * default, a recovery), its `drill` (restoreDrill's isolated copy) or its
 * `standby` (the warm standby src/standby/ builds; only restore-base-backup
 * is ever called with it). Resolved in one place, src/restore/site.ts.
 */
export type RestoreInstanceKind = 'restore' | 'drill' | 'standby';

export interface InstanceRef {
  instance?: RestoreInstanceKind;
}

export interface BackupChoice {
  backupId: string;
  startLsn: string;
  endLsn: string;
  startTime: string;
  endTime: string;
  timeline: number;
  sizeBytes: number;
  storedBytes: number;
  /** Why this one, in words ("newest verified backup that finished before 14:31:59"). */
  why: string;
}

export interface PreflightInput extends RunbookRef, InstanceRef {
  target: Target;
  mode: 'side-by-side' | 'in-place';
  dryRun: boolean;
  backupId?: string;
}

export interface PreflightResult {
  runbook: Runbook;
  cluster: string;
  backup: BackupChoice;
  /** First segment the restore needs, and the newest archived segment of the chain. */
  walFrom: string;
  walTo?: string;
  walSegmentsAvailable: number;
  primaryReachable: boolean;
  /** Archiver health when the primary answered (one line), else why it was not read. */
  archiver?: string;
  /** What pg_stat_archiver showed wrong (stale, failing), one line each; empty or absent when healthy or not read. */
  archiverProblems?: string[];
  rtoEstimateSeconds: number;
  warnings: string[];
  /** Extension: for a restore point target, the LSN of the record replay stops at, as the archive search found it. */
  restorePointLsn?: string;
}

export interface CaptureResult {
  capturedAt: string;
  primaryReachable: boolean;
  /** Outbox high-water mark: max(id) of rows published on the old primary. */
  outboxHighWater?: string;
  captures: Array<{ name: string; rowCount: number; rows: unknown[]; truncated: boolean; error?: string }>;
}

export interface GateInput extends RunbookRef {
  /** Where the gate is set: the (old) primary, or the restored instance on the restore host. */
  where: 'primary' | 'restored';
  enabled: boolean;
}

export interface GateResult {
  gate: string;
  enabled: boolean;
  /** Writers only: roles altered, sessions ended, and the proof. */
  rolesAltered?: string[];
  sessionsTerminated?: number;
  proof?: string;
}

export interface RestoreInput extends RunbookRef, InstanceRef {
  backupId: string;
  mode: 'side-by-side' | 'in-place';
  /** Workflow id and run id: mark the data directory as ours. */
  workflowId: string;
  runId: string;
}

export interface RestoreResult {
  dataDir: string;
  port: number;
  /**
   * Where an existing data directory was moved (never deleted): a sibling
   * `<dataDir>.lifeboat-*`, or on a mount point `<dataDir>/.lifeboat-aside-*`,
   * inside the data directory and on its volume until an operator removes it.
   */
  movedAside?: string;
  /** This run's own interrupted extraction was removed, not moved aside (src/restore/data-dir.ts says why). */
  removedPartial?: true;
  bytes: number;
  files: number;
  /** ISO time the extraction finished. */
  finishedAt: string;
  /** Server configuration files the backup lacked and Lifeboat supplied (packaged installs). */
  configNotes?: string[];
  /** Extension (DESIGN.md §4.4): the warm standby this copy was taken over from, instead of a base backup. */
  standby?: StandbySource;
  /**
   * Extension (runbook repositories:): the repository the base backup came
   * from when it was not the first, and why the ones before it were passed over.
   */
  repository?: BackupRepositorySource;
}

/** The warm standby a recovery took over (src/standby/adopt.ts). */
export interface StandbySource {
  /** standby.dataDir, moved into restore.dataDir. */
  from: string;
  /** Its replay position when it was paused, and its last replayed commit. */
  replayLsn: string;
  lastReplayTime?: string;
  /** The backup it was built from. */
  backupId: string;
  /** Its WAL segment size in bytes (the evidence counts the segments replayed from replayLsn with it). */
  walSegmentSize?: number;
}

/** Which source restore-base-backup used, and why (evidence.restoreSource). */
export interface RestoreSource {
  kind: 'standby' | 'backup';
  why: string;
  /** kind standby: the standby taken over (its base backup, where its replay was paused). */
  standby?: StandbySource;
}

/** useStandby: take over the runbook's warm standby for this recovery, when it is healthy and before the target. */
export interface UseStandbyInput extends RunbookRef {
  target: Target;
  /**
   * For a restore point target, where preflight found it: the first record of
   * that name from `searchedFrom` (its backup's start) on. A standby paused at
   * or after searchedFrom and before `lsn` stops at that same record, and the
   * archive need not be searched again.
   */
  restorePoint?: { lsn: string; searchedFrom: string };
  mode: 'side-by-side' | 'in-place';
  workflowId: string;
  runId: string;
}

export type UseStandbyResult = { used: true; why: string; result: RestoreResult } | { used: false; why: string };

/** checkRestoreSite: will the restore fit on the volume of its data directory? (src/restore/room.ts) */
export interface RestoreSiteInput extends RunbookRef, InstanceRef {
  backupId: string;
  /** Bytes of the data directory as restored (BackupChoice.sizeBytes). */
  backupBytes: number;
  /** WAL segments the replay reads (PreflightResult.walSegmentsAvailable). */
  walSegments: number;
  walSegmentSize?: number;
  /**
   * The run asking (src/restore/site-check.ts): a directory whose marker
   * names it is its own. Absent in histories recorded before the site's
   * directory and port were checked.
   */
  workflowId?: string;
  runId?: string;
  /** The run's mode; absent: the runbook's restore.mode. */
  mode?: 'side-by-side' | 'in-place';
}

export interface RestoreSiteCheck {
  /** What the directory and port were found to be ("restore.dataDir ... is empty or absent; restore.port 5433 is free"). */
  site?: string;
  dataDir: string;
  /** The directory whose file system was measured (dataDir or its nearest existing parent). */
  measured: string;
  freeBytes: number;
  neededBytes: number;
  /** Copies Lifeboat moved aside on that file system, kept for an operator to remove. */
  kept: Array<{ path: string; bytes: number }>;
}

/** Heartbeat details of restore-base-backup (read by `lifeboat status`). */
export interface RestoreProgress {
  phase: 'preparing' | 'downloading' | 'verifying' | 'done';
  bytes: number;
  totalBytes: number;
  /** Extension: the same in words, for the Temporal UI's Pending Activities (src/recovery/progress-text.ts). */
  text?: string;
}

export interface ReplayInput extends RunbookRef, InstanceRef {
  target: Target;
  workflowId: string;
  runId: string;
  /** True when an earlier replay of this run paused and only the target moved. */
  continueFrom?: boolean;
}

export interface ReplayResult {
  paused: true;
  lsn: string;
  /** Last replayed commit time; absent when no commit was replayed. */
  time?: string;
  timeline: number;
  walSegmentsReplayed: number;
  walBytesReplayed: number;
  /**
   * Extension (runbook repositories:): WAL files a repository other than the
   * first served, and why the ones before it did not (src/wal/get-fallback.ts).
   */
  walFromOtherRepositories?: WalRepositorySource[];
}

/** Heartbeat details of replay-wal. */
export interface ReplayProgress {
  phase: 'starting' | 'replaying' | 'paused';
  lsn?: string;
  time?: string;
  targetLsn?: string;
  targetTime?: string;
  /** The first LSN the replay needed (the backup's start). */
  startLsn?: string;
  /** Extension: the same in words, for the Temporal UI's Pending Activities (src/recovery/progress-text.ts). */
  text?: string;
}

export interface InvariantResult {
  name: string;
  passed: boolean;
  value: string;
  expected?: string;
  builtin?: boolean;
  error?: string;
}

export interface PromoteResult {
  promotedAt: string;
  timeline: number;
  lsn: string;
  gates: GateResult[];
}

export interface OutboxResult {
  table?: string;
  highWater?: string;
  markedPublished: number;
  skippedReason?: string;
}

export interface CacheResult {
  kind: 'redis' | 'http' | 'command';
  target: string;
  deleted?: number;
  status?: number;
}

/** checkCacheEndpoints / checkTrafficEndpoint (preflight): what answered, names of variables only. */
export interface EndpointsCheck {
  answered: string[];
  /** Endpoints marked `preflight: warn` in the runbook that did not answer (absent in histories before it). */
  warnings?: string[];
}

export interface TrafficResult {
  kind: 'pgbouncer' | 'command' | 'none';
  pointedAt?: string;
  steps: string[];
}

/**
 * Where the cluster's primary is once the recovery promoted (recordPrimary;
 * the overlay <cluster>/primary.json that backup, check, drill, checkpoint
 * and the next recovery read, src/catalog/primary.ts).
 */
export interface PrimaryRecord {
  /** false: the promoted copy is where the runbook's primary already is (in place), no overlay written. */
  repointed: boolean;
  host: string;
  port: number;
  timeline: number;
  /** The server the runbook names, which the overlay replaces. */
  replaced: { host: string; port: number };
  since?: string;
  /** The overlay's key in the repository. */
  overlay?: string;
  /** The new timeline's history file, archived from the copy's pg_wal so archive-push refuses the old timeline at once. */
  history?: string;
}

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
