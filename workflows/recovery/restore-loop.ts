// Steps 7-10 of recoverToPointInTime go round again when an operator moves
// the target: this file holds what carries over from one round to the next.
// restoreCopy is the body of restore-base-backup (the warm standby taken
// over, or a backup restored, chosen again after a retarget); moveTarget
// takes a retarget and decides between continuing the replay and restoring
// again, which isLater proves.
import { log, patched } from '@temporalio/workflow';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import { describeTarget, type ReplayResult, type Target } from '../../src/recovery/contract';
import { repositorySources } from '../../src/recovery/repository-sources';
import { parseLsn } from '../../src/wal/names';
import type { RunFacts } from './evidence';
import type { RecoveryMachine } from './machine';
import type { Plan } from './preflight';
import type { HostActivities, SharedActivities } from './proxies';

/** The patch under which a runbook's warm standby is taken over instead of restoring a backup (DESIGN.md §4.4). */
const STANDBY_PATCH = 'restore-from-standby';

/** What a run's restore knows, and what carries over from one round to the next. */
export interface RestoreLoop {
  readonly run: RecoveryMachine;
  readonly act: SharedActivities;
  readonly host: HostActivities;
  readonly facts: RunFacts;
  readonly plan: Plan;
  /** Every activity's runbook, and with --repo-index the one repository it reads. */
  readonly ref: { runbook: string; repository?: string };
  /** The backup restored; preflight chooses again after a retarget. */
  backupId: string;
  /** Whether the standby was asked already: once per run; a retarget to an earlier point restores a backup. */
  standbyAsked: boolean;
  restoreNeeded: boolean;
  /** Replay goes on from where the copy paused (a retarget to a later point). */
  continueFrom: boolean;
}

type Restored = Awaited<ReturnType<RecoveryActivities['restoreBaseBackup']>>;

/** The body of restore-base-backup. */
export async function restoreCopy(loop: RestoreLoop): Promise<Restored> {
  const { run, act, host, facts, plan, ref } = loop;
  const { input, workflowId, runId } = facts;
  const dryRun = input.dryRun ?? false;
  // The warm standby instead of a backup, when it is healthy and has not
  // replayed past the target (src/standby/adopt.ts). Patched: older histories never asked.
  // A dry run never takes it: the standby must stay for the real recovery.
  if (plan.runbook.standby && !loop.standbyAsked && patched(STANDBY_PATCH)) {
    const s = dryRun
      ? { used: false as const, why: 'a dry run never takes the standby over: it stays for a real recovery' }
      : await host.useStandby({
          ...ref,
          target: run.target,
          mode: run.mode,
          workflowId,
          runId,
          ...(plan.restorePointLsn &&
          'name' in run.target &&
          'name' in input.target &&
          run.target.name === input.target.name
            ? { restorePoint: { lsn: plan.restorePointLsn, searchedFrom: plan.backup.startLsn } }
            : {}),
        });
    loop.standbyAsked = true;
    facts.restoreSource = {
      kind: s.used ? 'standby' : 'backup',
      why: s.why,
      ...(s.used && s.result.standby ? { standby: s.result.standby } : {}),
    };
    if (s.used) return s.result;
  } else if (facts.restoreSource?.kind === 'standby') {
    // Still consumed by this run: the evidence says so, and how to rebuild it.
    facts.restoreSource = {
      kind: 'backup',
      why:
        'restored again from a backup: a retarget to an earlier point, ' +
        'and the standby was already taken over by this run',
      standby: facts.restoreSource.standby,
    };
  }
  if (run.steps.get('restore-base-backup')!.runs > 1 || loop.backupId !== plan.backup.backupId) {
    const again = await act.preflight({
      runbook: ref.runbook,
      target: run.target,
      mode: run.mode,
      dryRun,
      ...(input.repository ? { repository: input.repository } : {}),
    });
    loop.backupId = again.backup.backupId;
    run.findings.backup = again.backup;
  }
  const backupId = loop.backupId;
  const restored = await host.restoreBaseBackup({ ...ref, backupId, mode: run.mode, workflowId, runId });
  // Several repositories: the evidence says which served the backup when it was not the first.
  facts.repositories = repositorySources(restored);
  return restored;
}

/**
 * Takes the operator's new target. From approve-promote (`paused`, where the
 * copy waits) a later target continues the replay; anything else, and every
 * retarget after a failed replay, restores again.
 */
export function moveTarget(loop: RestoreLoop, paused?: ReplayResult): void {
  const { run, facts } = loop;
  const moved = run.takeRetarget()!;
  const later = paused !== undefined && isLater(run.target, moved.target, paused);
  const from = describeTarget(run.target);
  const to = describeTarget(moved.target);
  log.info('retarget', { from, to, later });
  facts.notes.push(`retargeted by ${moved.by} from ${from} to ${to}: ${later ? 'replay continued' : 'restored again'}`);
  run.target = moved.target;
  loop.restoreNeeded = !later;
  loop.continueFrom = later;
  if (!later) run.reopen('restore-base-backup');
  run.reopen('replay-wal');
  run.reopen('run-invariants');
}

/**
 * Whether replay can simply continue to the new target. Only when the new
 * target is provably at or after the current one in the same terms; anything
 * else (an earlier target, a restore point, a different kind) restores again,
 * because PostgreSQL cannot replay backwards.
 */
function isLater(current: Target, next: Target, replay: ReplayResult): boolean {
  if ('latest' in current) return false;
  if ('latest' in next) return true;
  if ('time' in current && 'time' in next) return Date.parse(next.time) >= Date.parse(current.time);
  if ('lsn' in current && 'lsn' in next)
    return parseLsn(next.lsn) >= parseLsn(current.lsn) && parseLsn(next.lsn) >= parseLsn(replay.lsn);
  return false;
}
