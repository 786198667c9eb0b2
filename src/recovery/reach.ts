// Whether the archived WAL holds the recovery target at all: a time before its
// newest commit, a restore point it contains, an LSN not past its end, each
// on the line of timelines the replay follows. Preflight refuses a target the
// archive cannot reach (TARGET_UNREACHABLE) before anything is fenced: today's
// alternative is a fenced primary, a full restore and a replay of the whole
// archive ending in RECOVERY_ENDED_BEFORE_TARGET.
//
// The stop rules this relies on (PostgreSQL 15, recovery_target_inclusive on):
// - recovery_target_time stops before the first commit or abort whose time is
//   after the target, so some archived commit must be later than the target;
// - recovery_target_name stops at the first restore point record of that name;
// - recovery_target_lsn stops after the first record starting at or after it.
// Recovery that ends without stopping is FATAL ("recovery ended before
// configured recovery target was reached").
//
// What is read: pg_waldump (cluster.pgBin) over archived segments fetched and
// checked through the repository. A time target reads the newest segments
// (src/drill/newest-commit.ts), an LSN the newest one, a restore point name
// every segment of the line from the backup's start until it is found. Where
// pg_waldump is missing on this worker the target is not checked (a warning):
// the replay finds out as it did before.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackupMeta } from '../catalog/backup-meta';
import { analyzeChain } from '../catalog/chain';
import { newestArchivedCommit, waldump } from '../drill/newest-commit';
import { LifeboatError, errorMessage } from '../errors';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import { fetchWalFile } from '../wal/get';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segnoOfLsn, walFileKind } from '../wal/names';
import { describeTarget, type Target } from './contract';

/** The segments a replay from `backup` reads, oldest first, and the timeline it ends on. */
export interface ArchiveLine {
  timeline: number;
  segments: string[];
  /**
   * Set when the line ends in a parent timeline's copy of the newest
   * timeline's first segment (see archiveLine): only its records before `lsn`
   * (the switch point) are on the line.
   */
  endCap?: { segment: string; lsn: string };
}

interface Stretch {
  timeline: number;
  fromSeg: bigint;
  toSeg?: bigint;
  untilLsn?: bigint;
}

/**
 * The line replay follows from the backup: recovery_target_timeline =
 * 'latest' (recovery-conf.ts) follows the newest timeline, which must descend
 * from the backup's; so the newest timeline whose history passes through the
 * backup's start. A timeline an old primary went on writing after a branch is
 * not on it, nor are its segments past the branch point.
 */
export function archiveLine(
  files: readonly string[],
  histories: Readonly<Record<string, string>>,
  backup: Pick<BackupMeta, 'timeline' | 'startLsn' | 'startWal' | 'walSegmentSize'>,
): ArchiveLine {
  const segSize = backup.walSegmentSize;
  const report = analyzeChain({ walFiles: files, histories, backups: [], walSegmentSize: segSize });
  const start = parseLsn(backup.startLsn);
  const startSeg = parseSegmentName(backup.startWal, segSize).segno;
  let chosen: { timeline: number; stretches: Stretch[] } = {
    timeline: backup.timeline,
    stretches: [{ timeline: backup.timeline, fromSeg: 0n }],
  };
  for (const t of [...report.timelines].sort((a, b) => b.timeline - a.timeline)) {
    if (t.timeline < backup.timeline) break;
    const stretches: Stretch[] = t.parents.map((p, i) => ({
      timeline: p.timeline,
      fromSeg: i === 0 ? 0n : parseSegmentName(t.parents[i - 1]!.switchSegment, segSize).segno,
      toSeg: parseSegmentName(p.switchSegment, segSize).segno,
      untilLsn: parseLsn(p.switchLsn),
    }));
    const last = t.parents[t.parents.length - 1];
    stretches.push({ timeline: t.timeline, fromSeg: last ? parseSegmentName(last.switchSegment, segSize).segno : 0n });
    if (stretches.some((s) => s.timeline === backup.timeline && (s.untilLsn === undefined || start < s.untilLsn))) {
      chosen = { timeline: t.timeline, stretches };
      break;
    }
  }
  const segments: { name: string; segno: bigint }[] = [];
  for (const name of files) {
    if (walFileKind(name) !== 'segment') continue;
    const { timeline, segno } = parseSegmentName(name, segSize);
    if (segno < startSeg) continue;
    if (
      chosen.stretches.some(
        (s) => s.timeline === timeline && segno >= s.fromSeg && (s.toSeg === undefined || segno < s.toSeg),
      )
    ) {
      segments.push({ name, segno });
    }
  }
  segments.sort((a, b) => (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0));
  // A promoted copy archives its new timeline's first segment (the one
  // holding the switch point) only once it fills or switches it; until then
  // the archive has the history file and no segment of the new timeline.
  // PostgreSQL then reads the parent timeline's copy of that segment up to
  // the switch point (XLogFileReadAnyTLI tries every timeline of the history
  // that covers the segment, newest first), so the line goes on into it,
  // capped there: what the parent wrote after the switch is not on the line.
  const parent = chosen.stretches[chosen.stretches.length - 2];
  if (
    parent?.toSeg !== undefined &&
    parent.untilLsn !== undefined &&
    parent.toSeg >= startSeg &&
    !segments.some((s) => s.segno >= parent.toSeg!)
  ) {
    const name = segmentName(parent.timeline, parent.toSeg, segSize);
    if (files.includes(name)) {
      segments.push({ name, segno: parent.toSeg });
      return {
        timeline: chosen.timeline,
        segments: segments.map((s) => s.name),
        endCap: { segment: name, lsn: formatLsn(parent.untilLsn) },
      };
    }
  }
  return { timeline: chosen.timeline, segments: segments.map((s) => s.name) };
}

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
async function readSegment(
  opts: { repo: Repository; cluster: string; pgBin: string; cache: WaldumpCache; dir: string },
  segment: string,
  /** Only records before this LSN count (ArchiveLine.endCap). */
  before?: bigint,
): Promise<SegmentRecords | undefined> {
  const key = before === undefined ? segment : `${segment}<${formatLsn(before)}`;
  const cached = opts.cache.get(key);
  if (cached) return cached;
  const got = await fetchWalFile(opts.repo, opts.cluster, segment);
  if (!got) return undefined;
  const file = path.join(opts.dir, segment);
  await writeFile(file, got.content);
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
/**
 * A restore point search that has not finished in this time stops without
 * refusing (a warning says how far it read): preflight has a 10 min
 * start-to-close timeout and may search twice (before and after a WAL
 * switch), and an unproven "not there" must not stop a recovery.
 */
const SEARCH_BUDGET_MS = 3 * 60_000;

/** How many segments' metadata are read at once (HEAD requests on s3://). */
const HEAD_FAN_OUT = 16;

/**
 * The segments a restore point search must read: every one except those
 * archive-push counted none in (src/wal/restore-points.ts), and the segment
 * after each one read, since a record that starts in one segment may end in
 * the next. Segments archived before the count (or whose metadata cannot be
 * read) are read. A skipped segment holds no restore point record's start,
 * so pg_waldump starting after it loses none.
 */
async function segmentsToRead(
  opts: { repo: Repository; cluster: string },
  segments: readonly string[],
): Promise<boolean[]> {
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
async function searchRestorePoints(
  opts: { repo: Repository; cluster: string; pgBin: string; dir: string; segSize: number; deadline: number },
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
    Promise.all(run.map((s) => fetchWalFile(opts.repo, opts.cluster, s.name)));
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
      await Promise.all(
        run.flatMap((s, j) => (got[j] ? [writeFile(path.join(opts.dir, s.name), got[j]!.content)] : [])),
      );
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

export interface ReachCheck {
  /** Set when the archive cannot reach the target; preflight throws it once the primary's WAL is in. */
  refusal?: LifeboatError;
  /** What the archive reaches, one line for the preflight summary. */
  reaches?: string;
  /** A restore point target: the record replay stops at (the first of that name after the backup's start). */
  restorePoint?: { name: string; lsn: string };
  warnings: string[];
}

/** How many restore point names a refusal lists (the newest ones). */
const NAMES_SHOWN = 5;

export async function checkTargetReach(opts: {
  repo: Repository;
  cluster: string;
  pgBin: string;
  runbookName: string;
  backup: BackupMeta;
  target: Target;
  /** Every archived WAL file name. */
  files: readonly string[];
  histories: Readonly<Record<string, string>>;
  cache: WaldumpCache;
}): Promise<ReachCheck> {
  const { target, backup } = opts;
  if (!('time' in target) && !('name' in target) && !('lsn' in target)) return { warnings: [] };
  const line = archiveLine(opts.files, opts.histories, backup);
  const newestSeg = line.segments[line.segments.length - 1];
  const where = `the WAL archive of cluster ${opts.cluster} (timeline ${line.timeline}, from backup ${backup.backupId}'s start ${backup.startWal}${newestSeg ? ` to ${newestSeg}` : ''})`;
  const flags = `lifeboat recover --runbook ${opts.runbookName}`;
  const untouched = 'nothing was touched: no gate, no traffic, no data directory';
  if (!newestSeg) return { warnings: [] }; // checkWalCoverage already says the backup's WAL is missing
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-preflight-waldump-'));
  try {
    if ('time' in target) {
      const newest = await newestArchivedCommit({
        repo: opts.repo,
        cluster: opts.cluster,
        pgBin: opts.pgBin,
        files: line.segments,
        ...(line.endCap ? { endCap: line.endCap } : {}),
      });
      if (!newest) {
        return {
          warnings: [
            `no commit found in the newest archived segments of ${where}: preflight cannot tell whether ${target.time} is reached`,
          ],
        };
      }
      const reaches = `newest archived commit ${newest.time} (in ${newest.segment}, timeline ${line.timeline})`;
      // Milliseconds: pg_waldump's microseconds were cut, so the commit may be
      // up to 1 ms later than shown; only a target past that is surely unreachable.
      if (Date.parse(target.time) <= Date.parse(newest.time)) return { reaches, warnings: [] };
      const before = new Date(Date.parse(newest.time) - 1).toISOString();
      return {
        reaches,
        warnings: [],
        refusal: new LifeboatError(
          'TARGET_UNREACHABLE',
          `time ${target.time} is after the newest commit in ${where}: ${newest.time} (in ${newest.segment}); replay would end before the target`,
          {
            hints: [
              `recovery_target_time stops at the first commit after the target, so only a time before ${newest.time} is reached: ${flags} --to-time ${before} (or earlier), or target {"time": "${before}"}`,
              `to replay everything the archive holds: ${flags} --to-latest (target {"latest": true})`,
              untouched,
            ],
            details: { timeline: line.timeline, newestCommit: newest.time, newestSegment: newest.segment },
          },
        ),
      };
    }
    if ('lsn' in target) {
      const cap = line.endCap?.segment === newestSeg ? parseLsn(line.endCap.lsn) : undefined;
      const records = await readSegment({ ...opts, dir }, newestSeg, cap);
      const segSize = BigInt(backup.walSegmentSize);
      const segEnd = (parseSegmentName(newestSeg, backup.walSegmentSize).segno + 1n) * segSize;
      // The last record's start: recovery_target_lsn needs a record at or after the target.
      const lastLsn = records?.lastLsn ?? formatLsn((cap ?? segEnd) - 1n);
      const reaches = `last archived record at LSN ${lastLsn} (in ${newestSeg}, timeline ${line.timeline})`;
      if (parseLsn(target.lsn) <= parseLsn(lastLsn)) return { reaches, warnings: [] };
      return {
        reaches,
        warnings: [],
        refusal: new LifeboatError(
          'TARGET_UNREACHABLE',
          `LSN ${target.lsn} is past the end of ${where}: its last record starts at ${lastLsn}; replay would end before the target`,
          {
            hints: [
              `choose an LSN at or before ${lastLsn}: ${flags} --to-lsn ${lastLsn} (or target {"lsn": "${lastLsn}"})`,
              `to replay everything the archive holds: ${flags} --to-latest (target {"latest": true})`,
              untouched,
            ],
            details: { timeline: line.timeline, lastLsn, newestSegment: newestSeg },
          },
        ),
      };
    }
    // A restore point name: oldest first, stopping at the first one of that name, as recovery does.
    const seen: { name: string; lsn: string; segment: string }[] = [];
    let found: (typeof seen)[number] | undefined;
    const toRead = await segmentsToRead(opts, line.segments);
    const searched = await searchRestorePoints(
      { ...opts, dir, segSize: backup.walSegmentSize, deadline: Date.now() + SEARCH_BUDGET_MS },
      line.segments,
      toRead,
      (rp) => {
        // The backup's first segment also holds records from before its start, which replay never reads.
        if (parseLsn(rp.lsn) < parseLsn(backup.startLsn)) return false;
        // Nor what a parent timeline wrote after the switch (endCap).
        if (line.endCap && parseLsn(rp.lsn) >= parseLsn(line.endCap.lsn)) return false;
        if (rp.name === target.name) found = rp;
        else seen.push(rp);
        return found !== undefined;
      },
    );
    if (found) {
      const readCount = toRead.filter(
        (r, i) =>
          r &&
          parseSegmentName(line.segments[i]!, backup.walSegmentSize).segno <=
            segnoOfLsn(found!.lsn, backup.walSegmentSize) + 1n,
      ).length;
      const skipped = line.segments.length - toRead.filter(Boolean).length;
      return {
        reaches:
          `restore point "${found.name}" at LSN ${found.lsn} (in ${found.segment}, timeline ${line.timeline}; ` +
          `${readCount} segment${readCount === 1 ? '' : 's'} read${skipped > 0 ? `, ${skipped} skipped: archive-push counted no restore point in them` : ''})`,
        restorePoint: { name: found.name, lsn: found.lsn },
        warnings: [],
      };
    }
    if (searched && !searched.complete) {
      return {
        warnings: [
          `restore point "${target.name}" was not found in the first ${searched.covered} of ${line.segments.length} archived segments of ${where} ` +
            `within ${SEARCH_BUDGET_MS / 60_000} min; the rest were not read, so preflight does not refuse it (replay finds out)`,
        ],
      };
    }
    const newest = seen.slice(-NAMES_SHOWN);
    const listed = newest.map((s) => `"${s.name}" (LSN ${s.lsn})`).join(', ');
    const example = newest[newest.length - 1]?.name;
    return {
      reaches: `${seen.length} restore point${seen.length === 1 ? '' : 's'}`,
      warnings: [],
      refusal: new LifeboatError(
        'TARGET_UNREACHABLE',
        `restore point "${target.name}" is not in ${where}: ` +
          (seen.length === 0
            ? 'it holds no restore point at all'
            : `it holds ${seen.length} restore point${seen.length === 1 ? '' : 's'}, the newest ${listed}`),
        {
          hints: [
            ...(example !== undefined
              ? [
                  `names are exact and case-sensitive: ${flags} --to-name '${example}' (or target {"name": "${example}"})`,
                ]
              : []),
            `restore points are made with lifeboat checkpoint --runbook ${opts.runbookName} --label <label> (pg_create_restore_point); one made before backup ${backup.backupId} started (${backup.startTime}) is reached only from an older backup: ${flags} --to-name <name> --backup <older backup id> (lifeboat backups --runbook ${opts.runbookName} lists them)`,
            `or recover to a time instead: ${flags} --to-time <ISO time>`,
            untouched,
          ],
          details: { timeline: line.timeline, restorePoints: newest },
        },
      ),
    };
  } catch (err) {
    if (/pg_waldump not found/.test(errorMessage(err))) {
      return {
        warnings: [
          `${describeTarget(target)} was not checked against the archive: ${errorMessage(err)} on the worker that ran preflight`,
        ],
      };
    }
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
