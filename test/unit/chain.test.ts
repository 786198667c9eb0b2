import { describe, expect, it } from 'vitest';
import { analyzeChain, describeChainProblems, type ChainBackup } from '../../src/catalog/chain';
import { formatLsn, segmentName } from '../../src/wal/names';

const SEG = 16 * 1024 * 1024;
const seg = (tli: number, n: number) => segmentName(tli, BigInt(n));
const range = (tli: number, from: number, to: number, except: number[] = []) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)
    .filter((n) => !except.includes(n))
    .map((n) => seg(tli, n));
/** A backup starting 0x28 bytes into segment n of timeline tli. */
const backup = (backupId: string, tli: number, n: number): ChainBackup => ({
  backupId,
  timeline: tli,
  startWal: seg(tli, n),
  startLsn: formatLsn(BigInt(n) * BigInt(SEG) + 0x28n),
});
const lsnIn = (n: number, offset = 0x100) => formatLsn(BigInt(n) * BigInt(SEG) + BigInt(offset));

describe('WAL chain continuity', () => {
  it('accepts a contiguous chain from the oldest backup to the newest segment, and reports each timeline', () => {
    const report = analyzeChain({
      walFiles: range(1, 1, 10),
      histories: {},
      backups: [backup('20261121T190102Z', 1, 3), backup('20261122T190102Z', 1, 7)],
    });
    expect(report.ok).toBe(true);
    expect(report.gaps).toEqual([]);
    expect(report.timelines).toEqual([
      {
        timeline: 1,
        segmentCount: 10,
        firstSegment: seg(1, 1),
        lastSegment: seg(1, 10),
        history: 'not-needed',
        parents: [],
        checkedFrom: { segment: seg(1, 3), backupId: '20261121T190102Z' },
        checkedTo: seg(1, 10),
      },
    ]);
    expect(describeChainProblems(report)).toEqual([]);
  });

  it('does not need segments from before the oldest backup', () => {
    const report = analyzeChain({
      walFiles: range(1, 6, 9),
      histories: {},
      backups: [backup('20261121T190102Z', 1, 6)],
    });
    expect(report.ok).toBe(true);
  });

  it('names a missing segment and says every backup that must replay through it', () => {
    const backups = [backup('20261121T190102Z', 1, 2), backup('20261122T000000Z', 1, 4)];
    const report = analyzeChain({ walFiles: range(1, 1, 10, [5]), histories: {}, backups });
    expect(report.ok).toBe(false);
    expect(report.gaps).toEqual([
      {
        timeline: 1,
        first: seg(1, 5),
        last: seg(1, 5),
        count: 1,
        onLineOf: [1],
        neededBy: ['20261121T190102Z', '20261122T000000Z'],
      },
    ]);
    const [problem] = describeChainProblems(report, '20261122T000000Z');
    expect(problem?.message).toBe(
      'WAL gap on timeline 1: 000000010000000000000005 is missing (needed by backup 20261121T190102Z and every later one)',
    );
    expect(problem?.hints).toContain(
      'a restore from an earlier backup stops at 000000010000000000000005: point-in-time recovery past it is impossible',
    );
  });

  it('does not blame a gap on backups that start after it', () => {
    const backups = [backup('20261121T190102Z', 1, 2), backup('20261122T000000Z', 1, 8)];
    const report = analyzeChain({ walFiles: range(1, 1, 10, [5]), histories: {}, backups });
    expect(report.gaps[0]?.neededBy).toEqual(['20261121T190102Z']);
    expect(describeChainProblems(report, '20261122T000000Z')[0]?.message).toBe(
      'WAL gap on timeline 1: 000000010000000000000005 is missing (needed by backup 20261121T190102Z)',
    );
  });

  it('reports consecutive missing segments as one gap', () => {
    const report = analyzeChain({
      walFiles: range(1, 1, 10, [5, 6, 7]),
      histories: {},
      backups: [backup('20261121T190102Z', 1, 2)],
    });
    expect(report.gaps).toHaveLength(1);
    expect(report.gaps[0]).toMatchObject({ first: seg(1, 5), last: seg(1, 7), count: 3 });
    expect(describeChainProblems(report, '20261121T190102Z')[0]?.message).toBe(
      'WAL gap on timeline 1: 3 segments 000000010000000000000005 to 000000010000000000000007 are missing (needed by backup 20261121T190102Z)',
    );
  });

  describe('across a timeline switch', () => {
    // Promoted at 0/7000100: timeline 1 supplies segments up to 6, timeline 2
    // supplies 7 (the switch segment) onwards; 1's copy of 7 is a .partial.
    const history2 = `1\t${lsnIn(7)}\tno recovery target specified\n`;
    const walFiles = [...range(1, 1, 6), `${seg(1, 7)}.partial`, '00000002.history', ...range(2, 7, 9)];

    it('follows the history file from the parent into the child', () => {
      const report = analyzeChain({
        walFiles,
        histories: { '00000002.history': history2 },
        backups: [backup('20261121T190102Z', 1, 3)],
      });
      expect(report.ok).toBe(true);
      const t2 = report.timelines.find((t) => t.timeline === 2);
      expect(t2).toMatchObject({
        history: 'present',
        firstSegment: seg(2, 7),
        lastSegment: seg(2, 9),
        parents: [{ timeline: 1, switchLsn: '0/7000100', switchSegment: seg(2, 7) }],
        checkedFrom: { segment: seg(1, 3), backupId: '20261121T190102Z' },
      });
    });

    it('reports a parent segment missing before the switch as a gap on the parent, on the child line', () => {
      const files = walFiles.filter((f) => f !== seg(1, 6));
      const report = analyzeChain({
        walFiles: files,
        histories: { '00000002.history': history2 },
        backups: [backup('20261121T190102Z', 1, 3)],
      });
      expect(report.gaps).toEqual([
        { timeline: 1, first: seg(1, 6), last: seg(1, 6), count: 1, onLineOf: [2], neededBy: ['20261121T190102Z'] },
      ]);
      expect(describeChainProblems(report)[0]?.hints).toContain('timeline 2 continues this line');
    });

    it('needs the switch segment from the child, not the parent', () => {
      const files = [...range(1, 1, 7), '00000002.history', ...range(2, 8, 9)];
      const report = analyzeChain({
        walFiles: files,
        histories: { '00000002.history': history2 },
        backups: [backup('20261121T190102Z', 1, 3)],
      });
      expect(report.gaps).toEqual([
        { timeline: 2, first: seg(2, 7), last: seg(2, 7), count: 1, onLineOf: [2], neededBy: ['20261121T190102Z'] },
      ]);
    });

    it('does not need the parent for a backup taken on the child', () => {
      // The old primary went on archiving timeline 1 after the switch: its
      // later segments are a branch a timeline-2 backup never reads.
      const files = [...range(1, 1, 12, [9]), '00000002.history', ...range(2, 7, 12)];
      const report = analyzeChain({
        walFiles: files,
        histories: { '00000002.history': history2 },
        backups: [backup('20261123T000000Z', 2, 8)],
      });
      expect(report.ok).toBe(true);
      expect(report.timelines.find((t) => t.timeline === 1)?.checkedFrom).toBeUndefined();
    });

    it('follows two switches written in one history file', () => {
      const history3 = `1\t${lsnIn(4)}\tno recovery target specified\n2\t${lsnIn(6, 0)}\tbefore 2026-06-04 14:31:59+00\n`;
      const files = [...range(1, 1, 3), ...range(2, 4, 5), ...range(3, 6, 8), '00000002.history', '00000003.history'];
      const histories = {
        '00000002.history': `1\t${lsnIn(4)}\tno recovery target specified\n`,
        '00000003.history': history3,
      };
      expect(analyzeChain({ walFiles: files, histories, backups: [backup('20261121T190102Z', 1, 2)] }).ok).toBe(true);
      const gap = analyzeChain({
        walFiles: files.filter((f) => f !== seg(2, 5)),
        histories,
        backups: [backup('20261121T190102Z', 1, 2)],
      });
      expect(gap.gaps).toEqual([
        { timeline: 2, first: seg(2, 5), last: seg(2, 5), count: 1, onLineOf: [3], neededBy: ['20261121T190102Z'] },
      ]);
    });

    it('reports a missing history file for a timeline that has segments', () => {
      const files = walFiles.filter((f) => f !== '00000002.history');
      const report = analyzeChain({ walFiles: files, histories: {}, backups: [backup('20261121T190102Z', 1, 3)] });
      expect(report.ok).toBe(false);
      expect(report.missingHistory).toEqual([
        { timeline: 2, file: '00000002.history', neededFor: '3 archived segments on timeline 2' },
      ]);
      expect(describeChainProblems(report).map((p) => p.message)).toEqual([
        'timeline history file 00000002.history is missing (3 archived segments on timeline 2)',
      ]);
    });

    it('reports a history file it cannot parse instead of trusting it', () => {
      const report = analyzeChain({
        walFiles,
        histories: { '00000002.history': 'this is not a history file\n' },
        backups: [backup('20261121T190102Z', 1, 3)],
      });
      expect(report.ok).toBe(false);
      expect(report.unreadableHistory[0]?.file).toBe('00000002.history');
      expect(report.timelines.find((t) => t.timeline === 2)?.history).toBe('unreadable');
    });
  });

  it('checks what is there when the repository holds no backup at all', () => {
    const report = analyzeChain({ walFiles: range(1, 3, 9, [6]), histories: {}, backups: [] });
    expect(report.gaps).toMatchObject([{ first: seg(1, 6), neededBy: [] }]);
    expect(describeChainProblems(report)[0]?.message).toBe(
      'WAL gap on timeline 1: 000000010000000000000006 is missing (no backup replays through it, but no restore can cross it either)',
    );
  });
});
