// The newest commit in the WAL archive, read with pg_waldump from the newest
// archived segments: the latest time a recovery_target_time can reach.
// The catalog knows when segments were uploaded, not when their commits
// happened; a segment switched by archive_timeout can hold nothing but the
// switch, so segments are read newest first until one holds a commit.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Repository } from '../repository/types';
import { fetchWalFile } from '../wal/get';
import { parseLsn, walFileKind } from '../wal/names';

/** How many of the newest segments are read before giving up. */
const MAX_SEGMENTS = 6;

// pg_waldump prints "desc: COMMIT 2026-11-21 22:40:01.123456 UTC" for commit records
// (and ABORT likewise; both are stop points of recovery_target_time).
const RECORD_TIME =
  /\blsn: ([0-9A-F]+\/[0-9A-F]+),.*desc: (?:COMMIT|ABORT) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?) UTC/g;

/** Where segments are read from: Lifeboat's repository, or a function that writes one into `dir` (an engine's own command) and says where. */
export type SegmentSource =
  | { repo: Repository; cluster: string }
  | { fetchSegment: (segment: string, dir: string) => Promise<string | undefined> };

export async function newestArchivedCommit(
  opts: SegmentSource & {
    pgBin: string;
    /** Every archived WAL file name. */
    files: readonly string[];
    /** In this segment only records before `lsn` count (a parent timeline's copy read up to the switch point: ArchiveLine.endCap). */
    endCap?: { segment: string; lsn: string };
  },
): Promise<{ time: string; segment: string } | undefined> {
  const segments = opts.files
    .filter((f) => walFileKind(f) === 'segment')
    .sort()
    .slice(-MAX_SEGMENTS)
    .reverse();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-drill-waldump-'));
  try {
    for (const segment of segments) {
      const file = await fetchInto(opts, segment, dir);
      if (!file) continue;
      const out = await waldump(`${opts.pgBin}/pg_waldump`, ['--rmgr=Transaction', file]);
      await rm(file, { force: true });
      const cap = opts.endCap?.segment === segment ? parseLsn(opts.endCap.lsn) : undefined;
      const times = [...out.matchAll(RECORD_TIME)]
        .filter((m) => cap === undefined || parseLsn(m[1]!) < cap)
        .map((m) => `${m[2]!.replace(' ', 'T')}Z`);
      const last = times.sort().pop();
      if (last) return { time: new Date(Date.parse(last)).toISOString(), segment };
    }
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * One archived segment's content from either source, or undefined when the
 * archive lacks it; an engine's file is read and removed (`dir` is where it
 * may write when it has no directory of its own).
 */
export async function fetchSegmentBytes(
  source: SegmentSource,
  segment: string,
  dir: string,
): Promise<Buffer | undefined> {
  if ('fetchSegment' in source) {
    const file = await source.fetchSegment(segment, dir);
    if (!file) return undefined;
    try {
      return await readFile(file);
    } finally {
      await rm(file, { force: true });
    }
  }
  return (await fetchWalFile(source.repo, source.cluster, segment))?.content;
}

async function fetchInto(source: SegmentSource, segment: string, dir: string): Promise<string | undefined> {
  if ('fetchSegment' in source) return source.fetchSegment(segment, dir);
  const got = await fetchWalFile(source.repo, source.cluster, segment);
  if (!got) return undefined;
  const file = path.join(dir, segment);
  await writeFile(file, got.content);
  return file;
}

/**
 * pg_waldump's standard output. It exits non-zero at the end of a segment
 * whose successor it cannot see ("could not find file"/"invalid record
 * length"), which is normal for one segment read alone; the records it
 * printed before that are what counts. TZ=UTC makes it print UTC times.
 */
export function waldump(bin: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, TZ: 'UTC' }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
          reject(new Error(`${bin} not found: set cluster.pgBin in the runbook`));
        else resolve(stdout);
      },
    );
  });
}
