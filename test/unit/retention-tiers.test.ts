// Tiered retention (runbook `retention:`) over a synthetic catalog: two years
// of daily backups with forged dates, each with its own WAL, planned at a
// fixed time. Checks exactly which backup each tier keeps, the WAL ranges
// kept and deleted, the point-in-time window, and the edge cases.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../src/catalog/catalog';
import { analyzeChain } from '../../src/catalog/chain';
import { planRetention, reconcilePlans } from '../../src/catalog/retention';
import { walFilesToDelete, type RetentionWalFile } from '../../src/catalog/retention-wal';
import { periodLabel, periodOf, retentionPolicy, type RetentionPolicy } from '../../src/catalog/tiers';
import { validateRunbookText } from '../../src/runbook/load';
import { backup, daily, DAY, DAYS, FIRST_DAY, NOW, SEEDED, SEG, seg } from './synthetic-catalog';

const segs = (tli: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));
const wal = (names: string[]): RetentionWalFile[] => names.map((name) => ({ name, size: 1000 }));

// The archive holds every segment 1 .. the end of the two years of daily backups.
const startOf = (day: string) => 10 + 4 * Math.round((Date.parse(`${day}T01:00:00Z`) - FIRST_DAY) / DAY);
const id = (day: string) => `${day.replace(/-/g, '')}T010000Z`;
const archive = wal([...segs(1, 1, 10 + 4 * DAYS + 2), '00000001.history', `${seg(1, 10)}.00000028.backup`]);

const MONTH_ENDS_KEPT = [
  '2026-09-30',
  '2026-08-31',
  '2026-07-31',
  '2026-06-30',
  '2026-05-31',
  '2026-04-30',
  '2026-03-31',
  '2026-02-28',
  '2026-01-31',
  '2025-12-31',
];

describe('tiered retention over two years of daily backups', () => {
  const plan = planRetention(daily, archive, SEEDED, NOW);

  it('keeps in each tier the newest backup of each of its last periods', () => {
    const tiers = Object.fromEntries(plan.tiers!.map((t) => [t.tier, t]));
    const days = Array.from({ length: 35 }, (_, i) =>
      new Date(Date.UTC(2026, 11, 3) - i * DAY).toISOString().slice(0, 10),
    );
    expect(tiers.daily).toEqual({
      tier: 'daily',
      periods: 35,
      from: '2026-10-30',
      kept: days.map((d) => ({ period: d, backupId: id(d) })),
    });
    expect(tiers.weekly).toEqual({
      tier: 'weekly',
      periods: 8,
      from: '2026-W42',
      kept: [
        { period: '2026-W49', backupId: id('2026-12-03') },
        { period: '2026-W48', backupId: id('2026-11-29') },
        { period: '2026-W47', backupId: id('2026-11-22') },
        { period: '2026-W46', backupId: id('2026-11-15') },
        { period: '2026-W45', backupId: id('2026-11-08') },
        { period: '2026-W44', backupId: id('2026-11-01') },
        { period: '2026-W43', backupId: id('2026-10-25') },
        { period: '2026-W42', backupId: id('2026-10-18') },
      ],
    });
    expect(tiers.monthly).toEqual({
      tier: 'monthly',
      periods: 13,
      from: '2025-12',
      kept: ['2026-12-03', '2026-11-30', '2026-10-31', ...MONTH_ENDS_KEPT].map((d) => ({
        period: d.slice(0, 7),
        backupId: id(d),
      })),
    });
    // Seven years asked, three with backups: a tier with more slots than backups keeps what there is.
    expect(tiers.yearly).toEqual({
      tier: 'yearly',
      periods: 7,
      from: '2020',
      kept: [
        { period: '2026', backupId: id('2026-12-03') },
        { period: '2025', backupId: id('2025-12-31') },
        { period: '2024', backupId: id('2024-12-31') },
      ],
    });
  });

  it('keeps the union of the tiers and the backup the point-in-time window starts from, each saying why', () => {
    const reason = Object.fromEntries(plan.kept.map((k) => [k.backupId, k.reason]));
    expect(plan.kept).toHaveLength(35 + 2 + MONTH_ENDS_KEPT.length + 1 + 1);
    expect(reason[id('2026-12-03')]).toBe('daily 2026-12-03, weekly 2026-W49, monthly 2026-12, yearly 2026');
    expect(reason[id('2026-11-30')]).toBe('daily 2026-11-30, monthly 2026-11');
    expect(reason[id('2026-10-18')]).toBe('weekly 2026-W42');
    expect(reason[id('2025-12-31')]).toBe('monthly 2025-12, yearly 2025');
    expect(reason[id('2024-12-31')]).toBe('yearly 2024');
    expect(reason[id('2026-10-29')]).toBe('start of the point-in-time window (35 days)');
    expect(plan.window).toEqual({
      backupId: id('2026-10-29'),
      startWal: seg(1, startOf('2026-10-29')),
      coversFrom: '2026-10-29T12:00:00.000Z',
      why: `point-in-time window (35 days, targets from 2026-10-29T12:00:00.000Z): restores start from backup ${id('2026-10-29')}, the newest that ended by then`,
    });
    expect(plan.expire).toHaveLength(DAYS - plan.kept.length);
    expect(plan.expire.find((e) => e.backupId === id('2025-06-15'))?.reason).toBe(
      `kept by no tier (daily keeps from 2026-10-30; weekly keeps from 2026-W42; monthly keeps from 2025-12; yearly 2025 keeps ${id('2025-12-31')}), ` +
        `and the point-in-time window (35 days) starts at a later backup, ${id('2026-10-29')}`,
    );
    expect(plan.expire.find((e) => e.backupId === id('2026-10-28'))?.reason).toContain(
      `monthly 2026-10 keeps ${id('2026-10-31')}`,
    );
  });

  it("keeps a kept old backup's own WAL only, everything from the window's backup on, and deletes the WAL between", () => {
    const own = (day: string) => ({ from: seg(1, startOf(day)), to: seg(1, startOf(day) + 1) });
    // Ranges, not names: one per kept backup outside the window, and the window.
    expect(plan.walKeep!.map(({ from, to }) => ({ from, to }))).toEqual([
      { from: seg(1, startOf('2026-10-29')), to: undefined },
      own('2024-12-31'),
      ...[...MONTH_ENDS_KEPT].reverse().map(own),
      own('2026-10-18'),
      own('2026-10-25'),
    ]);
    expect(plan.walKeep![1]!.why).toBe(`backup ${id('2024-12-31')} (yearly 2024)`);

    const gone = new Set(walFilesToDelete(archive, plan.walKeep!, SEG).map((f) => f.name));
    const kept = (name: string) => !gone.has(name);
    // The yearly 2024 backup's WAL stays; the year of WAL after it, up to the yearly 2025 backup, goes.
    expect(segs(1, startOf('2024-12-31'), startOf('2024-12-31') + 1).every(kept)).toBe(true);
    expect(segs(1, startOf('2024-12-31') + 2, startOf('2025-12-31') - 1).every((s) => gone.has(s))).toBe(true);
    expect(segs(1, startOf('2025-12-31'), startOf('2025-12-31') + 1).every(kept)).toBe(true);
    // Everything from the window's backup on stays, and no history or .backup file ever goes.
    expect(segs(1, startOf('2026-10-29'), 10 + 4 * DAYS + 2).every(kept)).toBe(true);
    expect(kept('00000001.history') && kept(`${seg(1, 10)}.00000028.backup`)).toBe(true);
    // Every kept backup's WAL is whole.
    for (const k of plan.kept) {
      const from = startOf(`${k.backupId.slice(0, 4)}-${k.backupId.slice(4, 6)}-${k.backupId.slice(6, 8)}`);
      expect(segs(1, from, from + 1).every(kept)).toBe(true);
    }
    expect(plan.walDeleteCount).toBe(gone.size);
    expect(plan.walKeptCount).toBe(archive.length - gone.size);
  });

  it('reports the deleted WAL as runs between the kept ranges, each saying why', () => {
    // Before the first kept backup, between each two kept ranges (12), and up to the window.
    expect(plan.walDelete).toHaveLength(14);
    expect(plan.walDelete[0]).toMatchObject({ timeline: 1, first: seg(1, 1), last: seg(1, startOf('2024-12-31') - 1) });
    const yearGap = plan.walDelete[1]!;
    expect(yearGap).toEqual({
      timeline: 1,
      first: seg(1, startOf('2024-12-31') + 2),
      last: seg(1, startOf('2025-12-31') - 1),
      count: startOf('2025-12-31') - startOf('2024-12-31') - 2,
      storedBytes: (startOf('2025-12-31') - startOf('2024-12-31') - 2) * 1000,
      reason:
        `needed by no kept backup, and older than the point-in-time window (35 days: from ${seg(1, startOf('2026-10-29'))}, backup ${id('2026-10-29')}); ` +
        `after the WAL of backup ${id('2024-12-31')} (yearly 2024), before the WAL of backup ${id('2025-12-31')} (monthly 2025-12, yearly 2025)`,
    });
    expect(plan.walDelete[13]).toMatchObject({
      first: seg(1, startOf('2026-10-25') + 2),
      last: seg(1, startOf('2026-10-29') - 1),
    });
    // The plan travels through workflow history: WAL as ranges and runs, never names.
    const walPart = JSON.stringify({ walKeep: plan.walKeep, walDelete: plan.walDelete });
    console.log(
      `plan over ${DAYS} backups and ${archive.length} WAL files: ${JSON.stringify(plan).length} bytes, of which WAL ${walPart.length}`,
    );
    expect(walPart).not.toContain(seg(1, startOf('2025-06-15')));
  });

  it('deletes only what both the approved plan and a later fresh plan allow', () => {
    // A day later: the window and the tiers moved on, one more backup exists.
    const next = backup(new Date(Date.UTC(2026, 11, 4, 1)), 1, 10 + 4 * DAYS + 3);
    const fresh = planRetention(
      [...daily, next],
      wal([...archive.map((f) => f.name), ...segs(1, 10 + 4 * DAYS + 3, 10 + 4 * DAYS + 4)]),
      SEEDED,
      '2026-12-04T12:00:00.000Z',
    );
    const r = reconcilePlans(plan, fresh);
    // 2026-10-29 started the approved window; the fresh one starts at 10-30 and 10-29 is no longer kept there: both must agree.
    expect(fresh.expire.map((e) => e.backupId)).toContain(id('2026-10-29'));
    expect(r.backups).not.toContain(id('2026-10-29'));
    expect(r.backups).toEqual(
      plan.expire.map((e) => e.backupId).filter((b) => fresh.expire.some((e) => e.backupId === b)),
    );
    const gone = new Set(walFilesToDelete(archive, r.walKeep!, SEG).map((f) => f.name));
    expect(gone.has(seg(1, startOf('2026-10-29')))).toBe(false);
    const approvedGone = new Set(walFilesToDelete(archive, plan.walKeep!, SEG).map((f) => f.name));
    expect([...gone].every((s) => approvedGone.has(s))).toBe(true);
    expect(gone.size).toBe(approvedGone.size);
  });
});

describe('the WAL chain check after a tiered expiry', () => {
  const plan = planRetention(daily, archive, SEEDED, NOW);
  const gone = new Set(walFilesToDelete(archive, plan.walKeep!, SEG).map((f) => f.name));
  const left = archive.map((f) => f.name).filter((n) => !gone.has(n));
  const keptBackups = daily
    .filter((b) => plan.kept.some((k) => k.backupId === b.backupId))
    .map(
      (b) =>
        (b.status === 'complete'
          ? {
              backupId: b.backupId,
              timeline: 1,
              startWal: b.meta.startWal,
              startLsn: b.meta.startLsn,
              endWal: b.meta.endWal,
            }
          : undefined)!,
    );
  const check = (walFiles: string[], continuousFrom?: string) =>
    analyzeChain({
      walFiles: walFiles.filter((n) => !n.endsWith('.history')),
      histories: {},
      backups: keptBackups,
      walSegmentSize: SEG,
      ...(continuousFrom ? { continuousFrom } : {}),
    });

  it("finds the chain whole from the window on and each older backup's own WAL whole", () => {
    const report = check(left, plan.window!.backupId);
    expect(report.gaps).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.timelines[0]?.checkedFrom).toEqual({
      segment: seg(1, startOf('2026-10-29')),
      backupId: id('2026-10-29'),
    });
    // Without the window, every stretch expired on purpose would be a gap.
    expect(check(left).gaps).toHaveLength(13);
  });

  it('still reports a missing segment of a kept old backup, and one inside the window', () => {
    const yearly = seg(1, startOf('2024-12-31') + 1);
    const inWindow = seg(1, startOf('2026-11-15'));
    const report = check(
      left.filter((n) => n !== yearly && n !== inWindow),
      plan.window!.backupId,
    );
    expect(report.gaps.map((g) => [g.first, g.count, g.neededBy[0]])).toEqual([
      [yearly, 1, id('2024-12-31')],
      [inWindow, 1, id('2026-10-29')],
    ]);
    expect(report.gaps[0]!.neededBy).toEqual([id('2024-12-31')]);
  });
});

describe('tiered retention edge cases', () => {
  const at = (iso: string) => new Date(iso);
  const policy = (full: Extract<RetentionPolicy, { kind: 'tiers' }>['full'], walHours = 24): RetentionPolicy => ({
    kind: 'tiers',
    full,
    walSeconds: walHours * 3600,
  });

  it('keeps every backup when a tier has more periods than there are backups', () => {
    const five = Array.from({ length: 5 }, (_, i) => backup(at(`2026-12-0${i + 1}T01:00:00Z`), 1, 10 + 4 * i));
    const plan = planRetention(five, wal(segs(1, 10, 30)), policy({ daily: 35 }), '2026-12-05T12:00:00Z');
    expect(plan.kept.map((k) => k.backupId)).toEqual(five.map((b) => b.backupId));
    expect(plan.expire).toEqual([]);
    expect(plan.tiers![0]!.kept).toHaveLength(5);
  });

  it('does not stretch a tier over a gap in the backups: an empty day keeps nothing', () => {
    // Backups on 11-24 .. 11-27 and 12-01 .. 12-03: the days 11-28 .. 11-30 have none.
    const days = ['2026-11-24', '2026-11-25', '2026-11-26', '2026-11-27', '2026-12-01', '2026-12-02', '2026-12-03'];
    const list = days.map((d, i) => backup(at(`${d}T01:00:00Z`), 1, 10 + 4 * i));
    const plan = planRetention(list, wal(segs(1, 10, 40)), policy({ daily: 7 }), '2026-12-03T12:00:00Z');
    // The last 7 days are 11-27 .. 12-03: four of them hold a backup.
    expect(plan.tiers![0]).toMatchObject({
      from: '2026-11-27',
      kept: [{ period: '2026-12-03' }, { period: '2026-12-02' }, { period: '2026-12-01' }, { period: '2026-11-27' }],
    });
    expect(plan.expire.map((e) => e.backupId)).toEqual([id('2026-11-24'), id('2026-11-25'), id('2026-11-26')]);
  });

  it('never deletes nor counts an incomplete backup, and keeps the verified one of its day', () => {
    const list: CatalogEntry[] = [
      backup(at('2026-12-02T01:00:00Z'), 1, 10),
      backup(at('2026-12-03T01:00:00Z'), 1, 14),
      {
        backupId: '20261203T020000Z',
        status: 'incomplete',
        problem: 'no backup.json (the backup never finished, or is still being written)',
        objects: 2,
        storedBytes: 10,
      },
      {
        backupId: '20201203T020000Z',
        status: 'incomplete',
        problem: 'backup.json is not valid JSON',
        objects: 2,
        storedBytes: 10,
      },
    ];
    // A 6-hour window starts at the 12-03 backup: the 12-02 one is kept by nothing.
    const plan = planRetention(list, wal(segs(1, 1, 20)), policy({ daily: 1 }, 6), '2026-12-03T12:00:00Z');
    expect(plan.tiers![0]!.kept).toEqual([{ period: '2026-12-03', backupId: id('2026-12-03') }]);
    expect(plan.verified).toBe(2);
    expect(plan.incomplete.map((i) => i.backupId)).toEqual(['20201203T020000Z', '20261203T020000Z']);
    expect(plan.expire.map((e) => e.backupId)).toEqual([id('2026-12-02')]);
  });

  it('deletes nothing at all when no complete, verified backup is there', () => {
    const list: CatalogEntry[] = [
      { backupId: '20261203T020000Z', status: 'incomplete', problem: 'no backup.json', objects: 2, storedBytes: 10 },
    ];
    const plan = planRetention(list, wal(segs(1, 1, 20)), SEEDED, NOW);
    expect(plan).toMatchObject({ kept: [], expire: [], walDeleteCount: 0, walKeptCount: 20 });
    expect(plan.walKeep).toBeUndefined();
  });

  it('always keeps the newest backup, even when backups stopped longer ago than every tier', () => {
    const list = [backup(at('2026-10-01T01:00:00Z'), 1, 10), backup(at('2026-10-02T01:00:00Z'), 1, 14)];
    const plan = planRetention(list, wal(segs(1, 1, 30)), policy({ daily: 7 }, 7 * 24), '2026-12-03T12:00:00Z');
    expect(plan.kept).toEqual([
      {
        backupId: id('2026-10-02'),
        reason: 'the newest verified backup (always kept), start of the point-in-time window (7 days)',
      },
    ]);
    expect(walFilesToDelete(wal(segs(1, 1, 30)), plan.walKeep!, SEG).map((f) => f.name)).toEqual(segs(1, 1, 13));
  });

  it('follows a timeline switch: an old backup keeps its own WAL on timeline 1, the window timeline 2 from its backup on', () => {
    // Timeline 1 up to segment 60; a recovery promoted timeline 2 at segment 40 (back in time);
    // yearly 2025 on timeline 1 (segments 10-11), a backup on timeline 2 at segment 50 starts the window.
    const list = [
      backup(at('2025-06-01T01:00:00Z'), 1, 10),
      backup(at('2025-07-01T01:00:00Z'), 1, 20),
      backup(at('2026-12-01T01:00:00Z'), 2, 50),
    ];
    const files = wal([...segs(1, 1, 60), ...segs(2, 40, 70), '00000002.history']);
    const plan = planRetention(list, files, policy({ daily: 7, yearly: 7 }), '2026-12-03T12:00:00Z');
    expect(plan.kept.map((k) => [k.backupId, k.reason])).toEqual([
      [id('2025-07-01'), 'yearly 2025'],
      [id('2026-12-01'), 'daily 2026-12-01, yearly 2026, start of the point-in-time window (1 day)'],
    ]);
    const gone = walFilesToDelete(files, plan.walKeep!, SEG).map((f) => f.name);
    // Timeline 1 keeps the yearly backup's 20-21 and, as the old primary's branch, everything from 50 on;
    // timeline 2 keeps from its backup's start on (40..49 were replayed into it and no kept backup needs them).
    expect(gone).toEqual([...segs(1, 1, 19), ...segs(1, 22, 49), ...segs(2, 40, 49)]);
    expect(plan.walKeep!.map(({ from, to }) => ({ from, to }))).toEqual([
      { from: seg(2, 50), to: undefined },
      { from: seg(1, 20), to: seg(1, 21) },
    ]);
  });

  it('names ISO weeks by the year of their Thursday', () => {
    expect(periodOf('weekly', at('2024-12-30T00:00:00Z')).label).toBe('2025-W01');
    expect(periodOf('weekly', at('2027-01-03T23:59:59Z')).label).toBe('2026-W53');
    expect(periodOf('weekly', at('2026-12-03T12:00:00Z')).label).toBe('2026-W49');
    expect(periodLabel('weekly', periodOf('weekly', at('2026-12-03T12:00:00Z')).index - 7)).toBe('2026-W42');
    expect(periodLabel('monthly', periodOf('monthly', at('2026-12-03T12:00:00Z')).index - 12)).toBe('2025-12');
  });
});

describe('the retention: runbook setting', () => {
  const EXAMPLE = readFileSync(path.join(__dirname, '../../runbooks/orders.example.yaml'), 'utf8');
  const withRetention = (backupLine: string, retention: string) => {
    const text = EXAMPLE.replace(
      'backup: { host: db-recovery-1, retainFull: 2, scratchDir: /var/lib/lifeboat/scratch }',
      `${backupLine}\n${retention}`,
    );
    if (text === EXAMPLE) throw new Error('the example runbook no longer has its backup line');
    return validateRunbookText(text, 'orders.yaml');
  };
  const TIERS = 'retention:\n  full: { daily: 35, monthly: 13, yearly: 7 }\n  wal: 35d';

  it('parses tiers and a WAL window, and plans with them', () => {
    const r = withRetention('backup: { host: db-recovery-1, scratchDir: /var/lib/lifeboat/scratch }', TIERS);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.runbook.retention).toEqual({ full: { daily: 35, monthly: 13, yearly: 7 }, wal: 35 * 86400 });
    expect(retentionPolicy(r.runbook)).toEqual({
      kind: 'tiers',
      full: { daily: 35, monthly: 13, yearly: 7 },
      walSeconds: 35 * 86400,
    });
    expect(() => retentionPolicy(r.runbook, 2)).toThrow(
      "keep 2 cannot override the runbook's retention: tiers (tiers daily 35, monthly 13, yearly 7; point-in-time window 35 days)",
    );
  });

  it('refuses retention together with backup.retainFull, naming both', () => {
    const r = withRetention(
      'backup: { host: db-recovery-1, retainFull: 2, scratchDir: /var/lib/lifeboat/scratch }',
      TIERS,
    );
    expect(r).toEqual({
      ok: false,
      errors: [
        expect.stringMatching(
          /^orders\.yaml:\d+: backup\.retainFull: expected either retention or backup\.retainFull, not both \(retention: tiers replace backup\.retainFull; remove it\), got 2$/,
        ),
      ],
    });
  });

  it('refuses a tier that is not a whole number of periods, and an empty full', () => {
    const bad = withRetention('backup: { host: db-recovery-1 }', 'retention:\n  full: { monthly: 35d }\n  wal: 35d');
    expect(bad.ok ? [] : bad.errors).toEqual([
      expect.stringMatching(/retention\.full\.monthly: expected a whole number of months of at least 1/),
    ]);
    const empty = withRetention('backup: { host: db-recovery-1 }', 'retention:\n  full: {}\n  wal: 35d');
    expect(empty.ok ? [] : empty.errors).toEqual([
      expect.stringMatching(/retention\.full: expected at least one of daily, weekly, monthly, yearly/),
    ]);
  });

  it('keeps backup.retainFull working, with 2 when neither is set', () => {
    const r = withRetention('backup: { host: db-recovery-1 }', '');
    expect(r.ok && retentionPolicy(r.runbook)).toEqual({ kind: 'newest', keep: 2 });
    const three = withRetention('backup: { host: db-recovery-1, retainFull: 3 }', '');
    expect(three.ok && retentionPolicy(three.runbook, undefined)).toEqual({ kind: 'newest', keep: 3 });
    expect(three.ok && retentionPolicy(three.runbook, 1)).toEqual({ kind: 'newest', keep: 1 });
  });
});
