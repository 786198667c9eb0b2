// The line of WAL a replay from a backup reads (src/recovery/reach.ts): the
// timeline a target is checked on. An old primary that went on writing
// timeline 1 after timeline 2 branched off must not count as "the archive
// reaches further".
import { describe, expect, it } from 'vitest';
import { archiveLine } from '../../src/recovery/reach';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) =>
  `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const range = (tli: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));

// Timeline 2 branched from timeline 1 at 0/5000100 (inside segment 5); the
// old primary kept archiving timeline 1 up to segment 10.
const files = [...range(1, 1, 10), '000000010000000000000005.partial', '00000002.history', ...range(2, 5, 7)];
const histories = { '00000002.history': '1\t0/5000100\tno recovery target specified\n' };
const backup = (startSeg: number, timeline = 1) => ({
  timeline,
  startLsn: `0/${startSeg.toString(16).toUpperCase()}000028`,
  startWal: seg(timeline, startSeg),
  walSegmentSize: SEG,
});

describe('archiveLine', () => {
  it('follows the newest timeline that descends from the backup, leaving out the old primary after the branch', () => {
    expect(archiveLine(files, histories, backup(2))).toEqual({
      timeline: 2,
      segments: [...range(1, 2, 4), ...range(2, 5, 7)],
    });
  });

  it('stays on timeline 1 for a backup taken on it after the branch point', () => {
    expect(archiveLine(files, histories, backup(8))).toEqual({ timeline: 1, segments: range(1, 8, 10) });
  });

  it('reads only the backup timeline when there is no history', () => {
    expect(archiveLine(range(1, 1, 4), {}, backup(3))).toEqual({ timeline: 1, segments: range(1, 3, 4) });
  });

  it("goes on into timeline 1's copy of the switch segment, capped at the switch point, while timeline 2 has no segment archived yet", () => {
    const justPromoted = [...range(1, 1, 10), '00000002.history'];
    expect(archiveLine(justPromoted, histories, backup(2))).toEqual({
      timeline: 2,
      segments: range(1, 2, 5),
      endCap: { segment: seg(1, 5), lsn: '0/5000100' },
    });
    // Once timeline 2's first segment is there, it is read instead, uncapped.
    expect(archiveLine([...justPromoted, seg(2, 5)], histories, backup(2))).toEqual({
      timeline: 2,
      segments: [...range(1, 2, 4), seg(2, 5)],
    });
  });

  it('follows a backup taken on timeline 2', () => {
    expect(archiveLine(files, histories, backup(6, 2))).toEqual({ timeline: 2, segments: range(2, 6, 7) });
  });
});
