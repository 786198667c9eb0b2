// `lifeboat recover --runbook <name> --to-...`: start `recoverToPointInTime`
// (DESIGN.md §4) with a validated input, print its id and how to follow it;
// with --follow, watch it like `status --watch` until it closes.
import { chooseRepositories } from '../../repository/multi';
import { connectClient, timestampedId } from '../../client/temporal';
import { LifeboatError } from '../../errors';
import { RecoveryInput } from '../../recovery/contract';
import { RECOVERY_WORKFLOW } from '../../recovery/messages';
import { TASK_QUEUE } from '../../runbook/schema';
import { intOption, requireRunbook, temporalTarget, type TemporalOptions } from '../context';
import { recoveryDetails, recoverySummary, succeeded, type ParsedInput } from '../status-view';
import { targetFromFlags, type TargetFlags } from '../target-options';
import { printStarted, startRun, startedBy } from '../start-run';
import { watchRun } from './status';
import { checklistLines } from '../ui-link';

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
    const handle = await startRun(client, namespace, {
      workflowType: RECOVERY_WORKFLOW,
      runbook: runbook.name,
      workflowId,
      input,
      staticSummary: recoverySummary(input),
      staticDetails: recoveryDetails(input, startedBy()),
    });
    const uiBase = await printStarted(opts, { address, namespace }, handle, input, (ui) =>
      startedLines(input, workflowId, ui),
    );
    if (!opts.follow) return 0;
    const recovery = {
      client,
      handle,
      workflowId,
      namespace,
      address,
      ...uiBase,
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
