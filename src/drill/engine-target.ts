// pick-target of a restore drill on a runbook whose backups another engine
// holds (engine: pgbackrest, src/engine/): the same window and draw as on
// Lifeboat's own repository (./target.ts), from the engine's own commands:
//   backups          pgbackrest info (engine.listBackups)
//   archived files   repo-ls and repo-get of history files (engine.walFiles)
//   newest commit    the newest segments of the newest backup's line of
//                    timelines, fetched with pgbackrest archive-get
//                    (src/engine/pgbackrest/segments.ts), read with
//                    pg_waldump (./newest-commit.ts)
// Nothing of pgBackRest's repository is read as files.
import { PgBackRestEngine, openEngine } from '../engine';
import { withStanzaSegments } from '../engine/pgbackrest/segments';
import { archiveLine } from '../recovery/reach';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import type { DrillTarget } from './contract';
import { newestArchivedCommit } from './newest-commit';
import { pickDrillTime } from './target';

export async function pickDrillTargetOnEngine(runbook: Runbook, after?: string): Promise<DrillTarget> {
  const setting = engineSetting(runbook);
  const engine = await openEngine(runbook);
  if (setting.kind !== 'pgbackrest' || !(engine instanceof PgBackRestEngine))
    throw new Error(`pick-target on engine ${engine.kind}: use Lifeboat's own repository`);
  const backups = [...(await engine.listBackups())].sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
  const { files, histories } = await engine.walFiles();
  const newest = backups[backups.length - 1];
  const lineFiles = newest
    ? archiveLine(files, histories, { ...newest, walSegmentSize: await engine.walSegmentSize() }).segments
    : files;
  const newestCommit = await withStanzaSegments(runbook, (source) =>
    newestArchivedCommit({ ...source, pgBin: runbook.cluster.pgBin, files: lineFiles }),
  );
  return pickDrillTime(runbook, { backups, archived: new Set(files), newestCommit, after });
}
