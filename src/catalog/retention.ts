// Retention (the `expireBackups` workflow): which backups and WAL files may
// go. Pure functions, so the rules are tested without a repository and the
// plan can travel through workflow history.
//
// The rules, in the order they protect data:
// - Nothing is deleted unless at least one complete, verified backup is kept.
//   Incomplete backup directories are never deleted nor counted here: one may
//   be a backup still being written.
// - Which backups stay is the policy's (src/catalog/tiers.ts): the N newest
//   (backup.retainFull), or tiers (retention:) plus the backup a restore into
//   the point-in-time window starts from; the newest verified backup always.
// - WAL stays when a kept backup needs it (its own start..end segments, on
//   its timeline) or when it lies in the point-in-time window: every segment
//   from the window's backup's start on, and every segment of a later
//   timeline. With backup.retainFull the window starts at the oldest kept
//   backup, as it always did. An old yearly backup thus keeps only its own
//   WAL, not everything after it: that is what makes tiers cheap.
// - Only WAL segments go. History files, .partial and .backup files always
//   stay: they are tiny, and a missing history file silently stops a restore
//   from following a timeline switch.
//
// A plan names WAL as ranges kept, not as names deleted: a month of WAL is
// tens of thousands of names, more than a workflow payload may hold.
// `applyExpiry` re-reads the repository and deletes only what both the
// approved plan and a fresh plan allow.
// The WAL ranges, what they leave to delete and its summary: retention-wal.ts.
import { LifeboatError } from '../errors';
import { parseSegmentName, segmentName, walFileKind } from '../wal/names';
import type { CatalogEntry, CompleteEntry } from './catalog';
import {
  cutoffAsRanges,
  pruneRanges,
  summarizeWal,
  walFilesToDelete,
  type RetentionWalFile,
  type WalCutoff,
  type WalDeleteSummary,
  type WalRange,
} from './retention-wal';
import { describeSeconds, periodLabel, periodOf, TIERS, type RetentionPolicy, type Tier } from './tiers';

export interface TierKept {
  tier: Tier;
  /** Periods counted, and the oldest of them. */
  periods: number;
  from: string;
  /** Newest first: the period and the backup kept for it. */
  kept: { period: string; backupId: string }[];
}

export interface RetentionPlan {
  policy: RetentionPolicy;
  /** With backup.retainFull: how many newest backups are kept (what plans said before tiers). */
  keep?: number;
  /** When the plan was made: tiers and the window count back from it. */
  at?: string;
  /** Complete, verified backups found. */
  verified: number;
  kept: { backupId: string; reason: string }[];
  expire: { backupId: string; startWal: string; storedBytes: number; reason: string }[];
  /** Backup directories without a valid backup.json: listed, never deleted. */
  incomplete: { backupId: string; problem: string; storedBytes: number }[];
  /** With tiers: what each keeps. */
  tiers?: TierKept[];
  /** Where point-in-time recovery can start: the backup, its first segment, and since when targets are covered. */
  window?: { backupId: string; startWal: string; coversFrom: string; why: string };
  walSegmentSize?: number;
  /** Absent: no WAL is deleted. */
  walKeep?: WalRange[];
  /** Old plans only (before tiers); read by reconcilePlans. */
  walCutoff?: WalCutoff;
  walDelete: WalDeleteSummary[];
  walDeleteCount: number;
  walDeleteBytes: number;
  walKeptCount: number;
  historyFilesKept: number;
  /** Set when the plan deletes nothing on purpose, saying why. */
  nothingToDo?: string;
}

const byId = (a: { backupId: string }, b: { backupId: string }) =>
  a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0;
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/**
 * The plan. `policy` may be a number: the N newest (backup.retainFull).
 * `now` (ISO 8601) is needed by tiers; the caller reads the clock.
 */
export function planRetention(
  backups: readonly CatalogEntry[],
  walFiles: readonly RetentionWalFile[],
  policyOrKeep: RetentionPolicy | number,
  now?: string,
): RetentionPlan {
  const policy: RetentionPolicy =
    typeof policyOrKeep === 'number' ? { kind: 'newest', keep: policyOrKeep } : policyOrKeep;
  if (policy.kind === 'newest' && (!Number.isInteger(policy.keep) || policy.keep < 1)) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `keep must be an integer of at least 1, got ${JSON.stringify(policy.keep)}`,
      {
        hints: ['retention always keeps at least one verified backup (runbook backup.retainFull, or --keep)'],
      },
    );
  }
  const at = now !== undefined ? new Date(now) : undefined;
  if (policy.kind === 'tiers' && (at === undefined || Number.isNaN(at.getTime()))) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `tiered retention needs the time of the plan, got ${JSON.stringify(now)}`,
      { hints: ['nothing was deleted'] },
    );
  }
  const sorted = [...backups].sort(byId);
  const verified = sorted.filter((b): b is CompleteEntry => b.status === 'complete');
  const incomplete = sorted.flatMap((b) =>
    b.status === 'incomplete' ? [{ backupId: b.backupId, problem: b.problem, storedBytes: b.storedBytes }] : [],
  );
  const base = {
    policy,
    ...(policy.kind === 'newest' ? { keep: policy.keep } : {}),
    ...(at ? { at: at.toISOString() } : {}),
    verified: verified.length,
    incomplete,
    historyFilesKept: walFiles.filter((f) => walFileKind(f.name) === 'history').length,
  };
  if (verified.length === 0) {
    return {
      ...base,
      kept: [],
      expire: [],
      walDelete: [],
      walDeleteCount: 0,
      walDeleteBytes: 0,
      walKeptCount: walFiles.length,
      nothingToDo:
        'no complete, verified backup in the repository: nothing is deleted, since the archived WAL may be all that is left',
    };
  }
  const segSize = verified[0]!.meta.walSegmentSize;
  const mismatch = verified.find((e) => e.meta.walSegmentSize !== segSize);
  if (mismatch) {
    throw new LifeboatError(
      'REPOSITORY_INVALID',
      `backups disagree on the WAL segment size (${segSize} and ${mismatch.meta.walSegmentSize} bytes, backup ${mismatch.backupId})`,
      {
        hints: [
          'one cluster has one segment size; check that these backups belong to the same cluster',
          'nothing was deleted',
        ],
      },
    );
  }

  const chosen = policy.kind === 'newest' ? chooseNewest(verified, policy.keep) : chooseTiers(verified, policy, at!);
  const keptIds = new Set(chosen.reasons.keys());
  const kept = verified
    .filter((e) => keptIds.has(e.backupId))
    .map((e) => ({ backupId: e.backupId, reason: chosen.reasons.get(e.backupId)!.join(', ') }));
  const expire = verified
    .filter((e) => !keptIds.has(e.backupId))
    .map((e) => ({
      backupId: e.backupId,
      startWal: e.meta.startWal,
      storedBytes: e.storedBytes,
      reason: chosen.whyNot(e),
    }));

  const walKeep = pruneRanges(
    [
      { from: chosen.windowFrom, why: chosen.windowWhy },
      ...verified
        .filter((e) => keptIds.has(e.backupId))
        .map((e) => ({
          from: e.meta.startWal,
          to: e.meta.endWal,
          why: `backup ${e.backupId} (${chosen.reasons.get(e.backupId)!.join(', ')})`,
        })),
    ],
    segSize,
  );
  const doomed = walFilesToDelete(walFiles, walKeep, segSize);
  const walDelete = summarizeWal(walFiles, doomed, walKeep, segSize, chosen.deleteWhy);
  const walDeleteCount = doomed.length;
  return {
    ...base,
    kept,
    expire,
    ...(chosen.tiers ? { tiers: chosen.tiers } : {}),
    ...(chosen.window ? { window: chosen.window } : {}),
    walSegmentSize: segSize,
    walKeep,
    walDelete,
    walDeleteCount,
    walDeleteBytes: doomed.reduce((n, f) => n + f.size, 0),
    walKeptCount: walFiles.length - walDeleteCount,
    ...(expire.length === 0 && walDeleteCount === 0
      ? {
          nothingToDo:
            policy.kind === 'newest'
              ? `${plural(verified.length, 'verified backup')}, keep ${policy.keep}: nothing is older than retention`
              : `${plural(verified.length, 'verified backup')}, all kept by the tiers, and no WAL outside what they and the window need`,
        }
      : {}),
  };
}

interface Chosen {
  /** Kept backups and why. */
  reasons: Map<string, string[]>;
  whyNot: (e: CompleteEntry) => string;
  /** The open WAL range: the point-in-time window. */
  windowFrom: string;
  windowWhy: string;
  deleteWhy: string;
  tiers?: TierKept[];
  window?: RetentionPlan['window'];
}

function chooseNewest(verified: CompleteEntry[], keep: number): Chosen {
  const keptEntries = verified.slice(-keep);
  const reasons = new Map(
    keptEntries.map((e) => [e.backupId, [`one of the ${keep} newest verified backup${keep === 1 ? '' : 's'}`]]),
  );
  // Every segment from the smallest start among the kept backups, on their
  // lowest timeline or a later one (they differ from the oldest backup's
  // only when a restore went back in time onto a new timeline).
  const segSize = keptEntries[0]!.meta.walSegmentSize;
  let cut = keptEntries[0]!;
  let timeline = cut.meta.timeline;
  for (const e of keptEntries) {
    if (parseSegmentName(e.meta.startWal, segSize).segno < parseSegmentName(cut.meta.startWal, segSize).segno) cut = e;
    timeline = Math.min(timeline, e.meta.timeline);
  }
  const from = segmentName(timeline, parseSegmentName(cut.meta.startWal, segSize).segno, segSize);
  return {
    reasons,
    whyNot: () => `older than the ${keep} newest verified backup${keep === 1 ? '' : 's'}`,
    windowFrom: from,
    windowWhy: `every segment from ${cut.meta.startWal} on (backup ${cut.backupId}, the oldest kept, starts there)`,
    deleteWhy: `before ${cut.meta.startWal}, where backup ${cut.backupId}, the oldest kept, starts`,
  };
}

function chooseTiers(verified: CompleteEntry[], policy: Extract<RetentionPolicy, { kind: 'tiers' }>, at: Date): Chosen {
  const reasons = new Map<string, string[]>();
  const add = (id: string, why: string) => reasons.set(id, [...(reasons.get(id) ?? []), why]);
  const started = (e: CompleteEntry) => new Date(e.meta.startTime);
  const newestFirst = [...verified].reverse();
  const tiers: TierKept[] = [];
  // Per tier and period: the backup kept there, for saying why another is not.
  const keeperOf = new Map<string, string>();
  const oldestIndex = new Map<Tier, number>();
  for (const tier of TIERS) {
    const n = policy.full[tier];
    if (n === undefined) continue;
    const lowest = periodOf(tier, at).index - n + 1;
    oldestIndex.set(tier, lowest);
    const t: TierKept = { tier, periods: n, from: periodLabel(tier, lowest), kept: [] };
    for (const e of newestFirst) {
      const d = started(e);
      if (Number.isNaN(d.getTime())) continue;
      const p = periodOf(tier, d);
      if (p.index < lowest || keeperOf.has(`${tier} ${p.label}`)) continue;
      keeperOf.set(`${tier} ${p.label}`, e.backupId);
      t.kept.push({ period: p.label, backupId: e.backupId });
      add(e.backupId, `${tier} ${p.label}`);
    }
    tiers.push(t);
  }
  for (const e of verified) {
    // A start time that is no date cannot be placed in a period: kept rather than guessed.
    if (Number.isNaN(started(e).getTime()))
      add(e.backupId, `start time ${JSON.stringify(e.meta.startTime)} is not a date`);
  }
  const newest = verified[verified.length - 1]!;
  if (!reasons.has(newest.backupId)) add(newest.backupId, 'the newest verified backup (always kept)');

  // The window: a restore to any time after `coversFrom` starts from the
  // newest backup that ended by then (recovery preflight picks the newest
  // backup that finished before the target). Without one, the oldest
  // backup: the window then reaches back only as far as the backups do.
  const coversFrom = new Date(at.getTime() - policy.walSeconds * 1000);
  const ended = verified.filter((e) => new Date(e.meta.endTime).getTime() <= coversFrom.getTime());
  const anchor = ended[ended.length - 1] ?? verified[0]!;
  const span = describeSeconds(policy.walSeconds);
  const windowWhy =
    ended.length > 0
      ? `point-in-time window (${span}, targets from ${coversFrom.toISOString()}): restores start from backup ${anchor.backupId}, the newest that ended by then`
      : `point-in-time window (${span}, targets from ${coversFrom.toISOString()}): no backup ended that early, so from the oldest, ${anchor.backupId}`;
  add(anchor.backupId, `start of the point-in-time window (${span})`);

  return {
    reasons,
    whyNot: (e) => {
      const d = started(e);
      const parts = tiers.map((t) => {
        const p = periodOf(t.tier, d);
        return p.index < oldestIndex.get(t.tier)!
          ? `${t.tier} keeps from ${t.from}`
          : `${t.tier} ${p.label} keeps ${keeperOf.get(`${t.tier} ${p.label}`)}`;
      });
      return `kept by no tier (${parts.join('; ')}), and the point-in-time window (${span}) starts at a later backup, ${anchor.backupId}`;
    },
    windowFrom: anchor.meta.startWal,
    windowWhy,
    deleteWhy: `needed by no kept backup, and older than the point-in-time window (${span}: from ${anchor.meta.startWal}, backup ${anchor.backupId})`,
    tiers,
    window: {
      backupId: anchor.backupId,
      startWal: anchor.meta.startWal,
      coversFrom: coversFrom.toISOString(),
      why: windowWhy,
    },
  };
}

function rangesOf(plan: RetentionPlan): { keep: WalRange[]; segSize: number } | undefined {
  if (plan.walKeep && plan.walSegmentSize) return { keep: plan.walKeep, segSize: plan.walSegmentSize };
  if (plan.walCutoff) return { keep: cutoffAsRanges(plan.walCutoff), segSize: plan.walCutoff.walSegmentSize };
  return undefined;
}

export interface ReconciledDeletion {
  backups: string[];
  /** WAL either plan keeps; absent: no WAL is deleted. */
  walKeep?: WalRange[];
  walSegmentSize?: number;
  /** Backups the approved plan would expire that the repository as it is now keeps. */
  skippedBackups: { backupId: string; reason: string }[];
}

/**
 * What may be deleted now: only what the approved plan and a plan of the
 * repository as it is now both allow. The catalog can change between plan and
 * apply (a backup finished, one was deleted by hand); this never deletes more
 * than either plan: a backup both expire, a segment neither keeps.
 */
export function reconcilePlans(approved: RetentionPlan, fresh: RetentionPlan): ReconciledDeletion {
  if (fresh.kept.length === 0) {
    const reason = fresh.nothingToDo ?? 'no verified backup left to keep';
    return { backups: [], skippedBackups: approved.expire.map((e) => ({ backupId: e.backupId, reason })) };
  }
  const freshExpire = new Set(fresh.expire.map((e) => e.backupId));
  const backups: string[] = [];
  const skippedBackups: ReconciledDeletion['skippedBackups'] = [];
  for (const e of approved.expire) {
    if (freshExpire.has(e.backupId)) backups.push(e.backupId);
    else skippedBackups.push({ backupId: e.backupId, reason: 'no longer expires: the catalog changed since the plan' });
  }
  const a = rangesOf(approved);
  const f = rangesOf(fresh);
  if (!a || !f || a.segSize !== f.segSize) return { backups, skippedBackups };
  return {
    backups,
    skippedBackups,
    walKeep: pruneRanges([...a.keep, ...f.keep], a.segSize),
    walSegmentSize: a.segSize,
  };
}

/**
 * With tiers: the backup from which `lifeboat check` expects the WAL without
 * gaps (where the point-in-time window starts), and a note saying so. Older
 * backups need only their own WAL: the rest was expired on purpose.
 */
export function continuityFrom(
  backups: readonly CatalogEntry[],
  walFiles: readonly RetentionWalFile[],
  policy: RetentionPolicy,
  now: string,
): { backupId: string; note: string } | undefined {
  if (policy.kind !== 'tiers') return undefined;
  const plan = planRetention(backups, walFiles, policy, now);
  if (!plan.window) return undefined;
  return {
    backupId: plan.window.backupId,
    note:
      `retention tiers: WAL checked without gaps from backup ${plan.window.backupId} on (where the point-in-time window of ${describeSeconds(policy.walSeconds)} starts); ` +
      'older backups only for their own WAL, the rest expires on purpose',
  };
}
