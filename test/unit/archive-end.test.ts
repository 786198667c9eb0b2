// "End of the archive" for replay-wal (src/restore/replay.ts): where a
// --to-latest replay is paused, and what RECOVERY_ENDED_BEFORE_TARGET names.
// It follows the backup's line of timelines (issue 11, point 3: the newest
// segment of any timeline made a drill wait 623 s for 0/D000000, which only
// the old primary's timeline reached).
import { describe, expect, it } from 'vitest';
import { archiveEndOnLine } from '../../src/restore/replay';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) =>
  `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const range = (tli: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));
const backup = (startSeg: number, timeline = 1) => ({
  timeline,
  startLsn: `0/${startSeg.toString(16).toUpperCase()}000028`,
  walSegmentSize: SEG,
});

// Timeline 2 branched from timeline 1 at 0/5000100; the old primary went on
// archiving timeline 1 up to segment 0D.
const histories = { '00000002.history': '1\t0/5000100\tno recovery target specified\n' };
const files = [...range(1, 1, 13), '000000010000000000000005.partial', '00000002.history', ...range(2, 5, 7)];

describe('archiveEndOnLine', () => {
  it('is the newest segment of the newest timeline descending from the backup, not the old primary’s further segment', () => {
    expect(archiveEndOnLine(files, histories, backup(2))).toEqual({
      name: seg(2, 7),
      timeline: 2,
      startLsn: 7n * BigInt(SEG),
      endLsn: 8n * BigInt(SEG),
    });
  });

  it('right after the promotion, before the new timeline archived a segment, is the branch point in the old timeline’s copy of the switch segment (PostgreSQL reads that copy up to there)', () => {
    const justPromoted = [...range(1, 1, 13), '00000002.history'];
    expect(archiveEndOnLine(justPromoted, histories, backup(2))).toEqual({
      name: seg(1, 5),
      timeline: 1,
      startLsn: 5n * BigInt(SEG),
      endLsn: 0x5000100n,
    });
    // Without the old timeline's full copy of it (only the promoted copy's .partial), the segment before.
    const withoutIt = [...range(1, 1, 4), '000000010000000000000005.partial', '00000002.history'];
    expect(archiveEndOnLine(withoutIt, histories, backup(2))).toMatchObject({
      name: seg(1, 4),
      timeline: 1,
      endLsn: 5n * BigInt(SEG),
    });
  });

  it('without any history file is the newest segment of the backup’s timeline', () => {
    expect(archiveEndOnLine(range(1, 1, 9), {}, backup(3))).toMatchObject({
      name: seg(1, 9),
      endLsn: 10n * BigInt(SEG),
    });
  });

  it('for a backup taken on the old timeline after the branch stays on that timeline', () => {
    expect(archiveEndOnLine(files, histories, backup(9))).toMatchObject({ name: seg(1, 13), timeline: 1 });
  });

  it('is undefined when the archive holds no segment of the line', () => {
    expect(archiveEndOnLine(['00000002.history'], histories, backup(2))).toBeUndefined();
  });
});
