// Continuity of the archived WAL: pure functions over file names and history
// file texts, so the same check runs in `lifeboat check`, in a workflow's
// preflight and in tests without a repository.
//
// A restore replays WAL along one line of timelines. Timeline T's line is
// written in T.history: "parent switchLSN" per ancestor, oldest first. For a
// segment number s, PostgreSQL (XLogFileReadAnyTLI) reads it from the newest
// timeline on the line whose switch segment is <= s: so the parent supplies
// the segments before the switch segment, the child the switch segment and
// everything after. The parent's own copy of the switch segment is archived
// as `.partial` and never needed.
import {
  DEFAULT_WAL_SEGMENT_SIZE,
  formatLsn,
  historyFileName,
  parseHistoryFile,
  parseLsn,
  parseSegmentName,
  segmentName,
  segnoOfLsn,
  timelineOfHistory,
  walFileKind,
} from '../wal/names';

/** What the chain check needs to know of a complete backup. */
export interface ChainBackup {
  backupId: string;
  timeline: number;
  startWal: string;
  startLsn: string;
  /** Last segment the backup needs; with `continuousFrom`, all an older backup needs. */
  endWal?: string;
}

export interface ChainInput {
  /** WAL file names in the archive; anything but segments and history files is ignored. */
  walFiles: readonly string[];
  /** Texts of the history files in the archive, by file name ("00000002.history"). */
  histories: Readonly<Record<string, string>>;
  /** Complete backups; the check starts at the oldest one that reaches each timeline. */
  backups: readonly ChainBackup[];
  walSegmentSize?: number;
  /**
   * Tiered retention (src/catalog/retention.ts): the backup where the
   * point-in-time window starts. WAL must be continuous from it on; a backup
   * older than it needs only its own segments (startWal..endWal): the WAL
   * between old backups is expired on purpose.
   */
  continuousFrom?: string;
}

export interface TimelineParent {
  timeline: number;
  switchLsn: string;
  /** First segment the child supplies instead of this parent. */
  switchSegment: string;
}

export interface TimelineSummary {
  timeline: number;
  firstSegment?: string;
  lastSegment?: string;
  segmentCount: number;
  /** The timeline's history file; timeline 1 has none. */
  history: 'present' | 'missing' | 'unreadable' | 'not-needed';
  /** The line this timeline continues, oldest ancestor first (from its history file). */
  parents: TimelineParent[];
  /** Where continuity was checked from: the oldest backup reaching this timeline, else its first segment. */
  checkedFrom?: { segment: string; backupId?: string };
  checkedTo?: string;
}

export interface WalGap {
  /** The timeline whose segments are missing. */
  timeline: number;
  first: string;
  last: string;
  count: number;
  /** Timelines whose line of WAL runs through the gap. */
  onLineOf: number[];
  /** Backups a restore from which has to replay through the gap, oldest first. */
  neededBy: string[];
}

export interface MissingHistory {
  timeline: number;
  file: string;
  /** Why it is needed: segments or backups on that timeline. */
  neededFor: string;
}

export interface ChainReport {
  ok: boolean;
  walSegmentSize: number;
  timelines: TimelineSummary[];
  gaps: WalGap[];
  missingHistory: MissingHistory[];
  unreadableHistory: { file: string; error: string }[];
}

/** One stretch of a timeline's line: segments [fromSeg, toSeg) come from `timeline`. */
interface LineStretch {
  timeline: number;
  fromSeg: bigint;
  toSeg: bigint | undefined;
  /** LSN where the line leaves this timeline (undefined for the last stretch). */
  untilLsn: bigint | undefined;
}

interface Range {
  from: bigint;
  to: bigint;
}

const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

export function analyzeChain(input: ChainInput): ChainReport {
  const segSize = input.walSegmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const segsByTli = new Map<number, bigint[]>();
  const historyFiles = new Set<number>();
  for (const name of input.walFiles) {
    const kind = walFileKind(name);
    if (kind === 'segment') {
      const { timeline, segno } = parseSegmentName(name, segSize);
      const list = segsByTli.get(timeline) ?? [];
      list.push(segno);
      segsByTli.set(timeline, list);
    } else if (kind === 'history') {
      historyFiles.add(timelineOfHistory(name));
    }
  }
  for (const list of segsByTli.values()) list.sort(cmp);

  // Parse every history file that is there; a bad one is a finding, not a crash.
  const unreadableHistory: ChainReport['unreadableHistory'] = [];
  const ancestry = new Map<number, LineStretch[]>();
  for (const tli of [...historyFiles].sort((a, b) => a - b)) {
    const file = historyFileName(tli);
    const text = input.histories[file];
    if (text === undefined) {
      unreadableHistory.push({ file, error: 'listed in the archive but its content could not be read' });
      continue;
    }
    try {
      ancestry.set(tli, lineOf(tli, text, segSize));
    } catch (err) {
      unreadableHistory.push({ file, error: err instanceof Error ? err.message : String(err) });
    }
  }

  const backups = input.backups.map((b) => ({
    ...b,
    startSeg: parseSegmentName(b.startWal, segSize).segno,
    endSeg: b.endWal !== undefined ? parseSegmentName(b.endWal, segSize).segno : undefined,
    startLsnValue: parseLsn(b.startLsn),
  }));
  const windowStart = backups.find((b) => b.backupId === input.continuousFrom)?.startSeg;
  /** Backups before the window that need only their own WAL. */
  const ownOnly = new Set(
    backups.filter((b) => windowStart !== undefined && b.startSeg < windowStart && b.endSeg !== undefined),
  );

  // Without a (readable) history file a timeline's line is only its own segments.
  const lineOrSelf = (tli: number): LineStretch[] =>
    ancestry.get(tli) ?? [{ timeline: tli, fromSeg: 0n, toSeg: undefined, untilLsn: undefined }];

  const timelines = new Set<number>([...segsByTli.keys(), ...historyFiles, ...backups.map((b) => b.timeline)]);
  const missingHistory: MissingHistory[] = [];
  const summaries: TimelineSummary[] = [];
  // Missing ranges per supplying timeline, with the lines that need them.
  const missing = new Map<number, { range: Range; line: number }[]>();

  for (const tli of [...timelines].sort((a, b) => a - b)) {
    const own = segsByTli.get(tli) ?? [];
    const stretches = lineOrSelf(tli);
    const summary: TimelineSummary = {
      timeline: tli,
      segmentCount: own.length,
      history:
        tli === 1 ? 'not-needed' : ancestry.has(tli) ? 'present' : historyFiles.has(tli) ? 'unreadable' : 'missing',
      parents: stretches.slice(0, -1).map((s, i) => ({
        timeline: s.timeline,
        switchLsn: formatLsn(s.untilLsn ?? 0n),
        switchSegment: segmentName(stretches[i + 1]?.timeline ?? tli, s.toSeg ?? 0n, segSize),
      })),
    };
    if (own.length > 0) {
      summary.firstSegment = segmentName(tli, own[0]!, segSize);
      summary.lastSegment = segmentName(tli, own[own.length - 1]!, segSize);
    }
    if (summary.history === 'missing') {
      const onIt = backups.filter((b) => b.timeline === tli).map((b) => b.backupId);
      missingHistory.push({
        timeline: tli,
        file: historyFileName(tli),
        neededFor:
          onIt.length > 0
            ? `backup ${onIt.join(', ')} ${onIt.length > 1 ? 'are' : 'is'} on timeline ${tli}`
            : `${own.length} archived segment${own.length === 1 ? '' : 's'} on timeline ${tli}`,
      });
    }
    summaries.push(summary);

    const checkRange = (from: bigint, to: bigint) => {
      for (const s of stretches) {
        const lo = s.fromSeg > from ? s.fromSeg : from;
        const hi = s.toSeg !== undefined && s.toSeg - 1n < to ? s.toSeg - 1n : to;
        if (lo > hi) continue;
        for (const range of missingIn(segsByTli.get(s.timeline) ?? [], lo, hi)) {
          const list = missing.get(s.timeline) ?? [];
          list.push({ range, line: tli });
          missing.set(s.timeline, list);
        }
      }
    };
    const reachingAll = backups.filter((b) => reaches(b, stretches)).sort((a, b) => cmp(a.startSeg, b.startSeg));
    // An old backup's own WAL is checked even when its timeline has no segment left at all.
    for (const b of reachingAll) if (ownOnly.has(b) && b.timeline === tli) checkRange(b.startSeg, b.endSeg!);
    if (own.length === 0) continue;
    const reaching = reachingAll.filter((b) => !ownOnly.has(b));
    // With backups in the repository, a line none of them reaches is one no
    // restore reads (an old primary that went on after a switch): its holes
    // matter to nobody. Without any backup, check what is there.
    if (reaching.length === 0 && backups.length > 0) continue;
    const from = reaching[0]?.startSeg ?? own[0]!;
    const to = own[own.length - 1]!;
    summary.checkedFrom = {
      segment: segmentName(stretchAt(stretches, from)?.timeline ?? tli, from, segSize),
      ...(reaching[0] ? { backupId: reaching[0].backupId } : {}),
    };
    summary.checkedTo = summary.lastSegment;
    if (from > to) continue;
    checkRange(from, to);
  }

  const gaps: WalGap[] = [];
  for (const [tli, found] of [...missing.entries()].sort((a, b) => a[0] - b[0])) {
    for (const merged of mergeRanges(found)) {
      const neededBy = backups
        .filter(
          (b) =>
            b.startSeg <= merged.range.to &&
            (!ownOnly.has(b) || b.endSeg! >= merged.range.from) &&
            merged.lines.some((line) => reaches(b, lineOrSelf(line))),
        )
        .map((b) => b.backupId)
        .sort();
      gaps.push({
        timeline: tli,
        first: segmentName(tli, merged.range.from, segSize),
        last: segmentName(tli, merged.range.to, segSize),
        count: Number(merged.range.to - merged.range.from + 1n),
        onLineOf: merged.lines,
        neededBy,
      });
    }
  }

  return {
    ok: gaps.length === 0 && missingHistory.length === 0 && unreadableHistory.length === 0,
    walSegmentSize: segSize,
    timelines: summaries,
    gaps,
    missingHistory,
    unreadableHistory,
  };
}

/** Timeline `tli`'s line from its history file text. */
function lineOf(tli: number, text: string, segSize: number): LineStretch[] {
  const entries = parseHistoryFile(text);
  if (entries.length === 0) throw new Error('holds no ancestor line ("parentTLI switchLSN reason")');
  const stretches: LineStretch[] = [];
  let fromSeg = 0n;
  let lastLsn = -1n;
  let lastTli = 0;
  for (const e of entries) {
    if (!Number.isInteger(e.timeline) || e.timeline <= lastTli || e.timeline >= tli) {
      throw new Error(
        `ancestor timeline ${e.timeline} is out of order (a history line lists older timelines first, all below ${tli})`,
      );
    }
    if (e.switchLsn < lastLsn) throw new Error(`switch point ${formatLsn(e.switchLsn)} goes backwards`);
    const toSeg = segnoOfLsn(e.switchLsn, segSize);
    stretches.push({ timeline: e.timeline, fromSeg, toSeg, untilLsn: e.switchLsn });
    fromSeg = toSeg;
    lastLsn = e.switchLsn;
    lastTli = e.timeline;
  }
  stretches.push({ timeline: tli, fromSeg, toSeg: undefined, untilLsn: undefined });
  return stretches;
}

function stretchAt(stretches: LineStretch[], segno: bigint): LineStretch | undefined {
  return stretches.find((s) => segno >= s.fromSeg && (s.toSeg === undefined || segno < s.toSeg));
}

/** A backup reaches a line when it started on one of its timelines before the line left it. */
function reaches(b: { timeline: number; startLsnValue: bigint }, stretches: LineStretch[]): boolean {
  return stretches.some((s) => s.timeline === b.timeline && (s.untilLsn === undefined || b.startLsnValue < s.untilLsn));
}

/** Missing segment ranges within [lo, hi], given the sorted present ones. */
function missingIn(present: readonly bigint[], lo: bigint, hi: bigint): Range[] {
  const out: Range[] = [];
  let next = lo;
  for (const s of present) {
    if (s < next) continue;
    if (s > hi) break;
    if (s > next) out.push({ from: next, to: s - 1n });
    next = s + 1n;
  }
  if (next <= hi) out.push({ from: next, to: hi });
  return out;
}

/** Overlapping or touching missing ranges become one gap, remembering every line through it. */
function mergeRanges(found: { range: Range; line: number }[]): { range: Range; lines: number[] }[] {
  const sorted = [...found].sort((a, b) => cmp(a.range.from, b.range.from));
  const out: { range: Range; lines: number[] }[] = [];
  for (const f of sorted) {
    const last = out[out.length - 1];
    if (last && f.range.from <= last.range.to + 1n) {
      if (f.range.to > last.range.to) last.range.to = f.range.to;
      if (!last.lines.includes(f.line)) last.lines.push(f.line);
    } else {
      out.push({ range: { ...f.range }, lines: [f.line] });
    }
  }
  for (const o of out) o.lines.sort((a, b) => a - b);
  return out;
}

/** A finding an operator can act on: what is wrong, then HINT lines. */
export interface HealthProblem {
  kind: string;
  message: string;
  hints: string[];
}

/** The chain report's findings as operator-readable lines. */
export function describeChainProblems(
  report: ChainReport,
  newestBackupId?: string,
  /** How commands in hints name the repository: "--runbook orders" or "--repo <url> --cluster <name>". */
  repoArgs = '--runbook <name>',
): HealthProblem[] {
  const problems: HealthProblem[] = [];
  for (const gap of report.gaps) {
    const what =
      gap.count === 1 ? `${gap.first} is missing` : `${gap.count} segments ${gap.first} to ${gap.last} are missing`;
    let needed: string;
    const oldest = gap.neededBy[0];
    if (oldest === undefined) needed = 'no backup replays through it, but no restore can cross it either';
    else if (newestBackupId !== undefined && gap.neededBy[gap.neededBy.length - 1] === newestBackupId)
      needed = `needed by backup ${oldest}${gap.neededBy.length > 1 ? ' and every later one' : ''}`;
    else needed = `needed by backup${gap.neededBy.length > 1 ? 's' : ''} ${gap.neededBy.join(', ')}`;
    const lines = gap.onLineOf.filter((t) => t !== gap.timeline);
    problems.push({
      kind: 'wal-gap',
      message: `WAL gap on timeline ${gap.timeline}: ${what} (${needed})`,
      hints: [
        `a restore from an earlier backup stops at ${gap.first}: point-in-time recovery past it is impossible`,
        ...(lines.length > 0
          ? [
              `timeline${lines.length > 1 ? 's' : ''} ${lines.join(', ')} continue${lines.length > 1 ? '' : 's'} this line`,
            ]
          : []),
        `if the primary still has it in pg_wal, push it again as the postgres user, in the data directory: lifeboat archive-push pg_wal/${gap.first} ${repoArgs}`,
        `otherwise take a new base backup now (lifeboat backup ${repoArgs.startsWith('--runbook') ? repoArgs : '--runbook <name>'}): restores from it do not need the lost WAL`,
      ],
    });
  }
  for (const m of report.missingHistory) {
    problems.push({
      kind: 'history-missing',
      message: `timeline history file ${m.file} is missing (${m.neededFor})`,
      hints: [
        `a restore cannot follow the switch to timeline ${m.timeline} without it`,
        `PostgreSQL archives it when a server is promoted; if that server still runs, push it again: lifeboat archive-push pg_wal/${m.file} ${repoArgs}`,
      ],
    });
  }
  for (const u of report.unreadableHistory) {
    problems.push({
      kind: 'history-unreadable',
      message: `timeline history file ${u.file} cannot be used: ${u.error}`,
      hints: ['compare it with pg_wal/' + u.file + ' on the server that created that timeline'],
    });
  }
  return problems;
}
