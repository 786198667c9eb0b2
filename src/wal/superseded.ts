// One writer per cluster: WAL of a timeline that a newer timeline replaced
// is not archived (shared/DESIGN.md §6, archive-push).
//
// When a recovery promotes a copy, PostgreSQL starts a new timeline U and
// writes U.history: "parent switchLSN reason" per ancestor. From switchLSN
// on, the cluster's history is U's. A server still writing the parent
// timeline T past that point (the old primary after a side-by-side recovery)
// writes WAL no restore along U's line reads, and a base backup of it
// cannot be continued from the archive. So archive-push refuses a WAL file
// of T that starts at or past the switch point of a newer timeline that
// branched off T, once U.history is in the repository. The segment holding
// the switch point (it starts before it) and everything before it are still
// accepted: they are the common past of both timelines.
//
// Refusing is safe: PostgreSQL keeps a file archive_command did not accept
// and retries it; nothing is lost and nothing is deleted.
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  formatLsn,
  historyFileName,
  parseHistoryFile,
  parseSegmentName,
  walFileKind,
} from './names';

export interface ArchivedHistory {
  timeline: number;
  text: string;
  /** When the repository stored it (the promotion, give or take the archiver). */
  archivedAt?: Date;
}

export interface Supersession {
  walFile: string;
  /** The timeline of the refused file. */
  timeline: number;
  /** Where the refused file starts. */
  startLsn: string;
  /** The newer timeline that branched off `timeline`. */
  by: number;
  switchLsn: string;
  historyFile: string;
  reason: string;
  archivedAt?: Date;
}

/** Timeline and start LSN of a WAL file that belongs to one timeline (segment, .partial, .backup); undefined for history files. */
export function walFilePosition(
  walFile: string,
  segSize = DEFAULT_WAL_SEGMENT_SIZE,
): { timeline: number; startLsn: bigint } | undefined {
  const kind = walFileKind(walFile);
  if (kind !== 'segment' && kind !== 'partial' && kind !== 'backup') return undefined;
  const { timeline, segno } = parseSegmentName(walFile.slice(0, 24), segSize);
  let startLsn = segno * BigInt(segSize);
  // A backup label's name carries the backup's start offset in its segment.
  if (kind === 'backup') startLsn += BigInt(`0x${walFile.slice(25, 33)}`);
  return { timeline, startLsn };
}

/**
 * The newer timeline (the oldest such, when several) whose branch point
 * off this file's timeline lies at or before the file's start; undefined
 * when the file may be archived. A history file that cannot be parsed is
 * left out: `lifeboat check` reports it, archiving must not stop for it.
 */
export function supersededBy(
  walFile: string,
  histories: readonly ArchivedHistory[],
  segSize = DEFAULT_WAL_SEGMENT_SIZE,
): Supersession | undefined {
  const pos = walFilePosition(walFile, segSize);
  if (!pos) return undefined;
  for (const h of [...histories].sort((a, b) => a.timeline - b.timeline)) {
    if (h.timeline <= pos.timeline) continue;
    let entries;
    try {
      entries = parseHistoryFile(h.text);
    } catch {
      continue;
    }
    const branch = entries.find((e) => e.timeline === pos.timeline);
    if (!branch || pos.startLsn < branch.switchLsn) continue;
    return {
      walFile,
      timeline: pos.timeline,
      startLsn: formatLsn(pos.startLsn),
      by: h.timeline,
      switchLsn: formatLsn(branch.switchLsn),
      historyFile: historyFileName(h.timeline),
      reason: branch.reason,
      ...(h.archivedAt ? { archivedAt: h.archivedAt } : {}),
    };
  }
  return undefined;
}

/**
 * The history files of timelines newer than a given one, as archive-push
 * sees them: probed one timeline at a time from T+1 until one is missing,
 * as PostgreSQL itself looks for the newest timeline in an archive (it picks
 * newest + 1 when it promotes, so the archived timelines are consecutive).
 *
 * Throughput: for WAL on the newest timeline (the normal case) this is one
 * GET of a missing key per file, overlapped with compression. History files
 * never change, so the ones found are kept for the life of this object (the
 * read-ahead pusher keeps one for all its pushes); a missing one is asked
 * again every time, so a timeline that appears is seen by the next push.
 */
export class TimelineWatch {
  private readonly found = new Map<number, ArchivedHistory>();

  constructor(
    private readonly repo: Repository,
    private readonly cluster: string,
  ) {}

  /** The history files of timelines after `timeline`, up to the first that is not archived; stops early at one that supersedes `walFile`. */
  async newerThan(timeline: number, walFile?: string, segSize?: number): Promise<ArchivedHistory[]> {
    const out: ArchivedHistory[] = [];
    for (let t = timeline + 1; ; t++) {
      let h = this.found.get(t);
      if (!h) {
        const got = await this.repo.get(keys.wal(this.cluster, historyFileName(t)));
        if (!got) return out;
        h = {
          timeline: t,
          text: got.body.toString('utf8'),
          ...(got.info.lastModified ? { archivedAt: got.info.lastModified } : {}),
        };
        this.found.set(t, h);
      }
      out.push(h);
      if (walFile !== undefined && supersededBy(walFile, [h], segSize)) return out;
    }
  }

  /** Whether a newer archived timeline supersedes this WAL file. */
  async check(walFile: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): Promise<Supersession | undefined> {
    const pos = walFilePosition(walFile, segSize);
    if (!pos) return undefined;
    return supersededBy(walFile, await this.newerThan(pos.timeline, walFile, segSize), segSize);
  }
}
