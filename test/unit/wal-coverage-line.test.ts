// Preflight's WAL coverage follows the backup's line of timelines after a
// recovery (src/recovery/plan.ts checkWalCoverage with archiveLine): the old
// primary's timeline-1 WAL past the branch neither blocks nor ends it.
import { describe, expect, it } from 'vitest';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { checkWalCoverage } from '../../src/recovery/plan';
import { formatLsn, segmentName } from '../../src/wal/names';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const lsn = (n: number, offset: number) => formatLsn(BigInt(n) * BigInt(SEG) + BigInt(offset));
const backup = {
  backupId: '20261203T120000Z',
  timeline: 1,
  startWal: seg(1, 3),
  startLsn: lsn(3, 0x28),
  walSegmentSize: SEG,
} as BackupMeta;
const histories = { '00000002.history': `1\t${lsn(8, 0x60)}\tat restore point "x"\n` };
const files = (names: string[]) => names.map((name) => ({ name }));

describe('WAL coverage after a recovery branched timeline 2 off timeline 1', () => {
  it('ends at timeline 2 and counts its line only, though the old primary archived timeline 1 further', () => {
    const names = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
      .map((n) => seg(1, n))
      .concat(['00000002.history', seg(2, 8), seg(2, 9)]);
    const c = checkWalCoverage({
      backup,
      target: { latest: true },
      files: files(names),
      histories,
      cluster: 'bank',
      repoArgs: '--runbook bank',
    });
    expect(c).toMatchObject({ walFrom: seg(1, 3), walTo: seg(2, 9), segmentsAvailable: 7 });
  });

  it("is not stopped by a gap in the old primary's timeline 1 past the branch, and is by one on the line", () => {
    const names = [3, 4, 5, 6, 7, 8, 9, 11].map((n) => seg(1, n)).concat(['00000002.history', seg(2, 8), seg(2, 9)]);
    expect(
      checkWalCoverage({
        backup,
        target: { latest: true },
        files: files(names),
        histories,
        cluster: 'bank',
        repoArgs: '--runbook bank',
      }).walTo,
    ).toBe(seg(2, 9));
    const holed = names.filter((n) => n !== seg(1, 5));
    expect(() =>
      checkWalCoverage({
        backup,
        target: { latest: true },
        files: files(holed),
        histories,
        cluster: 'bank',
        repoArgs: '--runbook bank',
      }),
    ).toThrow(
      `the WAL archive of cluster bank cannot carry backup 20261203T120000Z to the end of the archive: WAL gap on timeline 1: ${seg(1, 5)} is missing`,
    );
  });
});
