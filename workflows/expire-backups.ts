// expireBackups({ runbook, dryRun?, keep? }): retention that never deletes
// WAL a retained backup needs (shared/DESIGN.md §4). Plan, then apply unless
// this is a dry run; the result holds both, so the workflow history shows
// what was planned and what was actually deleted.
import { log, patched, proxyActivities } from '@temporalio/workflow';
import { z } from 'zod';
import type * as retention from '../activities/retention';
import type { ExpiryApplied, ExpiryPlan } from '../activities/retention';
import { bounded, tries } from './activity-options';
import { parseWorkflowInput } from './input';

export const ExpireBackupsInput = z.strictObject({
  runbook: z
    .string({ error: 'expected the runbook name, e.g. "orders"' })
    .min(1, { error: 'expected the runbook name' }),
  dryRun: z.boolean({ error: 'expected true or false' }).optional(),
  keep: z
    .number({ error: 'expected the number of full backups to keep' })
    .int({ error: 'expected an integer of at least 1' })
    .min(1, { error: 'expected an integer of at least 1: retention always keeps a verified backup' })
    .optional(),
  /** Runbook `repositories:`: expire only this one (its name, or its position from 1); absent: every one, in order. */
  repository: z.string({ error: 'expected a repository name or position, e.g. "offsite" or "2"' }).min(1).optional(),
});
export type ExpireBackupsInput = z.infer<typeof ExpireBackupsInput>;

export interface ExpireBackupsResult {
  runbook: string;
  dryRun: boolean;
  plan: ExpiryPlan;
  /**
   * What was deleted (and which locks extended); absent on a dry run or when
   * the plan deletes nothing and extends no lock.
   */
  applied?: ExpiryApplied;
}

// Listing a large WAL archive on S3 takes a while, but planning has no
// progress to report: a generous start-to-close bound. Both heartbeat while
// they run (./activity-options.ts).
const { planExpiry } = proxyActivities<typeof retention>(bounded('15 minutes', tries(5, '5 seconds')));

// Deleting tens of thousands of objects can take long; the heartbeat (per
// batch) is what tells a dead worker from a slow store. A retry re-reads the
// repository, so it never deletes twice or more than the plan allowed.
const { applyExpiry } = proxyActivities<typeof retention>(
  bounded('6 hours', tries(5, '10 seconds'), { heartbeatTimeout: '30 seconds' }),
);

/**
 * Apply also when nothing is to be deleted but Object Lock dates of backups
 * the tiers keep are to be extended (src/catalog/lock-extend.ts). Histories
 * from before it skipped applyExpiry then.
 */
export const LOCK_EXTENSION_PATCH = 'expire-extends-tier-locks';

/**
 * Runbook `repositories:`: apply also when only a repository after the first
 * has something to do (plan.repositories). Plans from before it had no such
 * list, so their histories never reach this decision.
 */
export const EVERY_REPOSITORY_PATCH = 'expire-every-repository';

export async function expireBackups(input: ExpireBackupsInput): Promise<ExpireBackupsResult> {
  const { runbook, dryRun = false, keep, repository } = parseWorkflowInput(ExpireBackupsInput, input, 'expireBackups');
  const plan = await planExpiry({
    runbook,
    ...(keep !== undefined ? { keep } : {}),
    ...(repository !== undefined ? { repository } : {}),
  });
  log.info('expiry planned', {
    runbook,
    keep: plan.keep,
    expire: plan.expire.map((e) => e.backupId),
    walDeleteCount: plan.walDeleteCount,
    dryRun,
  });
  const extendLocks = !dryRun && (plan.lockExtension?.extended ?? 0) > 0 && patched(LOCK_EXTENSION_PATCH);
  const firstHasWork = plan.expire.length > 0 || plan.walDeleteCount > 0 || extendLocks;
  const othersHaveWork =
    !dryRun &&
    !firstHasWork &&
    (plan.repositories ?? []).some(
      (r, i) =>
        i > 0 &&
        r.plan !== undefined &&
        (r.plan.expire.length > 0 || r.plan.walDeleteCount > 0 || (r.plan.lockExtension?.extended ?? 0) > 0),
    ) &&
    patched(EVERY_REPOSITORY_PATCH);
  if (dryRun || (!firstHasWork && !othersHaveWork)) return { runbook, dryRun, plan };
  const applied = await applyExpiry({ runbook, plan });
  log.info('expiry applied', {
    runbook,
    deletedBackups: applied.deletedBackups.map((b) => b.backupId),
    walDeletedCount: applied.walDeletedCount,
    locksExtended: applied.lockExtension?.extended ?? 0,
    failedRepositories: (applied.repositories ?? []).filter((r) => r.error !== undefined).map((r) => r.name),
  });
  return { runbook, dryRun, plan, applied };
}
