// Where a restore drill without a given target restores to: a random moment
// of the runbook's drill.targetWindow that the archive can actually reach,
// so that over many drills every part of the archive is exercised, not only
// its newest end.
//
// The window runs from just after the end of the oldest usable verified
// backup (a time before a backup's end cannot be reached from it) to the
// newest archived commit, clipped to now - targetWindow. The upper end must
// be a commit, not merely a segment: recovery_target_time stops at the first
// commit after the target, and a target after the last archived commit makes
// PostgreSQL end recovery before reaching it.
import type { BackupMeta } from '../catalog/backup-meta';
import type { Runbook } from '../runbook/schema';
import type { DrillTarget } from './contract';

/** A target this close after a backup's end could still fall before its consistent point. */
const AFTER_BACKUP_MS = 1000;

export interface WindowFacts {
  /** Lifeboat's own backups, or an engine's (src/engine/types.ts EngineBackup): only these fields are read. */
  backups: readonly Pick<BackupMeta, 'backupId' | 'startWal' | 'endTime'>[];
  /** Names of the archived WAL files (segments, history...). */
  archived: ReadonlySet<string>;
  /** Time of the newest commit in the archive, if one was found. */
  newestCommit?: { time: string; segment: string };
  now: Date;
  targetWindowSeconds: number;
  /**
   * A drill from the warm standby: the standby's last replayed commit. A
   * target at or before it could not be reached by a clone of the standby
   * (a copy cannot replay backwards), so the window starts after it.
   */
  after?: string;
}

export type DrillWindow =
  { kind: 'window'; from: number; to: number; backupId: string; why: string } | { kind: 'none'; why: string };

export function drillWindow(f: WindowFacts): DrillWindow {
  const usable = [...f.backups]
    .filter((b) => f.archived.has(b.startWal))
    .sort((a, b) => Date.parse(a.endTime) - Date.parse(b.endTime));
  const oldest = usable[0];
  if (!oldest) return { kind: 'none', why: 'no verified backup whose first WAL segment is archived' };
  if (!f.newestCommit) return { kind: 'none', why: `no commit found in the newest archived segments` };
  const windowStart = f.now.getTime() - f.targetWindowSeconds * 1000;
  const afterStandby = f.after ? Date.parse(f.after) + AFTER_BACKUP_MS : -Infinity;
  const from = Math.max(Date.parse(oldest.endTime) + AFTER_BACKUP_MS, windowStart, afterStandby);
  // Strictly before the commit: recovery stops at the first commit after the target.
  const to = Math.min(Date.parse(f.newestCommit.time) - 1, f.now.getTime());
  if (!(to > from)) {
    return {
      kind: 'none',
      why: `the newest archived commit (${f.newestCommit.time}, in ${f.newestCommit.segment}) is not after ${new Date(from).toISOString()} (end of backup ${oldest.backupId}, the start of the ${f.targetWindowSeconds}s window${f.after ? ", or the warm standby's last replayed commit" : ''})`,
    };
  }
  const clipped =
    from === afterStandby
      ? `the warm standby's last replayed commit (${f.after})`
      : from === windowStart
        ? `the start of drill.targetWindow (${f.targetWindowSeconds}s ago)`
        : `the end of backup ${oldest.backupId}, the oldest usable verified backup`;
  return {
    kind: 'window',
    from,
    to,
    backupId: oldest.backupId,
    why: `from ${clipped} to the newest archived commit (${f.newestCommit.time}, in ${f.newestCommit.segment})`,
  };
}

/** A time drawn from the window with `random` in [0, 1); a given random makes it testable. */
export function pickTarget(w: DrillWindow, random: number): DrillTarget {
  if (w.kind === 'none') {
    return {
      target: { latest: true },
      why: `no time could be picked (${w.why}): the drill replays to the end of the archive`,
    };
  }
  const at = new Date(Math.floor(w.from + random * (w.to - w.from))).toISOString();
  return {
    target: { time: at },
    why: `random time in the window ${new Date(w.from).toISOString()} .. ${new Date(w.to).toISOString()}, ${w.why}`,
    window: { from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() },
  };
}

/**
 * pick-target's draw (activities/drill.ts, ./engine-target.ts): a random
 * moment of the runbook's drill.targetWindow, as of now, among what the
 * archive holds; `after`, a drill from the warm standby (WindowFacts).
 */
export function pickDrillTime(
  runbook: Runbook,
  facts: Pick<WindowFacts, 'backups' | 'archived'> & {
    newestCommit: WindowFacts['newestCommit'] | undefined;
    after: string | undefined;
  },
): DrillTarget {
  const window = drillWindow({
    backups: facts.backups,
    archived: facts.archived,
    ...(facts.newestCommit ? { newestCommit: facts.newestCommit } : {}),
    now: new Date(),
    targetWindowSeconds: runbook.drill!.targetWindow,
    ...(facts.after ? { after: facts.after } : {}),
  });
  return pickTarget(window, Math.random());
}
