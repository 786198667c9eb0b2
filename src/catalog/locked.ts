// Expiry and S3 Object Lock: which of the objects retention would delete are
// still locked, so that `expire` leaves them, says until when, and never
// half-deletes a backup (src/repository/object-lock.ts has the background).
//
// - A backup with any locked object is kept whole: deleting its unlocked
//   backup.json would leave locked parts nobody can restore from.
// - WAL files are held one by one: each is its own object, locked from its
//   own upload.
// Nothing is read when the bucket has no Object Lock configuration: no
// object in it can carry a retention date (S3 refuses one there).
import { withContext } from '../errors';
import { keys } from '../repository/layout';
import { lockedUntil, mapLimit } from '../repository/object-lock';
import type { ObjectInfo, Repository } from '../repository/types';

export interface LockedBackup {
  backupId: string;
  /** Its objects under a lock now. */
  lockedObjects: number;
  /** The latest retain-until date among them (ISO 8601): deletable after it. */
  until?: string;
  /** Some object is under a legal hold: deletable only once it is lifted. */
  legalHold: boolean;
}

export interface LockedWal {
  count: number;
  first: string;
  last: string;
  /** Earliest and latest retain-until dates among them (ISO 8601). */
  earliestUntil?: string;
  latestUntil?: string;
  legalHolds: number;
}

export interface LockedReport {
  /** Whether object locks were read: false when the bucket has no Object Lock (nothing can be locked) or for file://. */
  checked: boolean;
  backups: LockedBackup[];
  wal?: LockedWal;
}

/** HEADs at once: small enough not to crowd a store, big enough for a day of WAL in seconds. */
const CONCURRENCY = 16;

/**
 * Splits what retention would delete into what may go now and what is
 * locked. `now` decides which retention dates have passed.
 */
export async function holdLocked<F extends { name: string; keys: string[] }>(
  repo: Repository,
  cluster: string,
  backupIds: readonly string[],
  walFiles: readonly F[],
  now: Date,
): Promise<{ backups: string[]; walFiles: F[]; locked: LockedReport }> {
  if (!(await mayHoldLocks(repo)))
    return { backups: [...backupIds], walFiles: [...walFiles], locked: { checked: false, backups: [] } };
  try {
    const backups: string[] = [];
    const lockedBackups: LockedBackup[] = [];
    for (const backupId of backupIds) {
      const objects = await repo.list(keys.backupPrefix(cluster, backupId));
      const locks = (await mapLimit(objects, CONCURRENCY, (o) => headLock(repo, o.key, now))).flatMap((l) =>
        l ? [l] : [],
      );
      if (locks.length === 0) {
        backups.push(backupId);
        continue;
      }
      const until = latest(locks.map((l) => l.until));
      lockedBackups.push({
        backupId,
        lockedObjects: locks.length,
        ...(until ? { until } : {}),
        legalHold: locks.some((l) => l.legalHold),
      });
    }

    const locks = await mapLimit(walFiles, CONCURRENCY, async (f) => {
      const each = (await Promise.all(f.keys.map((k) => headLock(repo, k, now)))).flatMap((l) => (l ? [l] : []));
      return each.length > 0
        ? { until: latest(each.map((l) => l.until)), legalHold: each.some((l) => l.legalHold) }
        : undefined;
    });
    const free = walFiles.filter((_, i) => !locks[i]);
    const held = walFiles.flatMap((f, i) => (locks[i] ? [{ f, l: locks[i] }] : []));
    const untils = held.flatMap((h) => (h.l.until ? [h.l.until] : [])).sort();
    const wal: LockedWal | undefined =
      held.length > 0
        ? {
            count: held.length,
            first: held[0]!.f.name,
            last: held[held.length - 1]!.f.name,
            ...(untils.length > 0 ? { earliestUntil: untils[0]!, latestUntil: untils[untils.length - 1]! } : {}),
            legalHolds: held.filter((h) => h.l.legalHold).length,
          }
        : undefined;
    return { backups, walFiles: free, locked: { checked: true, backups: lockedBackups, ...(wal ? { wal } : {}) } };
  } catch (err) {
    throw withContext(`while reading the Object Lock retention of the objects expiry would delete in ${repo.url}`, err);
  }
}

/** Why a locked backup stays, in the words `expire` prints. */
export function lockedBackupReason(b: LockedBackup): string {
  const when = [b.until ? `until ${b.until}` : '', b.legalHold ? 'under a legal hold' : '']
    .filter(Boolean)
    .join(' and ');
  return `${b.lockedObjects} object${b.lockedObjects === 1 ? '' : 's'} locked (S3 Object Lock) ${when}; deletable after ${b.legalHold ? 'the legal hold is lifted' : b.until}`;
}

/** The line `expire` prints for the WAL it leaves because of locks, if any. */
export function lockedWalLine(locked: LockedReport | undefined): string | undefined {
  const w = locked?.wal;
  if (!w) return undefined;
  const span =
    w.earliestUntil && w.latestUntil
      ? w.earliestUntil === w.latestUntil
        ? ` until ${w.latestUntil}`
        : ` until ${w.earliestUntil} .. ${w.latestUntil}`
      : '';
  return (
    `WAL kept because locked (S3 Object Lock): ${w.count} file${w.count === 1 ? '' : 's'}, ${w.first} .. ${w.last}, locked${span}` +
    `${w.legalHolds > 0 ? ` (${w.legalHolds} under a legal hold)` : ''}; deletable after ${w.latestUntil ?? 'the legal holds are lifted'}`
  );
}

/**
 * Whether any object here can be locked. A repository that does not say
 * (a decorator that hides the method) is asked object by object when it is
 * s3://; a bucket that refuses to tell (no s3:GetBucketObjectLockConfiguration)
 * too: careful, never wrong.
 */
async function mayHoldLocks(repo: Repository): Promise<boolean> {
  if (!repo.bucketObjectLock) return repo.url.startsWith('s3://');
  try {
    return (await repo.bucketObjectLock()).enabled;
  } catch {
    return true;
  }
}

async function headLock(
  repo: Repository,
  key: string,
  now: Date,
): Promise<{ until?: string; legalHold: boolean } | undefined> {
  const info: ObjectInfo | undefined = await repo.head(key);
  const l = info ? lockedUntil(info, now) : undefined;
  return l ? { legalHold: l.legalHold, ...(l.until ? { until: l.until.toISOString() } : {}) } : undefined;
}

function latest(dates: readonly (string | undefined)[]): string | undefined {
  return dates
    .filter((d): d is string => d !== undefined)
    .sort()
    .at(-1);
}
