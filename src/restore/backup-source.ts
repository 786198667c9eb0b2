// Which repository a restore reads its base backup from (runbook
// `repositories:`): the first that answers and holds the backup with its
// backup.json, in runbook order. One that is unreachable or lacks the
// backup is passed over, and the result says so (RestoreResult.repository).
import type { BackupMeta } from '../catalog/backup-meta';
import { errorMessage, withContext } from '../errors';
import { closeRepositories, openEntry, repositoryLabel, type OpenedRepository } from '../repository/multi';
import type { Repository } from '../repository/types';
import type { Runbook } from '../runbook/schema';
import { findBackup } from './extract';

export interface BackupSource {
  repo: Repository;
  meta: BackupMeta;
  /** Set when a repository other than the first serves the backup. */
  fallback?: { name: string; url: string; skipped: Array<{ name: string; url: string; reason: string }> };
}

export async function findBackupInRepositories(runbook: Runbook, cluster: string, backupId: string): Promise<BackupSource> {
  const skipped: Array<{ name: string; url: string; reason: string }> = [];
  let firstError: unknown;
  for (const [i, entry] of runbook.repositories.entries()) {
    let opened: OpenedRepository | undefined;
    try {
      opened = await openEntry(entry, i, 'restore');
      const meta = await findBackup(opened.repo, cluster, backupId, runbook.name);
      return { repo: opened.repo, meta, ...(i > 0 ? { fallback: { name: entry.name, url: entry.url, skipped } } : {}) };
    } catch (err) {
      if (opened) closeRepositories([opened]);
      firstError ??= err;
      skipped.push({ name: entry.name, url: entry.url, reason: errorMessage(err).split('\n', 1)[0] ?? '' });
    }
  }
  if (runbook.repositories.length === 1) throw firstError;
  throw withContext(`no repository holds backup ${backupId} (${skipped.map((s) => `${repositoryLabel(s)}: ${s.reason}`).join('; ')})`, firstError);
}
