// backup.json: what a base backup is, stored beside it in the repository
// (shared/DESIGN.md §6). Written by the baseBackup workflow after
// pg_verifybackup passed; read by the catalog, check, expiry and restore.
import { z } from 'zod';

export const BACKUP_META_VERSION = 1;

/** Backup ids sort by time: 20261121T190102Z, plus a suffix when two start in one second. */
export const BACKUP_ID_RE = /^\d{8}T\d{6}Z(?:-[a-z0-9]{1,8})?$/;

export const StoredFile = z.strictObject({
  /** File name inside <cluster>/base/<backupId>/. */
  name: z.string(),
  /** Bytes as stored (after compression). */
  storedSize: z.number().int().nonnegative(),
  /** Bytes before compression. */
  size: z.number().int().nonnegative(),
  /** sha256 (hex) of the content before compression. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** 'zstd' when stored compressed, 'none' otherwise. */
  compression: z.enum(['zstd', 'none']),
});
export type StoredFile = z.infer<typeof StoredFile>;

/** One piece the role lacked when the backup was taken (src/privileges/check.ts MissingPrivilege). */
export const RecordedMissing = z.strictObject({
  key: z.string(),
  what: z.string(),
  fix: z.string(),
  database: z.string().optional(),
  uses: z.array(z.string()),
  optional: z.boolean().optional(),
  detail: z.string().optional(),
});

/**
 * What the runbook's role was granted when the backup was taken, checked as
 * the role just before pg_basebackup started: a copy restored from this
 * backup has exactly that catalog, and no grant made later reaches it.
 */
export const BackupPrivileges = z.strictObject({
  checkedAt: z.string(),
  role: z.string(),
  database: z.string(),
  superuser: z.boolean(),
  /** Keys of the needs checked (src/privileges/needs.ts); a need added to the runbook later is not among them. */
  checked: z.array(z.string()),
  missing: z.array(RecordedMissing),
  /** Set when the check itself could not run; then nothing is known. */
  error: z.string().optional(),
});
export type BackupPrivileges = z.infer<typeof BackupPrivileges>;

export const BackupMeta = z.strictObject({
  version: z.literal(BACKUP_META_VERSION),
  backupId: z.string().regex(BACKUP_ID_RE),
  cluster: z.string(),
  /** server_version of the primary, e.g. "15.18". */
  pgVersion: z.string(),
  /** pg_control's system identifier: WAL of another cluster must never be replayed into this one. */
  systemIdentifier: z.string(),
  type: z.literal('full'),
  tool: z.literal('pg_basebackup'),
  toolVersion: z.string(),
  /** ISO 8601 times. */
  startTime: z.string(),
  endTime: z.string(),
  /** LSNs in PostgreSQL's text form, e.g. "0/2000028". */
  startLsn: z.string(),
  endLsn: z.string(),
  /** Timeline the backup started on. */
  timeline: z.number().int().positive(),
  /** First and last WAL segment a restore of this backup needs (inclusive). */
  startWal: z.string(),
  endWal: z.string(),
  walSegmentSize: z.number().int().positive(),
  /** Size of the data directory as copied, and as stored in the repository. */
  sizeBytes: z.number().int().nonnegative(),
  storedBytes: z.number().int().nonnegative(),
  files: z.array(StoredFile),
  /** sha256 of backup_manifest as pg_basebackup wrote it. */
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  verifiedAt: z.string(),
  verifiedBy: z.string(),
  /** The label passed to pg_basebackup. */
  label: z.string(),
  /** The role's privileges at backup time; absent in backups taken before Lifeboat recorded them. */
  privileges: BackupPrivileges.optional(),
});
export type BackupMeta = z.infer<typeof BackupMeta>;
