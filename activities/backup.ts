// Activities of the baseBackup workflow. `runBaseBackup` runs on the backup
// host's queue (`lifeboat-host-<host>`): it needs that host's disk for staging.
// On a pgBackRest runbook it runs pgbackrest backup there instead
// (src/backup/engine-backup.ts): full, diff or incr.
import { takeBaseBackup, type BackupProgress } from '../src/backup/base-backup';
import type { BackupMeta } from '../src/catalog/backup-meta';
import { loadRunbookWithPrimary } from '../src/catalog/primary';
import { loadRunbook } from '../src/runbook/load';
import type { Runbook } from '../src/runbook/schema';
import { asActivityFailure, heartbeat, keepBeating, lifeboatActivity } from './failure';
import { requireBackupType, takeEngineBackup, type EngineBackupMeta } from '../src/backup/engine-backup';
import { engineSetting } from '../src/runbook/engine';
import { Context } from '@temporalio/activity';

export interface RunbookRef {
  /** Runbook name, looked up in the worker's runbooks directory. */
  runbook: string;
}

/** The parsed runbook, for routing: it holds env var names, never secrets. Run twice: it only reads. */
export async function resolveRunbook(input: RunbookRef): Promise<Runbook> {
  return lifeboatActivity(() => loadRunbook(input.runbook));
}

export interface BaseBackupRequest extends RunbookRef {
  /** full (the default), diff or incr; only full on Lifeboat's own engine. */
  type?: string;
}

/** Lifeboat's own backup.json, or pgBackRest's new backup; either names its engine. */
export type BaseBackupMeta = (BackupMeta & { engine?: 'lifeboat' }) | EngineBackupMeta;

/**
 * pg_basebackup into the repository, or pgbackrest backup on a pgBackRest runbook. Run twice: each attempt stages and
 * uploads under a new backup id, and backup.json, written last, is what
 * makes a backup exist, so a dead attempt leaves no backup, only objects
 * without a backup.json, which no restore chooses. pgBackRest: a retry
 * runs backup again (pgBackRest resumes an aborted backup or starts anew;
 * its info lists only what completed).
 */
export async function runBaseBackup(input: BaseBackupRequest): Promise<BaseBackupMeta> {
  const stop = keepBeating();
  try {
    // The primary a side-by-side recovery re-pointed the cluster to, if any (src/catalog/primary.ts).
    const { runbook } = await loadRunbookWithPrimary(input.runbook);
    const type = requireBackupType(runbook, input.type);
    if (engineSetting(runbook).kind === 'pgbackrest')
      return await takeEngineBackup(runbook, {
        type,
        onProgress: (p) => heartbeat(p),
        ...(signal() ? { signal: signal()! } : {}),
      });
    const meta = await takeBaseBackup({
      runbook,
      onProgress: (p: BackupProgress) => heartbeat(p),
    });
    return { ...meta, engine: 'lifeboat' as const };
  } catch (err) {
    throw asActivityFailure(err);
  } finally {
    stop();
  }
}

/** The activity's cancellation signal; none outside an activity (tests calling it directly). */
function signal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
