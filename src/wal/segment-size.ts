// The WAL segment size a cluster was made with (initdb --wal-segsize), read
// from one of its segments: the file's length, which the long header of its
// first page repeats (XLogLongPageHeaderData.xlp_seg_size). For an archive
// whose tool does not record it (pgBackRest's info gives none).
import { open } from 'node:fs/promises';
import { isSegmentSize } from './names';

/** XLogPageHeaderData.xlp_info flag: the page carries the long header. */
const XLP_LONG_HEADER = 0x0002;
const LONG_PAGE_HEADER = 40;

/** The segment size `file` was written with; undefined when it is not a whole segment whose header agrees. */
export async function segmentSizeOfFile(file: string): Promise<number | undefined> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(LONG_PAGE_HEADER);
    const { bytesRead } = await fh.read(head, 0, LONG_PAGE_HEADER, 0);
    return segmentSizeOfHeader(head.subarray(0, bytesRead), size);
  } finally {
    await fh.close();
  }
}

/** The segment size a segment's first bytes give, when they agree with its length `size`. */
export function segmentSizeOfHeader(head: Buffer, size: number): number | undefined {
  if (head.length < LONG_PAGE_HEADER) return undefined;
  if ((head.readUInt16LE(2) & XLP_LONG_HEADER) === 0) return undefined;
  const segSize = head.readUInt32LE(32);
  return isSegmentSize(segSize) && segSize === size ? segSize : undefined;
}
