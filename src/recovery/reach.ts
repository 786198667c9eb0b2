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
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackupMeta } from '../catalog/backup-meta';
import { newestArchivedCommit, type SegmentSource } from '../drill/newest-commit';
import { LifeboatError, errorMessage } from '../errors';
import { formatLsn, parseLsn, parseSegmentName, segnoOfLsn } from '../wal/names';
import { archiveLine } from './archive-line';
import { readSegment, searchRestorePoints, segmentsToRead, type WaldumpCache } from './archive-records';
import { describeTarget, type Target } from './contract';

export { archiveLine, type ArchiveLine } from './archive-line';
export type { WaldumpCache } from './archive-records';

/**
 * A restore point search that has not finished in this time stops without
 * refusing (a warning says how far it read): preflight has a 10 min
 * start-to-close timeout and may search twice (before and after a WAL
 * switch), and an unproven "not there" must not stop a recovery.
 */
const SEARCH_BUDGET_MS = 3 * 60_000;

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
  /** Where segments are read: Lifeboat's repository, or an engine's own command (pgbackrest archive-get). */
  source: SegmentSource;
  /** The cluster's name, for messages. */
  cluster: string;
  pgBin: string;
  runbookName: string;
  backup: Pick<BackupMeta, 'backupId' | 'timeline' | 'startLsn' | 'startWal' | 'startTime' | 'walSegmentSize'>;
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
        ...opts.source,
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
    const toRead = await segmentsToRead(opts.source, line.segments);
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
