// Base backups on a runbook whose engine is pgBackRest (src/runbook/engine.ts):
// the baseBackup workflow's runBaseBackup takes them through the engine
// (pgbackrest backup --type=full|diff|incr), with pgBackRest's per-file
// progress as heartbeats and its errors mapped (src/engine/pgbackrest/errors.ts).
// Lifeboat's own engine takes full backups only (pg_basebackup); a diff or
// incr there is refused before anything starts.
import { openEngine } from '../engine';
import type { EngineBackup } from '../engine/types';
import { LifeboatError } from '../errors';
import { engineSetting } from '../runbook/engine';
import { clusterName, type Runbook } from '../runbook/schema';

export const BACKUP_TYPES = ['full', 'diff', 'incr'] as const;
export type BackupType = (typeof BACKUP_TYPES)[number];

/** What runBaseBackup returns on pgBackRest: the engine's own description of the new backup, and who made it. */
export interface EngineBackupMeta extends EngineBackup {
  engine: 'pgbackrest';
  /** "pgBackRest stanza main (repo 1)". */
  source: string;
  cluster: string;
}

/** Heartbeat details of a backup through pgBackRest: its own percent, from its per-file lines. */
export interface EngineBackupProgress {
  phase: 'pgbackrest';
  percent?: number;
  text: string;
}

/** `--type` as given on the command line or in a workflow input: full, diff or incr, and only full on Lifeboat's own engine. */
export function requireBackupType(runbook: Pick<Runbook, 'name' | 'engine'>, type: string | undefined): BackupType {
  if (type === undefined) return 'full';
  if (!(BACKUP_TYPES as readonly string[]).includes(type)) {
    throw new LifeboatError('INPUT_INVALID', `--type ${type}: expected full, diff or incr`, {
      hints: ['full copies everything; diff what changed since the last full; incr what changed since the last backup'],
    });
  }
  if (type !== 'full' && engineSetting(runbook).kind === 'lifeboat') {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--type ${type}: runbook ${runbook.name} uses Lifeboat's own engine, which takes full base backups only (pg_basebackup)`,
      {
        hints: [
          'nothing was started',
          'leave --type out (full), or point the runbook at a pgBackRest stanza (engine: { kind: pgbackrest, stanza: ... }) for diff and incr',
        ],
      },
    );
  }
  return type as BackupType;
}

/** pgbackrest backup --type=<type> on the runbook's stanza; the new backup as pgbackrest info describes it. */
export async function takeEngineBackup(
  runbook: Runbook,
  opts: { type: BackupType; onProgress?: (p: EngineBackupProgress) => void; signal?: AbortSignal },
): Promise<EngineBackupMeta> {
  const engine = await openEngine(runbook);
  if (engine.kind !== 'pgbackrest')
    throw new LifeboatError('UNEXPECTED', `runbook ${runbook.name}: takeEngineBackup on ${engine.label}`);
  const backup = await engine.takeBackup({
    type: opts.type,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress: (p) =>
      opts.onProgress?.({
        phase: 'pgbackrest',
        ...(p.percent !== undefined ? { percent: p.percent } : {}),
        text: p.text,
      }),
  });
  return { ...backup, engine: 'pgbackrest', source: engine.label, cluster: clusterName(runbook) };
}
