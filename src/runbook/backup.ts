// The runbook's `backup:` (where base backups are taken and staged) and
// `retention:` (the tiers expireBackups keeps, src/catalog/tiers.ts).
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { absolutePath, duration, identifier } from './fields';

export const Backup = z.strictObject({
  /** The host whose worker runs pg_basebackup (its `lifeboat-host-<host>` queue). */
  host: identifier('a host name').optional(),
  /**
   * How many full backups `expireBackups` keeps (2 when neither this nor
   * `retention:` is set; src/catalog/tiers.ts retentionPolicy).
   */
  retainFull: z
    .number({ error: 'expected an integer of at least 1' })
    .int({ error: 'expected an integer of at least 1' })
    .min(1, { error: 'expected an integer of at least 1' })
    .optional(),
  /** Where the backup is staged and verified before upload. */
  scratchDir: absolutePath('the scratch directory').optional(),
});

const tierCount = (period: string) =>
  z
    .number({ error: `expected a whole number of ${period}s of at least 1` })
    .int({ error: `expected a whole number of ${period}s of at least 1` })
    .min(1, { error: `expected a whole number of ${period}s of at least 1` })
    .optional();

/**
 * Tiered retention (src/catalog/tiers.ts): in each of the last N UTC days,
 * ISO weeks, months or years, the newest verified backup is kept; `wal` is
 * how far back point-in-time recovery stays possible. Replaces backup.retainFull.
 */
export const Retention = z.strictObject(
  {
    full: z
      .strictObject(
        { daily: tierCount('day'), weekly: tierCount('week'), monthly: tierCount('month'), yearly: tierCount('year') },
        { error: 'expected a mapping of tiers: daily, weekly, monthly, yearly (each a number of periods)' },
      )
      .refine((f) => Object.values(f).some((n) => n !== undefined), {
        error: 'expected at least one of daily, weekly, monthly, yearly',
      }),
    wal: duration,
  },
  { error: 'expected a mapping with full ({ daily, weekly, monthly, yearly }) and wal (a duration such as "35d")' },
);
