// How WAL files are stored: segments zstd-compressed, everything else
// (timeline history, .backup labels, .partial segments) as PostgreSQL wrote
// it (src/repository/layout.ts names the keys). The checksum recorded with
// every object is the sha256 of the original bytes, so it can be checked
// after decompression, against pg_wal, and by tools that never decompress.
//
// Level 1: on pgbench WAL it compresses about as well as level 3 but faster,
// and archive-push must keep pace with the primary on a busy machine. The
// figures are in BENCHMARKS.md ("Archive").
import { createHash } from 'node:crypto';
import { walFileKind } from './names';

export const ZSTD_LEVEL = 1;

/** zstd's frame magic number, little-endian 0xFD2FB528. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

// The native addon is loaded on first use: the marker path of archive-push
// and a spool hit of archive-get never need it.
let zstd: typeof import('@mongodb-js/zstd') | undefined;
function codec(): typeof import('@mongodb-js/zstd') {
  zstd ??= require('@mongodb-js/zstd') as typeof import('@mongodb-js/zstd');
  return zstd;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Whether a WAL file of this name is stored compressed. */
export function isCompressed(walFile: string): boolean {
  return walFileKind(walFile) === 'segment';
}

/** The stored form of a WAL file's content. */
export async function encodeWal(walFile: string, content: Buffer): Promise<Buffer> {
  return isCompressed(walFile) ? codec().compress(content, ZSTD_LEVEL) : content;
}

/**
 * The original content of a stored WAL file. Throws on data that is not a
 * zstd frame or does not decompress: the caller treats that like a checksum
 * mismatch.
 */
export async function decodeWal(walFile: string, stored: Buffer): Promise<Buffer> {
  if (!isCompressed(walFile)) return stored;
  if (stored.length < 4 || !stored.subarray(0, 4).equals(ZSTD_MAGIC)) {
    throw new Error('not zstd data (bad frame magic)');
  }
  return codec().decompress(stored);
}
