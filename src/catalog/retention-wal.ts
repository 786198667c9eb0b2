// The WAL side of retention (src/catalog/retention.ts): which segments a
// plan keeps, named as ranges (one backup's own start..end, or the open
// point-in-time window), which archived files no kept range covers, and the
// deleted segments summarized as runs an operator can read. Pure functions.
// Only segments ever go: history, .partial and .backup files always stay.
import { parseSegmentName, segmentName, walFileKind } from '../wal/names';

export interface RetentionWalFile {
  name: string;
  /** Stored bytes. */
  size: number;
}

/**
 * Segments kept. Closed (`to` set): timelines from `from`'s to `to`'s and
 * segment numbers from `from`'s to `to`'s, both inclusive: one backup's own
 * WAL. Open (no `to`): every segment numbered from `from`'s on, on any
 * timeline, and every segment of a timeline after `from`'s: the
 * point-in-time window.
 */
export interface WalRange {
  from: string;
  to?: string;
  why: string;
}

/** Plans from before tiered retention: segments with timeline <= `timeline` below `beforeSegment` may go. */
export interface WalCutoff {
  timeline: number;
  beforeSegment: string;
  walSegmentSize: number;
  backupId: string;
}

/** A run of deleted segments on one timeline with no kept segment between them. */
export interface WalDeleteSummary {
  timeline: number;
  first: string;
  last: string;
  count: number;
  storedBytes: number;
  reason: string;
}

interface ParsedRange {
  fromTli: number;
  fromSeg: bigint;
  toTli?: number;
  toSeg?: bigint;
}

function parseRange(r: WalRange, segSize: number): ParsedRange {
  const f = parseSegmentName(r.from, segSize);
  if (r.to === undefined) return { fromTli: f.timeline, fromSeg: f.segno };
  const t = parseSegmentName(r.to, segSize);
  return { fromTli: f.timeline, fromSeg: f.segno, toTli: t.timeline, toSeg: t.segno };
}

function covers(r: ParsedRange, timeline: number, segno: bigint): boolean {
  if (r.toTli === undefined) return segno >= r.fromSeg || timeline > r.fromTli;
  return timeline >= r.fromTli && timeline <= r.toTli && segno >= r.fromSeg && segno <= r.toSeg!;
}

/** Whether every segment of `p` lies in `o`. */
function contains(o: ParsedRange, p: ParsedRange): boolean {
  if (o.toTli === undefined) {
    return p.toTli === undefined
      ? p.fromSeg >= o.fromSeg && p.fromTli >= o.fromTli
      : p.fromSeg >= o.fromSeg || p.fromTli > o.fromTli;
  }
  if (p.toTli === undefined) return false;
  return o.fromTli <= p.fromTli && o.toTli! >= p.toTli && o.fromSeg <= p.fromSeg && o.toSeg! >= p.toSeg!;
}

/** Drops ranges another one already covers (the first of equal ones stays): the plan stays as small as what it protects. */
export function pruneRanges(ranges: WalRange[], segSize: number): WalRange[] {
  const parsed = ranges.map((r) => parseRange(r, segSize));
  return ranges.filter(
    (_, i) => !parsed.some((o, j) => j !== i && contains(o, parsed[i]!) && (j < i || !contains(parsed[i]!, o))),
  );
}

/** The WAL files no kept range covers: segments only, never history, .partial or .backup files. */
export function walFilesToDelete<F extends RetentionWalFile>(
  walFiles: readonly F[],
  keep: readonly WalRange[],
  segSize: number,
): F[] {
  const ranges = keep.map((r) => parseRange(r, segSize));
  return walFiles.filter((f) => {
    if (walFileKind(f.name) !== 'segment') return false;
    const { timeline, segno } = parseSegmentName(f.name, segSize);
    return !ranges.some((r) => covers(r, timeline, segno));
  });
}

/** An old plan's cutoff as ranges kept: the same segments stay. */
export function cutoffAsRanges(c: WalCutoff): WalRange[] {
  const seg = parseSegmentName(c.beforeSegment, c.walSegmentSize).segno;
  return [
    {
      from: segmentName(c.timeline, seg, c.walSegmentSize),
      why: `every segment from ${c.beforeSegment} on (backup ${c.backupId})`,
    },
  ];
}

/**
 * The deleted segments as runs: per timeline, consecutive deleted segments
 * with no kept segment between them (a hole in the archive does not split a
 * run), each with why it goes and which kept WAL lies on either side.
 */
export function summarizeWal(
  all: readonly RetentionWalFile[],
  doomed: readonly RetentionWalFile[],
  keep: readonly WalRange[],
  segSize: number,
  why: string,
): WalDeleteSummary[] {
  const gone = new Set(doomed.map((f) => f.name));
  const segs = all
    .filter((f) => walFileKind(f.name) === 'segment')
    .map((f) => ({ ...f, ...parseSegmentName(f.name, segSize) }))
    .sort((a, b) => a.timeline - b.timeline || (a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0));
  const ranges = keep.map((r) => ({ r, p: parseRange(r, segSize) }));
  const runs: (WalDeleteSummary & { firstSeg: bigint; lastSeg: bigint })[] = [];
  let open = false;
  for (const s of segs) {
    const last = runs[runs.length - 1];
    if (!gone.has(s.name)) {
      open = false;
      continue;
    }
    if (open && last && last.timeline === s.timeline) {
      last.last = s.name;
      last.lastSeg = s.segno;
      last.count++;
      last.storedBytes += s.size;
    } else {
      runs.push({
        timeline: s.timeline,
        first: s.name,
        last: s.name,
        firstSeg: s.segno,
        lastSeg: s.segno,
        count: 1,
        storedBytes: s.size,
        reason: '',
      });
      open = true;
    }
  }
  return runs.map(({ firstSeg, lastSeg, ...run }) => {
    // The kept WAL just before and after the run on segment numbers: what the operator compares it with.
    const before = ranges
      .filter((x) => x.p.toSeg !== undefined && x.p.toSeg < firstSeg)
      .sort((a, b) => (a.p.toSeg! < b.p.toSeg! ? 1 : -1))[0];
    const after = ranges.filter((x) => x.p.fromSeg > lastSeg).sort((a, b) => (a.p.fromSeg < b.p.fromSeg ? -1 : 1))[0];
    const between = [
      ...(before ? [`after the WAL of ${before.r.why}`] : []),
      ...(after && after.r.to !== undefined ? [`before the WAL of ${after.r.why}`] : []),
    ];
    return { ...run, reason: between.length > 0 ? `${why}; ${between.join(', ')}` : why };
  });
}
