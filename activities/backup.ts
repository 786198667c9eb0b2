// Activities of the baseBackup workflow. `runBaseBackup` runs on the backup
// host's queue (`lifeboat-host-<host>`): it needs that host's disk for staging.
import { takeBaseBackup, type BackupProgress } from '../src/backup/base-backup';
import type { BackupMeta } from '../src/catalog/backup-meta';
import { loadRunbookWithPrimary } from '../src/catalog/primary';
import { loadRunbook } from '../src/runbook/load';
import type { Runbook } from '../src/runbook/schema';
import { asActivityFailure, heartbeat, keepBeating, lifeboatActivity } from './failure';
import { requireLifeboatEngine } from '../src/runbook/engine';

export interface RunbookRef {
  /** Runbook name, looked up in the worker's runbooks directory. */
  runbook: string;
}

/** The parsed runbook, for routing: it holds env var names, never secrets. Run twice: it only reads. */
export async function resolveRunbook(input: RunbookRef): Promise<Runbook> {
  return lifeboatActivity(() => loadRunbook(input.runbook));
}

/**
 * pg_basebackup into the repository. Run twice: each attempt stages and
 * uploads under a new backup id, and backup.json, written last, is what
 * makes a backup exist, so a dead attempt leaves no backup, only objects
 * without a backup.json, which no restore chooses.
 */
export async function runBaseBackup(input: RunbookRef): Promise<BackupMeta> {
  const stop = keepBeating();
  try {
    // The primary a side-by-side recovery re-pointed the cluster to, if any (src/catalog/primary.ts).
    const { runbook } = await loadRunbookWithPrimary(input.runbook);
    requireLifeboatEngine(runbook, 'baseBackup');
    return await takeBaseBackup({
      runbook,
      onProgress: (p: BackupProgress) => heartbeat(p),
    });
  } catch (err) {
    throw asActivityFailure(err);
  } finally {
    stop();
  }
}
