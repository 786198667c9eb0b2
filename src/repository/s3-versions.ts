// Versioned buckets and S3 Object Lock for the s3:// repository
// (src/repository/s3.ts): deletes that name versions, the bucket's lock and
// versioning settings, objects hidden by delete markers, and one version's
// retention. Every Object Lock bucket is versioned.
import {
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  ListObjectVersionsCommand,
  PutObjectRetentionCommand,
} from '@aws-sdk/client-s3';
import { LifeboatError } from '../errors';
import { lockedUntil, mapLimit } from './object-lock';
import { permissionFor } from './roles';
import type { S3Target } from './s3-client';
import { s3Error } from './s3-errors';
import type { BucketObjectLock, HiddenObject, ObjectInfo, ObjectLockRetention } from './types';

/**
 * In a versioned bucket (every Object Lock bucket is) a DELETE without a
 * version id removes nothing: it places a delete marker that hides the
 * object while every version stays stored. So there each key is read first
 * (`head`: its version id and lock) and that version is deleted; a batch
 * holding a locked object is refused whole, before anything of it goes.
 * Expiry filters locked objects out beforehand (src/catalog/locked.ts);
 * this is the backstop for a lock that appeared in between.
 */
export async function deleteObjects(
  t: S3Target,
  keys: string[],
  versioned: boolean,
  head: (key: string) => Promise<ObjectInfo | undefined>,
): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    let objects: { Key: string; VersionId?: string }[] = batch.map((k) => ({ Key: t.prefix + k }));
    if (versioned) {
      const heads = await mapLimit(batch, 16, head);
      const now = new Date();
      const locked = heads.flatMap((h) => {
        const l = h ? lockedUntil(h, now) : undefined;
        return h && l ? [{ key: h.key, ...l }] : [];
      });
      if (locked.length > 0) {
        const first = locked[0]!;
        throw new LifeboatError(
          'REPOSITORY_INVALID',
          `${t.url}: ${locked.length} of ${batch.length} objects to delete are under S3 Object Lock; first: ${first.key}, ` +
            `${first.until ? `locked until ${first.until.toISOString()}` : ''}${first.legalHold ? `${first.until ? ' and ' : ''}under a legal hold` : ''}; nothing of this batch was deleted`,
          {
            hints: [
              'a locked object cannot be deleted before its retain-until date (compliance mode: by nobody); wait, then run lifeboat expire again',
            ],
          },
        );
      }
      objects = heads.flatMap((h) =>
        h ? [{ Key: t.prefix + h.key, ...(h.versionId ? { VersionId: h.versionId } : {}) }] : [],
      );
      if (objects.length === 0) continue;
    }
    let res;
    try {
      res = await t.client.send(
        new DeleteObjectsCommand({ Bucket: t.bucket, Delete: { Objects: objects, Quiet: true } }),
      );
    } catch (err) {
      throw s3Error(t, 'DELETE', batch[0] ?? '', err);
    }
    const failed = res.Errors ?? [];
    if (failed.length > 0) {
      const first = failed[0];
      if (failed.every((f) => f.Code === 'AccessDenied')) {
        // The identity may not delete here: a policy question, not the store's health.
        const permission = versioned ? 's3:DeleteObjectVersion' : permissionFor('DELETE');
        throw new LifeboatError(
          'PRIVILEGE_MISSING',
          `${t.url}: ${failed.length} of ${objects.length} deletions refused (AccessDenied), first ${first?.Key ?? '?'}: ` +
            `${t.identity.describe} lacks ${permission} on s3://${t.bucket}/${t.prefix}` +
            (failed.length === objects.length ? '; nothing of this batch was deleted' : ''),
          {
            hints: [
              `grant ${permission} to that identity, or run expire with the identity whose policy has it (docs/iam/expire.json); archive and backup identities never delete, on purpose`,
            ],
          },
        );
      }
      throw new LifeboatError(
        'REPOSITORY_UNREACHABLE',
        `${t.url}: ${failed.length} of ${objects.length} deletions failed; first: ${first?.Key ?? '?'}: ${first?.Code ?? ''} ${first?.Message ?? ''}`.trim(),
        {
          hints: [
            versioned
              ? 'check that the credentials may delete object versions in this bucket (s3:DeleteObjectVersion) and read their retention (s3:GetObjectRetention, s3:GetObjectLegalHold)'
              : 'check that the credentials may delete objects in this bucket (s3:DeleteObject)',
          ],
        },
      );
    }
  }
}

/**
 * Whether deletes must name versions: yes unless the bucket is known to be
 * unversioned. A store that will not say (no s3:GetBucketVersioning) gets
 * the careful path: a HEAD per key, which in an unversioned bucket carries
 * no version id and so deletes as before.
 */
export async function deletesByVersion(bucketObjectLock: () => Promise<BucketObjectLock>): Promise<boolean> {
  try {
    return (await bucketObjectLock()).versioning !== 'off';
  } catch (err) {
    if (
      err instanceof LifeboatError &&
      (err.code === 'PRIVILEGE_MISSING' ||
        (err.code === 'REPOSITORY_UNREACHABLE' && /HTTP 403|AccessDenied/.test(err.message)))
    )
      return true;
    throw err;
  }
}

/**
 * The bucket's Object Lock configuration and versioning. Needs
 * s3:GetBucketObjectLockConfiguration and s3:GetBucketVersioning; a store
 * that refuses either fails this.
 */
export async function readBucketLock(t: S3Target): Promise<BucketObjectLock> {
  let versioning: BucketObjectLock['versioning'];
  try {
    const v = await t.client.send(new GetBucketVersioningCommand({ Bucket: t.bucket }));
    versioning = v.Status === 'Enabled' ? 'enabled' : v.Status === 'Suspended' ? 'suspended' : 'off';
  } catch (err) {
    throw s3Error(t, 'GET versioning of', '/', err);
  }
  try {
    const res = await t.client.send(new GetObjectLockConfigurationCommand({ Bucket: t.bucket }));
    const cfg = res.ObjectLockConfiguration;
    const rule = cfg?.Rule?.DefaultRetention;
    const mode = rule?.Mode === 'GOVERNANCE' ? 'governance' : rule?.Mode === 'COMPLIANCE' ? 'compliance' : undefined;
    return {
      enabled: cfg?.ObjectLockEnabled === 'Enabled',
      versioning,
      ...(mode
        ? {
            defaultRetention: {
              mode,
              ...(rule?.Days ? { days: rule.Days } : {}),
              ...(rule?.Years ? { years: rule.Years } : {}),
            },
          }
        : {}),
    };
  } catch (err) {
    const name = (err as { name?: string }).name ?? '';
    if (name === 'ObjectLockConfigurationNotFoundError' || name === 'ObjectLockConfigurationNotFound')
      return { enabled: false, versioning };
    throw s3Error(t, 'GET object lock configuration of', '/', err);
  }
}

/** The keys under `prefix` whose newest version is a delete marker, sorted by key. */
export async function hiddenByDeleteMarkers(t: S3Target, prefix: string): Promise<HiddenObject[]> {
  const out: HiddenObject[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  try {
    do {
      const res = await t.client.send(
        new ListObjectVersionsCommand({
          Bucket: t.bucket,
          Prefix: t.prefix + prefix,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      for (const m of res.DeleteMarkers ?? []) {
        if (!m.IsLatest || !m.Key || !m.VersionId) continue;
        out.push({
          key: m.Key.slice(t.prefix.length),
          markerVersionId: m.VersionId,
          ...(m.LastModified ? { hiddenSince: m.LastModified } : {}),
        });
      }
      const more = res.IsTruncated === true;
      keyMarker = more ? res.NextKeyMarker : undefined;
      versionMarker = more ? res.NextVersionIdMarker : undefined;
    } while (keyMarker);
  } catch (err) {
    throw s3Error(t, 'LIST versions of', prefix || '/', err);
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Sets one version's retention (S3 PutObjectRetention). Never sends
 * x-amz-bypass-governance-retention: an earlier date than the stored one is
 * refused by the store, which is the backstop for a caller that read a
 * stale date (src/catalog/lock-extend.ts reads first and only moves later).
 */
export async function putRetention(
  t: S3Target,
  key: string,
  retention: ObjectLockRetention,
  versionId?: string,
): Promise<void> {
  try {
    await t.client.send(
      new PutObjectRetentionCommand({
        Bucket: t.bucket,
        Key: t.prefix + key,
        ...(versionId ? { VersionId: versionId } : {}),
        Retention: {
          Mode: retention.mode === 'governance' ? 'GOVERNANCE' : 'COMPLIANCE',
          RetainUntilDate: retention.retainUntil,
        },
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name === 'AccessDenied') {
      throw new LifeboatError(
        'PRIVILEGE_MISSING',
        `PUT retention of ${key} in ${t.url} refused (AccessDenied): ${t.identity.describe} lacks s3:PutObjectRetention on s3://${t.bucket}/${t.prefix}`,
        {
          hints: [
            'expire extends the Object Lock of backups the retention tiers keep: grant s3:PutObjectRetention to the expire identity (docs/iam/expire.json)',
            'nothing was deleted before this; run lifeboat expire again once the identity has it',
          ],
          cause: err,
        },
      );
    }
    throw s3Error(t, 'PUT retention of', key, err);
  }
}
