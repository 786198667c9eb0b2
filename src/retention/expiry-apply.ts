// Deleting what an expiry plan allows (src/retention/expiry.ts plans it):
// the expireBackups workflow's second activity, and `lifeboat expire
// --local`. Each repository is read again and only what both the approved
// plan and a plan of the repository as it is now allow goes; the Object Lock
// of the backups tiers keep is extended first; deletion runs oldest first in
// batches, reporting progress and stopping between batches when cancelled.
import { deleteBackupObjects, readCatalog, readWalArchive } from '../catalog/catalog';
import { holdLocked, lockedBackupReason, type LockedReport } from '../catalog/locked';
import { extendTierLocks, tierLockTargets, type LockExtensionReport } from '../catalog/lock-extend';
import { planRetention, reconcilePlans } from '../catalog/retention';
import { summarizeWal, walFilesToDelete, type WalDeleteSummary, type WalRange } from '../catalog/retention-wal';
import { LifeboatError } from '../errors';
import { repositoryLabel } from '../repository/multi';
import type { Repository } from '../repository/types';
import { loadRunbook } from '../runbook/load';
import { clusterName, type RepositoryEntry } from '../runbook/schema';
import { engineSetting } from '../runbook/engine';
import { expireThroughEngine, requireEngineRetention, type EngineExpiry } from './engine-expiry';
import { expiryHasWork, failureOf, withRepository, type ExpiryPlan } from './expiry';

/** One repository's deletions, or why they failed; neither when its plan had nothing to do. */
export interface RepositoryExpiryApplied {
  name: string;
  url: string;
  index: number;
  applied?: Omit<ExpiryApplied, 'repositories'>;
  error?: string;
  hints?: string[];
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
  /** With plan.repositories: what happened in each, in the same order. */
  repositories?: RepositoryExpiryApplied[];
  /** pgBackRest runbook: what its `expire` said and the backups gone after it (deletedBackups count no objects there). */
  engine?: EngineExpiry;
}

export interface ExpiryProgress {
  /** 'locks': extending the Object Lock of backups tiers keep (objects read or extended). */
  phase: 'locks' | 'backups' | 'wal' | 'done';
  done: number;
  total: number;
}

/** What the caller learns while an expiry deletes: progress, and a cancellation that stops it between batches. */
export interface ExpiryHooks {
  onProgress?: (progress: ExpiryProgress) => void;
  signal?: AbortSignal;
}

/** Objects per delete call: S3 DeleteObjects takes at most 1000; smaller batches heartbeat more often. */
const WAL_BATCH = 200;

const NOTHING_APPLIED: Omit<ExpiryApplied, 'repositories'> = {
  deletedBackups: [],
  skippedBackups: [],
  walDeleted: [],
  walDeletedCount: 0,
  walDeletedBytes: 0,
};

/**
 * Deletes what the plan allows. Run twice: it re-reads the repository and
 * deletes only what is still there and still allowed, so a retry never
 * deletes twice or more than the plan. With several repositories, each as
 * its own plan says; one that fails is reported and the others go on.
 */
export async function applyRunbookExpiry(
  input: { runbook: string; plan: ExpiryPlan },
  hooks: ExpiryHooks = {},
): Promise<ExpiryApplied> {
  const runbook = await loadRunbook(input.runbook);
  const cluster = clusterName(runbook);
  const onEngine = engineSetting(runbook).kind === 'pgbackrest';
  if (onEngine !== (input.plan.engine !== undefined)) {
    // The runbook changed engine between the plan and its application: neither side's deletions were approved.
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `runbook ${runbook.name} now uses ${onEngine ? 'engine pgbackrest' : "Lifeboat's own engine"}, but this expiry was planned on ${input.plan.repository}: nothing was deleted`,
      { hints: [`plan again: lifeboat expire --runbook ${runbook.name} --dry-run`] },
    );
  }
  if (onEngine) {
    // pgBackRest decides again now (a backup may have finished since the dry run); Lifeboat deletes nothing itself.
    requireEngineRetention(runbook);
    const done = await expireThroughEngine(runbook, { dryRun: false });
    return {
      ...NOTHING_APPLIED,
      deletedBackups: done.backups.map((b) => ({ backupId: b.backupId, objects: 0, storedBytes: b.storedBytes })),
      engine: done,
    };
  }
  if (!input.plan.repositories) {
    // Plans of one repository: the repository the plan was made of (the runbook's only one).
    const entry = runbook.repositories.find((r) => r.url === input.plan.repository) ?? runbook.repository;
    return withRepository(runbook, entry, 'expire', (repo) => applyOne(entry, repo, cluster, input.plan, hooks));
  }
  const repositories: RepositoryExpiryApplied[] = [];
  for (const r of input.plan.repositories) {
    const head = { name: r.name, url: r.url, index: r.index };
    if (!r.plan) {
      repositories.push({ ...head, error: r.error ?? 'not planned', ...(r.hints ? { hints: r.hints } : {}) });
      continue;
    }
    if (!expiryHasWork(r.plan)) {
      repositories.push(head);
      continue;
    }
    const plan = r.plan;
    const entry = runbook.repositories.find((e) => e.name === r.name && e.url === r.url);
    if (!entry) {
      repositories.push({
        ...head,
        error: `repository ${repositoryLabel(r)} is no longer in runbook ${runbook.name}: nothing deleted there`,
      });
      continue;
    }
    try {
      repositories.push({
        ...head,
        applied: await withRepository(runbook, entry, 'expire', (repo) => applyOne(entry, repo, cluster, plan, hooks)),
      });
    } catch (err) {
      // A cancellation ends the whole expiry, not only this repository's part.
      if (hooks.signal?.aborted) throw err;
      repositories.push({ ...head, ...failureOf(err) });
    }
  }
  return { ...(repositories[0]?.applied ?? NOTHING_APPLIED), repositories };
}

async function applyOne(
  entry: RepositoryEntry,
  repo: Repository,
  cluster: string,
  plan: Omit<ExpiryPlan, 'repositories'>,
  hooks: ExpiryHooks,
): Promise<Omit<ExpiryApplied, 'repositories'>> {
  const beat = (progress: ExpiryProgress) => {
    hooks.onProgress?.(progress);
    // Between batches: what was deleted stays deleted, the rest stays.
    hooks.signal?.throwIfAborted();
  };
  const [entries, archive] = await Promise.all([readCatalog(repo, cluster), readWalArchive(repo, cluster)]);
  // The approved plan's policy (plans from before tiers carry only keep), and the clock now.
  const policy = plan.policy ?? plan.keep!;
  const fresh = planRetention(entries, archive.files, policy, new Date().toISOString());
  const decided = reconcilePlans(plan, fresh);

  // Locks first: the backups tiers keep are protected before anything is
  // deleted. Only those the repository as it is now keeps for an ended
  // period and, when the approved plan said, that plan named too.
  const approvedLocks = plan.lockExtension && new Set(plan.lockExtension.backups.map((b) => b.backupId));
  const locking = tierLockTargets(fresh, entries);
  const lockExtension = await extendTierLocks(repo, cluster, {
    targets: locking.targets.filter((t) => !approvedLocks || approvedLocks.has(t.backupId)),
    open: locking.open,
    entries,
    walFiles: archive.files,
    setting: entry.objectLock,
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
      ? summarizeWal(
          archive.files,
          doomed,
          decided.walKeep,
          segSize,
          'kept neither by the approved plan nor by a plan of the repository as it is now',
        )
      : [],
    walDeletedCount: doomed.length,
    walDeletedBytes: doomed.reduce((n, f) => n + f.size, 0),
    ...(locked.checked ? { locked } : {}),
    ...(lockExtension ? { lockExtension } : {}),
  };
}
