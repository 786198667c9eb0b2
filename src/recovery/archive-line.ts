// The line of archived WAL a replay from a backup follows: the segments of
// the newest timeline that descends from the backup's, each timeline's up to
// its switch point (recovery_target_timeline = 'latest'). Preflight's reach
// check (reach.ts), the drill's target window and the archive end read it.
import type { BackupMeta } from '../catalog/backup-meta';
import { analyzeChain } from '../catalog/chain';
import { formatLsn, parseLsn, parseSegmentName, segmentName, walFileKind } from '../wal/names';

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
