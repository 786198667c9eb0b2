// "End of the archive" for replay-wal (src/restore/replay.ts): where a
// --to-latest replay is paused, and what RECOVERY_ENDED_BEFORE_TARGET names.
// It follows the backup's line of timelines (issue 11, point 3: the newest
// segment of any timeline made a drill wait 623 s for 0/D000000, which only
// the old primary's timeline reached).
import { describe, expect, it } from 'vitest';
import { ArchiveEnd, archiveEndOnLine, replayTimelineAt } from '../../src/restore/archive-end';

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

// The timeline replay-wal reports at a pause: the one replay is on at pg_last_wal_replay_lsn, on the
// line it follows (issue 18), whatever timeline the last restartpoint was on.
describe('replayTimelineAt', () => {
  const three = {
    ...histories,
    '00000003.history': '1\t0/5000100\tno recovery target specified\n2\t0/7000200\tno recovery target specified\n',
  };

  it('is the parent up to and at the switch point (its last record ends there), the child past it', () => {
    expect(replayTimelineAt('0/4000000', histories, 2)).toBe(1);
    expect(replayTimelineAt('0/5000100', histories, 2)).toBe(1);
    expect(replayTimelineAt('0/5000101', histories, 2)).toBe(2);
    expect(replayTimelineAt('0/7000000', histories, 2)).toBe(2);
  });

  it('walks every ancestor of the line’s newest timeline', () => {
    expect(replayTimelineAt('0/5000000', three, 3)).toBe(1);
    expect(replayTimelineAt('0/6000000', three, 3)).toBe(2);
    expect(replayTimelineAt('0/7000200', three, 3)).toBe(2);
    expect(replayTimelineAt('0/7000300', three, 3)).toBe(3);
  });

  it('is the line’s timeline when it has no history (the backup’s own)', () => {
    expect(replayTimelineAt('0/9000000', {}, 1)).toBe(1);
  });
});

describe('ArchiveEnd.timelineAt', () => {
  const reader = (read: () => Promise<{ files: string[]; histories: Record<string, string> }>) =>
    new ArchiveEnd(read, { timeline: 1, startLsn: '0/2000028', walSegmentSize: SEG });

  it('follows the line the replay takes from the backup: timeline 2 past the branch, 1 before', async () => {
    const end = reader(async () => ({ files, histories }));
    expect(await end.timelineAt('0/6000000', 1)).toBe(2);
    expect(await end.timelineAt('0/4000000', 1)).toBe(1);
  });

  it('is never below the last restartpoint’s timeline, which is also the answer when the archive cannot be read', async () => {
    expect(await reader(async () => ({ files: range(1, 1, 9), histories: {} })).timelineAt('0/6000000', 2)).toBe(2);
    const unreadable = reader(() => Promise.reject(new Error('repository unreachable')));
    expect(await unreadable.timelineAt('0/6000000', 1)).toBe(1);
  });
});
