// Activities of the expireBackups workflow (shared/DESIGN.md §4): plan what
// retention allows, then delete it. Both run on the `lifeboat` queue: they
// need only the repository.
//
// applyExpiry never trusts the plan alone: it reads the repository again and
// deletes only what the approved plan and the repository as it is now both
// allow (src/catalog/retention.ts reconcilePlans), because backups can finish
// or vanish between the plan and its application (a dry run reviewed by a
// person, a retried activity).
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { deleteBackupObjects, readCatalog, readWalArchive } from '../src/catalog/catalog';
import { holdLocked, lockedBackupReason, type LockedReport } from '../src/catalog/locked';
import { extendTierLocks, tierLockTargets, type LockExtensionReport } from '../src/catalog/lock-extend';
import {
  planRetention,
  reconcilePlans,
  summarizeWal,
  walFilesToDelete,
  type RetentionPlan,
  type WalDeleteSummary,
  type WalRange,
} from '../src/catalog/retention';
import { retentionPolicy } from '../src/catalog/tiers';
import { openRepository } from '../src/repository';
import { loadRunbook } from '../src/runbook/load';
import { clusterName } from '../src/runbook/schema';
import { heartbeat, lifeboatActivity } from './failure';

export interface ExpiryPlan extends RetentionPlan {
  runbook: string;
  cluster: string;
  repository: string;
  /** S3 Object Lock: what the plan would delete that is locked now, kept and reported (src/catalog/locked.ts). */
  locked?: LockedReport;
  /**
   * S3 Object Lock of the backups tiers keep (src/catalog/lock-extend.ts):
   * what applying the plan would extend; absent without repository.objectLock.
   */
  lockExtension?: LockExtensionReport;
}

export interface ExpiryApplied {
  deletedBackups: { backupId: string; objects: number; storedBytes: number }[];
  skippedBackups: { backupId: string; reason: string }[];
  /** The WAL kept by the plan or by the repository as it is now: what was not deleted. */
  walKeep?: WalRange[];
  walDeleted: WalDeleteSummary[];
  walDeletedCount: number;
  walDeletedBytes: number;
  /** S3 Object Lock: what was left because it is locked, and until when. */
  locked?: LockedReport;
  /** S3 Object Lock of the backups tiers keep: what was extended, done before anything was deleted. */
  lockExtension?: LockExtensionReport;
}

export interface ExpiryProgress {
  /** 'locks': extending the Object Lock of backups tiers keep (objects read or extended). */
  phase: 'locks' | 'backups' | 'wal' | 'done';
  done: number;
  total: number;
}

/** Objects per delete call: S3 DeleteObjects takes at most 1000; smaller batches heartbeat more often. */
const WAL_BATCH = 200;

async function open(runbookRef: string) {
  const runbook = await loadRunbook(runbookRef);
  const repo = await openRepository(runbook.repository.url, { ...runbook.repository, role: 'expire' });
  return { runbook, repo, cluster: clusterName(runbook) };
}

/** What retention would delete. Run twice: it only reads. */
export async function planExpiry(input: { runbook: string; keep?: number }): Promise<ExpiryPlan> {
  return lifeboatActivity(async () => {
    const { runbook, repo, cluster } = await open(input.runbook);
    const [entries, archive] = await Promise.all([readCatalog(repo, cluster), readWalArchive(repo, cluster)]);
    const plan = planRetention(entries, archive.files, retentionPolicy(runbook, input.keep), new Date().toISOString());
    const doomed = plan.walKeep && plan.walSegmentSize ? walFilesToDelete(archive.files, plan.walKeep, plan.walSegmentSize) : [];
    const { locked } = await holdLocked(repo, cluster, plan.expire.map((e) => e.backupId), doomed, new Date());
    // Reads only: what applying would extend (a dry run prints it).
    const lockExtension = await extendTierLocks(repo, cluster, {
      ...tierLockTargets(plan, entries),
      entries,
      walFiles: archive.files,
      setting: runbook.repository.objectLock,
      apply: false,
    });
    return {
      ...plan,
      runbook: runbook.name,
      cluster,
      repository: repo.url,
      ...(locked.checked ? { locked } : {}),
      ...(lockExtension ? { lockExtension } : {}),
    };
  });
}

/**
 * Deletes what the plan allows. Run twice: it re-reads the repository and
 * deletes only what is still there and still allowed, so a retry never
 * deletes twice or more than the plan.
 */
export async function applyExpiry(input: { runbook: string; plan: ExpiryPlan }): Promise<ExpiryApplied> {
  return lifeboatActivity(async () => {
    const { runbook, repo, cluster } = await open(input.runbook);
    const [entries, archive] = await Promise.all([readCatalog(repo, cluster), readWalArchive(repo, cluster)]);
    // The approved plan's policy (plans from before tiers carry only keep), and the clock now.
    const policy = input.plan.policy ?? input.plan.keep!;
    const fresh = planRetention(entries, archive.files, policy, new Date().toISOString());
    const decided = reconcilePlans(input.plan, fresh);

    // Locks first: the backups tiers keep are protected before anything is
    // deleted. Only those the repository as it is now keeps for an ended
    // period and, when the approved plan said, that plan named too.
    const approvedLocks = input.plan.lockExtension && new Set(input.plan.lockExtension.backups.map((b) => b.backupId));
    const locking = tierLockTargets(fresh, entries);
    const lockExtension = await extendTierLocks(repo, cluster, {
      targets: locking.targets.filter((t) => !approvedLocks || approvedLocks.has(t.backupId)),
      open: locking.open,
      entries,
      walFiles: archive.files,
      setting: runbook.repository.objectLock,
      apply: true,
      onProgress: (done, total) => beat({ phase: 'locks', done, total }),
    });

    // Oldest first (names sort by timeline, then segment): a deletion cut
    // short leaves the WAL of every kept backup whole.
    const segSize = decided.walSegmentSize ?? 0;
    const allowed = decided.walKeep ? walFilesToDelete(archive.files, decided.walKeep, segSize) : [];
    // S3 Object Lock: a locked object stays (a backup whole), said with its date; never a delete marker over it.
    const { backups, walFiles: doomed, locked } = await holdLocked(repo, cluster, decided.backups, allowed, new Date());
    const lockedBackups = locked.backups.map((b) => ({ backupId: b.backupId, reason: lockedBackupReason(b) }));
    const total = backups.length + doomed.length;
    let done = 0;
    beat({ phase: 'backups', done, total });

    const deletedBackups: ExpiryApplied['deletedBackups'] = [];
    for (const backupId of backups) {
      deletedBackups.push({ backupId, ...(await deleteBackupObjects(repo, cluster, backupId)) });
      beat({ phase: 'backups', done: ++done, total });
    }
    for (let i = 0; i < doomed.length; i += WAL_BATCH) {
      const batch = doomed.slice(i, i + WAL_BATCH);
      await repo.delete(batch.flatMap((f) => f.keys));
      done += batch.length;
      beat({ phase: 'wal', done, total });
    }
    beat({ phase: 'done', done, total });

    return {
      deletedBackups,
      skippedBackups: [...decided.skippedBackups, ...lockedBackups],
      ...(decided.walKeep ? { walKeep: decided.walKeep } : {}),
      walDeleted: decided.walKeep
        ? summarizeWal(archive.files, doomed, decided.walKeep, segSize, 'kept neither by the approved plan nor by a plan of the repository as it is now')
        : [],
      walDeletedCount: doomed.length,
      walDeletedBytes: doomed.reduce((n, f) => n + f.size, 0),
      ...(locked.checked ? { locked } : {}),
      ...(lockExtension ? { lockExtension } : {}),
    };
  });
}

/**
 * Progress as heartbeat details; outside an activity (`lifeboat expire
 * --local`) there is no one to tell. A cancelled workflow stops the
 * deletion between batches: what was deleted stays deleted, the rest stays.
 */
function beat(progress: ExpiryProgress): void {
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return;
  }
  heartbeat(progress);
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('expiry cancelled; objects already deleted stay deleted');
}
