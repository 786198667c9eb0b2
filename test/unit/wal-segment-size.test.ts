// The WAL segment size read from a segment's first page (src/wal/segment-size.ts):
// the file's length, which the long header's xlp_seg_size must repeat.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { segmentSizeOfFile, segmentSizeOfHeader } from '../../src/wal/segment-size';

const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-segsize-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A segment's first bytes as PostgreSQL 15 writes them: magic, XLP_LONG_HEADER, ..., xlp_seg_size, xlp_xlog_blcksz. */
function head(segSize: number, info = 0x0002): Buffer {
  const b = Buffer.alloc(40);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(info, 2);
  b.writeUInt32LE(1, 4);
  b.writeUInt32LE(segSize, 32);
  b.writeUInt32LE(8192, 36);
  return b;
}

it('reads the size a whole segment was written with', async () => {
  const file = path.join(dir, '000000010000000000000003');
  const seg = Buffer.alloc(1 << 20);
  head(1 << 20).copy(seg);
  writeFileSync(file, seg);
  expect(await segmentSizeOfFile(file)).toBe(1 << 20);
  expect(segmentSizeOfHeader(head(64 << 20), 64 << 20)).toBe(64 << 20);
});

it('gives nothing for a file that is not a whole segment whose header agrees', async () => {
  // Cut short: the header says 1 MiB.
  expect(segmentSizeOfHeader(head(1 << 20), 8192)).toBeUndefined();
  // A page without the long header (not a segment's first page).
  expect(segmentSizeOfHeader(head(1 << 20, 0), 1 << 20)).toBeUndefined();
  // Not a size initdb allows.
  expect(segmentSizeOfHeader(head(3 << 20), 3 << 20)).toBeUndefined();
  // Shorter than a long header.
  const file = path.join(dir, 'short');
  writeFileSync(file, Buffer.alloc(10));
  expect(await segmentSizeOfFile(file)).toBeUndefined();
});
