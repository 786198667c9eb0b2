// pick-target of a restore drill on a runbook whose backups another engine
// holds (engine: pgbackrest, src/engine/): the same window and draw as on
// Lifeboat's own repository (./target.ts), from the engine's own commands:
//   backups          pgbackrest info (engine.listBackups)
//   archived files   repo-ls and repo-get of history files (engine.walFiles)
//   newest commit    the newest segments of the newest backup's line of
//                    timelines, fetched one at a time with pgbackrest
//                    archive-get (decompressed, decrypted) into a temporary
//                    directory, read with pg_waldump (./newest-commit.ts)
// Nothing of pgBackRest's repository is read as files.
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { PgBackRestEngine, openEngine } from '../engine';
import { runPgBackRest } from '../engine/pgbackrest/command';
import { archiveLine } from '../recovery/reach';
import { chownToUser } from '../restore/os-user';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import type { DrillTarget } from './contract';
import { newestArchivedCommit } from './newest-commit';
import { pickDrillTime } from './target';

/** WAL segment size pgBackRest's info does not give: PostgreSQL's default. */
const WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

export async function pickDrillTargetOnEngine(runbook: Runbook, after?: string): Promise<DrillTarget> {
  const setting = engineSetting(runbook);
  const engine = await openEngine(runbook);
  if (setting.kind !== 'pgbackrest' || !(engine instanceof PgBackRestEngine))
    throw new Error(`pick-target on engine ${engine.kind}: use Lifeboat's own repository`);
  const backups = [...(await engine.listBackups())].sort((a, b) => (a.endTime < b.endTime ? -1 : 1));
  const { files, histories } = await engine.walFiles();
  const newest = backups[backups.length - 1];
  const lineFiles = newest
    ? archiveLine(files, histories, { ...newest, walSegmentSize: WAL_SEGMENT_SIZE }).segments
    : files;
  const target = {
    stanza: setting.stanza,
    osUser: runbook.cluster.osUser,
    ...(setting.configPath ? { configPath: setting.configPath } : {}),
    ...(setting.repo !== undefined ? { repo: setting.repo } : {}),
  };
  // archive-get runs as the PostgreSQL OS user: it writes into a directory of its own.
  const own = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-drill-archive-get-'));
  let newestCommit: Awaited<ReturnType<typeof newestArchivedCommit>>;
  try {
    await chownToUser(own, runbook.cluster.osUser);
    newestCommit = await newestArchivedCommit({
      pgBin: runbook.cluster.pgBin,
      files: lineFiles,
      // A segment archive-get does not have (it exits 1) is skipped.
      fetchSegment: async (segment) => {
        const file = path.join(own, segment);
        try {
          await runPgBackRest(target, 'archive-get', [segment, file]);
          return file;
        } catch {
          return undefined;
        }
      },
    });
  } finally {
    await rm(own, { recursive: true, force: true });
  }
  return pickDrillTime(runbook, { backups, archived: new Set(files), newestCommit, after });
}
