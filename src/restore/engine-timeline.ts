// The timeline case on pgBackRest 2.45: a restore follows the newest timeline
// (pgbackrest --target-timeline=latest, Lifeboat's recovery_target_timeline =
// 'latest'), which a backup can reach only if it was taken on one of that
// timeline's ancestors before the fork. After a promoted recovery, a backup
// taken on the old primary past the fork cannot: PostgreSQL stops replay
// with "requested timeline N is not a child of this server's history", after
// the whole restore. pgBackRest 2.45 does not check this before restoring
// (later versions refuse with [058]); Lifeboat does, from the stanza's
// history files, and refuses before the directory is touched.
import { LifeboatError } from '../errors';
import { formatLsn, historyFileName, isHistoryName, parseHistoryFile, parseLsn, timelineOfHistory } from '../wal/names';

export interface TimelineBackup {
  backupId: string;
  timeline: number;
  startLsn: string;
}

/** Why `backup` cannot reach the newest timeline of `histories` (file name to text), or undefined when it can. */
export function unreachableLatest(
  backup: TimelineBackup,
  histories: Record<string, string>,
): { latest: number; forkLsn?: string } | undefined {
  const latest = Math.max(0, ...Object.keys(histories).filter(isHistoryName).map(timelineOfHistory));
  if (latest <= backup.timeline) return undefined;
  const text = histories[historyFileName(latest)];
  if (text === undefined) return undefined;
  const fork = parseHistoryFile(text).find((e) => e.timeline === backup.timeline);
  if (!fork) return { latest };
  return parseLsn(backup.startLsn) >= fork.switchLsn ? { latest, forkLsn: formatLsn(fork.switchLsn) } : undefined;
}

export function timelineUnreachableError(
  backup: TimelineBackup,
  found: { latest: number; forkLsn?: string },
  cmd: string,
): LifeboatError {
  const why = found.forkLsn
    ? `timeline ${found.latest} forked from timeline ${backup.timeline} at ${found.forkLsn}, before the backup started (${backup.startLsn})`
    : `timeline ${backup.timeline} is not in the history of timeline ${found.latest}`;
  return new LifeboatError(
    'TARGET_UNREACHABLE',
    `backup ${backup.backupId} (timeline ${backup.timeline}) cannot reach the stanza's newest timeline ${found.latest}: ${why}`,
    {
      hints: [
        'nothing was restored or moved: replay would stop with "requested timeline is not a child of this server\'s history"',
        `a target on timeline ${found.latest} needs a backup taken before the fork (or on that timeline): lifeboat backups lists them; name it with lifeboat recover --backup <label>`,
        `a target on the old timeline ${backup.timeline} (the old primary's, after the fork) is not restored by Lifeboat yet: by hand, ${cmd} restore --set=${backup.backupId} --target-timeline=current --type=... --target-action=pause`,
      ],
      details: { backupId: backup.backupId, timeline: backup.timeline, latest: found.latest },
    },
  );
}
