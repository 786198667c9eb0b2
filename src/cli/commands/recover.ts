// `lifeboat recover --runbook <name> --to-...`: start `recoverToPointInTime`
// (DESIGN.md §4) with a validated input, print its id and how to follow it;
// with --follow, watch it like `status --watch` until it closes.
import { chooseRepositories } from '../../repository/multi';
import { RecoveryInput } from '../../recovery/contract';
import { RECOVERY_WORKFLOW } from '../../recovery/messages';
import { intOption, requireRunbook, type TemporalOptions } from '../context';
import { recoveryDetails, recoverySummary, type ParsedInput } from '../run-summary';
import { targetFromFlags, type TargetFlags } from '../target-options';
import { parseRunInput, startAndFollow, type RunKind } from '../start-run';

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

const RECOVERY: RunKind<ParsedInput> = {
  workflowType: RECOVERY_WORKFLOW,
  idPrefix: 'recover',
  summary: recoverySummary,
  details: recoveryDetails,
  host: 'restore',
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
  return startAndFollow(opts, RECOVERY, runbook.name, input, intervalSeconds);
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
  return parseRunInput('recover', RecoveryInput, FLAG_OF, raw);
}
