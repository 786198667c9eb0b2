// `lifeboat checkpoint --runbook <name> --label <label>`: start
// `migrationCheckpoint` and wait; print the restore point and how to recover
// to it (the recover command and the Temporal UI's Start Workflow input).
import { labelProblem, type CheckpointResult } from '../../checkpoint/label';
import { connectClient, timestampedId } from '../../client/temporal';
import { LifeboatError } from '../../errors';
import { TASK_QUEUE } from '../../runbook/schema';
import { workflowError } from '../../client/failure';
import { reportPrimaryOverlay } from '../../catalog/primary';
import { requireRunbook, temporalTarget, type RepoOptions, type TemporalOptions } from '../context';
import { printJson } from '../run';

export async function run(opts: RepoOptions & TemporalOptions & { label?: string; json?: boolean }): Promise<number> {
  const problem = labelProblem(opts.label);
  if (problem) {
    throw new LifeboatError('INPUT_INVALID', `--label: ${problem}`, {
      hints: [
        'e.g. lifeboat checkpoint --runbook orders --label before-migration-0042',
        'recover to it later with --to-name <label>',
      ],
    });
  }
  const label = opts.label!;
  const runbook = await requireRunbook(opts, 'checkpoint');
  // The restore point goes into the re-pointed primary's WAL: say so.
  await reportPrimaryOverlay(runbook);
  const temporal = await temporalTarget(opts);
  const client = await connectClient(temporal);
  const workflowId = timestampedId(`checkpoint-${runbook.name}`);
  let result: CheckpointResult;
  try {
    const handle = await client.workflow.start('migrationCheckpoint', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [{ runbook: runbook.name, label }],
      staticSummary: `Checkpoint "${label}" of runbook ${runbook.name} (lifeboat checkpoint)`,
    });
    process.stderr.write(
      `started migrationCheckpoint ${workflowId} (runbook ${runbook.name}, label ${label}); waiting for a worker on task queue ${TASK_QUEUE}\n`,
    );
    try {
      result = (await handle.result()) as CheckpointResult;
    } catch (err) {
      throw workflowError(err, 'migrationCheckpoint', workflowId);
    }
  } finally {
    await client.connection.close();
  }
  const recoveryInput = { runbook: runbook.name, target: { name: result.name } };
  const recoverCommand = `lifeboat recover --runbook ${runbook.name} --to-name ${shellQuote(result.name)}`;
  if (opts.json) {
    printJson({
      workflowId,
      ...result,
      recover: {
        command: recoverCommand,
        workflowType: 'recoverToPointInTime',
        taskQueue: TASK_QUEUE,
        input: recoveryInput,
      },
    });
    return 0;
  }
  process.stdout.write(
    [
      `checkpoint "${result.name}" taken: restore point at LSN ${result.lsn} (${result.time}), in segment ${result.segment}, archived; ` +
        `a recovery to it starts from base backup ${result.backupId}`,
      'to recover to it (target { "name": ' + JSON.stringify(result.name) + ' }):',
      `  ${recoverCommand}`,
      `  or in the Temporal UI: Start Workflow, type recoverToPointInTime, task queue ${TASK_QUEUE}, input:`,
      `  ${JSON.stringify(recoveryInput)}`,
    ].join('\n') + '\n',
  );
  return 0;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9._:@%+=,/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
