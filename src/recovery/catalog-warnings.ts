// Preflight's look at what in the primary's catalog a restored copy cannot
// take over as it stands; warnings for the person approving the fence, never
// a refusal (the primary may not answer; the copy may be elsewhere).
//   tablespaces    one created after the chosen backup is not in it (a
//                  backup holds its tablespaces inside the data directory,
//                  src/backup/base-backup.ts), and replay creates it again
//                  at the primary's location: on the primary's host, the
//                  primary's own files
//   subscriptions  (a recovery's copy, which is promoted; a drill's never
//                  applies: src/restore/recovery-conf.ts) the copy's
//                  subscriptions resume from the publisher's slot, which
//                  production's subscriber moved past the target: what the
//                  publisher sent in between never reaches the copy, and the
//                  old primary's subscriptions keep the slots until disabled
import { Client } from 'pg';
import { readTablespaces, type Tablespace } from '../backup/base-backup';
import type { HealthProblem } from '../catalog/chain';
import type { BackupMeta } from '../catalog/backup-meta';
import { primaryClientConfig } from '../pg/connect';
import type { Runbook } from '../runbook/schema';
import type { RestoreInstanceKind } from './activity-io';

/** The primary's tablespaces outside its data directory that backup `meta` does not hold. */
async function tablespacesNotIn(
  client: Client,
  meta: Pick<BackupMeta, 'tablespaces'> | undefined,
): Promise<Tablespace[]> {
  const held = new Set((meta?.tablespaces ?? []).map((t) => t.oid));
  return (await readTablespaces(client)).filter((t) => !held.has(t.oid));
}

/**
 * `lifeboat check`'s finding: tablespaces on the primary that the newest
 * verified backup does not hold, with the backup to take; none when the
 * primary does not answer (check says so on its own).
 */
export async function tablespaceProblems(
  runbook: Runbook,
  newest: Pick<BackupMeta, 'backupId' | 'tablespaces'> | undefined,
): Promise<HealthProblem[]> {
  if (!newest) return [];
  const client = new Client(primaryClientConfig(runbook));
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await tablespacesNotIn(client, newest)).map((t) => ({
      kind: 'tablespace-not-in-backup',
      message: `tablespace ${t.name} (oid ${t.oid}, at ${t.location}) is on the primary but not in the newest backup ${newest.backupId}`,
      hints: [
        `take a backup, which holds it: lifeboat backup --runbook ${runbook.name}`,
        `until then a restore replays its creation at ${t.location}: on the primary's host, the primary's own files (preflight warns of it)`,
      ],
    }));
  } catch {
    return [];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The warnings; none when the primary does not answer (preflight's archiver line says so). */
export async function catalogWarnings(
  runbook: Runbook,
  meta: Pick<BackupMeta, 'backupId' | 'tablespaces'>,
  instance: RestoreInstanceKind,
): Promise<string[]> {
  const client = new Client(primaryClientConfig(runbook));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const warnings = (await tablespacesNotIn(client, meta)).map(
      (t) =>
        `tablespace ${t.name} (oid ${t.oid}, at ${t.location}) is on the primary but not in backup ${meta.backupId}: ` +
        `if it was created before the target, replay creates it again at ${t.location}, and on the primary's host ` +
        `the copy would use the primary's own files there. Restore on another host (an empty ${t.location} owned by ` +
        `the PostgreSQL user must exist there), or choose a target before its creation`,
    );
    if (instance === 'restore') {
      // Every column but subconninfo is readable by any role.
      const { rows } = await client.query<{ name: string }>(
        `select subname as name from pg_subscription where subdbid = (select oid from pg_database where datname = current_database()) order by subname`,
      );
      if (rows.length > 0) {
        const names = rows.map((r) => r.name).join(', ');
        warnings.push(
          `the cluster subscribes to publications (subscription${rows.length === 1 ? '' : 's'} ${names} in database ${runbook.cluster.primary.database}): ` +
            `once promoted, the copy's subscriptions resume from each publisher's slot, which production's subscriber has moved past the target, ` +
            `so what the publishers sent between the target and now never reaches the copy (resynchronise those tables), and the old primary's ` +
            `subscriptions hold the same slots until they are disabled (ALTER SUBSCRIPTION ... DISABLE on the old primary)`,
        );
      }
    }
    return warnings;
  } catch {
    return [];
  } finally {
    await client.end().catch(() => undefined);
  }
}
