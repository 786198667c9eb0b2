// `lifeboat backup --runbook <name>`: start `baseBackup` and wait for the verified backup.
import { requireRunbook, temporalAddress, type RepoOptions, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { TASK_QUEUE } from '../../runbook/schema';
import { connectClient, timestampedId } from '../../client/temporal';
import { formatBytes } from '../format';
import type { BackupMeta } from '../../catalog/backup-meta';
import type { BackupProgress } from '../../backup/base-backup';

export async function run(opts: RepoOptions & TemporalOptions & { wait?: boolean; json?: boolean }): Promise<number> {
  const runbook = await requireRunbook(opts, 'backup');
  const { address, namespace } = temporalAddress(opts);
  const client = await connectClient(address, namespace);
  const workflowId = timestampedId(`backup-${runbook.name}`);
  const handle = await client.workflow.start('baseBackup', {
    taskQueue: TASK_QUEUE,
    workflowId,
    args: [{ runbook: runbook.name }],
  });
  process.stderr.write(`started baseBackup ${workflowId} (runbook ${runbook.name})\n`);
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
        const p = JSON.parse(Buffer.from(details).toString()) as BackupProgress;
        const line = `  ${p.phase}: ${formatBytes(p.bytesDone)}${p.bytesTotal ? ` of ${formatBytes(p.bytesTotal)}` : ''}`;
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
      })
      .catch(() => undefined);
  }, 3000);
  try {
    const meta = (await handle.result()) as BackupMeta;
    if (opts.json) printJson({ workflowId, backup: meta });
    else {
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
