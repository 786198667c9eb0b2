// migrationCheckpoint's two archive checks on a runbook whose backups another
// engine holds (engine: pgbackrest, src/engine/), through the engine's own
// commands, never its repository's files:
//   preflight   the newest backup (pgbackrest info) and no gap in the
//               archive a recovery from it would cross (repo-ls, the same
//               continuity analysis as Lifeboat's own: engine.readArchive)
//   wait        the restore point's segment in the stanza's archive listing
//               (repo-ls: engine.walFiles)
// The restore point itself is still pg_create_restore_point on the primary
// (./checkpoint.ts createRestorePoint), whatever the engine.
import type { HealthProblem } from '../catalog/chain';
import { PgBackRestEngine, openEngine } from '../engine';
import type { Runbook } from '../runbook/schema';

export interface EngineArchiveCheck {
  backupId?: string;
  walFrom?: string;
  walTo?: string;
  problems: HealthProblem[];
}

/** The newest backup of the engine and the problems a recovery from it to the end of the archive would meet. */
export async function checkEngineArchive(runbook: Runbook): Promise<EngineArchiveCheck> {
  const engine = await openEngine(runbook);
  const backups = [...(await engine.listBackups())].sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
  const backup = backups[backups.length - 1];
  if (!backup) {
    return {
      problems: [
        {
          kind: 'no-backup',
          message: `no backup in ${engine.label}: a recovery to the checkpoint would have nothing to start from`,
          hints: [
            `take one first: lifeboat backup --runbook ${runbook.name} --type full`,
            `lifeboat backups --runbook ${runbook.name} lists what is there`,
          ],
        },
      ],
    };
  }
  const archive = await engine.readArchive(backups);
  const problems: HealthProblem[] = [];
  const gaps = archive.gaps.filter((g) => g.neededBy.includes(backup.backupId));
  if (gaps.length > 0) {
    problems.push({
      kind: 'wal-gap',
      message: `the WAL archive of ${engine.label} cannot carry backup ${backup.backupId} to the end of the archive: ${gaps.map((g) => `timeline ${g.timeline} lacks ${g.count} segment(s) ${g.first} .. ${g.last}`).join('; ')}`,
      hints: [...new Set(archive.problems.filter((p) => p.kind === 'wal-gap').flatMap((p) => p.hints))],
    });
  }
  const newest = archive.timelines[archive.timelines.length - 1];
  return {
    backupId: backup.backupId,
    walFrom: backup.startWal,
    ...(newest?.last ? { walTo: newest.last } : {}),
    problems,
  };
}

/** Whether the engine's archive holds `segment` now (one listing). */
export async function engineHasSegment(runbook: Runbook, segment: string): Promise<boolean> {
  const engine = await openEngine(runbook);
  if (!(engine instanceof PgBackRestEngine)) throw new Error(`no WAL listing for engine ${engine.kind}`);
  return (await engine.walFiles()).files.includes(segment);
}
