// What each recovery activity takes and returns (DESIGN.md §4, §7): the
// shapes activity-types.ts's interface is written in, shared by the workflow
// (through proxyActivities), the activities and the CLI.
//
// Types only (re-exported by contract.ts, erased from the workflow bundle):
// no Node builtins, no values.
import type { Runbook } from '../runbook/schema';
import type { BackupRepositorySource, WalRepositorySource } from './repository-sources';
import type { Target } from './target';

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
