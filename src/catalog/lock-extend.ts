// S3 Object Lock for the retention tiers: `expire` moves the retain-until
// date of every object of a backup a tier keeps (its base backup objects and
// the WAL that backup needs: its own start..end segments, its .backup file,
// the history files of its timelines) to the moment that backup leaves its
// tier. The lock written at upload (repository.objectLock days / walDays)
// covers the daily backups; a monthly or yearly one outlives it, and without
// this the store would no longer protect it long before the policy lets it go.
//
// Until when, and why that date: the start of the first period the tier no
// longer keeps (a yearly tier of 7 keeps the 2024 backup until
// 2031-01-01T00:00:00Z, a monthly tier of 13 the 2026-03 one until
// 2027-04-01). It is what the policy promises, so an auditor can check each
// date against the runbook; it depends only on the backup's start time and
// the runbook, so a second run finds nothing to move (idempotent), and the
// lock holds even if expire never runs again. A backup in several tiers gets
// the latest of their dates.
//
// Only periods that have ENDED count: while a period is open its keeper
// changes with every new backup (this year's yearly backup is today's
// backup), and a lock, once set, cannot be taken back in compliance mode.
// The keeper of an open period keeps its upload lock; the first expire after
// the period ends extends it. A backup that completes after its period ended
// and replaces the keeper (started at 23:59 on 31 December) is extended too;
// the one it replaced stays locked until the date it was given.
//
// Never shorter: each object's current retention is read first (HEAD) and
// only a later date is written (S3 PutObjectRetention, allowed to extend in
// both modes; shortening needs s3:BypassGovernanceRetention in governance
// mode, which no Lifeboat identity holds, and is impossible in compliance
// mode, so the store refuses it even if a read were stale). An object keeps
// its mode; one written without a lock gets the runbook's mode. Shrinking a
// tier in the runbook later does not shorten locks already written.
import { withContext } from '../errors';
import { keys } from '../repository/layout';
import { mapLimit, type ObjectLockSetting } from '../repository/object-lock';
import type { ObjectInfo, Repository } from '../repository/types';
import { parseSegmentName, walFileKind } from '../wal/names';
import type { CatalogEntry, CompleteEntry, WalArchiveFile } from './catalog';
import type { RetentionPlan } from './retention';
import { periodOf, type Tier } from './tiers';

const DAY_MS = 86_400_000;
/** HEADs and PutObjectRetention calls at once, as src/catalog/locked.ts. */
const CONCURRENCY = 16;

/** A backup a tier keeps for a period that has ended: locked until it leaves its tier. */
export interface TierLockTarget {
  backupId: string;
  /** "yearly 2024", "monthly 2026-03": the tiers (ended periods) that keep it. */
  tiers: string[];
  /** ISO 8601: when it leaves the last of them. */
  until: string;
}

/** A backup a tier keeps for a period still open: extended by the first expire after it ends. */
export interface OpenTierKeeper {
  backupId: string;
  tiers: string[];
  /** ISO 8601: when the earliest of those periods ends. */
  periodEnds: string;
}

export interface LockExtension extends TierLockTarget {
  /** Objects found: the backup's own and its WAL files'. */
  objects: number;
  walFiles: number;
  /** Objects whose retention was (in a plan: would be) moved to `until`. */
  extended: number;
  /** Objects already locked until `until` or later: left as they are. */
  covered: number;
}

export interface LockExtensionReport {
  /** Mode given to objects written without a lock (the runbook's); locked ones keep theirs. */
  mode: 'governance' | 'compliance';
  backups: LockExtension[];
  open: OpenTierKeeper[];
  /** Sum of `extended` over the backups. */
  extended: number;
}

/** The first instant of the period of `tier` with this index (periodOf's index). */
export function periodStart(tier: Tier, index: number): Date {
  switch (tier) {
    case 'daily':
      return new Date(index * DAY_MS);
    case 'weekly':
      // Index 0 is the week of Monday 1969-12-29 (src/catalog/tiers.ts).
      return new Date((index * 7 - 3) * DAY_MS);
    case 'monthly':
      return new Date(Date.UTC(Math.floor(index / 12), index % 12, 1));
    case 'yearly':
      return new Date(Date.UTC(index, 0, 1));
  }
}

/**
 * Which backups the plan's tiers keep for periods that have ended, and until
 * when each must stay locked; and which they keep for open periods.
 */
export function tierLockTargets(
  plan: RetentionPlan,
  entries: readonly CatalogEntry[],
): { targets: TierLockTarget[]; open: OpenTierKeeper[] } {
  if (!plan.tiers || !plan.at) return { targets: [], open: [] };
  const at = new Date(plan.at).getTime();
  const byId = new Map(entries.filter((e): e is CompleteEntry => e.status === 'complete').map((e) => [e.backupId, e]));
  const closed = new Map<string, { tiers: string[]; until: number }>();
  const open = new Map<string, { tiers: string[]; ends: number }>();
  for (const t of plan.tiers) {
    for (const k of t.kept) {
      const e = byId.get(k.backupId);
      const start = e ? new Date(e.meta.startTime) : undefined;
      if (!start || Number.isNaN(start.getTime())) continue;
      const p = periodOf(t.tier, start);
      const ends = periodStart(t.tier, p.index + 1).getTime();
      const label = `${t.tier} ${p.label}`;
      if (ends > at) {
        const o = open.get(k.backupId) ?? { tiers: [], ends };
        open.set(k.backupId, { tiers: [...o.tiers, label], ends: Math.min(o.ends, ends) });
        continue;
      }
      // Kept while the tier's oldest period is at or before p: it leaves when period p + N begins.
      const leaves = periodStart(t.tier, p.index + t.periods).getTime();
      const c = closed.get(k.backupId) ?? { tiers: [], until: leaves };
      closed.set(k.backupId, { tiers: [...c.tiers, label], until: Math.max(c.until, leaves) });
    }
  }
  const sorted = <T extends { backupId: string }>(xs: T[]) =>
    xs.sort((a, b) => (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0));
  return {
    targets: sorted(
      [...closed].map(([backupId, c]) => ({ backupId, tiers: c.tiers, until: new Date(c.until).toISOString() })),
    ),
    // A backup whose lock is extended for one tier already is not "waiting" for another's period to end.
    open: sorted(
      [...open]
        .filter(([id]) => !closed.has(id))
        .map(([backupId, o]) => ({ backupId, tiers: o.tiers, periodEnds: new Date(o.ends).toISOString() })),
    ),
  };
}

/** The WAL files a backup needs of the archive: its own segments, its .backup file, the history files up to its timeline. */
export function walFilesOfBackup<F extends { name: string }>(meta: CompleteEntry['meta'], files: readonly F[]): F[] {
  const seg = meta.walSegmentSize;
  const from = parseSegmentName(meta.startWal, seg);
  const to = parseSegmentName(meta.endWal, seg);
  const inRange = (name: string) => {
    const s = parseSegmentName(name, seg);
    return s.timeline >= from.timeline && s.timeline <= to.timeline && s.segno >= from.segno && s.segno <= to.segno;
  };
  return files.filter((f) => {
    switch (walFileKind(f.name)) {
      case 'segment':
        return inRange(f.name);
      case 'backup':
        return inRange(f.name.slice(0, 24));
      case 'history':
        // PostgreSQL reads the history file of the timeline it recovers on, and through it the earlier ones.
        return parseInt(f.name.slice(0, 8), 16) <= to.timeline;
      default:
        return false;
    }
  });
}

/**
 * Reads the retention of every object of each target and, when `apply`,
 * moves the earlier ones to the target's date. Undefined when there is
 * nothing to lock (no tiers) or nothing can be locked here: no
 * repository.objectLock, a file:// repository, or a bucket without Object
 * Lock (lifeboat check reports that one).
 */
export async function extendTierLocks(
  repo: Repository,
  cluster: string,
  input: {
    targets: readonly TierLockTarget[];
    open: readonly OpenTierKeeper[];
    entries: readonly CatalogEntry[];
    walFiles: readonly WalArchiveFile[];
    setting: ObjectLockSetting | undefined;
    apply: boolean;
    /** Objects read (and extended) so far, of all: for heartbeats. */
    onProgress?: (done: number, total: number) => void;
  },
): Promise<LockExtensionReport | undefined> {
  const { setting } = input;
  // Nothing to do or say: no tiers (backup.retainFull), or no tier keeps a backup yet.
  if (input.targets.length === 0 && input.open.length === 0) return undefined;
  if (!setting || !repo.putRetention) return undefined;
  if (repo.bucketObjectLock && !(await repo.bucketObjectLock()).enabled) return undefined;
  const putRetention = repo.putRetention.bind(repo);
  try {
    const metas = new Map(
      input.entries.filter((e): e is CompleteEntry => e.status === 'complete').map((e) => [e.backupId, e.meta]),
    );
    const work = await Promise.all(
      input.targets.flatMap((t) => {
        const meta = metas.get(t.backupId);
        if (!meta) return [];
        const wal = walFilesOfBackup(meta, input.walFiles);
        return [
          repo
            .list(keys.backupPrefix(cluster, t.backupId))
            .then((objects) => ({ t, wal, keys: [...objects.map((o) => o.key), ...wal.flatMap((f) => f.keys)] })),
        ];
      }),
    );
    const total = work.reduce((n, w) => n + w.keys.length, 0);
    let done = 0;
    input.onProgress?.(done, total);
    const backups: LockExtension[] = [];
    for (const w of work) {
      const until = new Date(w.t.until);
      const results = await mapLimit(w.keys, CONCURRENCY, async (key) => {
        const info: ObjectInfo | undefined = await repo.head(key);
        let r: 'extended' | 'covered' | 'gone';
        if (!info) r = 'gone';
        else if (info.lock && info.lock.retainUntil.getTime() >= until.getTime()) r = 'covered';
        else {
          if (input.apply)
            await putRetention(key, { mode: info.lock?.mode ?? setting.mode, retainUntil: until }, info.versionId);
          r = 'extended';
        }
        input.onProgress?.(++done, total);
        return r;
      });
      backups.push({
        ...w.t,
        objects: results.filter((r) => r !== 'gone').length,
        walFiles: w.wal.length,
        extended: results.filter((r) => r === 'extended').length,
        covered: results.filter((r) => r === 'covered').length,
      });
    }
    return {
      mode: setting.mode,
      backups,
      open: [...input.open],
      extended: backups.reduce((n, b) => n + b.extended, 0),
    };
  } catch (err) {
    throw withContext(`while extending the Object Lock of the backups the retention tiers keep in ${repo.url}`, err);
  }
}

/** The lines `expire` prints: what was (or would be) extended, until when, and what waits for its period to end. */
export function lockExtensionLines(r: LockExtensionReport | undefined, dryRun: boolean): string[] {
  if (!r) return [];
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const out = [
    `Object Lock of backups kept by tiers (until each leaves its tier; never shortened): ${dryRun ? 'would extend' : 'extended'} ${n(r.extended, 'object')}` +
      `${r.backups.length === 0 ? '' : ` of ${n(r.backups.length, 'backup')}`}`,
  ];
  for (const b of r.backups) {
    out.push(
      `  ${b.backupId} (${b.tiers.join(', ')}): until ${b.until}: ${n(b.objects, 'object')} (${n(b.walFiles, 'WAL file')}), ` +
        `${b.extended} ${dryRun ? 'to extend' : 'extended'}, ${b.covered} already locked that long`,
    );
  }
  for (const o of r.open)
    out.push(
      `  ${o.backupId} (${o.tiers.join(', ')}): period still open, keeps its upload lock; extended by the first expire after ${o.periodEnds}`,
    );
  return out;
}
