// Retention (the `expireBackups` workflow): which backups and WAL files may
// go. Pure functions, so the rules are tested without a repository and the
// plan can travel through workflow history.
//
// The rules, in the order they protect data:
// - Nothing is deleted unless at least one complete, verified backup is kept.
// - The `keep` newest verified backups stay; verified backups older than the
//   oldest of them expire. Incomplete backup directories are never deleted
//   here: one may be a backup still being written.
// - Only WAL segments go, and only those strictly before the oldest kept
//   backup's start segment on its timeline or an older one. History files,
//   .partial and .backup files always stay: they are tiny, and a missing
//   history file silently stops a restore from following a timeline switch.
//
// A plan is a summary plus a cutoff rule rather than a list of WAL names: a
// month of WAL is tens of thousands of names, more than a workflow payload
// may hold. `applyExpiry` re-reads the repository and deletes only what both
// the approved plan and a fresh plan allow.
import { LifeboatError } from '../errors';
import { parseSegmentName, walFileKind } from '../wal/names';
import type { CatalogEntry } from './catalog';

export interface RetentionWalFile {
  name: string;
  /** Stored bytes. */
  size: number;
}

/** Segments with timeline <= `timeline` and segment number < that of `beforeSegment` may be deleted. */
export interface WalCutoff {
  timeline: number;
  beforeSegment: string;
  walSegmentSize: number;
  /** The kept backup whose start sets the cutoff. */
  backupId: string;
}

export interface WalDeleteSummary {
  timeline: number;
  first: string;
  last: string;
  count: number;
  storedBytes: number;
}

export interface RetentionPlan {
  keep: number;
  /** Complete, verified backups found. */
  verified: number;
  kept: { backupId: string; reason: string }[];
  expire: { backupId: string; startWal: string; storedBytes: number; reason: string }[];
  /** Backup directories without a valid backup.json: listed, never deleted. */
  incomplete: { backupId: string; problem: string; storedBytes: number }[];
  walCutoff?: WalCutoff;
  walDelete: WalDeleteSummary[];
  walDeleteCount: number;
  walDeleteBytes: number;
  walKeptCount: number;
  historyFilesKept: number;
  /** Set when the plan deletes nothing on purpose, saying why. */
  nothingToDo?: string;
}

export function planRetention(
  backups: readonly CatalogEntry[],
  walFiles: readonly RetentionWalFile[],
  keep: number,
): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 1) {
    throw new LifeboatError('INPUT_INVALID', `keep must be an integer of at least 1, got ${JSON.stringify(keep)}`, {
      hints: ['retention always keeps at least one verified backup (runbook backup.retainFull, or --keep)'],
    });
  }
  const sorted = [...backups].sort((a, b) => (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0));
  const verified = sorted.filter((b): b is Extract<CatalogEntry, { status: 'complete' }> => b.status === 'complete');
  const incomplete = sorted.flatMap((b) =>
    b.status === 'incomplete' ? [{ backupId: b.backupId, problem: b.problem, storedBytes: b.storedBytes }] : [],
  );
  const historyFilesKept = walFiles.filter((f) => walFileKind(f.name) === 'history').length;

  const keptEntries = verified.slice(-keep);
  const expiredEntries = verified.slice(0, Math.max(0, verified.length - keep));
  const base = {
    keep,
    verified: verified.length,
    incomplete,
    historyFilesKept,
  };
  if (keptEntries.length === 0) {
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

  const kept = keptEntries.map((e) => ({
    backupId: e.backupId,
    reason: `one of the ${keep} newest verified backup${keep === 1 ? '' : 's'}`,
  }));
  const expire = expiredEntries.map((e) => ({
    backupId: e.backupId,
    startWal: e.meta.startWal,
    storedBytes: e.storedBytes,
    reason: `older than the ${keep} newest verified backup${keep === 1 ? '' : 's'}`,
  }));

  // The cutoff protects every kept backup: the smallest start segment and the
  // lowest timeline among them (they differ from the oldest backup's only
  // when a restore went back in time onto a new timeline).
  const segSize = keptEntries[0]!.meta.walSegmentSize;
  let cut = keptEntries[0]!;
  let timeline = cut.meta.timeline;
  for (const e of keptEntries) {
    if (e.meta.walSegmentSize !== segSize) {
      throw new LifeboatError('REPOSITORY_INVALID', `kept backups disagree on the WAL segment size (${segSize} and ${e.meta.walSegmentSize} bytes)`, {
        hints: ['one cluster has one segment size; check that these backups belong to the same cluster', 'nothing was deleted'],
      });
    }
    if (parseSegmentName(e.meta.startWal, segSize).segno < parseSegmentName(cut.meta.startWal, segSize).segno) cut = e;
    timeline = Math.min(timeline, e.meta.timeline);
  }
  const walCutoff: WalCutoff = { timeline, beforeSegment: cut.meta.startWal, walSegmentSize: segSize, backupId: cut.backupId };
  const doomed = walFilesToDelete(walFiles, walCutoff);
  const walDelete = summarizeWal(doomed, segSize);
  const walDeleteBytes = doomed.reduce((n, f) => n + f.size, 0);
  return {
    ...base,
    kept,
    expire,
    walCutoff,
    walDelete,
    walDeleteCount: doomed.length,
    walDeleteBytes,
    walKeptCount: walFiles.length - doomed.length,
    ...(expire.length === 0 && doomed.length === 0
      ? { nothingToDo: `${verified.length} verified backup${verified.length === 1 ? '' : 's'}, keep ${keep}: nothing is older than retention` }
      : {}),
  };
}

/** The WAL files a cutoff allows deleting: segments only, never history, .partial or .backup files. */
export function walFilesToDelete<F extends RetentionWalFile>(walFiles: readonly F[], cutoff: WalCutoff): F[] {
  const before = parseSegmentName(cutoff.beforeSegment, cutoff.walSegmentSize).segno;
  return walFiles.filter((f) => {
    if (walFileKind(f.name) !== 'segment') return false;
    const { timeline, segno } = parseSegmentName(f.name, cutoff.walSegmentSize);
    return timeline <= cutoff.timeline && segno < before;
  });
}

/** The stricter of two cutoffs: what both allow. */
export function intersectCutoffs(a: WalCutoff | undefined, b: WalCutoff | undefined): WalCutoff | undefined {
  if (!a || !b || a.walSegmentSize !== b.walSegmentSize) return undefined;
  const sa = parseSegmentName(a.beforeSegment, a.walSegmentSize).segno;
  const sb = parseSegmentName(b.beforeSegment, b.walSegmentSize).segno;
  const earlier = sa <= sb ? a : b;
  return { ...earlier, timeline: Math.min(a.timeline, b.timeline) };
}

export interface ReconciledDeletion {
  backups: string[];
  cutoff?: WalCutoff;
  /** Backups the approved plan would expire that the repository as it is now keeps. */
  skippedBackups: { backupId: string; reason: string }[];
}

/**
 * What may be deleted now: only what the approved plan and a plan of the
 * repository as it is now both allow. The catalog can change between plan and
 * apply (a backup finished, one was deleted by hand); this never deletes more
 * than either plan.
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
  const cutoff = intersectCutoffs(approved.walCutoff, fresh.walCutoff);
  return { backups, skippedBackups, ...(cutoff ? { cutoff } : {}) };
}

/** Per timeline: first and last segment, count and stored bytes. */
export function summarizeWal(files: readonly RetentionWalFile[], segSize: number): WalDeleteSummary[] {
  const byTli = new Map<number, { files: { name: string; segno: bigint; size: number }[] }>();
  for (const f of files) {
    const { timeline, segno } = parseSegmentName(f.name, segSize);
    const t = byTli.get(timeline) ?? { files: [] };
    t.files.push({ name: f.name, segno, size: f.size });
    byTli.set(timeline, t);
  }
  return [...byTli.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([timeline, t]) => {
      t.files.sort((a, b) => (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0));
      return {
        timeline,
        first: t.files[0]!.name,
        last: t.files[t.files.length - 1]!.name,
        count: t.files.length,
        storedBytes: t.files.reduce((n, f) => n + f.size, 0),
      };
    });
}
