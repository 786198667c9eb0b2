// baseBackup({ runbook }): a verified base backup of the runbook's primary,
// staged on the backup host (its own task queue) and stored in the
// repository with backup_manifest and backup.json (shared/DESIGN.md §4).
import { proxyActivities, workflowInfo, log } from '@temporalio/workflow';
import { z } from 'zod';
import type * as backupActivities from '../activities/backup';
import type { BackupMeta } from '../src/catalog/backup-meta';
import { backupHost, hostQueue } from '../src/runbook/schema';
import { parseWorkflowInput } from './input';

export const BaseBackupInput = z.strictObject({
  runbook: z.string({ error: 'expected the runbook name, e.g. "orders"' }).min(1, { error: 'expected the runbook name' }),
});
export type BaseBackupInput = z.infer<typeof BaseBackupInput>;

const { resolveRunbook } = proxyActivities<typeof backupActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

export async function baseBackup(input: BaseBackupInput): Promise<BackupMeta> {
  const { runbook: name } = parseWorkflowInput(BaseBackupInput, input, 'baseBackup');
  const runbook = await resolveRunbook({ runbook: name });
  const host = backupHost(runbook);

  // pg_basebackup can run for hours on a large cluster; the heartbeat
  // (progress in bytes) is what tells a dead worker from a slow copy.
  const { runBaseBackup } = proxyActivities<typeof backupActivities>({
    taskQueue: hostQueue(host),
    startToCloseTimeout: '12 hours',
    heartbeatTimeout: '2 minutes',
    scheduleToStartTimeout: '1 hour',
    retry: { maximumAttempts: 3, initialInterval: '30 seconds' },
  });
  log.info('base backup starting', { runbook: name, host, workflowId: workflowInfo().workflowId });
  const meta = await runBaseBackup({ runbook: name });
  log.info('base backup stored', { backupId: meta.backupId, storedBytes: meta.storedBytes });
  return meta;
}
