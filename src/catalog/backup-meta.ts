// backup.json: what a base backup is, stored beside it in the repository
// (shared/DESIGN.md §6). Written by the baseBackup workflow after
// pg_verifybackup passed; read by the catalog, check, expiry and restore.
//
// Versions (a reader accepts both; the writer writes the newest):
//   1  the data directory as one object, base.tar.zst, whose `sha256` is of
//      the uncompressed tar. Restored by one stream (src/restore/extract.ts).
//   2  the data directory in parts base.0000.tar.zst, base.0001.tar.zst, ...
//      (src/backup/parts.ts): part 0 holds the directories, the others the
//      files; each part records `storedSha256`, the sha256 of its bytes as
//      stored, which restore checks while reading them. Restored in parallel
//      (src/restore/extract-parts.ts).
import { z } from 'zod';

export const BACKUP_META_VERSION = 2;

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
  /**
   * sha256 (hex) of the object's bytes as stored (version 2 parts): what a
   * restore can check as it reads, without decompressing in the worker.
   */
  storedSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
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

/** Version 1: the whole data directory in one archive. */
export const BASE_ARCHIVE = 'base.tar.zst';
/** Version 2: the parts, numbered from 0 without gaps; part 0 holds the directories. */
export const PART_RE = /^base\.(\d{4,})\.tar\.zst$/;

export function partName(index: number): string {
  return `base.${String(index).padStart(4, '0')}.tar.zst`;
}

export type StoredPart = StoredFile & { storedSha256: string };

/** How the data directory of a backup is stored: what a restore reads. */
export type BaseLayout =
  | { kind: 'single'; archive: StoredFile }
  | {
      kind: 'parts';
      /** Part 0: the directories (and any symlinks). */ dirs: StoredPart;
      /** The files, parts 1..n. */ files: StoredPart[];
    };

/** The layout of a backup's data directory, or what is wrong with its list of files. */
export function baseLayout(meta: { version: number; files: StoredFile[] }): BaseLayout | { problem: string } {
  if (meta.version === 1) {
    const archive = meta.files.find((f) => f.name === BASE_ARCHIVE);
    return archive ? { kind: 'single', archive } : { problem: `version 1 lists no ${BASE_ARCHIVE}` };
  }
  const parts = meta.files
    .map((f) => ({ f, m: PART_RE.exec(f.name) }))
    .filter((x) => x.m)
    .map((x) => ({ f: x.f, index: Number(x.m![1]) }))
    .sort((a, b) => a.index - b.index);
  if (parts.length === 0) return { problem: `version ${meta.version} lists no ${partName(0)}` };
  for (const [i, p] of parts.entries()) {
    if (p.index !== i) return { problem: `${partName(i)} is missing from the list of parts` };
    if (!p.f.storedSha256) return { problem: `${p.f.name} has no storedSha256` };
  }
  const [dirs, ...files] = parts.map((p) => p.f as StoredPart);
  return { kind: 'parts', dirs: dirs!, files };
}

export const BackupMeta = z
  .strictObject({
    version: z.union([z.literal(1), z.literal(BACKUP_META_VERSION)]),
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
    /**
     * The primary's tablespaces outside its data directory, stored inside it
     * (pg_tblspc/<oid> a directory, not a link): a copy never reaches the
     * primary's own location. Absent when there are none.
     */
    tablespaces: z
      .array(z.strictObject({ oid: z.string().regex(/^\d+$/), name: z.string(), location: z.string() }))
      .optional(),
  })
  .superRefine((meta, ctx) => {
    const layout = baseLayout(meta);
    if ('problem' in layout) ctx.addIssue({ code: 'custom', path: ['files'], message: layout.problem });
  });
export type BackupMeta = z.infer<typeof BackupMeta>;
