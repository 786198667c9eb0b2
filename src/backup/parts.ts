// The version 2 layout of a base backup's data directory (backup.json
// version 2, src/catalog/backup-meta.ts): several tar.zst parts instead of
// one, so that a restore can run one `tar --zstd -x` per core, as pgBackRest
// restores files with `process-max` workers; a single compressed tar stream
// can only ever be decompressed by one.
//
//   base.0000.tar.zst   every directory (and symlink) of the data directory,
//                       no file: restored first and alone, so the parallel
//                       extractors never race to create a directory, and every
//                       directory gets its mode from the archive
//   base.0001.tar.zst.. the regular files in path order (the segments and
//                       forks of one relation side by side), cut into parts
//                       of about PART_TARGET_BYTES; a file bigger than that
//                       (a relation segment is up to 1 GiB) is a part alone
//
// Each part is an ordinary GNU tar compressed by the zstd CLI: an operator
// restores one by hand with `for p in base.*.tar.zst; do tar --zstd -xf $p
// -C DIR; done`, in any order after part 0.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, readdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifeboatError } from '../errors';

const MiB = 1024 * 1024;

/**
 * About 128 MiB of data directory per part. Smaller parts balance the cores
 * better and show progress sooner, but each costs a request and three
 * processes (runuser, tar, zstd: 10 to 30 ms); at a few hundred MB/s per
 * core a 128 MiB part takes about half a second, so that overhead stays
 * under 5 %, and a 100 GB database is some 800 objects, not 100 000.
 */
export const PART_TARGET_BYTES = 128 * MiB;

export interface DataDirEntry {
  /** Name as tar stores it: '.' for the directory itself, else './relative/path'. */
  name: string;
  kind: 'dir' | 'file' | 'other';
  size: number;
}

/** Every entry of a data directory, parents before children. */
export async function listDataDir(dataDir: string): Promise<DataDirEntry[]> {
  const out: DataDirEntry[] = [{ name: '.', kind: 'dir', size: 0 }];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(dataDir, rel))).sort();
    for (const n of names) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = await lstat(path.join(dataDir, r));
      if (st.isDirectory()) {
        out.push({ name: `./${r}`, kind: 'dir', size: 0 });
        await walk(r);
      } else {
        out.push({ name: `./${r}`, kind: st.isFile() ? 'file' : 'other', size: st.isFile() ? st.size : 0 });
      }
    }
  };
  await walk('');
  return out;
}

/**
 * Which names go into which part: part 0 the directories and anything that
 * is not a regular file, then the files in path order, a new part whenever
 * the next file would take the current one past `targetBytes`.
 */
export function planParts(entries: DataDirEntry[], targetBytes = PART_TARGET_BYTES): string[][] {
  const parts: string[][] = [entries.filter((e) => e.kind !== 'file').map((e) => e.name)];
  const files = entries
    .filter((e) => e.kind === 'file')
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let current: string[] = [];
  let bytes = 0;
  for (const f of files) {
    if (current.length > 0 && bytes + f.size > targetBytes) {
      parts.push(current);
      current = [];
      bytes = 0;
    }
    current.push(f.name);
    bytes += f.size;
  }
  if (current.length > 0) parts.push(current);
  return parts;
}

export interface PackedPart {
  /** sha256 and bytes of the uncompressed tar. */
  sha256: string;
  size: number;
  /** sha256 and bytes of the .tar.zst as written. */
  storedSha256: string;
  storedSize: number;
}

/**
 * tar of `names` (or of the whole directory, recursively, when `names` is
 * undefined: the version 1 archive) | zstd > out, hashing both streams.
 */
export async function packPart(
  dataDir: string,
  names: string[] | undefined,
  out: string,
  onBytes: (n: number) => void,
): Promise<PackedPart> {
  let args = ['-C', dataDir, '-cf', '-', '.'];
  if (names) {
    const list = `${out}.list`;
    await writeFile(list, names.map((n) => `${n}\0`).join(''));
    // Position-sensitive options first: they apply to the names that follow.
    args = ['-C', dataDir, '-cf', '-', '--no-recursion', '--null', '-T', list];
  }
  const tar = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // -T1 for a part: the parts themselves are packed in parallel.
  const zstd = spawn('zstd', ['-q', '-3', names ? '-T1' : '-T0', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  const storedHash = createHash('sha256');
  let size = 0;
  let storedSize = 0;
  let tarErr = '';
  let zstdErr = '';
  tar.stderr.on('data', (d: Buffer) => (tarErr += d.toString()));
  zstd.stderr.on('data', (d: Buffer) => (zstdErr += d.toString()));
  tar.stdout.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
    onBytes(chunk.length);
  });
  tar.stdout.pipe(zstd.stdin);
  zstd.stdout.on('data', (chunk: Buffer) => {
    storedHash.update(chunk);
    storedSize += chunk.length;
  });
  const file = createWriteStream(out);
  zstd.stdout.pipe(file);
  const exited = (p: ReturnType<typeof spawn>) =>
    new Promise<number>((res, rej) => {
      p.on('error', rej);
      p.on('close', (c) => res(c ?? 1));
    });
  const [tc, zc] = await Promise.all([
    exited(tar),
    exited(zstd),
    new Promise<void>((res, rej) => {
      file.on('finish', () => res());
      file.on('error', rej);
    }),
  ]);
  if (tc !== 0) throw new LifeboatError('BACKUP_FAILED', `tar of ${dataDir} failed (exit ${tc}): ${tarErr.trim()}`);
  if (zc !== 0) {
    throw new LifeboatError('BACKUP_FAILED', `zstd failed (exit ${zc}): ${zstdErr.trim()}`, {
      hints: ['is the zstd package installed on this host? (scripts/setup.sh installs it)'],
    });
  }
  return { sha256: hash.digest('hex'), size, storedSha256: storedHash.digest('hex'), storedSize };
}

/** How many extractors (or packers) to run at once: one per core, at least 2 (one waits on I/O while the other computes). */
export function defaultParallel(): number {
  return Math.max(2, os.availableParallelism());
}

/**
 * Runs `fn` over `items` with at most `n` at a time; the first failure stops
 * new starts, waits for the running ones and is thrown.
 */
export async function inParallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, lane));
  if (failed) throw failed.err;
}
