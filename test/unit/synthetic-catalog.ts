// A synthetic backup catalog for the retention tests: verified backups with
// forged dates, each on its own WAL segments, and the two years of daily
// backups the tier tests plan over (test/unit/retention-tiers.test.ts,
// test/unit/lock-extend.test.ts).
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { CatalogEntry } from '../../src/catalog/catalog';
import type { RetentionPolicy } from '../../src/catalog/tiers';
import { formatLsn, segmentName } from '../../src/wal/names';

export const SEG = 16 * 1024 * 1024;
export const DAY = 86_400_000;
export const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const idOf = (t: Date) =>
  t
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** A verified backup started at `start` (ending a minute later) on WAL segments [from, to] of timeline `tli`. */
export function backup(start: Date, tli: number, from: number, to = from + 1): CatalogEntry {
  const backupId = idOf(start);
  const meta: BackupMeta = {
    version: 2,
    backupId,
    cluster: 'orders',
    pgVersion: '15.18',
    systemIdentifier: '7300000000000000000',
    type: 'full',
    tool: 'pg_basebackup',
    toolVersion: 'pg_basebackup (PostgreSQL) 15.18',
    startTime: start.toISOString(),
    endTime: new Date(start.getTime() + 60_000).toISOString(),
    startLsn: formatLsn(BigInt(from) * BigInt(SEG) + 0x28n),
    endLsn: formatLsn(BigInt(to) * BigInt(SEG) + 0x100n),
    timeline: tli,
    startWal: seg(tli, from),
    endWal: seg(tli, to),
    walSegmentSize: SEG,
    sizeBytes: 100,
    storedBytes: 50,
    files: [],
    manifestSha256: '0'.repeat(64),
    verifiedAt: start.toISOString(),
    verifiedBy: 'pg_verifybackup',
    label: backupId,
  };
  return { backupId, status: 'complete', meta, objects: 3, storedBytes: 50 };
}

/** The seed articles' tiers: daily 35, weekly 8, monthly 13, yearly 7; WAL for 35 days. */
export const SEEDED: RetentionPolicy = {
  kind: 'tiers',
  full: { daily: 35, weekly: 8, monthly: 13, yearly: 7 },
  walSeconds: 35 * 86400,
};
/** Thursday 2026-12-03, in ISO week 2026-W49 (Monday 2026-11-30 .. Sunday 2026-12-06). */
export const NOW = '2026-12-03T12:00:00.000Z';

// Two years of daily backups at 01:00 UTC, 2024-12-04 .. 2026-12-03: backup i
// uses segments 10+4i .. 11+4i.
export const FIRST_DAY = Date.UTC(2024, 11, 4, 1);
export const DAYS = 730;
export const daily: CatalogEntry[] = Array.from({ length: DAYS }, (_, i) =>
  backup(new Date(FIRST_DAY + i * DAY), 1, 10 + 4 * i),
);
