// The backup-engine boundary: what Lifeboat's runbook needs from whatever
// holds a cluster's base backups and WAL archive. One small strategy
// interface (CONVENTIONS.md "Strategies behind small interfaces"), as
// CloudNativePG has one per backup method; Lifeboat's own repository
// (./lifeboat.ts) and pgBackRest (./pgbackrest/engine.ts) implement it.
import type { ChainReport, HealthProblem, WalGap } from '../catalog/chain';
import type { BackupChoice, RestoreInput, RestoreProgress, RestoreResult, Target } from '../recovery/contract';

export type EngineKind = 'lifeboat' | 'pgbackrest';

/** One restorable base backup, as any engine describes it. */
export interface EngineBackup {
  /** Lifeboat's backup id (20261121T190102Z) or pgBackRest's label (20261204-054111F_20261204-054124I). */
  backupId: string;
  type: 'full' | 'diff' | 'incr';
  /** ISO 8601 times, to the second (pgBackRest records seconds). */
  startTime: string;
  endTime: string;
  startLsn: string;
  endLsn: string;
  /** Timeline the backup started on. */
  timeline: number;
  /** First and last WAL segment a restore of it needs (inclusive). */
  startWal: string;
  endWal: string;
  /** Size of the data directory, and what the backup stores (for diff/incr: its own delta). */
  sizeBytes: number;
  storedBytes: number;
  /** The backup a diff or incr builds on (pgBackRest's prior); absent for a full. */
  prior?: string;
}

/** A timeline's archived segments: the range an engine reports, and how many are there. */
export interface TimelineRange {
  timeline: number;
  first?: string;
  last?: string;
  segmentCount: number;
}

export interface ArchiveReport {
  /** Per timeline, oldest first. */
  timelines: TimelineRange[];
  /** Missing segments that a restore from some backup would have to cross. */
  gaps: WalGap[];
  /** Gaps and missing or unreadable history files, with hints in the engine's own commands. */
  problems: HealthProblem[];
  /** The full continuity analysis (src/catalog/chain.ts), the same for every engine. */
  chain: ChainReport;
  /** Engine-specific notes (pgBackRest: its own min/max per archive id, when they differ from the listing). */
  notes: string[];
}

export interface EngineCheckReport {
  ok: boolean;
  problems: HealthProblem[];
  /** What was run and what it said, one line each. */
  lines: string[];
}

export interface TakeBackupOptions {
  type?: EngineBackup['type'];
  onProgress?: (p: { percent?: number; text: string }) => void;
  signal?: AbortSignal;
}

export interface EngineRestoreRequest {
  backupId: string;
  /** Where the copy goes. pgBackRest: absent or empty unless `delta`. Lifeboat's own: the runbook's restore (or drill) dataDir. */
  dataDir: string;
  target: Target;
  /** recovery_target_timeline: 'latest' (the default), 'current', or a timeline number. */
  targetTimeline?: 'latest' | 'current' | number;
  /** Recover only until the copy is consistent, ignoring `target` (pgBackRest --type=immediate); Lifeboat's own engine has no such restore yet. */
  immediate?: boolean;
  /** pgBackRest --delta: overwrite only changed files of an existing directory. */
  delta?: boolean;
  /** Lines appended after the engine's own recovery settings (port, listen_addresses, socket directory). */
  settings?: string[];
  /**
   * The copy archives into the engine once promoted (a recovery's copy, the
   * new primary): pgBackRest archive_mode on and archive-push with the copy's
   * own --pg1-path. Off (the default) for drills and repairs: archive_mode off.
   */
  archive?: boolean;
  /** Lifeboat's own engine claims and marks the directory for a workflow run (src/restore/claim.ts). */
  run?: Pick<RestoreInput, 'workflowId' | 'runId' | 'mode' | 'instance' | 'runbook'>;
  onProgress?: (p: RestoreProgress) => void;
  signal?: AbortSignal;
}

export interface EngineRestoreResult extends Pick<RestoreResult, 'dataDir' | 'bytes' | 'files' | 'finishedAt'> {
  /**
   * Whether the recovery settings for the target (pause at it) are already in
   * the directory: pgBackRest writes them with the restore; Lifeboat's own
   * engine writes them in replay-wal (src/restore/recovery-conf.ts).
   */
  recoverySettings: 'written' | 'by-replay-wal';
  /** Lifeboat's own engine: the whole RestoreResult of restore-base-backup. */
  result?: RestoreResult;
}

export interface EngineExpireResult {
  /** Backups gone after expiry (by id); with `dryRun`, those the engine says it would expire. */
  expired: string[];
  /** What the engine said it did (or, with `dryRun`, would do), one line each. */
  lines: string[];
}

export interface EngineExpireOptions {
  /** The engine's own dry run: what it would expire, nothing deleted. */
  dryRun?: boolean;
}

export interface BackupEngine {
  readonly kind: EngineKind;
  /** Where the backups are, for messages and evidence: "repository file:///…" or "pgBackRest stanza main (repo 1)". */
  readonly label: string;
  /** Restorable backups, oldest first. */
  listBackups(): Promise<EngineBackup[]>;
  /** The backup a recovery to `target` restores (src/recovery/plan.ts chooseBackup's rules). */
  chooseBackup(backups: readonly EngineBackup[], target: Target, backupId?: string): BackupChoice;
  /** The archive's range per timeline and its gaps, judged against `backups`. */
  readArchive(backups: readonly EngineBackup[]): Promise<ArchiveReport>;
  takeBackup(opts?: TakeBackupOptions): Promise<EngineBackup>;
  /** Restores a backup into a directory, ready to replay to the target and pause there. */
  restore(req: EngineRestoreRequest): Promise<EngineRestoreResult>;
  /** The engine's own health check (the archiver reaching the repository, its files valid). */
  check(): Promise<EngineCheckReport>;
  /** The engine's own retention. */
  expire(opts?: EngineExpireOptions): Promise<EngineExpireResult>;
}
