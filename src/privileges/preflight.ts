// Preflight's privilege check (issue 11), for recoveries and drills, before
// anything is touched: the role's grants on the primary when it answers, and
// in the chosen backup's catalog, which is what the restored copy will run
// with. A missing piece ends the run with PRIVILEGE_MISSING naming each one
// with its fix; a primary that does not answer is a warning, never a refusal
// (it may be the thing that died).
import { Client } from 'pg';
import type { BackupMeta } from '../catalog/backup-meta';
import { LifeboatError, errorMessage } from '../errors';
import { isUnreachable } from '../gates/sql';
import { primaryClientConfig } from '../pg/connect';
import type { RestoreInstanceKind } from '../recovery/contract';
import type { Runbook } from '../runbook/schema';
import { describeMissing, inspectPrivileges, missingFor, type MissingPrivilege } from './check';
import { grantCommand } from './grants';
import { copyUses, judgeBackup } from './record';

export interface RunPrivileges {
  /** Whether the primary answered and was checked. */
  primaryChecked: boolean;
  warnings: string[];
}

const NOTHING_TOUCHED = 'nothing was touched: no gate, no traffic, no data directory';

export async function checkRunPrivileges(opts: {
  runbook: Runbook;
  backup: BackupMeta;
  backups: readonly BackupMeta[];
  instance?: RestoreInstanceKind;
}): Promise<RunPrivileges> {
  const { runbook, backup } = opts;
  const kind = opts.instance === 'drill' ? 'drill' : 'recovery';
  const run = kind === 'drill' ? 'this drill' : 'this recovery';
  const p = runbook.cluster.primary;
  const warnings: string[] = [];

  let onPrimary: MissingPrivilege[] = [];
  let primaryChecked = false;
  const client = new Client(primaryClientConfig(runbook, { application_name: 'lifeboat-preflight' }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const report = await inspectPrivileges(client, runbook);
    primaryChecked = true;
    // A drill asks for what a recovery needs on the primary too: found on a Tuesday, not during the incident.
    onPrimary = missingFor(report.missing, ['recovery-primary']);
    // A superuser (the demo's sandbox) lacks nothing; doctor says least privilege is not in force, a run need not.
    if (!report.superuser) for (const n of report.notes) warnings.push(`privileges: ${n}`);
  } catch (err) {
    const why = errorMessage(err).split('\n')[0];
    warnings.push(
      isUnreachable(err)
        ? `the primary ${p.host}:${p.port} does not answer (${why}): ${p.user}'s privileges there were not checked`
        : `${p.user}'s privileges on the primary ${p.host}:${p.port} could not be checked: ${why}`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }

  const judged = judgeBackup(backup, runbook, copyUses(kind));
  if (judged.verdict === 'unrecorded') {
    warnings.push(
      `${judged.summary}; after granting (lifeboat grants --runbook ${runbook.name}), a new backup records them (lifeboat backup --runbook ${runbook.name})`,
    );
  } else if (judged.unchecked.length > 0) {
    warnings.push(judged.summary);
  }
  if (onPrimary.length === 0 && judged.verdict !== 'lacking') return { primaryChecked, warnings };

  const parts: string[] = [];
  if (onPrimary.length > 0)
    parts.push(`on the primary ${p.host}:${p.port}: ${onPrimary.map((m) => m.what).join('; ')}`);
  if (judged.verdict === 'lacking') {
    parts.push(
      `in the catalog of backup ${backup.backupId}, which the restored copy will have (it lacked them when the backup was taken): ${judged.missing.map((m) => m.what).join('; ')}`,
    );
  }
  const count = onPrimary.length + judged.missing.length;
  const hints: string[] = [
    ...onPrimary.map((m) => `on the primary: ${describeMissing(m)}`),
    ...judged.missing.map(
      (m) => `for backup ${backup.backupId}'s copy, granted on the primary before a new backup: ${describeMissing(m)}`,
    ),
    `every grant at once (safe to repeat): ${grantCommand(runbook)}; then lifeboat doctor --runbook ${runbook.name}`,
  ];
  if (judged.verdict === 'lacking') hints.push(...backupHints(runbook, backup, opts.backups, kind));
  hints.push(NOTHING_TOUCHED);
  throw new LifeboatError(
    'PRIVILEGE_MISSING',
    `role ${p.user} lacks ${count} privilege${count === 1 ? '' : 's'} ${run} needs: ${parts.join('; ')}`,
    {
      hints,
      details: {
        primary: onPrimary.map((m) => m.key),
        backup: judged.missing.map((m) => m.key),
        backupId: backup.backupId,
      },
    },
  );
}

/** What to do about a backup whose catalog lacks a piece: a newer backup that has them, or take one. */
function backupHints(
  runbook: Runbook,
  backup: BackupMeta,
  backups: readonly BackupMeta[],
  kind: 'recovery' | 'drill',
): string[] {
  const later = backups
    .filter((b) => b.backupId > backup.backupId && judgeBackup(b, runbook, copyUses(kind)).verdict === 'complete')
    .sort((a, b) => (a.backupId < b.backupId ? -1 : 1));
  const grantFirst = `after granting, take a backup whose catalog has them: lifeboat backup --runbook ${runbook.name}`;
  if (later.length > 0) {
    const b = later[0]!;
    return [
      `backup ${b.backupId} (finished ${b.endTime}) has every piece: a target after that is restored from it (preflight chooses it, or --backup ${b.backupId}); a target before it can only come from an older backup`,
      `for a target before ${b.endTime}: run the recovery with a role that has them in that old catalog (a superuser as the runbook's cluster.primary.user)`,
    ];
  }
  return [
    grantFirst,
    `no backup of this cluster has them yet; a target before the next backup can only be restored by a role that has them in the old catalog (a superuser as the runbook's cluster.primary.user for this run)`,
  ];
}
