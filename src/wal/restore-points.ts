// Where restore points may be, found while a segment is archived, so that
// preflight's search for a restore point name (src/recovery/reach.ts) reads
// only the segments that may hold one instead of every segment since the
// backup (issue 13: 88 ms a segment, 6.4 s for 1 GiB of WAL, minutes for a
// day's). archive-push already holds the segment in memory; this scan costs
// a few milliseconds of it.
//
// What is looked for: the start of an XLOG_RESTORE_POINT record, as
// pg_create_restore_point writes it (PostgreSQL 15, access/xlogrecord.h and
// access/xlog_internal.h):
//   - records start at MAXALIGN (8-byte) positions;
//   - the 24-byte XLogRecord header: xl_tot_len (uint32) at 0, xl_xid at 4,
//     xl_prev at 8, xl_info at 16, xl_rmid at 17;
//   - rmid RM_XLOG_ID (0), info XLOG_RESTORE_POINT (0x70) in the high four
//     bits (the low four are XLR_INFO_MASK flags);
//   - xl_tot_len 98: the header, a 2-byte XLR_BLOCK_ID_DATA_SHORT header and
//     the 72-byte xl_restore_point (rp_time, rp_name[64]); a replication
//     origin or a top-level xid adds a few bytes, so up to 112 is accepted.
// A record may cross a page boundary (header included): pages are joined
// without their headers (24 bytes, 40 for a segment's first page; both keep
// the 8-byte alignment), so the record's bytes are contiguous. A header cut
// by the segment's end counts when the bytes that are there could begin one.
//
// A place that looks like one is checked with the record's CRC-32C, as
// PostgreSQL checks it. The answer is a count: never fewer than there are (a
// segment with 0 holds none); more only when a record the segment's end
// cuts looks like one (it cannot be checked without the next segment).
// pg_waldump reads the segments with a count.

import * as os from 'node:os';

/** XLogPageHeaderData.xlp_info flag: the page carries the long header. */
const XLP_LONG_HEADER = 0x0002;
const SHORT_PAGE_HEADER = 24;
const LONG_PAGE_HEADER = 40;
const RECORD_HEADER = 24;
const RESTORE_POINT_MIN = 98;
const RESTORE_POINT_MAX = 112;
const XLOG_RESTORE_POINT = 0x70;
const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * How many places in a WAL segment may start a restore point record;
 * undefined when the content is not a WAL segment this scan understands
 * (then nothing can be skipped).
 */
export function restorePointCandidates(segment: Buffer): number | undefined {
  if (segment.length < LONG_PAGE_HEADER) return undefined;
  const magic = segment.readUInt16LE(0);
  const info = segment.readUInt16LE(2);
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  const segSize = segment.readUInt32LE(32);
  const blockSize = segment.readUInt32LE(36);
  if (segSize !== segment.length || blockSize < 1024 || blockSize % 8 !== 0 || segSize % blockSize !== 0)
    return undefined;
  // The pages' contents, in order. A page without the segment's magic
  // (zeroed after a WAL switch, or never written) holds nothing replay reads.
  const bodies: { from: number; to: number }[] = [];
  for (let page = 0; page < segSize; page += blockSize) {
    if (segment.readUInt16LE(page) !== magic) continue;
    const header = (segment.readUInt16LE(page + 2) & XLP_LONG_HEADER) !== 0 ? LONG_PAGE_HEADER : SHORT_PAGE_HEADER;
    bodies.push({ from: page + header, to: page + blockSize });
  }
  const words =
    LITTLE_ENDIAN && segment.byteOffset % 4 === 0
      ? new Uint32Array(segment.buffer, segment.byteOffset, segment.length >>> 2)
      : undefined;
  /** `len` bytes of the record at `p` in body `n`, across page boundaries; undefined past the segment's end. */
  const recordAt = (n: number, p: number, len: number): Buffer | undefined => {
    const parts: Buffer[] = [];
    let need = len;
    for (let b = n, from = p; need > 0; b++) {
      const body = bodies[b];
      if (!body) return undefined;
      const start = b === n ? from : body.from;
      const take = Math.min(need, body.to - start);
      parts.push(segment.subarray(start, start + take));
      need -= take;
      from = body.to;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  };
  // A header that fits is a restore point when its CRC-32C says so
  // (xlogreader.c ValidXLogRecord: the data after the header, then the
  // header up to xl_crc); data that merely looks like a header (line
  // pointers in a full-page image, tuple contents) does not pass. A record
  // the segment's end cuts cannot be checked here and counts.
  const isOne = (n: number, p: number): boolean => {
    const rec = recordAt(n, p, RECORD_HEADER);
    if (!rec) return true;
    const whole = recordAt(n, p, rec.readUInt32LE(0));
    if (!whole) return true;
    const crc = crc32c(crc32c(0xffffffff, whole, RECORD_HEADER, whole.length), whole, 0, XL_CRC_OFFSET) ^ 0xffffffff;
    return crc >>> 0 === whole.readUInt32LE(XL_CRC_OFFSET);
  };
  let found = 0;
  for (const [n, body] of bodies.entries()) {
    // Headers whole inside this page, four bytes at a time where the machine
    // allows it (5 ms for 16 MiB where a byte loop takes 20): word 0 is
    // xl_tot_len, the low half of word 4 xl_info and xl_rmid.
    let p = body.from;
    const last = body.to - RECORD_HEADER;
    if (words) {
      for (; p <= last; p += 8) {
        const i = p >>> 2;
        if (
          (words[i + 4]! & 0xfff0) === XLOG_RESTORE_POINT &&
          words[i]! >= RESTORE_POINT_MIN &&
          words[i]! <= RESTORE_POINT_MAX &&
          isOne(n, p)
        )
          found++;
      }
    } else {
      for (; p <= last; p += 8) if (looksLikeOne((i) => segment[p + i]) && isOne(n, p)) found++;
    }
    // Headers the page boundary cuts: they go on in the next page's body, or
    // past the segment's end (then what is there must fit one).
    const next = bodies[n + 1];
    for (; p < body.to; p += 8) {
      const at = p;
      const byte = (i: number) => {
        const q = at + i;
        if (q < body.to) return segment[q];
        return next ? segment[next.from + (q - body.to)] : undefined;
      };
      if (looksLikeOne(byte) && isOne(n, p)) found++;
    }
  }
  return found;
}

/** offsetof(XLogRecord, xl_crc). */
const XL_CRC_OFFSET = 20;

/** CRC-32C (Castagnoli, reflected), PostgreSQL's COMP_CRC32C, table-driven. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32c(crc: number, buf: Buffer, from: number, to: number): number {
  let c = crc >>> 0;
  for (let i = from; i < to; i++) c = CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** Whether the bytes at a record start fit a restore point header; a byte that is not there (undefined) fits. */
function looksLikeOne(byte: (i: number) => number | undefined): boolean {
  const fits = (i: number, ok: (b: number) => boolean) => {
    const b = byte(i);
    return b === undefined || ok(b);
  };
  return (
    fits(0, (b) => b >= RESTORE_POINT_MIN && b <= RESTORE_POINT_MAX) &&
    fits(1, (b) => b === 0) &&
    fits(2, (b) => b === 0) &&
    fits(3, (b) => b === 0) &&
    fits(16, (b) => (b & 0xf0) === XLOG_RESTORE_POINT) &&
    fits(17, (b) => b === 0)
  );
}
