// What retention allows to delete (the expireBackups workflow's first
// activity, activities/retention.ts, and `lifeboat expire --local`, which
// runs it in process). Read-only: run twice, it plans twice.
//
// Deleting it is expiry-apply.ts, which never trusts the plan alone: it reads
// the repository again and deletes only what the approved plan and the
// repository as it is now both allow (src/catalog/retention.ts
// reconcilePlans), because backups can finish or vanish between the plan and
// its application (a dry run reviewed by a person, a retried activity).
//
// On a pgBackRest runbook (engine-expiry.ts) pgBackRest's own retention
// decides: the plan is `pgbackrest expire --dry-run`, applying it is
// `pgbackrest expire`, and Lifeboat deletes nothing itself.
import { readCatalog, readWalArchive } from '../catalog/catalog';
import { holdLocked, type LockedReport } from '../catalog/locked';
import { extendTierLocks, tierLockTargets, type LockExtensionReport } from '../catalog/lock-extend';
import { planRetention, type RetentionPlan } from '../catalog/retention';
import { walFilesToDelete } from '../catalog/retention-wal';
import { retentionPolicy } from '../catalog/tiers';
import { errorMessage, isLifeboatError } from '../errors';
import { openEngine } from '../engine';
import { chooseRepositories, closeRepositories, openEntry, repositoryLabel } from '../repository/multi';
import type { Repository } from '../repository/types';
import { loadRunbook } from '../runbook/load';
import { clusterName, type RepositoryEntry, type Runbook } from '../runbook/schema';
import { engineSetting } from '../runbook/engine';
import { expireThroughEngine, requireEngineRetention, type EngineExpiry } from './engine-expiry';

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
  /**
   * Runbook `repositories:` with more than one: every repository expired, in
   * runbook order (or only the one --repo-index names), each planned from
   * its own catalog. The fields above describe the first of them, as they
   * always did.
   */
  repositories?: RepositoryExpiryPlan[];
  /**
   * pgBackRest runbook: what its own `expire --dry-run` said. `expire` then
   * lists the same backups, `kept` the others; no WAL is planned by Lifeboat
   * (pgBackRest removes the WAL its retention no longer needs itself).
   */
  engine?: EngineExpiry;
}

/** One repository's plan, or why it could not be planned (the others are still expired). */
export interface RepositoryExpiryPlan {
  name: string;
  url: string;
  /** Position in the runbook's list, from 0. */
  index: number;
  plan?: Omit<ExpiryPlan, 'repositories'>;
  error?: string;
  hints?: string[];
}

/** Whether applying a plan changes anything: deletions, or Object Lock dates to extend. */
export function expiryHasWork(plan: Pick<ExpiryPlan, 'expire' | 'walDeleteCount' | 'lockExtension'>): boolean {
  return plan.expire.length > 0 || plan.walDeleteCount > 0 || (plan.lockExtension?.extended ?? 0) > 0;
}

/** The first line of an error and its HINT lines: what a repository's section says. */
export function failureOf(err: unknown): { error: string; hints?: string[] } {
  const error = errorMessage(err).split('\n', 1)[0] ?? '';
  const hints = isLifeboatError(err) ? [...err.hints] : [];
  return { error, ...(hints.length > 0 ? { hints } : {}) };
}

/** What retention would delete. Run twice: it only reads. */
export async function planRunbookExpiry(input: {
  runbook: string;
  keep?: number;
  repository?: string;
}): Promise<ExpiryPlan> {
  const runbook = await loadRunbook(input.runbook);
  const cluster = clusterName(runbook);
  const now = new Date();
  if (engineSetting(runbook).kind === 'pgbackrest') {
    requireEngineRetention(runbook, input.keep);
    return planThroughEngine(runbook, cluster, now);
  }
  const chosen = chooseRepositories(runbook, input.repository);
  // One repository (runbook repository:): as it always was, a failure fails the activity (and is retried).
  if (runbook.repositories.length <= 1)
    return withRepository(runbook, chosen[0]!, 'expire', (repo) =>
      planOne(runbook, chosen[0]!, repo, cluster, input.keep, now),
    );
  // Several: each in runbook order with its own settings and expire identity;
  // one that cannot be planned is reported and the others are still expired.
  const repositories: RepositoryExpiryPlan[] = [];
  for (const entry of chosen) {
    const index = runbook.repositories.indexOf(entry);
    try {
      const plan = await withRepository(runbook, entry, 'expire', (repo) =>
        planOne(runbook, entry, repo, cluster, input.keep, now),
      );
      repositories.push({ name: entry.name, url: entry.url, index, plan });
    } catch (err) {
      repositories.push({ name: entry.name, url: entry.url, index, ...failureOf(err) });
    }
  }
  const first = repositories[0]!;
  return {
    ...(first.plan ?? unplanned(runbook, chosen[0]!, cluster, input.keep, now, first.error ?? '')),
    repositories,
  };
}

/** Runs `fn` on the entry's repository opened as `role`, and closes it. */
export async function withRepository<T>(
  runbook: Runbook,
  entry: RepositoryEntry,
  role: 'expire',
  fn: (repo: Repository) => Promise<T>,
): Promise<T> {
  const opened = await openEntry(entry, runbook.repositories.indexOf(entry), role);
  try {
    return await fn(opened.repo);
  } finally {
    closeRepositories([opened]);
  }
}

async function planOne(
  runbook: Runbook,
  entry: RepositoryEntry,
  repo: Repository,
  cluster: string,
  keep: number | undefined,
  now: Date,
): Promise<ExpiryPlan> {
  const [entries, archive] = await Promise.all([readCatalog(repo, cluster), readWalArchive(repo, cluster)]);
  const plan = planRetention(entries, archive.files, retentionPolicy(runbook, keep), now.toISOString());
  const doomed =
    plan.walKeep && plan.walSegmentSize ? walFilesToDelete(archive.files, plan.walKeep, plan.walSegmentSize) : [];
  const { locked } = await holdLocked(
    repo,
    cluster,
    plan.expire.map((e) => e.backupId),
    doomed,
    new Date(),
  );
  // Reads only: what applying would extend (a dry run prints it).
  const lockExtension = await extendTierLocks(repo, cluster, {
    ...tierLockTargets(plan, entries),
    entries,
    walFiles: archive.files,
    setting: entry.objectLock,
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
}

/** pgBackRest's own dry run as a plan: what it would expire, what stays. Run twice: its dry run removes nothing. */
async function planThroughEngine(runbook: Runbook, cluster: string, now: Date): Promise<ExpiryPlan> {
  const engine = await openEngine(runbook);
  const backups = await engine.listBackups();
  const would = await expireThroughEngine(runbook, { dryRun: true });
  const doomed = new Set(would.backups.map((b) => b.backupId));
  const reason = `pgBackRest's own retention (pgbackrest expire --dry-run on ${would.source})`;
  return {
    // Lifeboat's policy does not apply: the count is what pgBackRest keeps.
    policy: { kind: 'newest', keep: backups.length - doomed.size },
    at: now.toISOString(),
    verified: backups.length,
    kept: backups.filter((b) => !doomed.has(b.backupId)).map((b) => ({ backupId: b.backupId, reason })),
    expire: backups
      .filter((b) => doomed.has(b.backupId))
      .map((b) => ({ backupId: b.backupId, startWal: b.startWal, storedBytes: b.storedBytes, reason })),
    incomplete: [],
    walDelete: [],
    walDeleteCount: 0,
    walDeleteBytes: 0,
    walKeptCount: 0,
    historyFilesKept: 0,
    ...(doomed.size === 0 ? { nothingToDo: `pgBackRest's retention expires no backup of ${would.source} now` } : {}),
    runbook: runbook.name,
    cluster,
    repository: would.source,
    engine: would,
  };
}

/** The top-level fields when the first repository could not be planned: nothing to do there, and why. */
function unplanned(
  runbook: Runbook,
  entry: RepositoryEntry,
  cluster: string,
  keep: number | undefined,
  now: Date,
  error: string,
): ExpiryPlan {
  const empty = planRetention([], [], retentionPolicy(runbook, keep), now.toISOString());
  return {
    ...empty,
    runbook: runbook.name,
    cluster,
    repository: entry.url,
    nothingToDo: `repository ${repositoryLabel(entry)} could not be planned: ${error}`,
  };
}
