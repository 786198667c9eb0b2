// What pg_waldump shows of archived segments, for preflight's reach check
// (reach.ts): one segment's last record and restore points (cached across the
// two checks of one preflight), and the search of a line's segments for
// restore points, skipping those archive-push counted none in.
import { rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fetchSegmentBytes, waldump, type SegmentSource } from '../drill/newest-commit';
import { keys } from '../repository/layout';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segnoOfLsn } from '../wal/names';

/** Restore points and the last record's LSN of one segment, as pg_waldump shows them. */
interface SegmentRecords {
  restorePoints: { name: string; lsn: string }[];
  lastLsn?: string;
}

/** Kept across the two checks of one preflight (before and after the primary's WAL switch). */
export type WaldumpCache = Map<string, SegmentRecords>;

// pg_waldump lines: "rmgr: XLOG len (rec/tot): 98/98, tx: 0, lsn: 0/03000108, prev 0/030000D0, desc: RESTORE_POINT rp1"
const RECORD_LSN = /\blsn: ([0-9A-F]+\/[0-9A-F]+),/g;
const RESTORE_POINT = /\blsn: ([0-9A-F]+\/[0-9A-F]+),.*desc: RESTORE_POINT (.*)$/gm;

/**
 * One archived segment through pg_waldump, for its last record's LSN. Cached,
 * so the second check after a WAL switch reads only what is new.
 */
export async function readSegment(
  opts: { source: SegmentSource; pgBin: string; cache: WaldumpCache; dir: string },
  segment: string,
  /** Only records before this LSN count (ArchiveLine.endCap). */
  before?: bigint,
): Promise<SegmentRecords | undefined> {
  const key = before === undefined ? segment : `${segment}<${formatLsn(before)}`;
  const cached = opts.cache.get(key);
  if (cached) return cached;
  const got = await fetchSegmentBytes(opts.source, segment, opts.dir);
  if (!got) return undefined;
  const file = path.join(opts.dir, segment);
  await writeFile(file, got);
  try {
    const out = await waldump(`${opts.pgBin}/pg_waldump`, [file]);
    const onLine = (lsn: string) => before === undefined || parseLsn(lsn) < before;
    const lsns = [...out.matchAll(RECORD_LSN)].map((m) => m[1]!).filter(onLine);
    const records: SegmentRecords = {
      restorePoints: [...out.matchAll(RESTORE_POINT)]
        .map((m) => ({ name: m[2]!, lsn: m[1]! }))
        .filter((rp) => onLine(rp.lsn)),
      ...(lsns.length > 0 ? { lastLsn: lsns[lsns.length - 1]! } : {}),
    };
    opts.cache.set(key, records);
    return records;
  } finally {
    await rm(file, { force: true });
  }
}

/** Segments fetched at once and read by one pg_waldump in a restore point search. */
const SEARCH_RUN = 4;

/** How many segments' metadata are read at once (HEAD requests on s3://). */
const HEAD_FAN_OUT = 16;

/**
 * The segments a restore point search must read: every one except those
 * archive-push counted none in (src/wal/restore-points.ts), and the segment
 * after each one read, since a record that starts in one segment may end in
 * the next. Segments archived before the count (or whose metadata cannot be
 * read) are read. A skipped segment holds no restore point record's start,
 * so pg_waldump starting after it loses none. An engine's archive (pgBackRest)
 * counts none: every segment is read.
 */
export async function segmentsToRead(source: SegmentSource, segments: readonly string[]): Promise<boolean[]> {
  if (!('repo' in source)) return segments.map(() => true);
  const opts = source;
  const counts: (number | undefined)[] = [];
  for (let i = 0; i < segments.length; i += HEAD_FAN_OUT) {
    const batch = segments.slice(i, i + HEAD_FAN_OUT).map((name) =>
      opts.repo.head(keys.wal(opts.cluster, name)).then(
        (info) => info?.restorePoints,
        () => undefined,
      ),
    );
    counts.push(...(await Promise.all(batch)));
  }
  const read = counts.map((c) => c !== 0);
  for (let i = segments.length - 1; i > 0; i--) if (counts[i - 1] !== 0) read[i] = true;
  return read;
}

/**
 * Restore points of the line's segments, oldest first, passed to `visit`
 * until it returns true. pg_waldump reads runs of consecutive segments of one
 * timeline, each run starting again at the previous run's last segment: a
 * record that crosses a segment boundary is read whole (a segment read alone
 * loses it), and records read twice are dropped by LSN. Segments `read`
 * marks false are skipped. Returns how many of the line's segments were
 * covered (read or skipped) and read, or undefined when `visit` stopped the search.
 */
export async function searchRestorePoints(
  opts: { source: SegmentSource; pgBin: string; dir: string; segSize: number; deadline: number },
  segments: readonly string[],
  read: readonly boolean[],
  visit: (rp: { name: string; lsn: string; segment: string }) => boolean,
): Promise<{ covered: number; read: number; complete: boolean } | undefined> {
  const parsed = segments
    .map((name, index) => ({ name, index, ...parseSegmentName(name, opts.segSize) }))
    .filter((s) => read[s.index]);
  // The runs, planned first, so the next run's segments are fetched (read,
  // decompressed, checked) while pg_waldump reads the current one: on a name
  // at the end of a long archive the search is most of preflight (issue 13).
  const runs: (typeof parsed)[] = [];
  for (let i = 0; i < parsed.length;) {
    const run = [parsed[i]!];
    while (run.length < SEARCH_RUN && i + run.length < parsed.length) {
      const next = parsed[i + run.length]!;
      const last = run[run.length - 1]!;
      if (next.timeline !== last.timeline || next.segno !== last.segno + 1n) break;
      run.push(next);
    }
    runs.push(run);
    i += run.length;
  }
  const fetchRun = (run: (typeof parsed)[number][]) =>
    Promise.all(run.map((s) => fetchSegmentBytes(opts.source, s.name, opts.dir)));
  const seenLsn = new Set<string>();
  let prev: (typeof parsed)[number] | undefined;
  let done = 0;
  let fetching = runs[0] ? fetchRun(runs[0]) : undefined;
  try {
    for (const [r, run] of runs.entries()) {
      if (Date.now() > opts.deadline) return { covered: run[0]!.index, read: done, complete: false };
      const got = await fetching!;
      fetching = runs[r + 1] ? fetchRun(runs[r + 1]!) : undefined;
      done += run.length;
      const overlap =
        prev && prev.timeline === run[0]!.timeline && prev.segno + 1n === run[0]!.segno ? prev : undefined;
      if (prev && !overlap) await rm(path.join(opts.dir, prev.name), { force: true });
      await Promise.all(run.flatMap((s, j) => (got[j] ? [writeFile(path.join(opts.dir, s.name), got[j]!)] : [])));
      const first = overlap ?? run[0]!;
      const last = run[run.length - 1]!;
      const out = await waldump(`${opts.pgBin}/pg_waldump`, [
        '--rmgr=XLOG',
        `--path=${opts.dir}`,
        first.name,
        last.name,
      ]);
      for (const s of [first, ...run]) if (s !== last) await rm(path.join(opts.dir, s.name), { force: true });
      prev = last;
      for (const m of out.matchAll(RESTORE_POINT)) {
        const lsn = m[1]!;
        if (seenLsn.has(lsn)) continue;
        seenLsn.add(lsn);
        if (
          visit({ name: m[2]!, lsn, segment: segmentName(last.timeline, segnoOfLsn(lsn, opts.segSize), opts.segSize) })
        )
          return undefined;
      }
    }
  } finally {
    // A fetch started ahead of a search that ended (found, out of time, failed) is not waited for.
    fetching?.catch(() => undefined);
  }
  return { covered: segments.length, read: done, complete: true };
}
