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

interface ZstdBinding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

// The native binding itself, loaded on first use (the marker path of
// archive-push and a spool hit of archive-get never need it). Not the
// package's index: in @mongodb-js/zstd 1.2.2 its `compress(buf, level)`
// drops `level` and always compresses at zstd's default, 3. The name is in
// a variable because the binding ships no type declarations.
const ZSTD_BINDING = '@mongodb-js/zstd/bindings';
let binding: Promise<ZstdBinding> | undefined;
function codec(): Promise<ZstdBinding> {
  binding ??= import(ZSTD_BINDING) as Promise<ZstdBinding>;
  return binding;
}

/** zstd at any level, for comparing levels (bench/archive.ts); archiving uses ZSTD_LEVEL. */
export async function zstdCompress(data: Buffer, level: number): Promise<Buffer> {
  return (await codec()).compress(data, level);
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
  return isCompressed(walFile) ? zstdCompress(content, ZSTD_LEVEL) : content;
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
  try {
    return await (await codec()).decompress(stored);
  } catch (err) {
    // Errors from the addon carry no stack and a bare message.
    throw new Error(`zstd: ${err instanceof Error ? err.message : String(err)}`);
  }
}
