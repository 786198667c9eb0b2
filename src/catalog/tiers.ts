// Retention policies (runbook `retention:` or `backup.retainFull`) and the
// calendar periods of the tiers. Pure functions: src/catalog/retention.ts
// plans with them, the CLI prints with them, tests forge dates freely.
//
// Periods are UTC calendar periods: a day, an ISO 8601 week (Monday to
// Sunday, "2026-W49"), a month, a year. A tier of N keeps, in each of the
// last N periods counted back from the plan's time (the current one
// included), the newest verified backup that started in it. A period without
// a backup keeps nothing: a gap in the backups does not stretch the tier
// further back (the newest verified backup is always kept besides).
import { LifeboatError } from '../errors';

export const TIERS = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export type Tier = (typeof TIERS)[number];

export type RetentionPolicy =
  /** Legacy `backup.retainFull` (or `--keep`): the N newest verified backups, and all WAL from the oldest of them on. */
  | { kind: 'newest'; keep: number }
  /** `retention:`: tiers of full backups, and a point-in-time window for the WAL. */
  | { kind: 'tiers'; full: Partial<Record<Tier, number>>; walSeconds: number };

/** What src/runbook/schema.ts `retention:` parses to. */
export interface RetentionSetting {
  full: Partial<Record<Tier, number>>;
  /** Seconds of point-in-time recovery to keep possible. */
  wal: number;
}

/** The default of `backup.retainFull` when the runbook sets neither it nor `retention:`. */
export const DEFAULT_RETAIN_FULL = 2;

/**
 * The runbook's policy. `keep` (`lifeboat expire --keep`, the workflow's
 * `keep` input) overrides `backup.retainFull`, never `retention:` tiers: a
 * quick "--keep 2" must not erase a compliance tier.
 */
export function retentionPolicy(
  runbook: { backup: { retainFull?: number | undefined }; retention?: RetentionSetting | undefined },
  keep?: number,
): RetentionPolicy {
  if (runbook.retention) {
    if (keep !== undefined) {
      throw new LifeboatError(
        'INPUT_INVALID',
        `keep ${keep} cannot override the runbook's retention: tiers (${describePolicy(fromSetting(runbook.retention))})`,
        {
          hints: ["change the tiers in the runbook's retention: section instead", 'nothing was deleted'],
        },
      );
    }
    return fromSetting(runbook.retention);
  }
  return { kind: 'newest', keep: keep ?? runbook.backup.retainFull ?? DEFAULT_RETAIN_FULL };
}

function fromSetting(r: RetentionSetting): RetentionPolicy {
  const full: Partial<Record<Tier, number>> = {};
  for (const t of TIERS) if (r.full[t] !== undefined) full[t] = r.full[t];
  return { kind: 'tiers', full, walSeconds: r.wal };
}

/** "daily 35, monthly 13, yearly 7; WAL 35 days" or "the 2 newest verified backups". */
export function describePolicy(p: RetentionPolicy): string {
  if (p.kind === 'newest') return `keep the ${p.keep} newest verified backup${p.keep === 1 ? '' : 's'}`;
  const tiers = TIERS.filter((t) => p.full[t] !== undefined).map((t) => `${t} ${p.full[t]}`);
  return `tiers ${tiers.join(', ')}; point-in-time window ${describeSeconds(p.walSeconds)}`;
}

export function describeSeconds(s: number): string {
  if (s % 86400 === 0) return `${s / 86400} day${s === 86400 ? '' : 's'}`;
  if (s % 3600 === 0) return `${s / 3600} hour${s === 3600 ? '' : 's'}`;
  return `${s} s`;
}

const DAY_MS = 86_400_000;

/**
 * The period of `tier` holding `t`, as an index that counts up by one per
 * period (so "the last N" is index > now - N), and its label.
 */
export function periodOf(tier: Tier, t: Date): { index: number; label: string } {
  const days = Math.floor(t.getTime() / DAY_MS);
  switch (tier) {
    case 'daily':
      return { index: days, label: t.toISOString().slice(0, 10) };
    case 'weekly': {
      // 1970-01-01 was a Thursday: Monday-based weeks count from 1969-12-29.
      const index = Math.floor((days + 3) / 7);
      return { index, label: isoWeekLabel(t) };
    }
    case 'monthly':
      return { index: t.getUTCFullYear() * 12 + t.getUTCMonth(), label: t.toISOString().slice(0, 7) };
    case 'yearly':
      return { index: t.getUTCFullYear(), label: String(t.getUTCFullYear()) };
  }
}

/** The label of the period with this index (e.g. the oldest period a tier keeps). */
export function periodLabel(tier: Tier, index: number): string {
  switch (tier) {
    case 'daily':
      return periodOf(tier, new Date(index * DAY_MS)).label;
    case 'weekly':
      return periodOf(tier, new Date((index * 7 - 3) * DAY_MS)).label;
    case 'monthly':
      return periodOf(tier, new Date(Date.UTC(Math.floor(index / 12), index % 12, 1))).label;
    case 'yearly':
      return String(index);
  }
}

/** ISO 8601 week: the week belongs to the year of its Thursday. */
function isoWeekLabel(t: Date): string {
  const day = Math.floor(t.getTime() / DAY_MS);
  const monday = day - ((new Date(day * DAY_MS).getUTCDay() + 6) % 7);
  const thursday = new Date((monday + 3) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return `${year}-W${String(week).padStart(2, '0')}`;
}
