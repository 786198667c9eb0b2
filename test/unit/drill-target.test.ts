// Where a drill without a given target restores to (src/drill/target.ts):
// the window from the oldest usable backup's end to the newest archived
// commit, and, for a drill from the warm standby, after its last replayed
// commit (a clone of it cannot replay backwards).
import { describe, expect, it } from 'vitest';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { drillWindow, pickTarget } from '../../src/drill/target';

const backup = {
  backupId: 'b1',
  startWal: '000000010000000000000002',
  endTime: '2026-11-21T12:00:00.000Z',
} as BackupMeta;
const facts = {
  backups: [backup],
  archived: new Set(['000000010000000000000002']),
  newestCommit: { time: '2026-11-21T14:00:00.000Z', segment: '000000010000000000000009' },
  now: new Date('2026-11-21T15:00:00.000Z'),
  targetWindowSeconds: 86400,
};

describe('the drill target window', () => {
  it('runs from just after the oldest usable backup to the newest archived commit', () => {
    expect(drillWindow(facts)).toMatchObject({
      kind: 'window',
      from: Date.parse('2026-11-21T12:00:01.000Z'),
      to: Date.parse('2026-11-21T14:00:00.000Z') - 1,
      backupId: 'b1',
    });
  });

  it("starts after the warm standby's last replayed commit for a drill from the standby, and says so", () => {
    const w = drillWindow({ ...facts, after: '2026-11-21T13:30:00.000Z' });
    expect(w).toMatchObject({ kind: 'window', from: Date.parse('2026-11-21T13:30:01.000Z') });
    expect(w.why).toBe(
      "from the warm standby's last replayed commit (2026-11-21T13:30:00.000Z) to the newest archived commit (2026-11-21T14:00:00.000Z, in 000000010000000000000009)",
    );
    const t = pickTarget(w, 0.5).target as { time: string };
    expect(t.time > '2026-11-21T13:30:00.000Z').toBe(true);
  });

  it('has no window when the standby has replayed every archived commit: the drill replays to the end of the archive', () => {
    const w = drillWindow({ ...facts, after: '2026-11-21T14:00:00.000Z' });
    expect(w.kind).toBe('none');
    expect(pickTarget(w, 0.5)).toMatchObject({ target: { latest: true } });
    expect(w.why).toContain("or the warm standby's last replayed commit");
  });
});
