// The backup repository behind one small interface (shared/DESIGN.md §6).
// `file://` and `s3://` implement it; everything above (archive-push/get,
// base backups, catalog, expiry, evidence) is written against this only.
//
// Layout under the repository root, per cluster:
//   <cluster>/base/<backupId>/   base.NNNN.tar.zst parts (one base.tar.zst in version 1
//                                backups), backup_manifest, backup.json
//   <cluster>/wal/<segment>.zst  and <cluster>/wal/<timeline>.history
//   <cluster>/evidence/<runId>.json, <cluster>/audit/<runId>.jsonl
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { EncryptionSettings } from './keys';
import type { RepositoryCredentials, StorageRole } from './roles';

export interface ObjectInfo {
  /** Key relative to the repository root, '/'-separated. */
  key: string;
  /** Stored size in bytes (after compression). */
  size: number;
  /** sha256 (hex) of the object's original, uncompressed content, when recorded. */
  sha256?: string;
  /**
   * WAL segments: how many places in it may start a restore point record,
   * counted by archive-push (src/wal/restore-points.ts); 0 means none.
   * Absent for other objects and for segments archived before the count.
   */
  restorePoints?: number;
  lastModified?: Date;
  /** s3:// in a versioned bucket (every Object Lock bucket is): the version HEAD or GET read. */
  versionId?: string;
  /**
   * S3 Object Lock retention of that version (HEAD only; needs
   * s3:GetObjectRetention): until then nobody may delete or overwrite it,
   * and in compliance mode not even the bucket's owner.
   */
  lock?: ObjectLockRetention;
  /** S3 Object Lock legal hold on that version: undeletable until the hold is lifted. */
  legalHold?: boolean;
  /** S3 server-side encryption the store reports for the object (HEAD and GET). */
  serverSide?: { mode: 'SSE-S3' | 'SSE-KMS'; kmsKeyId?: string };
  /**
   * s3:// only: the client-side encryption key id that sealed the object
   * (x-amz-meta-lifeboat-key-id, HEAD and GET), so that a HEAD tells which key
   * wrote it without downloading it. The object's own header stays what
   * decides; absent for plaintext objects and for objects written before.
   */
  keyId?: string;
}

export interface ObjectLockRetention {
  mode: 'governance' | 'compliance';
  retainUntil: Date;
}

export interface PutOptions {
  /** sha256 (hex) of the original content, stored beside the object. */
  sha256: string;
  /** Recorded with a WAL segment: ObjectInfo.restorePoints. */
  restorePoints?: number;
  /**
   * Create only: fail with `exists: true` rather than overwrite. The stored
   * object is never touched when it already exists.
   */
  ifAbsent?: boolean;
  contentType?: string;
  /** Extra user metadata (s3:// x-amz-meta-<name>, lower-case names; file:// keeps none): ObjectInfo.keyId. */
  metadata?: Record<string, string>;
  /** Called with the bytes written so far, for heartbeats. */
  onProgress?: (bytes: number) => void;
}

export type PutResult = { written: true } | { written: false; existing: ObjectInfo };

export interface Repository {
  /** What to print: the URL without credentials. */
  readonly url: string;
  /** Stores a small object or a stream. Atomic: readers see all of it or nothing. */
  put(key: string, body: Buffer | Readable, opts: PutOptions): Promise<PutResult>;
  /** Whole object in memory (segments, metadata); undefined when absent. */
  get(key: string): Promise<{ body: Buffer; info: ObjectInfo } | undefined>;
  /** Streams a large object (base backups); undefined when absent. */
  getStream(key: string): Promise<{ stream: Readable; info: ObjectInfo } | undefined>;
  /**
   * file:// only: the object's file, opened for reading, so that a child
   * process (restore's tar) reads it through the descriptor instead of
   * through this process; undefined when absent. The caller closes it.
   */
  openLocal?(key: string): Promise<{ handle: FileHandle; info: ObjectInfo } | undefined>;
  /** Object metadata without the body; undefined when absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object under a prefix (recursive), sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /**
   * Removes objects that are provably ours to remove (expiry only). In a
   * versioned s3:// bucket it removes the version HEAD sees, never places a
   * delete marker, and refuses a batch holding a locked object whole.
   */
  delete(keys: string[]): Promise<void>;
  /** s3:// only: the bucket's Object Lock configuration and versioning (src/repository/object-lock.ts). */
  bucketObjectLock?(): Promise<BucketObjectLock>;
  /**
   * s3:// only, versioned buckets: keys under a prefix whose current version
   * is a delete marker. LIST, HEAD and GET no longer see them, yet every
   * version, locked or not, is still stored: removing the marker brings the
   * object back.
   */
  hiddenByDeleteMarkers?(prefix: string): Promise<HiddenObject[]>;
  /**
   * s3:// only (needs s3:PutObjectRetention): sets the Object Lock retention
   * of the version `versionId` (the current one when absent). The store lets
   * it move a date later in both modes and refuses an earlier one (governance
   * needs s3:BypassGovernanceRetention, which Lifeboat never sends); callers
   * read the current date first and only ever move it later
   * (src/catalog/lock-extend.ts).
   */
  putRetention?(key: string, retention: ObjectLockRetention, versionId?: string): Promise<void>;
  /** Appends a line to a log object (audit log); creates it when absent. */
  append(key: string, line: string, opts?: AppendOptions): Promise<void>;
}

/** The user metadata name (x-amz-meta-lifeboat-key-id) of ObjectInfo.keyId. */
export const KEY_ID_METADATA = 'lifeboat-key-id';

export interface AppendOptions {
  /**
   * s3:// only: the sha256 stored with the whole log after this append, from
   * its stored bytes (default: their sha256). An encrypting wrapper gives the
   * plaintext's, as every other object has; undefined: none recorded.
   */
  sha256Of?: (stored: Buffer) => string | undefined;
}

export interface HiddenObject {
  key: string;
  /** The delete marker's version id: deleting that version undoes the delete. */
  markerVersionId: string;
  hiddenSince?: Date;
}

export interface BucketObjectLock {
  /** Object Lock is enabled on the bucket (S3 then keeps versioning on for good). */
  enabled: boolean;
  /** Retention the bucket applies to objects written without their own. */
  defaultRetention?: { mode: 'governance' | 'compliance'; days?: number; years?: number };
  versioning: 'enabled' | 'suspended' | 'off';
}

/** How openRepository (index.ts) opens a repository: where its settings come from, never the secrets themselves. */
export interface RepositoryEnvOptions {
  /** Environment variable holding the S3 endpoint (MinIO, Ceph...). */
  endpointEnv?: string;
  /** Environment variable holding the S3 region. */
  regionEnv?: string;
  /** s3:// only: server-side encryption on every PUT (runbook repository.serverSide). */
  serverSide?: { mode: 'SSE-S3' } | { mode: 'SSE-KMS'; kmsKeyId: string };
  /** s3:// only: Object Lock retention on every base backup and WAL object (runbook repository.objectLock). */
  objectLock?: { mode: 'governance' | 'compliance'; days: number; walDays?: number };
  /** s3:// only: which storage identity this opening acts as (src/repository/roles.ts); none: the SDK default chain. */
  role?: StorageRole;
  /** s3:// only: the runbook's credential source per role (repository.credentials: env var names, never values). */
  credentials?: RepositoryCredentials;
  /** Client-side encryption of every object (runbook repository.encryption; key names, never values). */
  encryption?: EncryptionSettings;
  /** s3:// only: seconds without a byte either way before a request fails (runbook repository.idleTimeoutSeconds; 60). */
  idleTimeoutSeconds?: number;
  /** Where the runbook wrote this repository (`repository`, `repositories[1]`): errors name its fields from there. */
  runbookField?: string;
}
