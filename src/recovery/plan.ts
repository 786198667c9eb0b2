// Which base backup a recovery restores, and whether the archived WAL can
// carry it to the target: pure functions over the catalog, so preflight,
// drills and tests share one answer.
//
// The trap other tools fall into: "the latest backup" is wrong for a target in
// the past. A backup that finished after the target already contains the
// damage, and PostgreSQL cannot replay backwards from it. The right backup is
// the newest one that finished before the target.
import type { BackupMeta } from '../catalog/backup-meta';
import { analyzeChain, describeChainProblems, type WalGap } from '../catalog/chain';
import { LifeboatError } from '../errors';
import { parseLsn, parseSegmentName, segnoOfLsn, walFileKind } from '../wal/names';
import { describeTarget, type BackupChoice, type Target } from './contract';
import { archiveLine } from './reach';

/** What chooseBackup reads of a backup: a BackupMeta, or an engine's backup (src/engine/types.ts). */
export type ChoosableBackup = Pick<
  BackupMeta,
  'backupId' | 'startLsn' | 'endLsn' | 'startTime' | 'endTime' | 'timeline' | 'sizeBytes' | 'storedBytes'
>;

/**
 * `ordered`: `backups` are already oldest first. Lifeboat's backup ids sort
 * by time; pgBackRest's labels do not (an incremental's label starts with its
 * full's time), so its engine orders by end time and says so.
 */
export function chooseBackup(
  backups: readonly ChoosableBackup[],
  target: Target,
  cluster: string,
  backupId?: string,
  opts: { ordered?: boolean } = {},
): BackupChoice {
  const byId = opts.ordered
    ? [...backups]
    : [...backups].sort((a, b) => (a.backupId < b.backupId ? -1 : a.backupId > b.backupId ? 1 : 0));
  const listHint = `lifeboat backups --runbook <name> lists what the repository holds`;
  if (backupId !== undefined) {
    const chosen = byId.find((b) => b.backupId === backupId);
    if (!chosen) {
      throw new LifeboatError(
        'BACKUP_NOT_FOUND',
        `backup ${backupId} of cluster ${cluster} is not a verified backup in the repository`,
        {
          hints: [
            listHint,
            'leave backupId out to let preflight choose the newest backup that finished before the target',
          ],
        },
      );
    }
    return choice(chosen, `backup ${backupId} was asked for in the input`);
  }
  if (byId.length === 0) {
    throw new LifeboatError(
      'BACKUP_NOT_FOUND',
      `no verified base backup of cluster ${cluster} in the repository: nothing can be restored`,
      {
        hints: [
          'take one with lifeboat backup --runbook <name> (it cannot bring back data from before it was taken)',
          listHint,
        ],
      },
    );
  }
  if ('time' in target) {
    const t = Date.parse(target.time);
    const fit = byId.filter((b) => Date.parse(b.endTime) < t);
    const chosen = fit[fit.length - 1];
    if (!chosen) {
      throw new LifeboatError(
        'BACKUP_NOT_FOUND',
        `no verified base backup of cluster ${cluster} finished before ${target.time}: the oldest finished at ${byId[0]!.endTime}`,
        { hints: ['a point in time can only be reached from a backup that finished before it', listHint] },
      );
    }
    const newer = byId.length - fit.length;
    return choice(
      chosen,
      `newest verified backup that finished before ${target.time}` +
        (newer > 0
          ? ` (${newer} newer backup${newer === 1 ? '' : 's'} finished after the target and already hold its changes)`
          : ''),
    );
  }
  if ('lsn' in target) {
    const lsn = parseLsn(target.lsn);
    const fit = byId.filter((b) => parseLsn(b.endLsn) <= lsn);
    const chosen = fit[fit.length - 1];
    if (!chosen) {
      throw new LifeboatError(
        'BACKUP_NOT_FOUND',
        `no verified base backup of cluster ${cluster} ends at or before LSN ${target.lsn}: the oldest ends at ${byId[0]!.endLsn}`,
        {
          hints: ['a position in the WAL can only be reached from a backup that ended before it', listHint],
        },
      );
    }
    return choice(chosen, `newest verified backup that ended before LSN ${target.lsn}`);
  }
  const newest = byId[byId.length - 1]!;
  if ('latest' in target) return choice(newest, 'newest verified backup (target: the end of the archive)');
  // A restore point or a transaction id carries no time the catalog knows:
  // the newest backup is tried, and if the target lies before it, replay ends
  // without finding it (RECOVERY_ENDED_BEFORE_TARGET), never promoting.
  return choice(
    newest,
    `newest verified backup; the catalog cannot tell when ${describeTarget(target)} was written, so pass backupId if it is older than ${newest.backupId}`,
  );
}

function choice(b: ChoosableBackup, why: string): BackupChoice {
  return {
    backupId: b.backupId,
    startLsn: b.startLsn,
    endLsn: b.endLsn,
    startTime: b.startTime,
    endTime: b.endTime,
    timeline: b.timeline,
    sizeBytes: b.sizeBytes,
    storedBytes: b.storedBytes,
    why,
  };
}

export interface ArchivedWal {
  name: string;
  lastModified?: Date;
}

export interface WalCoverage {
  walFrom: string;
  walTo?: string;
  segmentsAvailable: number;
  /** Bytes of WAL from the backup's start to the newest archived segment (for the RTO estimate). */
  walBytes: number;
  warnings: string[];
}

/**
 * Checks the archived WAL from the backup's start towards the target. A gap
 * the replay must cross fails with WAL_GAP here, before any gate is touched.
 *
 * For a time target, a gap only matters when the WAL before it ends before
 * the target: if the segment just before the gap was archived at or after the
 * target time, everything up to the target is in segments before the gap
 * (a segment is archived after every record in it was written).
 */
export function checkWalCoverage(opts: {
  backup: BackupMeta;
  target: Target;
  files: readonly ArchivedWal[];
  histories: Readonly<Record<string, string>>;
  cluster: string;
  repoArgs: string;
}): WalCoverage {
  const { backup, target, files } = opts;
  const segSize = backup.walSegmentSize;
  const report = analyzeChain({
    walFiles: files.map((f) => f.name),
    histories: opts.histories,
    backups: [
      { backupId: backup.backupId, timeline: backup.timeline, startWal: backup.startWal, startLsn: backup.startLsn },
    ],
    walSegmentSize: segSize,
  });
  // Along the backup's line of timelines (archiveLine: the newest timeline
  // descending from the backup, as recovery_target_timeline = 'latest'
  // follows): WAL an old primary went on writing on its timeline after a
  // recovery branched off it is neither needed nor the end of the archive.
  const line = archiveLine(
    files.map((f) => f.name),
    opts.histories,
    backup,
  );
  const byName = new Map(files.map((f) => [f.name, f]));
  const segments = line.segments.map((name) => byName.get(name)!);
  const warnings: string[] = [];
  const blocking: WalGap[] = [];
  for (const gap of report.gaps) {
    if (!gap.neededBy.includes(backup.backupId) || !gap.onLineOf.includes(line.timeline)) continue;
    if (gapMatters(gap, target, byName, segSize, warnings)) blocking.push(gap);
  }
  const blockingReport = { ...report, gaps: blocking };
  const problems = describeChainProblems(blockingReport, backup.backupId, opts.repoArgs).filter(
    (p) => p.kind === 'wal-gap',
  );
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new LifeboatError(
      'WAL_GAP',
      `the WAL archive of cluster ${opts.cluster} cannot carry backup ${backup.backupId} to ${describeTarget(target)}: ${problems.map((p) => p.message).join('; ')}`,
      {
        hints: [...first.hints, 'nothing was touched: no gate, no traffic, no data directory'],
        details: { gaps: blocking },
      },
    );
  }
  for (const m of report.missingHistory)
    warnings.push(`timeline history ${m.file} is missing (${m.neededFor}): replay cannot follow that timeline`);
  const last = segments[segments.length - 1];
  let walBytes = 0;
  if (last) {
    const lastSeg = parseSegmentName(last.name, segSize).segno;
    walBytes = Number((lastSeg + 1n - segnoOfLsn(backup.startLsn, segSize)) * BigInt(segSize));
    if ('time' in target && last.lastModified && last.lastModified.getTime() < Date.parse(target.time)) {
      warnings.push(
        `the newest archived segment ${last.name} was archived at ${last.lastModified.toISOString()}, before the target ${target.time}: ` +
          'if the primary has not archived the rest, replay ends before the target (check the archiver on the primary)',
      );
    }
  } else {
    warnings.push(
      `no WAL segment from ${backup.startWal} on is archived yet: the restore needs at least the backup's own WAL`,
    );
  }
  return { walFrom: backup.startWal, walTo: last?.name, segmentsAvailable: segments.length, walBytes, warnings };
}

function gapMatters(
  gap: WalGap,
  target: Target,
  files: Map<string, ArchivedWal>,
  segSize: number,
  warnings: string[],
): boolean {
  const gapFirst = parseSegmentName(gap.first, segSize).segno;
  if ('lsn' in target) return gapFirst <= segnoOfLsn(target.lsn, segSize);
  if ('time' in target) {
    // The segment just before the gap, on the gap's timeline.
    const before = [...files.values()]
      .filter(
        (f) => walFileKind(f.name) === 'segment' && f.name < gap.first && f.name.slice(0, 8) === gap.first.slice(0, 8),
      )
      .sort((a, b) => (a.name < b.name ? 1 : -1))[0];
    if (before?.lastModified && before.lastModified.getTime() >= Date.parse(target.time)) {
      warnings.push(
        `WAL gap ${gap.first}..${gap.last} lies after the target (the segment before it was archived after ${target.time}); replay stops before it`,
      );
      return false;
    }
    return true;
  }
  // latest, a restore point or a transaction id: no way to tell where the target lies, so every gap counts.
  return true;
}

/**
 * A rough RTO estimate from sizes: restore at 150 MiB/s, replay at 60 MiB/s,
 * plus a fixed 2 minutes for the rest. BENCHMARKS.md has measured figures.
 */
export function estimateRtoSeconds(backupBytes: number, walBytes: number): number {
  const MiB = 1024 * 1024;
  return Math.round(backupBytes / (150 * MiB) + walBytes / (60 * MiB) + 120);
}
