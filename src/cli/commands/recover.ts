// `lifeboat recover --runbook <name> --to-...`: start `recoverToPointInTime`
// (DESIGN.md §4) with a validated input, print its id and how to follow it;
// with --follow, watch it like `status --watch` until it closes.
import { chooseRepositories } from '../../repository/multi';
import * as os from 'node:os';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { connectClient, timestampedId } from '../../client/temporal';
import { LifeboatError } from '../../errors';
import { RecoveryInput } from '../../recovery/contract';
import { RECOVERY_WORKFLOW } from '../../recovery/messages';
import { RUNBOOK_ATTRIBUTE } from '../../recovery/search-attributes';
import { TASK_QUEUE } from '../../runbook/schema';
import { intOption, requireRunbook, temporalTarget, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { recoveryDetails, recoverySummary, succeeded, type ParsedInput } from '../status-view';
import { targetFromFlags, type TargetFlags } from '../target-options';
import { watchRun } from './status';
import { checklistLines, runPage, temporalUiBase } from '../ui-link';

type Options = TemporalOptions &
  TargetFlags & {
    runbook?: string;
    runbooksDir?: string;
    incident?: string;
    reason?: string;
    mode?: string;
    dryRun?: boolean;
    backup?: string;
    concurrent?: boolean;
    repoIndex?: string;
    follow?: boolean;
    json?: boolean;
    workflowId?: string;
    interval?: string;
  };

export async function run(opts: Options): Promise<number> {
  // Flags first: a wrong target is reported before the runbook is even read.
  const target = targetFromFlags(opts, 'recover');
  const intervalSeconds = intOption(opts.interval ?? '2', '--interval');
  const runbook = await requireRunbook(opts, 'recover');
  const input = parseInput({
    runbook: runbook.name,
    target,
    ...(opts.incident !== undefined ? { incident: opts.incident } : {}),
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
    dryRun: opts.dryRun === true,
    ...(opts.backup !== undefined ? { backupId: opts.backup } : {}),
    ...(opts.concurrent ? { concurrent: true } : {}),
    // --repo-index: checked against the runbook now (exit 2 naming the repositories), sent by name.
    ...(opts.repoIndex !== undefined ? { repository: chooseRepositories(runbook, opts.repoIndex)[0]!.name } : {}),
  });
  const workflowId = opts.workflowId?.trim() || timestampedId(`recover-${runbook.name}`);

  const temporal = await temporalTarget(opts);
  const { address, namespace } = temporal;
  const client = await connectClient(temporal);
  try {
    const options = {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [input] as [typeof input],
      staticSummary: recoverySummary(input),
      staticDetails: recoveryDetails(input, startedBy()),
    };
    const handle = await client.workflow
      // LifeboatRunbook from the start event on, not only from the run's first
      // workflow task: a second recovery started right after this one then
      // finds it listed sooner (activities/one-recovery.ts).
      .start(RECOVERY_WORKFLOW, {
        ...options,
        typedSearchAttributes: [{ key: RUNBOOK_ATTRIBUTE, value: runbook.name }],
      })
      .catch((err: unknown) => {
        // A namespace no worker has prepared yet (ensureSearchAttributes): the run sets it itself.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError) && String(err).includes(RUNBOOK_ATTRIBUTE.name))
          return client.workflow.start(RECOVERY_WORKFLOW, options);
        throw err;
      })
      .catch((err: unknown) => {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        throw new LifeboatError(
          'INPUT_INVALID',
          `a workflow with id ${workflowId} is already running in namespace ${namespace}`,
          {
            hints: [`follow it: lifeboat status ${workflowId} --watch`, 'or pass another --workflow-id'],
            cause: err,
          },
        );
      });
    const uiBase = await temporalUiBase(address, process.env, opts.uiUrl);
    const ui =
      uiBase.base !== undefined ? runPage(uiBase.base, namespace, workflowId, handle.firstExecutionRunId) : undefined;
    const started = { workflowId, runId: handle.firstExecutionRunId, input, ...(ui ? { ui } : {}) };
    if (opts.json) {
      // With --follow, one JSON document per line, like status --watch --json.
      if (opts.follow) process.stdout.write(`${JSON.stringify(started)}\n`);
      else printJson(started);
    } else {
      process.stdout.write(
        `${startedLines(input, workflowId, ui ?? (uiBase.base === undefined ? { hint: uiBase.hint } : undefined)).join('\n')}\n`,
      );
    }
    if (!opts.follow) return 0;
    const recovery = {
      client,
      handle,
      workflowId,
      namespace,
      address,
      ...(uiBase.base !== undefined ? { uiBase: uiBase.base } : {}),
    };
    const last = await watchRun(recovery, { intervalSeconds, json: opts.json === true });
    return succeeded(last) ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}

const FLAG_OF: Record<string, string> = {
  runbook: '--runbook',
  target: '--to-...',
  incident: '--incident',
  reason: '--reason',
  mode: '--mode',
  dryRun: '--dry-run',
  backupId: '--backup',
  concurrent: '--concurrent',
};

/** The same schema the workflow checks, so a bad input never starts a run. */
export function parseInput(raw: Record<string, unknown>): ParsedInput {
  const parsed = RecoveryInput.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const key = String(i.path[0] ?? '');
    return `${FLAG_OF[key] ?? key}: ${i.message}`;
  });
  throw new LifeboatError('INPUT_INVALID', `recover: ${lines.join('; ')}`);
}

/** `ui`: the run's checklist in the UI, or why there is no link and how to get one. */
export function startedLines(
  input: ParsedInput,
  workflowId: string,
  ui: string | { hint: string } | undefined,
): string[] {
  return [
    `started ${RECOVERY_WORKFLOW} ${workflowId}`,
    `  ${recoverySummary(input, false)}`,
    `  on task queue ${TASK_QUEUE}: a worker must poll it (lifeboat worker), and the restore host's worker its host queue`,
    'next:',
    `  lifeboat status ${workflowId} --watch`,
    ...(typeof ui === 'string' ? checklistLines(ui).map((l) => `  ${l}`) : ui ? [`  (${ui.hint})`] : []),
  ];
}

/** Who started the run, for the static details (the audit trail starts here). */
function startedBy(): string | undefined {
  try {
    return `${os.userInfo().username}@${os.hostname()}`;
  } catch {
    return undefined; // no passwd entry in some containers
  }
}
