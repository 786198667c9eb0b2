// Two writers in one cluster: `lifeboat check`'s findings when more than one
// server feeds the archive after a recovery (see src/wal/superseded.ts for
// the rule archive-push applies). Pure functions over what check read.
//
// Two signs, either enough:
//  - WAL of a timeline archived past the point where a newer timeline
//    branched off it (written before archive-push refused such WAL, or by
//    another tool): a server went on writing the old timeline;
//  - a server check reaches as the primary (the runbook's, or the one it
//    replaced) writing a timeline older than the archive's newest, or whose
//    archiver's last failure is a file of a superseded timeline.
import { historyFileName, isSegmentName, parseHistoryFile, timelineOfHistory, walFileKind } from '../wal/names';
import { supersededBy, type ArchivedHistory } from '../wal/superseded';
import type { HealthProblem } from './chain';
import type { PrimaryOverlay } from './primary';

export interface ServerSample {
  /** How check names it: "the primary" or "the old primary". */
  label: string;
  host: string;
  port: number;
  inRecovery: boolean;
  /** pg_walfile_name(pg_current_wal_lsn()): its timeline is the server's. */
  currentWal?: string;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: string | null;
}

export interface SupersededRun {
  timeline: number;
  by: number;
  switchLsn: string;
  first: string;
  last: string;
  count: number;
}

export interface WritersInput {
  walFiles: readonly string[];
  histories: Readonly<Record<string, string>>;
  walSegmentSize?: number;
  servers: readonly ServerSample[];
  /** The overlay, when it applies: the old primary is then the runbook's own. */
  overlay?: PrimaryOverlay;
}

function archivedHistories(histories: Readonly<Record<string, string>>): ArchivedHistory[] {
  return Object.entries(histories).map(([name, text]) => ({ timeline: timelineOfHistory(name), text }));
}

/** Archived WAL that a newer timeline superseded, one run per (timeline, superseding timeline). */
export function supersededArchived(
  input: Pick<WritersInput, 'walFiles' | 'histories' | 'walSegmentSize'>,
): SupersededRun[] {
  const hist = archivedHistories(input.histories);
  const runs = new Map<string, SupersededRun>();
  for (const name of [...input.walFiles].sort()) {
    if (!isSegmentName(name)) continue;
    const s = supersededBy(name, hist, input.walSegmentSize);
    if (!s) continue;
    const key = `${s.timeline}:${s.by}`;
    const run = runs.get(key);
    if (run) {
      run.last = name;
      run.count++;
    } else runs.set(key, { timeline: s.timeline, by: s.by, switchLsn: s.switchLsn, first: name, last: name, count: 1 });
  }
  return [...runs.values()];
}

/** The newest timeline the archive holds (history files and segments). */
export function newestArchivedTimeline(walFiles: readonly string[]): number {
  let newest = 0;
  for (const name of walFiles) {
    const kind = walFileKind(name);
    const t = kind === 'history' ? timelineOfHistory(name) : kind === 'segment' ? parseInt(name.slice(0, 8), 16) : 0;
    if (t > newest) newest = t;
  }
  return newest;
}

export function twoWriterProblems(input: WritersInput): HealthProblem[] {
  const problems: HealthProblem[] = [];
  const o = input.overlay;
  const newPrimary = o
    ? `the cluster's primary is ${o.host}:${o.port} since recovery ${o.workflowId} promoted it at ${o.promotedAt}`
    : undefined;
  for (const run of supersededArchived(input)) {
    const what = run.count === 1 ? run.first : `${run.count} segments ${run.first} to ${run.last}`;
    problems.push({
      kind: 'two-writers',
      message:
        `two writers: ${what} of timeline ${run.timeline} ${run.count === 1 ? 'was' : 'were'} archived past ${run.switchLsn}, ` +
        `where timeline ${run.by} branched off it: a server went on writing timeline ${run.timeline} after a recovery promoted timeline ${run.by}`,
      hints: [
        `they were archived before archive-push refused such WAL, or by another tool; no restore of this cluster reads them`,
        ...(newPrimary ? [newPrimary] : []),
        `find the server still on timeline ${run.timeline} (select pg_walfile_name(pg_current_wal_lsn()) on each) and stop it, or point its archive_command at another repository or --cluster`,
        'leave the files where they are (nothing reads them); a base backup of that server is not one to restore: take one of the current primary (lifeboat backup)',
      ],
    });
  }

  const newest = newestArchivedTimeline(input.walFiles);
  const hist = archivedHistories(input.histories);
  for (const s of input.servers) {
    if (s.inRecovery || !s.currentWal || !isSegmentName(s.currentWal)) continue;
    const timeline = parseInt(s.currentWal.slice(0, 8), 16);
    const failedSuperseded = s.lastFailedWal ? supersededBy(s.lastFailedWal, hist, input.walSegmentSize) : undefined;
    if (timeline >= newest && !failedSuperseded) continue;
    const branch = hist
      .filter((h) => h.timeline > timeline)
      .sort((a, b) => a.timeline - b.timeline)
      .map((h) => ({ h, e: safeEntries(h.text).find((e) => e.timeline === timeline) }))
      .find((x) => x.e);
    const why = branch
      ? `timeline ${branch.h.timeline} branched off it (${historyFileName(branch.h.timeline)})`
      : `the archive's newest timeline is ${newest}`;
    const refused = failedSuperseded
      ? `; archive-push refuses its WAL: last failed ${s.lastFailedWal}${s.lastFailedTime ? ` at ${s.lastFailedTime}` : ''} (${s.failedCount} failure${s.failedCount === 1 ? '' : 's'})`
      : '';
    problems.push({
      kind: 'two-writers',
      message: `two writers: ${s.label} ${s.host}:${s.port} is writing timeline ${timeline}, but ${why}${refused}`,
      hints: [
        ...(newPrimary ? [newPrimary] : []),
        o
          ? `stop the old primary ${s.host}:${s.port} (pg_ctl stop -D <its data directory>), or, if it must keep running, point its archive_command at another repository or --cluster`
          : `the runbook's cluster.primary names a server the archive no longer follows: point cluster.primary at the server on timeline ${newest}, and stop this one or point its archive_command elsewhere`,
        'PostgreSQL keeps the WAL archive-push refuses in pg_wal and retries it: nothing is lost, but pg_wal grows until that server stops or archives elsewhere',
      ],
    });
  }
  return problems;
}

function safeEntries(text: string) {
  try {
    return parseHistoryFile(text);
  } catch {
    return [];
  }
}
