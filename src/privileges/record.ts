// The privileges a base backup carries. A restored copy starts with the
// catalog its backup copied: what the role may do in it was fixed when the
// backup was taken. takeBaseBackup records the check's result in backup.json
// (recordPrivileges); preflight and doctor judge a backup by that record
// (judgeBackup), since the copy itself does not exist yet when it matters.
import { Client } from 'pg';
import type { BackupMeta, BackupPrivileges } from '../catalog/backup-meta';
import { errorMessage } from '../errors';
import { primaryClientConfig } from '../pg/connect';
import type { Runbook } from '../runbook/schema';
import { inspectPrivileges, type MissingPrivilege } from './check';
import { needsOf, roleOf, type Use } from './needs';

/** Checks the role's privileges on the primary, as the role; a check that cannot run is recorded as such, never fails the backup. */
export async function recordPrivileges(runbook: Runbook): Promise<BackupPrivileges> {
  const p = runbook.cluster.primary;
  const client = new Client(primaryClientConfig(runbook, { application_name: 'lifeboat-privileges' }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await inspectPrivileges(client, runbook);
    return {
      checkedAt: r.checkedAt,
      role: r.role,
      database: r.database,
      superuser: r.superuser,
      checked: r.checked,
      missing: r.missing,
    };
  } catch (err) {
    return {
      checkedAt: new Date().toISOString(),
      role: p.user,
      database: p.database,
      superuser: false,
      checked: [],
      missing: [],
      error: errorMessage(err).split('\n')[0]!,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The uses whose needs must hold in a copy restored for this run. */
export function copyUses(kind: 'recovery' | 'drill'): Use[] {
  // A drill also asks for what a recovery would need in its copy: a missing
  // grant is found on a Tuesday, not during the incident.
  return kind === 'drill' ? ['recovery-copy', 'drill-copy'] : ['recovery-copy'];
}

export interface BackupJudgement {
  verdict: 'complete' | 'lacking' | 'unrecorded';
  /** Pieces the copy needs that the role lacked at backup time. */
  missing: MissingPrivilege[];
  /** Needs of today's runbook the record does not cover (added to the runbook after the backup). */
  unchecked: string[];
  /** One line for an operator, without the backup's id. */
  detail: string;
  /** The same line, starting with "backup <id>: ". */
  summary: string;
}

export function judgeBackup(
  meta: Pick<BackupMeta, 'backupId' | 'privileges'>,
  runbook: Runbook,
  uses: readonly Use[],
): BackupJudgement {
  const judged = (j: Omit<BackupJudgement, 'summary'>): BackupJudgement => ({
    ...j,
    summary: `backup ${meta.backupId}: ${j.detail}`,
  });
  const rec = meta.privileges;
  if (!rec || rec.error !== undefined) {
    return judged({
      verdict: 'unrecorded',
      missing: [],
      unchecked: [],
      detail: rec
        ? `the role's privileges could not be checked when it was taken (${rec.error}), so it is not known whether a copy restored from it grants ${rec.role} what Lifeboat needs there`
        : "no record of the role's privileges (taken before Lifeboat recorded them): a copy restored from it may lack a grant made since",
    });
  }
  const { role, database } = roleOf(runbook);
  if (rec.role !== role || rec.database !== database) {
    // Another role's grants say nothing about this one's (two runbooks of one cluster, or a runbook whose role changed).
    return judged({
      verdict: 'unrecorded',
      missing: [],
      unchecked: [],
      detail: `its record is of role ${rec.role} in database ${rec.database}, not of ${role} in ${database}: it is not known whether a copy restored from it grants ${role} what Lifeboat needs there`,
    });
  }
  if (rec.superuser)
    return judged({
      verdict: 'complete',
      missing: [],
      unchecked: [],
      detail: `${rec.role} was a superuser when it was taken`,
    });
  const needed = needsOf(runbook).filter((n) => !n.optional && n.uses.some((u) => uses.includes(u)));
  const lacking = new Map(rec.missing.map((m) => [m.key, m]));
  const missing: MissingPrivilege[] = [];
  const unchecked: string[] = [];
  for (const n of needed) {
    const m = lacking.get(n.key);
    if (m) missing.push({ ...m, uses: m.uses as Use[] });
    else if (!rec.checked.includes(n.key)) unchecked.push(n.what);
  }
  if (missing.length > 0) {
    return judged({
      verdict: 'lacking',
      missing,
      unchecked,
      detail: `taken when ${rec.role} lacked ${missing.length} piece${missing.length === 1 ? '' : 's'} a restored copy needs: ${missing.map((m) => m.what).join('; ')}`,
    });
  }
  return judged({
    verdict: 'complete',
    missing,
    unchecked,
    detail:
      `${rec.role} had every piece a restored copy needs` +
      (unchecked.length > 0
        ? `, except ones not checked then (added to the runbook since): ${unchecked.join('; ')}`
        : ''),
  });
}
