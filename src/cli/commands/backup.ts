// `lifeboat backup --runbook <name>`: start `baseBackup` and wait for the verified backup;
// with --schedule, create or update the runbook's backup schedule
// (lifeboat-backup-<runbook>), whose runs also apply retention (expire).
// --type full|diff|incr: diff and incr on a pgBackRest runbook only
// (src/backup/engine-backup.ts); there the backup is pgbackrest backup.
import { reportPrimaryOverlay } from '../../catalog/primary';
import { requireRunbook, temporalTarget, type RepoOptions, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { TASK_QUEUE } from '../../runbook/schema';
import { connectClient, timestampedId } from '../../client/temporal';
import { formatBytes } from '../format';
import type { BackupProgress } from '../../backup/base-backup';
import { requireBackupType, type EngineBackupProgress } from '../../backup/engine-backup';
import type { BaseBackupResult, EngineBaseBackupResult } from '../../../workflows/base-backup';
import { scheduleCommand } from '../schedules-view';
import { parseCron } from '../../schedules/cron';

export async function run(
  opts: RepoOptions & TemporalOptions & { wait?: boolean; json?: boolean; schedule?: string; type?: string },
): Promise<number> {
  // A bad cron is a usage error naming --schedule, before the runbook is even read.
  if (opts.schedule !== undefined) parseCron(opts.schedule, '--schedule');
  const runbook = await requireRunbook(opts, 'backup');
  // diff and incr only where the engine takes them: refused before anything starts.
  const type = requireBackupType(runbook, opts.type);
  // After a side-by-side recovery the backup copies the re-pointed primary: say so.
  await reportPrimaryOverlay(runbook);
  if (opts.schedule !== undefined) {
    // Scheduled backups expire old ones after each verified backup: nobody runs lifeboat expire by hand at 3 a.m.
    return scheduleCommand({ ...opts, schedule: opts.schedule }, 'backup', runbook.name, {
      runbook: runbook.name,
      expire: true,
      ...(opts.type !== undefined ? { type } : {}),
    });
  }
  const temporal = await temporalTarget(opts);
  const client = await connectClient(temporal);
  const workflowId = timestampedId(`backup-${runbook.name}`);
  const handle = await client.workflow.start('baseBackup', {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ runbook: runbook.name, ...(opts.type !== undefined ? { type } : {}) }],
  });
  process.stderr.write(
    `started baseBackup ${workflowId} (runbook ${runbook.name}${opts.type !== undefined ? `, type ${type}` : ''})\n`,
  );
  if (opts.wait === false) {
    if (opts.json) printJson({ workflowId, runId: handle.firstExecutionRunId });
    else process.stdout.write(`${workflowId}\n`);
    return 0;
  }
  let last = '';
  const timer = setInterval(() => {
    void handle
      .describe()
      .then((d) => {
        const details = d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0]?.data;
        if (!details) return;
        const p = JSON.parse(Buffer.from(details).toString()) as BackupProgress | EngineBackupProgress;
        const line =
          p.phase === 'pgbackrest'
            ? `  ${p.text}`
            : `  ${p.phase}: ${formatBytes(p.bytesDone)}${p.bytesTotal ? ` of ${formatBytes(p.bytesTotal)}` : ''}`;
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
      })
      .catch(() => undefined);
  }, 3000);
  try {
    const meta = (await handle.result()) as BaseBackupResult | EngineBaseBackupResult;
    if (opts.json) printJson({ workflowId, backup: meta });
    else if (meta.engine === 'pgbackrest') {
      process.stdout.write(
        `backup ${meta.backupId} (${meta.type}${meta.prior ? ` on ${meta.prior}` : ''}) of ${meta.cluster} taken by pgBackRest in ${meta.source}: ` +
          `${formatBytes(meta.sizeBytes)} (${formatBytes(meta.storedBytes)} stored), WAL ${meta.startLsn} .. ${meta.endLsn} on timeline ${meta.timeline}\n`,
      );
    } else {
      process.stdout.write(
        `backup ${meta.backupId} of ${meta.cluster} verified and stored: ${formatBytes(meta.sizeBytes)} ` +
          `(${formatBytes(meta.storedBytes)} stored), WAL ${meta.startLsn} .. ${meta.endLsn} on timeline ${meta.timeline}\n`,
      );
    }
    return 0;
  } finally {
    clearInterval(timer);
    await client.connection.close();
  }
}
