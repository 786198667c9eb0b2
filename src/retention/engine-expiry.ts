// Expiry on a runbook whose engine is pgBackRest (src/runbook/engine.ts):
// pgBackRest's own retention decides (repoN-retention-full, -diff, -archive
// in its configuration), through `pgbackrest expire`; the plan is its own
// `expire --dry-run`. Lifeboat never names a backup for it to remove, so
// the runbook's retention settings (retention: tiers, backup.retainFull) and
// --keep do not apply there and are refused, naming the field.
import { openEngine } from '../engine';
import { LifeboatError } from '../errors';
import { engineSetting } from '../runbook/engine';
import type { Runbook } from '../runbook/schema';

/** What pgBackRest said about expiry: planned (its dry run) or done. */
export interface EngineExpiry {
  engine: 'pgbackrest';
  /** "pgBackRest stanza main". */
  source: string;
  /** Backups it would expire (dry run) or did expire, by label, oldest first. */
  backups: { backupId: string; type: string; storedBytes: number }[];
  /** Its own lines ("[DRY-RUN] repo1: expire full backup set ...", "remove archive ..."). */
  lines: string[];
}

/** Retention through the engine's own settings: refuses what Lifeboat's own retention would have read. */
export function requireEngineRetention(runbook: Runbook, keep?: number): void {
  const e = engineSetting(runbook);
  if (e.kind !== 'pgbackrest') return;
  const fields = [
    ...(runbook.retention ? ['retention'] : []),
    ...(runbook.backup.retainFull !== undefined ? ['backup.retainFull'] : []),
  ];
  const where = e.configPath ?? '/etc/pgbackrest/pgbackrest.conf';
  if (fields.length > 0) {
    throw new LifeboatError(
      'RUNBOOK_INVALID',
      `runbook ${runbook.name} sets ${fields.join(' and ')} and engine pgbackrest (stanza ${e.stanza}): pgBackRest's own retention decides what expires, not the runbook's`,
      {
        hints: [
          'nothing was expired',
          `remove ${fields.join(' and ')} from the runbook; set repo1-retention-full (and -diff, -archive) in ${where} instead`,
        ],
      },
    );
  }
  if (keep !== undefined) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--keep ${keep}: runbook ${runbook.name} uses engine pgbackrest (stanza ${e.stanza}), whose own retention decides what expires`,
      { hints: ['nothing was expired', `leave --keep out; set repo1-retention-full in ${where} instead`] },
    );
  }
}

/** pgbackrest expire (dryRun: --dry-run) on the runbook's stanza: what it would expire, or expired. */
export async function expireThroughEngine(runbook: Runbook, opts: { dryRun: boolean }): Promise<EngineExpiry> {
  const engine = await openEngine(runbook);
  const before = await engine.listBackups();
  const done = await engine.expire({ dryRun: opts.dryRun });
  return {
    engine: 'pgbackrest',
    source: engine.label,
    backups: before
      .filter((b) => done.expired.includes(b.backupId))
      .map((b) => ({ backupId: b.backupId, type: b.type, storedBytes: b.storedBytes })),
    lines: done.lines,
  };
}
