// Which backups' Object Lock `expire` extends for the retention tiers, and
// until when (src/catalog/lock-extend.ts): over two years of forged daily
// backups planned at a fixed time, with the seed articles' tiers.
import { describe, expect, it } from 'vitest';
import { lockExtensionLines, periodStart, tierLockTargets, walFilesOfBackup } from '../../src/catalog/lock-extend';
import { planRetention } from '../../src/catalog/retention';
import { periodOf, TIERS } from '../../src/catalog/tiers';
import { backup, daily, NOW, SEEDED, seg } from './synthetic-catalog';

const POLICY = SEEDED;
const entries = daily;
const byStart = (iso: string) =>
  entries.find((e) => e.status === 'complete' && e.meta.startTime.startsWith(iso))!.backupId;

describe('periodStart', () => {
  it('is the first instant of the period periodOf puts a time in, for every tier', () => {
    for (const t of [
      '2024-02-29T23:59:59.999Z',
      '2026-01-01T00:00:00.000Z',
      '2026-12-03T12:00:00.000Z',
      '2027-01-03T10:00:00.000Z',
    ]) {
      for (const tier of TIERS) {
        const p = periodOf(tier, new Date(t));
        const start = periodStart(tier, p.index);
        expect(periodOf(tier, start).index).toBe(p.index);
        expect(periodOf(tier, new Date(start.getTime() - 1)).index).toBe(p.index - 1);
      }
    }
    expect(periodStart('weekly', periodOf('weekly', new Date(NOW)).index).toISOString()).toBe(
      '2026-11-30T00:00:00.000Z',
    );
    expect(periodStart('monthly', 2026 * 12 + 12).toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });
});

describe('tierLockTargets', () => {
  const plan = planRetention(entries, [], POLICY, NOW);
  const { targets, open } = tierLockTargets(plan, entries);
  const target = (id: string) => targets.find((t) => t.backupId === id);

  it('locks a yearly backup of an ended year until the year it leaves the tier', () => {
    // 2025's yearly backup is the newest of 2025: 31 December; it is also December 2025's monthly one.
    expect(target(byStart('2025-12-31'))).toEqual({
      backupId: byStart('2025-12-31'),
      tiers: ['monthly 2025-12', 'yearly 2025'],
      until: '2032-01-01T00:00:00.000Z',
    });
    // 2024 holds backups from 4 December on: its newest is the yearly one.
    expect(target(byStart('2024-12-31'))?.until).toBe('2031-01-01T00:00:00.000Z');
  });

  it('locks a monthly backup until its month leaves the tier of 13, a weekly one until its week leaves the tier of 8, a daily one after 35 days', () => {
    expect(target(byStart('2026-09-30'))).toEqual({
      backupId: byStart('2026-09-30'),
      tiers: ['monthly 2026-09'],
      until: '2027-10-01T00:00:00.000Z',
    });
    // Within 35 days too: the later of the two dates.
    expect(target(byStart('2026-10-31'))).toEqual({
      backupId: byStart('2026-10-31'),
      tiers: ['daily 2026-10-31', 'monthly 2026-10'],
      until: '2027-11-01T00:00:00.000Z',
    });
    // Sunday 2026-11-29 ends ISO week 2026-W48 (Monday 2026-11-23; 8 weeks on: 2027-01-18); also that day's daily backup (until 2027-01-03).
    expect(target(byStart('2026-11-29'))).toEqual({
      backupId: byStart('2026-11-29'),
      tiers: ['daily 2026-11-29', 'weekly 2026-W48'],
      until: '2027-01-18T00:00:00.000Z',
    });
    expect(target(byStart('2026-12-02'))).toEqual({
      backupId: byStart('2026-12-02'),
      tiers: ['daily 2026-12-02'],
      until: '2027-01-06T00:00:00.000Z',
    });
  });

  it("extends nothing for a period still open: today's backup keeps its upload lock and is listed with the end of its day", () => {
    const today = byStart('2026-12-03');
    expect(target(today)).toBeUndefined();
    expect(open).toEqual([
      {
        backupId: today,
        tiers: ['daily 2026-12-03', 'weekly 2026-W49', 'monthly 2026-12', 'yearly 2026'],
        periodEnds: '2026-12-04T00:00:00.000Z',
      },
    ]);
  });

  it("locks only what a tier keeps: a backup expired by the plan, or kept only as the window's start, is not a target", () => {
    const kept = new Set(plan.tiers!.flatMap((t) => t.kept.map((k) => k.backupId)));
    expect(targets.every((t) => kept.has(t.backupId))).toBe(true);
    expect(targets.some((t) => plan.expire.some((e) => e.backupId === t.backupId))).toBe(false);
    expect(target(byStart('2025-06-15'))).toBeUndefined();
  });

  it('gives the same dates planned a day later (the run is idempotent), and nothing without tiers', () => {
    const later = tierLockTargets(planRetention(entries, [], POLICY, '2026-12-04T12:00:00.000Z'), entries).targets;
    for (const t of targets.filter((x) => later.some((l) => l.backupId === x.backupId)))
      expect(later.find((l) => l.backupId === t.backupId)?.until).toBe(t.until);
    expect(tierLockTargets(planRetention(entries, [], 3), entries)).toEqual({ targets: [], open: [] });
  });
});

describe('walFilesOfBackup', () => {
  it("takes the backup's own segments, its .backup file and the history files up to its timeline", () => {
    const e = backup(new Date(Date.UTC(2026, 0, 1, 1)), 2, 20, 21);
    if (e.status !== 'complete') throw new Error('complete');
    const names = [
      seg(1, 20),
      seg(2, 19),
      seg(2, 20),
      `${seg(2, 20)}.00000028.backup`,
      seg(2, 21),
      seg(2, 22),
      seg(3, 20),
      '00000002.history',
      '00000003.history',
      `${seg(2, 21)}.partial`,
    ];
    expect(
      walFilesOfBackup(
        e.meta,
        names.map((name) => ({ name })),
      ).map((f) => f.name),
    ).toEqual([seg(2, 20), `${seg(2, 20)}.00000028.backup`, seg(2, 21), '00000002.history']);
  });
});

describe('lockExtensionLines', () => {
  it('says what a dry run would extend and what a run extended, and which backups wait for their period to end', () => {
    const r = {
      mode: 'compliance' as const,
      extended: 3,
      backups: [
        {
          backupId: 'B1',
          tiers: ['yearly 2025'],
          until: '2032-01-01T00:00:00.000Z',
          objects: 4,
          walFiles: 2,
          extended: 3,
          covered: 1,
        },
      ],
      open: [{ backupId: 'B2', tiers: ['yearly 2026'], periodEnds: '2027-01-01T00:00:00.000Z' }],
    };
    expect(lockExtensionLines(r, true)).toEqual([
      'Object Lock of backups kept by tiers (until each leaves its tier; never shortened): would extend 3 objects of 1 backup',
      '  B1 (yearly 2025): until 2032-01-01T00:00:00.000Z: 4 objects (2 WAL files), 3 to extend, 1 already locked that long',
      '  B2 (yearly 2026): period still open, keeps its upload lock; extended by the first expire after 2027-01-01T00:00:00.000Z',
    ]);
    expect(
      lockExtensionLines({ ...r, extended: 1, backups: [{ ...r.backups[0]!, extended: 1 }], open: [] }, false),
    ).toEqual([
      'Object Lock of backups kept by tiers (until each leaves its tier; never shortened): extended 1 object of 1 backup',
      '  B1 (yearly 2025): until 2032-01-01T00:00:00.000Z: 4 objects (2 WAL files), 1 extended, 1 already locked that long',
    ]);
    expect(lockExtensionLines(undefined, true)).toEqual([]);
  });
});
