// The line of timelines a replay follows, as replay-wal (replay.ts) reads it
// from the archive: where a --to-latest replay is paused (its end) and what
// RECOVERY_ENDED_BEFORE_TARGET names, and which timeline a replay position
// is on (the result's timeline).
import { archiveLine } from '../recovery/archive-line';
import { historyFileName, parseHistoryFile, parseLsn, parseSegmentName, segmentName, segnoOfLsn } from '../wal/names';
import type { WalReader } from './engine-replay';
import type { RestoreMarker } from './marker';

/** The last segment replay can read: its name, timeline and LSN range. */
export interface ArchiveEndSegment {
  name: string;
  timeline: number;
  startLsn: bigint;
  endLsn: bigint;
}

function lineOf(
  files: readonly string[],
  histories: Readonly<Record<string, string>>,
  backup: RestoreMarker['backup'],
): ReturnType<typeof archiveLine> {
  const segSize = backup.walSegmentSize;
  const startWal = segmentName(backup.timeline, segnoOfLsn(backup.startLsn, segSize), segSize);
  return archiveLine(files, histories, {
    timeline: backup.timeline,
    startLsn: backup.startLsn,
    startWal,
    walSegmentSize: segSize,
  });
}

/**
 * The end of the archive for a replay from this backup: the newest archived
 * segment on the line of timelines it follows (recovery_target_timeline =
 * 'latest', recovery-conf.ts), not the newest segment of any timeline. After
 * a side-by-side recovery the old primary may go on archiving its timeline
 * past the branch point; those segments are not on the line, and waiting for
 * replay to reach them waits forever (issue 11: 623 s for 0/D000000).
 */
export function archiveEndOnLine(
  files: readonly string[],
  histories: Readonly<Record<string, string>>,
  backup: RestoreMarker['backup'],
): ArchiveEndSegment | undefined {
  const line = lineOf(files, histories, backup);
  const name = line.segments[line.segments.length - 1];
  if (!name) return undefined;
  const { timeline, segno } = parseSegmentName(name, backup.walSegmentSize);
  const size = BigInt(backup.walSegmentSize);
  // Capped at the switch point when the line ends in a parent's copy of the newest timeline's first segment.
  const endLsn = line.endCap?.segment === name ? parseLsn(line.endCap.lsn) : (segno + 1n) * size;
  return { name, timeline, startLsn: segno * size, endLsn };
}

/**
 * The timeline replay is on once it has replayed up to `lsn` (the end of the
 * last record replayed, pg_last_wal_replay_lsn): on the line's newest
 * timeline, the ancestor whose stretch holds that record. A record ending at
 * a switch point is the parent's; the child's first record starts there.
 * pg_control_checkpoint's timeline is not this: it is the last restartpoint's,
 * and stays on the parent's until a restartpoint on the child (issue 18).
 */
export function replayTimelineAt(
  lsn: string,
  histories: Readonly<Record<string, string>>,
  lineTimeline: number,
): number {
  const text = histories[historyFileName(lineTimeline)];
  if (text === undefined) return lineTimeline;
  const at = parseLsn(lsn);
  // Oldest ancestor first: the first switch point at or past the record's end is where its timeline ended.
  const ancestor = parseHistoryFile(text).find((e) => at <= e.switchLsn);
  return ancestor?.timeline ?? lineTimeline;
}

interface ArchiveRead {
  at: number;
  files: string[];
  histories: Record<string, string>;
  end?: ArchiveEndSegment;
}

/** The archive's line for a replay from `backup` (archiveEndOnLine, replayTimelineAt), re-read at most every few seconds. */
export class ArchiveEnd {
  private cached?: ArchiveRead;
  private first?: Promise<ArchiveRead | undefined>;
  constructor(
    private readonly readWal: WalReader,
    private readonly backup: RestoreMarker['backup'],
  ) {}

  private async read(maxAgeMs: number): Promise<ArchiveRead> {
    if (this.cached && Date.now() - this.cached.at < maxAgeMs) return this.cached;
    const { files, histories } = await this.readWal();
    this.cached = { at: Date.now(), files, histories };
    return this.cached;
  }

  /**
   * Starts reading the archive while replay runs, for timelineAt: the pause
   * is then not held up by a listing (pgBackRest: info, repo-ls, repo-get).
   * What it reads is also what PostgreSQL chose its target timeline from, at
   * its start; a failure is timelineAt's to handle.
   */
  warm(): void {
    this.first ??= this.read(0).catch(() => undefined);
  }

  async newest(maxAgeMs = 5000): Promise<ArchiveEndSegment | undefined> {
    const read = await this.read(maxAgeMs);
    if (!('end' in read)) read.end = archiveEndOnLine(read.files, read.histories, this.backup);
    return read.end;
  }

  /**
   * The timeline of the record replay ended at `lsn`, from the latest read of
   * the archive (warm's, or one made now); never below `atLeast`, the last
   * restartpoint's timeline (replay is never behind its restartpoint), which
   * is also the answer when the archive cannot be read.
   */
  async timelineAt(lsn: string, atLeast: number): Promise<number> {
    const read = this.cached ?? (await (this.first ?? this.read(0).catch(() => undefined)));
    if (!read) return atLeast;
    const line = lineOf(read.files, read.histories, this.backup).timeline;
    return Math.max(atLeast, replayTimelineAt(lsn, read.histories, line));
  }
}
