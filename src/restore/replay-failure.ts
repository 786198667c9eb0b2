// Why a replay stopped (whyItStopped, for replay-wal in replay.ts). When WAL
// was the reason: a segment archive-get could not serve (it aborted recovery
// and said why, src/wal/get-failure.ts), or one PostgreSQL could not decode
// although the archive goes on past it. A damaged segment is a fact about the
// archive: WAL_CHECKSUM_MISMATCH, never retried by itself, the segment named
// on the first line. Otherwise what the server's own log says: the archive
// ended before the target, a target before the backup's end, or its last lines.
import { LifeboatError } from '../errors';
import { describeTarget, type ReplayInput } from '../recovery/contract';
import type { WalReader } from './engine-replay';
import type { Runbook } from '../runbook/schema';
import { readRestoreFailure, type RestoreFailure } from '../wal/get-failure';
import { formatLsn, parseLsn, parseSegmentName, segnoOfLsn, walFileKind } from '../wal/names';
import { ArchiveEnd } from './archive-end';
import type { RestoreMarker } from './marker';
import { lastLines, readLogFrom, type PgHost } from './postmaster';

/** What replay-wal knows about the replay that stopped. */
export interface StoppedReplay {
  runbook: Runbook;
  pg: PgHost;
  input: ReplayInput;
  marker: RestoreMarker;
  logFile: string;
  /** The archive's WAL file names and history files (engine-replay.ts). */
  readWal: WalReader;
  cluster: string;
  /** Set when this replay-wal started the postmaster: when, and where its log lines begin. */
  started?: { at: number; logFrom: number };
}

/** archive-get's stderr line, when the server's stderr is the -l log and the failure file could not be written. */
export function archiveGetFailureInLog(log: string): RestoreFailure | undefined {
  const m = [
    ...log.matchAll(/^lifeboat archive-get: FATAL: cannot restore ([0-9A-F]{24}|[0-9A-F]{8}\.history): (.*)$/gm),
  ].pop();
  if (!m) return undefined;
  const what = m[2]!;
  const corrupt = /does not match its checksum|cannot be decompressed|has no recorded sha256/.test(what);
  return { code: corrupt ? 'WAL_CHECKSUM_MISMATCH' : 'TOOL_FAILED', walFile: m[1]!, what, hints: [], at: '', pid: 0 };
}

/**
 * PostgreSQL stopped because restore_command (archive-get) could not serve a
 * WAL file and said so. A corrupt segment is a fact about the archive: the
 * same start fails the same way, so it is WAL_CHECKSUM_MISMATCH, never
 * retried by itself. Anything else keeps archive-get's code (an unreachable
 * repository is retried; unknown failures are TOOL_FAILED).
 */
export function restoreCommandFailed(a: StoppedReplay, f: RestoreFailure, lastLsn: string | null): LifeboatError {
  const target = describeTarget(a.input.target);
  const nothingPromoted = `nothing was promoted: PostgreSQL in ${a.pg.dataDir} stopped in archive recovery before applying ${f.walFile} (server log: ${a.logFile})`;
  const what = f.what.split('\n')[0] ?? f.what;
  if (f.code === 'WAL_CHECKSUM_MISMATCH') {
    const seg =
      walFileKind(f.walFile) === 'segment' ? parseSegmentName(f.walFile, a.marker.backup.walSegmentSize) : undefined;
    const segStart = seg ? formatLsn(seg.segno * BigInt(a.marker.backup.walSegmentSize)) : undefined;
    const key = f.object ?? `${a.cluster}/wal/${f.walFile}*`;
    return new LifeboatError(
      'WAL_CHECKSUM_MISMATCH',
      `replay of ${a.cluster} towards ${target} stopped at WAL segment ${f.walFile}: the archived copy is corrupt (${what})`,
      {
        hints: [
          `the damaged object is ${key} in ${a.runbook.repository.url}; recovery cannot replay past it with this archive, and a retry of replay-wal as it is fails the same way`,
          `if the primary still has ${f.walFile} in its pg_wal, compare its sha256 with the one recorded in the repository; a good copy can replace the damaged object (move that aside first), then retry replay-wal`,
          `otherwise choose a target before ${segStart ? `LSN ${segStart}, where ${f.walFile} begins` : f.walFile}${lastLsn ? ` (replay had reached LSN ${lastLsn})` : ''} (retarget); if base backup ${a.marker.backupId} itself needs ${f.walFile} to become consistent, recover from another backup`,
          nothingPromoted,
        ],
        details: {
          walFile: f.walFile,
          object: key,
          replayedTo: lastLsn ?? undefined,
          ...(segStart ? { segmentStartLsn: segStart } : {}),
        },
      },
    );
  }
  return new LifeboatError(
    f.code,
    `replay of ${a.cluster} towards ${target} stopped: lifeboat archive-get could not restore ${f.walFile}: ${what}`,
    {
      hints: [
        ...f.hints,
        `a retry of replay-wal starts PostgreSQL again and replay resumes from its last restartpoint, once ${f.walFile} can be read from ${a.runbook.repository.url}`,
        nothingPromoted,
      ],
      details: { walFile: f.walFile, replayedTo: lastLsn ?? undefined },
    },
  );
}

/**
 * What PostgreSQL logs when a WAL record it read cannot be decoded. In archive
 * recovery it takes that as the end of WAL and, with a target set, stops
 * with "recovery ended before configured recovery target was reached". When
 * the archive goes on past that point, the WAL was not at its end: the
 * segment is damaged in a way its checksum did not catch (damaged before it
 * was archived, or archived with the damage recorded).
 */
const UNDECODABLE =
  /(incorrect resource manager data checksum in record at|invalid record length at|invalid resource manager ID \d+ at|record with incorrect prev-link [0-9A-F]+\/[0-9A-F]+ at|invalid record offset at|invalid magic number [0-9A-F]+ in log segment|invalid info bits [0-9A-F]+ in log segment|unexpected pageaddr [0-9A-F]+\/[0-9A-F]+ in log segment|invalid contrecord length \d+ .*?at|missing contrecord at) ?([0-9A-F]+\/[0-9A-F]+|[0-9A-F]{24})?.*$/m;

export async function undecodableSegment(a: StoppedReplay, log: string): Promise<LifeboatError | undefined> {
  const lines = log.split('\n').filter((l) => UNDECODABLE.test(l));
  const line = lines.pop();
  if (!line) return undefined;
  const segSize = a.marker.backup.walSegmentSize;
  const named = /in log segment ([0-9A-F]{24})/.exec(line)?.[1];
  const lsn = /at ([0-9A-F]+\/[0-9A-F]+)/.exec(line)?.[1];
  let segno: bigint | undefined;
  if (named) segno = parseSegmentName(named, segSize).segno;
  else if (lsn) segno = segnoOfLsn(parseLsn(lsn), segSize);
  if (segno === undefined) return undefined;
  const { files } = await a.readWal().catch(() => ({ files: [] as string[] }));
  const segments = files
    .filter((n) => walFileKind(n) === 'segment')
    .map((name) => ({ name, segno: parseSegmentName(name, segSize).segno }))
    .sort((x, y) => (x.segno === y.segno ? (x.name < y.name ? -1 : 1) : x.segno < y.segno ? -1 : 1));
  const end = segments[segments.length - 1];
  // At the true end of the archive an undecodable record is just where WAL ends.
  if (!end || end.segno <= segno) return undefined;
  const candidates = segments.filter((x) => x.segno === segno).map((x) => x.name);
  const walFile = named ?? candidates.pop() ?? `segment number ${segno}`;
  const message = line.replace(/^.*?(LOG|WARNING|FATAL):\s*/, '').trim();
  const segStart = formatLsn(segno * BigInt(segSize));
  const target = describeTarget(a.input.target);
  return new LifeboatError(
    'WAL_CHECKSUM_MISMATCH',
    `replay of ${a.cluster} towards ${target} stopped at WAL segment ${walFile}: PostgreSQL cannot decode it (${message}), yet the archive goes on to ${end.name}`,
    {
      hints: [
        `the archived ${walFile} in ${a.runbook.repository.url} is damaged although it matches its recorded checksum: it was most likely damaged before it was archived; a retry of replay-wal as it is stops at the same record`,
        `if the primary still has ${walFile} in its pg_wal, compare it with the archived copy (pg_waldump shows where they differ); a good copy can replace the damaged object (move that aside first), then retry replay-wal`,
        `otherwise choose a target before LSN ${lsn ?? segStart} (retarget), or recover from another backup`,
        `nothing was promoted: PostgreSQL in ${a.pg.dataDir} has stopped, still in archive recovery (server log: ${a.logFile})`,
      ],
      details: { walFile, archiveEnd: end.name, at: lsn },
    },
  );
}

/** The postmaster's last words when its startup process (recovery) failed. */
const STARTUP_FAILED = /aborting startup due to startup process failure|database system is shut down/;

export async function startGaveUp(a: StoppedReplay): Promise<boolean> {
  return a.started !== undefined && STARTUP_FAILED.test(await readLogFrom(a.logFile, a.started.logFrom));
}

const ENDED_BEFORE_TARGET = 'recovery ended before configured recovery target was reached';
const BEFORE_CONSISTENT = 'requested recovery stop point is before consistent recovery point';

/**
 * The error for a postmaster that exited during replay: first what
 * archive-get recorded when it aborted recovery (a corrupt or unreadable
 * segment), then what the server's own log says.
 */
export async function whyItStopped(a: StoppedReplay, lastLsn: string | null): Promise<LifeboatError> {
  const log = await readLogFrom(a.logFile, a.started?.logFrom ?? 0);
  const target = describeTarget(a.input.target);
  const failed = (await readRestoreFailure(a.pg.dataDir)) ?? archiveGetFailureInLog(log);
  if (failed) return restoreCommandFailed(a, failed, lastLsn);
  if (log.includes(ENDED_BEFORE_TARGET)) {
    const undecodable = await undecodableSegment(a, log);
    if (undecodable) return undecodable;
    const redoDone = [...log.matchAll(/redo done at ([0-9A-F]+\/[0-9A-F]+)/g)].pop()?.[1] ?? lastLsn ?? undefined;
    const lastCommit = [...log.matchAll(/last completed transaction was at log time (.+)/g)].pop()?.[1]?.trim();
    const end = await new ArchiveEnd(a.readWal, a.marker.backup).newest(0).catch(() => undefined);
    const reached = [redoDone ? `LSN ${redoDone}` : undefined, lastCommit ? `last commit at ${lastCommit}` : undefined]
      .filter(Boolean)
      .join(', ');
    return new LifeboatError(
      'RECOVERY_ENDED_BEFORE_TARGET',
      `recovery of ${a.cluster} in ${a.pg.dataDir} ended before reaching ${target}: the archive ends at segment ${end?.name ?? '(none)'}${reached ? ` (replay reached ${reached})` : ''}`,
      {
        hints: [
          `choose an earlier target${reached ? `: the furthest this archive reaches is ${reached}` : ''}`,
          `if WAL after ${end?.name ?? 'that segment'} should exist, check the archiver on the primary: select last_archived_wal, last_failed_wal, failed_count from pg_stat_archiver; and run lifeboat check --runbook ${a.runbook.name}`,
          `nothing was promoted: PostgreSQL in ${a.pg.dataDir} has stopped, still in archive recovery (server log: ${a.logFile})`,
        ],
        details: { archiveEnd: end?.name, replayedTo: redoDone, lastCommit },
      },
    );
  }
  if (log.includes(BEFORE_CONSISTENT)) {
    return new LifeboatError(
      'INPUT_INVALID',
      `${target} lies before the end of base backup ${a.marker.backupId} (its WAL up to there must be replayed first); PostgreSQL in ${a.pg.dataDir} stopped`,
      {
        hints: [
          'choose a later target, or recover from an older backup that finished before it',
          'nothing was promoted',
        ],
      },
    );
  }
  const lines = lastLines(log, 10);
  return new LifeboatError(
    'TOOL_FAILED',
    `PostgreSQL in ${a.pg.dataDir} stopped while replaying towards ${target}; the last lines of its log (${a.logFile}):\n  ${lines.length > 0 ? lines.join('\n  ') : '(empty)'}`,
    {
      hints: [
        'nothing was promoted; a retry of replay-wal starts it again and replay resumes from its last restartpoint',
        'lines from lifeboat archive-get name a WAL file the repository could not serve: check the repository, then retry',
      ],
    },
  );
}
