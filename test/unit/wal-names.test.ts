// WAL file names and LSN arithmetic, checked against what PostgreSQL itself
// names and prints (pg_walfile_name, pg_current_wal_lsn, <tli>.history).
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  formatLsn,
  historyFileName,
  isHistoryName,
  isSegmentName,
  nextSegmentName,
  parseHistoryFile,
  parseLsn,
  parseSegmentName,
  segmentName,
  segnoOfLsn,
  timelineOfHistory,
  walFileKind,
} from '../../src/wal/names';

const MB = 1024 * 1024;

describe('segment names', () => {
  it('splits the segment number into the XX and YY parts, 256 segments per XX at 16 MB', () => {
    expect(segmentName(1, 0n)).toBe('000000010000000000000000');
    expect(segmentName(1, 258n)).toBe('000000010000000100000002');
    expect(segmentName(0x1a, 0xff_ffn)).toBe('0000001A000000FF000000FF');
    expect(parseSegmentName('000000010000000100000002')).toEqual({ timeline: 1, segno: 258n });
  });

  it('round-trips names and segment numbers, on several timelines', () => {
    for (const timeline of [1, 2, 10, 255]) {
      for (const segno of [0n, 1n, 255n, 256n, 257n, 65_535n, 1_000_003n]) {
        const name = segmentName(timeline, segno);
        expect(isSegmentName(name)).toBe(true);
        expect(parseSegmentName(name)).toEqual({ timeline, segno });
      }
    }
  });

  it('moves from …000000FF to the next XX, not to …00000100', () => {
    expect(nextSegmentName('0000000100000000000000FF')).toBe('000000010000000100000000');
    expect(nextSegmentName('000000010000000100000000')).toBe('000000010000000100000001');
    expect(nextSegmentName('00000002000000AB000000FF')).toBe('00000002000000AC00000000');
  });

  it('uses the segment size: at 64 MB there are 64 segments per XX', () => {
    const size = 64 * MB;
    expect(nextSegmentName('00000001000000000000003F', size)).toBe('000000010000000100000000');
    expect(parseSegmentName('000000010000000100000000', size).segno).toBe(64n);
    expect(segmentName(1, 130n, size)).toBe('000000010000000200000002');
    // The same name means a different position at another segment size.
    expect(parseSegmentName('000000010000000100000000').segno).toBe(256n);
  });

  it('refuses names that are not segments', () => {
    expect(() => parseSegmentName('00000001000000000000000')).toThrow(
      'not a WAL segment name: "00000001000000000000000"',
    );
    expect(() => parseSegmentName('00000001000000000000000g')).toThrow('not a WAL segment name');
    expect(isSegmentName('000000010000000000000001.partial')).toBe(false);
  });

  it('tells segments, history files, partial segments and backup labels apart', () => {
    expect(walFileKind('000000010000000000000001')).toBe('segment');
    expect(walFileKind('00000002.history')).toBe('history');
    expect(walFileKind('000000010000000000000001.partial')).toBe('partial');
    expect(walFileKind('000000010000000000000002.00000028.backup')).toBe('backup');
    expect(walFileKind('RECOVERYHISTORY')).toBe('other');
  });
});

describe('LSNs', () => {
  it('parses and prints them the way PostgreSQL does (hex, upper case, no padding)', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n);
    expect(parseLsn('1/0')).toBe(1n << 32n);
    expect(parseLsn(' 2a/ff000028 ')).toBe((0x2an << 32n) | 0xff000028n);
    expect(formatLsn(0n)).toBe('0/0');
    expect(formatLsn(0x16b3748n)).toBe('0/16B3748');
    expect(formatLsn((0x2an << 32n) | 0xff000028n)).toBe('2A/FF000028');
    for (const lsn of ['0/0', '0/16B3748', '1/0', 'FFFFFFFF/FFFFFFFF', '3/A1B2C3D4'])
      expect(formatLsn(parseLsn(lsn))).toBe(lsn);
  });

  it('refuses text that is not an LSN, with the expected form in the message', () => {
    expect(() => parseLsn('16B3748')).toThrow('not an LSN (expected the form 0/16B3748): "16B3748"');
    expect(() => parseLsn('0/123456789')).toThrow('not an LSN');
  });

  it('finds the segment holding an LSN', () => {
    expect(segnoOfLsn('0/3000028')).toBe(3n);
    expect(segnoOfLsn('0/2FFFFFF')).toBe(2n);
    // 1/0 is the first byte of the first segment with XX = 1.
    expect(segmentName(1, segnoOfLsn('1/0'))).toBe('000000010000000100000000');
    expect(segnoOfLsn(parseLsn('1/0'), 64 * MB)).toBe(64n);
    expect(segnoOfLsn(0x16b3748n, DEFAULT_WAL_SEGMENT_SIZE)).toBe(1n);
  });
});

describe('timeline history files', () => {
  it('names them by timeline in hex', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(10)).toBe('0000000A.history');
    expect(timelineOfHistory('0000000A.history')).toBe(10);
    expect(isHistoryName('0000000a.history')).toBe(false);
    expect(() => timelineOfHistory('2.history')).toThrow('not a timeline history file name: "2.history"');
  });

  it('parses what PostgreSQL writes: tab-separated, blank lines between entries, reasons with spaces', () => {
    // The content of 00000003.history after two promotions.
    const text =
      '1\t0/3000158\tno recovery target specified\n' + '\n' + '2\t0/5000000\tbefore 2026-06-04 14:31:59.123456+00\n';
    expect(parseHistoryFile(text)).toEqual([
      { timeline: 1, switchLsn: 0x3000158n, reason: 'no recovery target specified' },
      { timeline: 2, switchLsn: 0x5000000n, reason: 'before 2026-06-04 14:31:59.123456+00' },
    ]);
  });

  it('ignores comment lines and an empty file', () => {
    expect(parseHistoryFile('')).toEqual([]);
    expect(parseHistoryFile('# comment\n1\t0/3000000\tat restore point "before_migration"\n')).toEqual([
      { timeline: 1, switchLsn: 0x3000000n, reason: 'at restore point "before_migration"' },
    ]);
  });
});
