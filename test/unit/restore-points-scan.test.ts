// The archive-time scan for restore point records (src/wal/restore-points.ts)
// on segments built here byte by byte: page headers as PostgreSQL 15 writes
// them, a restore point header placed inside a page, cut by a page boundary,
// cut by the segment's end, and look-alikes that are not one. The scan on
// segments a real PostgreSQL wrote is in test/integration/archive.test.ts.
import { describe, expect, it } from 'vitest';
import { restorePointCandidates } from '../../src/wal/restore-points';

const SEG = 1 << 20;
const BLOCK = 8192;
const MAGIC = 0xd110;

/** A segment of valid pages with no records: long header on page 0, short ones after. */
function segment(): Buffer {
  const b = Buffer.alloc(SEG);
  for (let page = 0; page < SEG; page += BLOCK) {
    b.writeUInt16LE(MAGIC, page);
    b.writeUInt16LE(page === 0 ? 0x0002 : 0, page + 2);
  }
  b.writeUInt32LE(SEG, 32);
  b.writeUInt32LE(BLOCK, 36);
  return b;
}

/** Segment offset of a position in the pages' joined contents. */
function offsetOf(streamPos: number): number {
  const first = BLOCK - 40;
  if (streamPos < first) return 40 + streamPos;
  const rest = streamPos - first;
  const perPage = BLOCK - 24;
  return BLOCK * (1 + Math.floor(rest / perPage)) + 24 + (rest % perPage);
}

/** CRC-32C, bit by bit (the scan's own is table-driven). */
function crc32c(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Writes a record at a stream position, through offsetOf (so a page boundary
 * cuts it): the 24-byte header, then XLR_BLOCK_ID_DATA_SHORT, the main
 * data's length and the data (an xl_restore_point: time, name), and the
 * CRC-32C PostgreSQL computes (the data after the header, then the header up
 * to xl_crc), or a wrong one.
 */
function putHeader(
  b: Buffer,
  streamPos: number,
  fields: { totLen: number; info: number; rmid: number; xid?: number },
  opts: { badCrc?: boolean } = {},
): void {
  const rec = Buffer.alloc(Math.max(24, Math.min(fields.totLen, 200)));
  rec.writeUInt32LE(fields.totLen, 0);
  rec.writeUInt32LE(fields.xid ?? 0, 4);
  rec[16] = fields.info;
  rec[17] = fields.rmid;
  if (rec.length > 26) {
    rec[24] = 0xff;
    rec[25] = rec.length - 26;
    rec.write('a-restore-point', 34);
  }
  const crc = crc32c(Buffer.concat([rec.subarray(24), rec.subarray(0, 20)]));
  rec.writeUInt32LE(opts.badCrc ? crc ^ 1 : crc, 20);
  for (let i = 0; i < rec.length; i++) {
    const at = offsetOf(streamPos + i);
    if (at < b.length) b[at] = rec[i]!;
  }
}

const RESTORE_POINT = { totLen: 98, info: 0x70, rmid: 0 };

describe('restorePointCandidates', () => {
  it('finds none in a segment without restore points', () => {
    expect(restorePointCandidates(segment())).toBe(0);
  });

  it('finds a restore point header inside a page, with or without an xid', () => {
    const b = segment();
    putHeader(b, 800, RESTORE_POINT);
    putHeader(b, 4096, { ...RESTORE_POINT, xid: 1234 });
    expect(restorePointCandidates(b)).toBe(2);
  });

  it('finds one whose header a page boundary cuts, at each 8-byte position', () => {
    for (const back of [8, 16]) {
      const b = segment();
      // The first page's joined contents end at BLOCK - 40.
      putHeader(b, BLOCK - 40 - back, RESTORE_POINT);
      expect(restorePointCandidates(b), `${back} bytes before the boundary`).toBe(1);
      // The header's bytes really are on two pages.
      expect(offsetOf(BLOCK - 40 - back + 23)).toBeGreaterThan(BLOCK);
    }
  });

  it("counts a header the segment's end cuts when what is there fits one", () => {
    const b = segment();
    const streamLen = BLOCK - 40 + (SEG / BLOCK - 1) * (BLOCK - 24);
    putHeader(b, streamLen - 8, RESTORE_POINT);
    expect(restorePointCandidates(b)).toBe(1);
    const c = segment();
    putHeader(c, streamLen - 8, { ...RESTORE_POINT, totLen: 400 });
    expect(restorePointCandidates(c)).toBe(0);
  });

  it('does not count what looks like a restore point header but fails its CRC', () => {
    const b = segment();
    putHeader(b, 800, RESTORE_POINT, { badCrc: true });
    putHeader(b, BLOCK - 40 - 8, RESTORE_POINT, { badCrc: true });
    expect(restorePointCandidates(b)).toBe(0);
  });

  it('does not count other XLOG records, other resource managers or unaligned look-alikes', () => {
    const b = segment();
    putHeader(b, 800, { totLen: 98, info: 0x00, rmid: 0 }); // XLOG_CHECKPOINT_SHUTDOWN
    putHeader(b, 1600, { totLen: 98, info: 0x70, rmid: 10 }); // another resource manager
    putHeader(b, 2400, { totLen: 4000, info: 0x70, rmid: 0 }); // too long for one
    putHeader(b, 3204, RESTORE_POINT); // not MAXALIGNed
    expect(restorePointCandidates(b)).toBe(0);
  });

  it('skips pages a WAL switch left without a header', () => {
    const b = segment();
    b.fill(0, 5 * BLOCK);
    putHeader(b, 800, RESTORE_POINT);
    expect(restorePointCandidates(b)).toBe(1);
  });

  it('answers undefined for what it does not understand', () => {
    expect(restorePointCandidates(Buffer.alloc(100))).toBeUndefined();
    const b = segment();
    b.writeUInt16LE(0, 2); // no long header on the first page
    expect(restorePointCandidates(b)).toBeUndefined();
    expect(restorePointCandidates(segment().subarray(0, SEG / 2))).toBeUndefined();
  });
});
