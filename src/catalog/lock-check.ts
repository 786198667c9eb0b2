// `lifeboat check` for S3 Object Lock and server-side encryption: is the
// bucket able to lock at all, and were the objects that matter written as
// the runbook says? A sample, not the whole archive: the newest verified
// backup's objects and the newest WAL files (what a recovery needs first,
// and what archive-push wrote since the setting changed).
//
// An object without its lock is a finding, not an accident to shrug at: it
// means archive-push or a backup ran without the runbook's repository
// settings (--repo instead of --runbook, an old binary) or against another
// bucket, and such an object can be deleted by anyone with s3:DeleteObject.
import type { RepositoryEnvOptions } from '../repository/index';
import { keys } from '../repository/layout';
import { lockDaysFor, lockKindOfKey, mapLimit, sameKmsKey } from '../repository/object-lock';
import type { ObjectInfo, Repository } from '../repository/types';
import { walFileKind } from '../wal/names';
import type { HealthProblem } from './chain';

/** Newest WAL files HEADed. */
export const WAL_SAMPLE = 16;
/** Clock skew between the writer and the store we forgive, in ms. */
const SKEW_MS = 10 * 60_000;
const DAY_MS = 86_400_000;

export interface LockCheck {
  /** What was sampled, for the report line. */
  line: string;
  problems: HealthProblem[];
}

/**
 * Reads the bucket's lock configuration and HEADs the sample; undefined when
 * the runbook asks for neither Object Lock nor server-side encryption.
 */
export async function checkLocksAndEncryption(
  repo: Repository,
  settings: Pick<RepositoryEnvOptions, 'objectLock' | 'serverSide' | 'runbookField'>,
  sample: LockSample,
  now: Date,
): Promise<LockCheck | undefined> {
  const { objectLock, serverSide } = settings;
  const field = settings.runbookField ?? 'repository';
  if (!objectLock && !serverSide) return undefined;
  const problems: HealthProblem[] = [];
  const parts: string[] = [];

  if (objectLock) {
    if (!repo.bucketObjectLock) {
      problems.push({
        kind: 'object-lock-unknown',
        message: `${repo.url}: the runbook sets ${field}.objectLock, but this repository cannot report Object Lock`,
        hints: ['objectLock needs an s3:// repository'],
      });
    } else {
      try {
        const b = await repo.bucketObjectLock();
        if (!b.enabled) {
          problems.push({
            kind: 'object-lock-missing',
            message: `${repo.url}: the bucket has no Object Lock configuration, but the runbook sets ${field}.objectLock (${objectLock.mode}, ${objectLock.days} days): nothing in it can be locked, and every write with a lock fails`,
            hints: [
              'Object Lock is chosen when a bucket is created: create one with it (aws s3api create-bucket --object-lock-enabled-for-bucket; MinIO: mc mb --with-lock) and move the repository there',
            ],
          });
        } else {
          parts.push(
            `bucket Object Lock enabled${b.defaultRetention ? ` (default retention ${b.defaultRetention.mode} ${b.defaultRetention.days ?? 0} days ${b.defaultRetention.years ?? 0} years)` : ''}`,
          );
        }
      } catch (err) {
        problems.push({
          kind: 'object-lock-unknown',
          message: `${repo.url}: could not read the bucket's Object Lock configuration: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`,
          hints: ['the identity running check needs s3:GetBucketObjectLockConfiguration and s3:GetBucketVersioning'],
        });
      }
    }
  }

  if (objectLock && repo.hiddenByDeleteMarkers)
    problems.push(...(await deleteMarkerProblems(repo, repo.hiddenByDeleteMarkers.bind(repo), sample.prefix)));
  const heads = await mapLimit(sample.keys, 16, (k) => repo.head(k));
  const seen = heads.filter((h): h is ObjectInfo => h !== undefined);
  parts.push(
    `${seen.length} object${seen.length === 1 ? '' : 's'} sampled (newest backup, newest ${WAL_SAMPLE} WAL files)`,
  );

  if (objectLock) {
    const unlocked: string[] = [];
    const short: string[] = [];
    for (const o of seen) {
      const kind = lockKindOfKey(o.key);
      if (!kind) continue;
      if (!o.lock) {
        unlocked.push(o.key);
        continue;
      }
      const written = o.lastModified?.getTime() ?? now.getTime();
      const expected = written + lockDaysFor(objectLock, kind) * DAY_MS - SKEW_MS;
      if (o.lock.mode !== objectLock.mode || o.lock.retainUntil.getTime() < expected)
        short.push(`${o.key} (${o.lock.mode} until ${o.lock.retainUntil.toISOString()})`);
    }
    if (unlocked.length > 0) {
      problems.push({
        kind: 'object-not-locked',
        message: `${repo.url}: ${unlocked.length} of ${seen.length} sampled objects carry no Object Lock retention; first: ${unlocked.slice(0, 3).join(', ')}`,
        hints: [
          "were they written with the runbook's settings? archive_command must be lifeboat archive-push --runbook <name> (not --repo), and backups run by a worker with this runbook",
          `objects written before ${field}.objectLock was set stay unlocked: take a new base backup; the identity running check also needs s3:GetObjectRetention to see locks`,
        ],
      });
    }
    if (short.length > 0) {
      problems.push({
        kind: 'object-lock-short',
        message: `${repo.url}: ${short.length} sampled object${short.length === 1 ? '' : 's'} locked in another mode or for less than the runbook's ${objectLock.mode} ${objectLock.days} days (WAL ${objectLock.walDays ?? objectLock.days}); first: ${short[0]}`,
        hints: [
          'objects keep the retention they were written with: they were written under an older setting, or by another writer',
        ],
      });
    }
  }

  if (serverSide) {
    const wrong = seen.filter(
      (o) =>
        !o.serverSide ||
        o.serverSide.mode !== serverSide.mode ||
        (serverSide.mode === 'SSE-KMS' && !sameKmsKey(o.serverSide.kmsKeyId, serverSide.kmsKeyId)),
    );
    if (wrong.length > 0) {
      const w = wrong[0]!;
      const found = w.serverSide
        ? `${w.serverSide.mode}${w.serverSide.kmsKeyId ? ` with key ${w.serverSide.kmsKeyId}` : ''}`
        : 'no server-side encryption';
      problems.push({
        kind: 'object-not-encrypted',
        message: `${repo.url}: ${wrong.length} of ${seen.length} sampled objects are not stored with the runbook's ${serverSide.mode}${serverSide.mode === 'SSE-KMS' ? ` (key ${serverSide.kmsKeyId})` : ''}; first: ${w.key}: ${found}`,
        hints: [
          'objects keep the encryption they were written with: were they written by archive-push --runbook and backups with this runbook? new writes use the setting',
        ],
      });
    } else {
      parts.push(`all stored with ${serverSide.mode}`);
    }
  }
  return { line: `object lock and encryption: ${parts.join('; ')}`, problems };
}

export interface LockSample {
  /** Objects HEADed: every object of the newest verified backup, and the newest WAL segments. */
  keys: string[];
  /** The cluster's prefix, searched for delete markers. */
  prefix: string;
}

/** What check samples for one cluster. */
export async function lockSampleKeys(
  repo: Repository,
  cluster: string,
  newestBackupId: string | undefined,
  walFiles: readonly { name: string; keys: string[] }[],
): Promise<LockSample> {
  const backup = newestBackupId ? (await repo.list(keys.backupPrefix(cluster, newestBackupId))).map((o) => o.key) : [];
  const wal = walFiles
    .filter((f) => walFileKind(f.name) === 'segment')
    .slice(-WAL_SAMPLE)
    .flatMap((f) => f.keys);
  return { keys: [...backup, ...wal], prefix: keys.clusterPrefix(cluster) };
}

/**
 * A delete marker over one of our objects: somebody deleted it without a
 * version id (Lifeboat never does), so archive-get, restores and expiry no
 * longer see it, while its versions, the locked ones for sure, are still
 * stored. That is an incident to look into, and one that is easy to undo.
 */
async function deleteMarkerProblems(
  repo: Repository,
  hidden: NonNullable<Repository['hiddenByDeleteMarkers']>,
  prefix: string,
): Promise<HealthProblem[]> {
  const found = await hidden(prefix);
  if (found.length === 0) return [];
  const first = found[0]!;
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(repo.url);
  const bucket = m?.[1] ?? '<bucket>';
  const base = m?.[2] ? `${m[2]}/` : '';
  return [
    {
      kind: 'object-hidden',
      message:
        `${repo.url}: ${found.length} object${found.length === 1 ? ' is' : 's are'} hidden by a delete marker (deleted without a version id: LIST, HEAD and GET no longer see ` +
        `${found.length === 1 ? 'it' : 'them'}, every version is still stored); first: ${first.key}${first.hiddenSince ? ` since ${first.hiddenSince.toISOString()}` : ''}`,
      hints: [
        `bring it back by deleting the marker: aws s3api delete-object --bucket ${bucket} --key ${base}${first.key} --version-id ${first.markerVersionId}`,
        'then find out who deleted it: Lifeboat deletes only by version id (expire); no archive or backup identity should hold s3:DeleteObject',
      ],
    },
  ];
}
