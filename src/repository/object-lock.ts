// S3 Object Lock and server-side encryption as the s3:// repository writes
// them (runbook repository.objectLock / repository.serverSide), and the
// questions the rest of Lifeboat asks about an object's lock.
//
// What gets locked: base backup objects (<cluster>/base/<id>/<file>) for
// `days`, WAL objects (<cluster>/wal/<file>) for `walDays` (default `days`),
// each counted from its own upload. Evidence, audit logs and primary.json
// are not locked: the audit log is rewritten on every append, and in a
// versioned bucket each rewrite would leave one more locked version behind.
//
// Object Lock needs a versioned bucket (S3 turns versioning on for good when
// the bucket is created with Object Lock). Two consequences the code below
// is built around:
// - A DELETE without a version id never removes anything there: it places a
//   delete marker that hides the object from LIST, HEAD and GET while every
//   version, locked or not, stays stored (and billed). Expiry therefore
//   deletes by version id, and never a locked version (S3 refuses it anyway).
// - A PUT to an existing key adds a new current version; the locked one stays
//   as it was, readable by version id. Lifeboat's own writes are create-only
//   (If-None-Match: *), so the store refuses them with 412.
import type { RepositoryEnvOptions } from './index';
import type { ObjectInfo } from './types';

export type ObjectLockSetting = NonNullable<RepositoryEnvOptions['objectLock']>;
export type ServerSideSetting = NonNullable<RepositoryEnvOptions['serverSide']>;

const DAY_MS = 86_400_000;

/** Which retention a key gets: base backup objects, WAL objects, or none. */
export function lockKindOfKey(key: string): 'base' | 'wal' | undefined {
  if (/^[^/]+\/wal\/[^/]+$/.test(key)) return 'wal';
  if (/^[^/]+\/base\/[^/]+\/[^/]+$/.test(key)) return 'base';
  return undefined;
}

/** The retain-until date a key written now gets, or undefined when it is not locked. */
export function retentionFor(
  setting: ObjectLockSetting | undefined,
  key: string,
  now: Date,
): { mode: 'governance' | 'compliance'; retainUntil: Date } | undefined {
  if (!setting) return undefined;
  const kind = lockKindOfKey(key);
  if (!kind) return undefined;
  const days = kind === 'wal' ? (setting.walDays ?? setting.days) : setting.days;
  return { mode: setting.mode, retainUntil: new Date(now.getTime() + days * DAY_MS) };
}

/** The days a key of this kind is locked for, by the runbook's setting. */
export function lockDaysFor(setting: ObjectLockSetting, kind: 'base' | 'wal'): number {
  return kind === 'wal' ? (setting.walDays ?? setting.days) : setting.days;
}

/** PutObject / CreateMultipartUpload parameters for a setting. */
export function serverSideParams(setting: ServerSideSetting | undefined): {
  ServerSideEncryption?: 'AES256' | 'aws:kms';
  SSEKMSKeyId?: string;
} {
  if (!setting) return {};
  return setting.mode === 'SSE-S3'
    ? { ServerSideEncryption: 'AES256' }
    : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: setting.kmsKeyId };
}

/** What the store reports back, in the runbook's words. */
export function serverSideOf(sse: string | undefined, kmsKeyId: string | undefined): ObjectInfo['serverSide'] {
  if (sse === 'AES256') return { mode: 'SSE-S3' };
  if (sse === 'aws:kms' || sse === 'aws:kms:dsse') return { mode: 'SSE-KMS', ...(kmsKeyId ? { kmsKeyId } : {}) };
  return undefined;
}

/**
 * Whether a KMS key id the store reports is the configured one: AWS reports
 * the key's full ARN, MinIO "arn:aws:kms:<name>", the runbook may hold either
 * a bare id, an alias or an ARN.
 */
export function sameKmsKey(reported: string | undefined, configured: string): boolean {
  if (!reported) return false;
  if (reported === configured) return true;
  const tail = (id: string) => id.replace(/^arn:aws[a-z-]*:kms:(?:[^:]*:[^:]*:)?/, '').replace(/^key\//, '');
  return tail(reported) === tail(configured);
}

/** Until when an object may not be deleted: its retention date, or forever while a legal hold stands. */
export function lockedUntil(
  info: ObjectInfo,
  now: Date,
): { until?: Date; legalHold: boolean; mode?: 'governance' | 'compliance' } | undefined {
  const retained = info.lock && info.lock.retainUntil.getTime() > now.getTime() ? info.lock : undefined;
  if (!retained && !info.legalHold) return undefined;
  return {
    legalHold: info.legalHold === true,
    ...(retained ? { until: retained.retainUntil, mode: retained.mode } : {}),
  };
}

/** fn over items, at most `limit` at a time, results in order (HEADs of many objects). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
