// `lifeboat drill --runbook <name>`: start `restoreDrill` (an isolated restore,
// invariants, promotion in isolation, a smoke write, measured RTO and RPO,
// evidence, teardown) and wait for its figures; or, with --schedule, create
// or update the runbook's drill schedule (lifeboat-drill-<runbook>).
import { chooseRepositories } from '../../repository/multi';
import { connectClient, timestampedId } from '../../client/temporal';
import { LifeboatError } from '../../errors';
import { checkRecord } from '../../evidence/list';
import { evidenceLines } from '../../evidence/figures';
import type { Evidence, Target } from '../../recovery/contract';
import { openRepository } from '../../repository';
import { keys } from '../../repository/layout';
import { clusterName, TASK_QUEUE, type Runbook } from '../../runbook/schema';
import { scheduleCommand } from '../schedules-view';
import { parseCron } from '../../schedules/cron';
import { innermostFailure, workflowError } from '../../client/failure';
import { reportPrimaryOverlay } from '../../catalog/primary';
import { requireRunbook, temporalTarget, type RepoOptions, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { targetFromFlags, type TargetFlags } from '../target-options';

type Options = RepoOptions &
  TemporalOptions &
  TargetFlags & {
    keep?: boolean;
    fromStandby?: boolean;
    wait?: boolean;
    json?: boolean;
    schedule?: string;
    repoIndex?: string;
  };

export async function run(opts: Options): Promise<number> {
  // A bad cron is a usage error naming --schedule, before the runbook is even read.
  if (opts.schedule !== undefined) parseCron(opts.schedule, '--schedule');
  const runbook = await requireRunbook(opts, 'drill');
  await reportPrimaryOverlay(runbook);
  const anyTarget =
    [opts.toTime, opts.toName, opts.toLsn, opts.toXid].some((v) => v !== undefined) || opts.toLatest === true;
  // No target: the drill picks a random time in the runbook's drill.targetWindow.
  const target: Target | undefined = anyTarget ? targetFromFlags(opts, 'drill') : undefined;
  if (opts.fromStandby && !runbook.standby) {
    throw new LifeboatError('INPUT_INVALID', `--from-standby: runbook ${runbook.name} declares no warm standby`, {
      hints: [
        'add a standby: section (host, dataDir, port, delay), build it with lifeboat standby build, or run the drill without --from-standby',
      ],
    });
  }
  // --repo-index: checked against the runbook now (exit 2 naming the repositories), sent by name.
  const repository = opts.repoIndex !== undefined ? chooseRepositories(runbook, opts.repoIndex)[0]!.name : undefined;
  const input = {
    runbook: runbook.name,
    ...(target ? { target } : {}),
    ...(opts.keep ? { keep: true } : {}),
    ...(opts.fromStandby ? { source: 'standby' as const } : {}),
    ...(repository ? { repository } : {}),
  };
  if (opts.schedule !== undefined)
    return scheduleCommand({ ...opts, schedule: opts.schedule }, 'drill', runbook.name, input);

  const temporal = await temporalTarget(opts);
  const client = await connectClient(temporal);
  const workflowId = timestampedId(`drill-${runbook.name}`);
  try {
    const handle = await client.workflow.start('restoreDrill', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [input],
      staticSummary: `Restore drill of runbook ${runbook.name}${target ? ` to ${JSON.stringify(target)}` : ''} (lifeboat drill)`,
    });
    const runId = handle.firstExecutionRunId;
    process.stderr.write(
      `started restoreDrill ${workflowId} (runbook ${runbook.name}); waiting for a worker on task queue ${TASK_QUEUE}\n`,
    );
    if (opts.wait === false) {
      if (opts.json) printJson({ workflowId, runId });
      else process.stdout.write(`${workflowId}\n`);
      return 0;
    }
    const key = keys.evidence(clusterName(runbook), runId);
    try {
      const evidence = (await handle.result()) as Evidence;
      if (opts.json) printJson({ workflowId, runId, evidenceKey: key, evidence });
      else process.stdout.write(`${evidenceLines(evidence, key).join('\n')}\n`);
      return 0;
    } catch (err) {
      // A failed drill writes its evidence before failing: show its figures
      // with the error, so the operator sees what was measured and why it failed.
      const evidence = await readEvidence(runbook, key);
      const failure = innermostFailure(err);
      if (opts.json) {
        printJson({ workflowId, runId, failed: failure, ...(evidence ? { evidenceKey: key, evidence } : {}) });
        return 1;
      }
      if (evidence) process.stdout.write(`${evidenceLines(evidence, key).join('\n')}\n`);
      throw workflowError(err, 'restoreDrill', workflowId);
    }
  } finally {
    await client.connection.close();
  }
}

async function readEvidence(runbook: Runbook, key: string): Promise<Evidence | undefined> {
  try {
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const got = await repo.get(key);
    if (!got) return undefined;
    const record = checkRecord(JSON.parse(got.body.toString('utf8')));
    return typeof record === 'string' ? undefined : record;
  } catch {
    return undefined;
  }
}
