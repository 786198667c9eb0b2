import { describe, expect, it } from 'vitest';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import type { CatalogEntry } from '../../src/catalog/catalog';
import { planRetention, reconcilePlans } from '../../src/catalog/retention';
import { walFilesToDelete, type RetentionWalFile } from '../../src/catalog/retention-wal';
import { formatLsn, segmentName } from '../../src/wal/names';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const wal = (names: string[]): RetentionWalFile[] => names.map((name) => ({ name, size: 1000 }));
const segs = (tli: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));

function verified(backupId: string, tli: number, start: number, end = start + 1): CatalogEntry {
  const meta: BackupMeta = {
    version: 1,
    backupId,
    cluster: 'orders',
    pgVersion: '15.18',
    systemIdentifier: '7300000000000000000',
    type: 'full',
    tool: 'pg_basebackup',
    toolVersion: 'pg_basebackup (PostgreSQL) 15.18',
    startTime: '2026-11-21T19:01:02Z',
    endTime: '2026-11-21T19:02:02Z',
    startLsn: formatLsn(BigInt(start) * BigInt(SEG) + 0x28n),
    endLsn: formatLsn(BigInt(end) * BigInt(SEG) + 0x100n),
    timeline: tli,
    startWal: seg(tli, start),
    endWal: seg(tli, end),
    walSegmentSize: SEG,
    sizeBytes: 100,
    storedBytes: 50,
    files: [],
    manifestSha256: '0'.repeat(64),
    verifiedAt: '2026-11-21T19:02:03Z',
    verifiedBy: 'pg_verifybackup',
    label: backupId,
  };
  return { backupId, status: 'complete', meta, objects: 3, storedBytes: 50 };
}
const incomplete = (backupId: string): CatalogEntry => ({
  backupId,
  status: 'incomplete',
  problem: 'no backup.json (the backup never finished, or is still being written)',
  objects: 1,
  storedBytes: 10,
});

describe('retention plan', () => {
  const three = [
    verified('20261121T000000Z', 1, 2),
    verified('20261122T000000Z', 1, 6),
    verified('20261123T000000Z', 1, 10),
  ];
  const archive = wal([...segs(1, 1, 14), '00000001.history', `${seg(1, 3)}.00000028.backup`]);

  it("expires the oldest backup beyond keep and keeps every segment from the next backup's start on", () => {
    const plan = planRetention(three, archive, 2);
    expect(plan.kept.map((k) => k.backupId)).toEqual(['20261122T000000Z', '20261123T000000Z']);
    expect(plan.kept[0]?.reason).toBe('one of the 2 newest verified backups');
    expect(plan.expire).toEqual([
      {
        backupId: '20261121T000000Z',
        startWal: seg(1, 2),
        storedBytes: 50,
        reason: 'older than the 2 newest verified backups',
      },
    ]);
    expect(plan.walKeep).toEqual([
      {
        from: seg(1, 6),
        why: `every segment from ${seg(1, 6)} on (backup 20261122T000000Z, the oldest kept, starts there)`,
      },
    ]);
    const doomed = walFilesToDelete(archive, plan.walKeep!, SEG).map((f) => f.name);
    expect(doomed).toEqual(segs(1, 1, 5));
    expect(plan.walDelete).toEqual([
      {
        timeline: 1,
        first: seg(1, 1),
        last: seg(1, 5),
        count: 5,
        storedBytes: 5000,
        reason: `before ${seg(1, 6)}, where backup 20261122T000000Z, the oldest kept, starts`,
      },
    ]);
    expect(plan.walDeleteCount).toBe(5);
    expect(plan.walKeptCount).toBe(archive.length - 5);
    // Every segment the kept backups need, and every non-segment file, stays.
    for (const name of [...segs(1, 6, 14), '00000001.history', `${seg(1, 3)}.00000028.backup`])
      expect(doomed).not.toContain(name);
    expect(plan.nothingToDo).toBeUndefined();
  });

  it('deletes nothing at all when no backup is complete and verified', () => {
    const plan = planRetention([incomplete('20261121T000000Z'), incomplete('20261122T000000Z')], archive, 1);
    expect(plan.kept).toEqual([]);
    expect(plan.expire).toEqual([]);
    expect(plan.walKeep).toBeUndefined();
    expect(plan.walDeleteCount).toBe(0);
    expect(plan.walKeptCount).toBe(archive.length);
    expect(plan.nothingToDo).toBe(
      'no complete, verified backup in the repository: nothing is deleted, since the archived WAL may be all that is left',
    );
  });

  it('never deletes an incomplete backup, even one older than every kept backup', () => {
    const plan = planRetention([incomplete('20261120T000000Z'), ...three], archive, 1);
    expect(plan.expire.map((e) => e.backupId)).toEqual(['20261121T000000Z', '20261122T000000Z']);
    expect(plan.incomplete.map((e) => e.backupId)).toEqual(['20261120T000000Z']);
  });

  it('keeps history, .partial and .backup files however old', () => {
    const files = wal([
      '00000001.history',
      '00000002.history',
      `${seg(1, 1)}.partial`,
      `${seg(1, 1)}.00000028.backup`,
      seg(1, 1),
    ]);
    const plan = planRetention([verified('20261123T000000Z', 2, 10)], files, 1);
    expect(walFilesToDelete(files, plan.walKeep!, SEG).map((f) => f.name)).toEqual([seg(1, 1)]);
    expect(plan.historyFilesKept).toBe(2);
  });

  it('keeps segments of a newer timeline than the oldest kept backup even below its start', () => {
    // A restore went back in time and promoted timeline 2 at segment 4; the
    // kept backup is on timeline 1 at segment 6: timeline 2's WAL is not ours to judge.
    const files = wal([...segs(1, 1, 8), ...segs(2, 4, 7), '00000002.history']);
    const plan = planRetention([verified('20261121T000000Z', 1, 1), verified('20261122T000000Z', 1, 6)], files, 1);
    expect(walFilesToDelete(files, plan.walKeep!, SEG).map((f) => f.name)).toEqual(segs(1, 1, 5));
  });

  it('protects the smallest start among kept backups when timelines went back in time', () => {
    // Kept: one on timeline 1 from segment 9, and a newer one on timeline 2 from segment 5.
    const files = wal([...segs(1, 1, 10), ...segs(2, 4, 8)]);
    const plan = planRetention([verified('20261121T000000Z', 1, 9), verified('20261122T000000Z', 2, 5)], files, 2);
    expect(plan.walKeep?.map((r) => r.from)).toEqual([seg(1, 5)]);
    expect(walFilesToDelete(files, plan.walKeep!, SEG).map((f) => f.name)).toEqual(segs(1, 1, 4));
  });

  it('expires no backup when there are no more than keep, but drops WAL no backup can use', () => {
    const plan = planRetention(three, archive, 3);
    expect(plan.expire).toEqual([]);
    expect(plan.walDelete).toMatchObject([
      { timeline: 1, first: seg(1, 1), last: seg(1, 1), count: 1, storedBytes: 1000 },
    ]);
  });

  it('says why it deletes nothing when everything is within retention', () => {
    const plan = planRetention(three, wal(segs(1, 2, 14)), 5);
    expect(plan.nothingToDo).toBe('3 verified backups, keep 5: nothing is older than retention');
  });

  it('refuses a keep below one', () => {
    expect(() => planRetention(three, archive, 0)).toThrow('keep must be an integer of at least 1, got 0');
  });

  it('applies only what both the approved plan and the repository as it is now allow', () => {
    const approved = planRetention(three, archive, 2);
    // A backup was deleted by hand since: the fresh plan keeps the oldest one.
    const fresh = planRetention([three[0]!, three[2]!], archive, 2);
    const r = reconcilePlans(approved, fresh);
    expect(r.backups).toEqual([]);
    expect(r.skippedBackups).toEqual([
      { backupId: '20261121T000000Z', reason: 'no longer expires: the catalog changed since the plan' },
    ]);
    expect(r.walKeep?.map((k) => k.from)).toEqual([seg(1, 2)]);
    // A newer backup finished since: the approved (smaller) deletion still holds.
    const later = planRetention([...three, verified('20261124T000000Z', 1, 12)], archive, 2);
    const r2 = reconcilePlans(approved, later);
    expect(r2.backups).toEqual(['20261121T000000Z']);
    expect(r2.walKeep?.map((k) => k.from)).toEqual([seg(1, 6)]);
  });

  it('applies nothing when the repository no longer holds a verified backup', () => {
    const approved = planRetention(three, archive, 2);
    const fresh = planRetention([incomplete('20261123T000000Z')], archive, 2);
    const r = reconcilePlans(approved, fresh);
    expect(r.backups).toEqual([]);
    expect(r.walKeep).toBeUndefined();
  });
});
