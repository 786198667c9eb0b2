// baseBackup({ runbook, expire? }): a verified base backup of the runbook's
// primary, staged on the backup host (its own task queue) and stored in the
// repository with backup_manifest and backup.json (shared/DESIGN.md §4).
//
// A scheduled backup (`lifeboat backup --schedule`) sets `expire`: retention
// then runs as the child workflow expireBackups once the new backup is
// verified, never before (expiry keeps the newest verified backups, so it
// must see the new one). A failed backup posts `backup-failed` to the
// runbook's webhook and then fails with its own error: nobody watches a
// schedule at 3 a.m.
import { ApplicationFailure, executeChild, log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type * as backupActivities from '../activities/backup';
import type * as notifyActivities from '../activities/notify';
import type { BaseBackupMeta } from '../activities/backup';
import type { EngineBackupMeta } from '../src/backup/engine-backup';
import type { BackupMeta } from '../src/catalog/backup-meta';
import { isErrorCode, type ErrorCode } from '../src/errors';
import { backupHost, hostQueue } from '../src/runbook/schema';
import type { ExpireBackupsResult } from './expire-backups';
import { bounded, tries } from './activity-options';
import { parseWorkflowInput } from './input';

export const BaseBackupInput = z.strictObject({
  runbook: z
    .string({ error: 'expected the runbook name, e.g. "orders"' })
    .min(1, { error: 'expected the runbook name' }),
  /** Run expireBackups after the backup is verified (set by the backup schedule). */
  expire: z.boolean({ error: 'expected true or false' }).optional(),
  /** full (the default), diff or incr: diff and incr on a pgBackRest runbook only (src/backup/engine-backup.ts). */
  type: z.enum(['full', 'diff', 'incr'], { error: 'expected full, diff or incr' }).optional(),
});
export type BaseBackupInput = z.infer<typeof BaseBackupInput>;

/** The stored backup's metadata; with `expire`, also what retention did. */
export type BaseBackupResult = BackupMeta & { engine?: 'lifeboat'; expiry?: BaseBackupExpiry };

/** On a pgBackRest runbook: pgBackRest's description of the new backup; with `expire`, what its retention did. */
export type EngineBaseBackupResult = EngineBackupMeta & { expiry?: BaseBackupExpiry };

export type BaseBackupExpiry =
  | {
      workflowId: string;
      /** The first repository's (runbook repositories:: see `repositories`). */
      deletedBackups: string[];
      walDeletedCount: number;
      /** Runbook `repositories:`: each repository, in order; `error` when it could not be expired. */
      repositories?: Array<{ name: string; deletedBackups: string[]; walDeletedCount: number; error?: string }>;
    }
  | { workflowId: string; failed: string };

// Every activity heartbeats while it runs (./activity-options.ts).
const { resolveRunbook } = proxyActivities<typeof backupActivities>(bounded('1 minute', tries(5)));

// A few tries only: a webhook that is down must not hold the backup's own
// failure back for long, and its failure is logged, never thrown.
const { notify } = proxyActivities<typeof notifyActivities>(bounded('30 seconds', tries(3, '2 seconds')));

export async function baseBackup(input: BaseBackupInput): Promise<BaseBackupResult | EngineBaseBackupResult> {
  const { runbook: name, expire = false, type } = parseWorkflowInput(BaseBackupInput, input, 'baseBackup');
  const runbook = await resolveRunbook({ runbook: name });
  const host = backupHost(runbook);
  const { workflowId, runId } = workflowInfo();

  // pg_basebackup can run for hours on a large cluster; the heartbeat
  // (progress in bytes) is what tells a dead worker from a slow copy.
  const { runBaseBackup } = proxyActivities<typeof backupActivities>(
    bounded('12 hours', tries(3, '30 seconds'), {
      taskQueue: hostQueue(host),
      heartbeatTimeout: '30 seconds',
      scheduleToStartTimeout: '1 hour',
    }),
  );
  log.info('base backup starting', { runbook: name, host, workflowId });
  let meta: BaseBackupMeta;
  try {
    // Inputs from before `type` carry none: the same activity input as then.
    meta = await runBaseBackup({ runbook: name, ...(type !== undefined ? { type } : {}) });
  } catch (err) {
    await notifyBackupFailed(name, workflowId, runId, host, err);
    throw err;
  }
  log.info('base backup stored', { backupId: meta.backupId, storedBytes: meta.storedBytes });
  if (!expire) return meta;

  // The backup stands whatever retention does: an expiry failure is reported
  // in the result (and the child's own history), not as a failed backup.
  const expireId = `${workflowId}-expire`;
  try {
    const result = await executeChild<(i: { runbook: string }) => Promise<ExpireBackupsResult>>('expireBackups', {
      workflowId: expireId,
      args: [{ runbook: name }],
    });
    return {
      ...meta,
      expiry: {
        workflowId: expireId,
        deletedBackups: result.applied?.deletedBackups.map((b) => b.backupId) ?? [],
        walDeletedCount: result.applied?.walDeletedCount ?? 0,
        ...(result.plan.repositories
          ? {
              repositories: result.plan.repositories.map((p) => {
                const a = result.applied?.repositories?.find((x) => x.name === p.name);
                const error = a?.error ?? p.error;
                return {
                  name: p.name,
                  deletedBackups: a?.applied?.deletedBackups.map((b) => b.backupId) ?? [],
                  walDeletedCount: a?.applied?.walDeletedCount ?? 0,
                  ...(error !== undefined ? { error } : {}),
                };
              }),
            }
          : {}),
      },
    };
  } catch (err) {
    log.warn('expiry after the backup failed', { expireId, error: messageOf(err) });
    return { ...meta, expiry: { workflowId: expireId, failed: messageOf(err) } };
  }
}

async function notifyBackupFailed(
  runbook: string,
  workflowId: string,
  runId: string,
  host: string,
  err: unknown,
): Promise<void> {
  const type = typeOf(err);
  try {
    const sent = await notify({
      runbook,
      event: {
        kind: 'backup-failed',
        workflowId,
        runId,
        text: `Lifeboat: base backup of ${runbook} failed on host ${host} (${type}): ${firstLine(messageOf(err))}`,
        details: { type, host },
      },
    });
    log.info('backup-failed notification', { delivered: sent.delivered, detail: sent.detail });
  } catch (notifyErr) {
    // The backup's own error is what the operator must see; the notifier's is logged.
    log.warn('backup-failed notification could not be delivered', { error: messageOf(notifyErr) });
  }
}

/** The failure type of the innermost ApplicationFailure (an activity failure wraps it). */
function typeOf(err: unknown): ErrorCode {
  let e: unknown = err;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && isErrorCode(e.type)) return e.type;
    e = e.cause;
  }
  return 'UNEXPECTED';
}

function messageOf(err: unknown): string {
  let e: unknown = err;
  // ActivityFailure's own message is "Activity task failed"; the cause says why.
  while (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure)) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
