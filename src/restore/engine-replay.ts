// replay-wal's two reads that depend on the runbook's engine (src/engine/):
// the restore_command the restored copy runs, and the archive's WAL files
// and history files, from which replay.ts finds the end of the archive (a
// latest target) and replay-failure.ts tells a damaged segment from the end.
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { readWalArchive } from '../catalog/catalog';
import { openEngine, PgBackRestEngine } from '../engine';
import { LifeboatError } from '../errors';
import { openRepository } from '../repository';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';
import { BLOCK_BEGIN, BLOCK_END } from './recovery-conf';

export type WalReader = () => Promise<{ files: string[]; histories: Record<string, string> }>;

/** Where replay's end of the archive is read: Lifeboat's repository, or the engine's own listing (pgBackRest: repo-ls and repo-get). */
export async function walReader(runbook: Runbook, cluster: string): Promise<WalReader> {
  if (engineSetting(runbook).kind === 'lifeboat') {
    const repo = await openRepository(runbook.repository.url, { ...runbook.repository, role: 'restore' });
    return async () => {
      const { files, histories } = await readWalArchive(repo, cluster);
      return { files: files.map((f) => f.name), histories };
    };
  }
  const engine = await openEngine(runbook);
  if (!(engine instanceof PgBackRestEngine)) throw new Error(`no WAL listing for engine ${engine.kind}`);
  return () => engine.walFiles();
}

/**
 * The restore_command the engine wrote with its restore (pgBackRest: `pgbackrest
 * ... archive-get %f "%p"` in postgresql.auto.conf), outside Lifeboat's block:
 * replay-wal's block repeats it, so a second replay-wal finds it again.
 */
export async function engineRestoreCommand(dataDir: string): Promise<string> {
  const text = await readFile(path.join(dataDir, 'postgresql.auto.conf'), 'utf8').catch(() => '');
  let inBlock = false;
  for (const line of text.split('\n')) {
    if (line.trim() === BLOCK_BEGIN) inBlock = true;
    else if (line.trim() === BLOCK_END) inBlock = false;
    else if (!inBlock) {
      const m = /^\s*restore_command\s*=\s*'((?:[^']|'')*)'\s*$/.exec(line);
      if (m) return m[1]!.replace(/''/g, "'");
    }
  }
  throw new LifeboatError(
    'BACKUP_NOT_FOUND',
    `replay-wal: ${dataDir}/postgresql.auto.conf has no restore_command written by the engine's restore`,
    {
      hints: ['pgbackrest restore writes one; was the file edited by hand? retry restore-base-backup to restore again'],
    },
  );
}
