// Backup engines: what holds a cluster's base backups and WAL archive, behind
// one small interface (./types.ts).
//   types.ts              BackupEngine: list, choose, archive range and gaps,
//                         backup, restore (to a target, paused), check, expire
//   lifeboat.ts           Lifeboat's own repository (archive-push, baseBackup)
//   archive-report.ts     the archive report both give, from src/catalog/chain.ts
//   pgbackrest/engine.ts  an existing pgBackRest stanza, through its commands
//   pgbackrest/archive.ts its WAL archive (repo-ls, repo-get) and its gaps
//   pgbackrest/info.ts    its info and repo-ls JSON; errors.ts: its error codes
//   pgbackrest/output.ts  its text output: verify's findings, expire's lines
//   pgbackrest/command.ts running it as the PostgreSQL OS user; restore's target options
// The runbook chooses (engine:, src/runbook/engine.ts); Lifeboat's own is the
// default. README "Using pgBackRest as the backup engine" says what the
// workflows use the engine for today.
import { openRepository } from '../repository';
import type { StorageRole } from '../repository/roles';
import type { Repository } from '../repository/types';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import { LifeboatEngine } from './lifeboat';
import { PgBackRestEngine } from './pgbackrest/engine';
import type { BackupEngine } from './types';

export type { BackupEngine, EngineBackup, ArchiveReport, EngineKind } from './types';
export { LifeboatEngine } from './lifeboat';
export { PgBackRestEngine } from './pgbackrest/engine';

/**
 * The runbook's engine. Lifeboat's own reads the runbook's (first)
 * repository: `repo` when the caller has it open, else opened here for `role`.
 */
export async function openEngine(
  runbook: Runbook,
  opts: { repo?: Repository; role?: StorageRole } = {},
): Promise<BackupEngine> {
  const setting = engineSetting(runbook);
  if (setting.kind === 'pgbackrest') return new PgBackRestEngine(setting, { osUser: runbook.cluster.osUser });
  const repo =
    opts.repo ??
    (await openRepository(runbook.repository.url, {
      ...runbook.repository,
      ...(opts.role ? { role: opts.role } : {}),
    }));
  return new LifeboatEngine(runbook, repo);
}
