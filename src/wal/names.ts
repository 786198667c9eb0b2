// WAL file names and LSN arithmetic. Pure functions, usable from workflows.
//
// A segment name is TTTTTTTTXXXXXXXXYYYYYYYY: timeline, then the segment
// number split as (segno / segmentsPerXLogId, segno % segmentsPerXLogId),
// where segmentsPerXLogId = 0x100000000 / walSegmentSize (256 for 16 MB).

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

/** A size initdb --wal-segsize allows: a power of two from 1 MiB to 1 GiB. */
export function isSegmentSize(n: number): boolean {
  return n >= 1 << 20 && n <= 1 << 30 && (n & (n - 1)) === 0;
}

const SEGMENT_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const HISTORY_RE = /^([0-9A-F]{8})\.history$/;
const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export interface SegmentName {
  timeline: number;
  segno: bigint;
}

export function isSegmentName(name: string): boolean {
  return SEGMENT_RE.test(name);
}

export function isHistoryName(name: string): boolean {
  return HISTORY_RE.test(name);
}

/** Segment names PostgreSQL may ask for besides segments: history files, backup labels, partial segments. */
export function walFileKind(name: string): 'segment' | 'history' | 'partial' | 'backup' | 'other' {
  if (SEGMENT_RE.test(name)) return 'segment';
  if (HISTORY_RE.test(name)) return 'history';
  if (/^[0-9A-F]{24}\.partial$/.test(name)) return 'partial';
  if (/^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/.test(name)) return 'backup';
  return 'other';
}

function segmentsPerId(segSize: number): bigint {
  return 0x100000000n / BigInt(segSize);
}

export function parseSegmentName(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): SegmentName {
  const m = SEGMENT_RE.exec(name);
  if (!m) throw new Error(`not a WAL segment name: ${JSON.stringify(name)}`);
  const [, tli, hi, lo] = m as unknown as [string, string, string, string];
  return { timeline: parseInt(tli, 16), segno: BigInt(`0x${hi}`) * segmentsPerId(segSize) + BigInt(`0x${lo}`) };
}

export function segmentName(timeline: number, segno: bigint, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const per = segmentsPerId(segSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / per)}${hex(segno % per)}`;
}

export function nextSegmentName(name: string, segSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const { timeline, segno } = parseSegmentName(name, segSize);
  return segmentName(timeline, segno + 1n, segSize);
}

export function historyFileName(timeline: number): string {
  return `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
}

export function timelineOfHistory(name: string): number {
  const m = HISTORY_RE.exec(name);
  if (!m) throw new Error(`not a timeline history file name: ${JSON.stringify(name)}`);
  return parseInt(m[1] as string, 16);
}

export function parseLsn(lsn: string): bigint {
  const m = LSN_RE.exec(lsn.trim());
  if (!m) throw new Error(`not an LSN (expected the form 0/16B3748): ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The segment that holds the byte at `lsn`. */
export function segnoOfLsn(lsn: bigint | string, segSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  const v = typeof lsn === 'string' ? parseLsn(lsn) : lsn;
  return v / BigInt(segSize);
}

export interface TimelineHistoryEntry {
  /** The parent timeline. */
  timeline: number;
  /** Where the child timeline branched off the parent. */
  switchLsn: bigint;
  reason: string;
}

/**
 * Parses a `<tli>.history` file: one line per ancestor, "parentTLI switchLSN reason".
 * PostgreSQL writes them in ancestor order, oldest first.
 */
export function parseHistoryFile(text: string): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [tli, lsn, ...reason] = line.split(/\s+/);
    if (!tli || !lsn) continue;
    entries.push({ timeline: Number(tli), switchLsn: parseLsn(lsn), reason: reason.join(' ') });
  }
  return entries;
}
