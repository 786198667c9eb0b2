// Which repository a restore reads its base backup from (runbook
// `repositories:`): the first that answers and holds the backup with its
// backup.json, in runbook order. One that is unreachable or lacks the
// backup is passed over, and the result says so (RestoreResult.repository).
//
// A repository that held the backup but failed during extraction (a part
// whose bytes do not match backup.json's sha256, one that cannot be
// decompressed or is gone, a download that broke) is passed over too:
// restore.ts moves what was extracted from it aside (kept, never deleted)
// and extracts the same backup again from the next repository that holds
// it: the same backup id and the same backup_manifest sha256, so the copy
// is byte for byte the one the first would have given.
import type { BackupMeta } from '../catalog/backup-meta';
import { errorMessage, isLifeboatError, withContext } from '../errors';
import { closeRepositories, openEntry, repositoryLabel, type OpenedRepository } from '../repository/multi';
import type { Repository } from '../repository/types';
import type { Runbook } from '../runbook/schema';
import { findBackup } from './extract';

export interface SkippedRepository {
  name: string;
  url: string;
  reason: string;
  /** Where what was extracted from it before it failed went (moved aside, never deleted). */
  partial?: string;
}

export interface BackupSource {
  repo: Repository;
  meta: BackupMeta;
  /** Position of the serving repository in the runbook's list, from 0. */
  index: number;
  /** Set when a repository other than the first serves the backup. */
  fallback?: { name: string; url: string; skipped: SkippedRepository[] };
}

export async function findBackupInRepositories(
  runbook: Runbook,
  cluster: string,
  backupId: string,
  /** After a failed extraction: look from `from` on, for a backup with the same manifest, adding to `skipped`. */
  after?: { from: number; sameAs: BackupMeta; skipped: SkippedRepository[] },
): Promise<BackupSource> {
  const skipped: SkippedRepository[] = [...(after?.skipped ?? [])];
  let firstError: unknown;
  for (const [i, entry] of runbook.repositories.entries()) {
    if (i < (after?.from ?? 0)) continue;
    let opened: OpenedRepository | undefined;
    try {
      opened = await openEntry(entry, i, 'restore');
      const meta = await findBackup(opened.repo, cluster, backupId, runbook.name);
      if (after && meta.manifestSha256 !== after.sameAs.manifestSha256) {
        throw new Error(
          `its backup ${backupId} has another backup_manifest (sha256 ${meta.manifestSha256}, not ${after.sameAs.manifestSha256})`,
        );
      }
      return {
        repo: opened.repo,
        meta,
        index: i,
        ...(i > 0 ? { fallback: { name: entry.name, url: entry.url, skipped } } : {}),
      };
    } catch (err) {
      if (opened) closeRepositories([opened]);
      firstError ??= err;
      skipped.push({ name: entry.name, url: entry.url, reason: errorMessage(err).split('\n', 1)[0] ?? '' });
    }
  }
  if (runbook.repositories.length === 1 || firstError === undefined)
    throw firstError ?? new Error(`no repository after ${after?.from ?? 0}`);
  throw withContext(
    `no repository holds backup ${backupId} (${skipped.map((s) => `${repositoryLabel(s)}: ${s.reason}`).join('; ')})`,
    firstError,
  );
}

/**
 * What an extraction failure says about the repository it read: damaged
 * (a part that fails its sha256 or its authentication tag, cannot be
 * decompressed, or is missing), unreachable, or not readable with its own
 * keys or identity, so that the next repository may serve the backup. Not a
 * full disk, a missing tool or a cancellation: those would fail there too.
 */
const AT_FAULT = new Set<string>([
  'BACKUP_VERIFY_FAILED',
  'BACKUP_NOT_FOUND',
  'REPOSITORY_UNREACHABLE',
  'ENCRYPTED_OBJECT_DAMAGED',
  'ENCRYPTION_KEY_MISMATCH',
  'SECRET_MISSING',
  'PRIVILEGE_MISSING',
]);

export function repositoryAtFault(err: unknown): boolean {
  return isLifeboatError(err) && AT_FAULT.has(err.code);
}

/**
 * The next repository (after `failed`) holding the same backup, after an
 * extraction from `failed` failed with `err`; undefined when there is none
 * (the caller then fails with `err`, as with one repository). Its
 * fallback.skipped ends with `failed` and why; the caller adds where the
 * partial copy went (partial).
 */
export async function nextBackupSource(
  runbook: Runbook,
  cluster: string,
  failed: BackupSource,
  err: unknown,
): Promise<BackupSource | undefined> {
  if (!repositoryAtFault(err) || failed.index + 1 >= runbook.repositories.length) return undefined;
  const entry = runbook.repositories[failed.index]!;
  const skipped: SkippedRepository[] = [
    ...(failed.fallback?.skipped ?? []),
    {
      name: entry.name,
      url: entry.url,
      reason: `extracting backup ${failed.meta.backupId} failed: ${errorMessage(err).split('\n', 1)[0] ?? ''}`,
    },
  ];
  try {
    return await findBackupInRepositories(runbook, cluster, failed.meta.backupId, {
      from: failed.index + 1,
      sameAs: failed.meta,
      skipped,
    });
  } catch {
    return undefined;
  } finally {
    closeRepositories([failed]);
  }
}
