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
import { readTablespaces } from '../backup/base-backup';
import type { BackupMeta } from '../catalog/backup-meta';
import { primaryClientConfig } from '../pg/connect';
import type { Runbook } from '../runbook/schema';
import type { RestoreInstanceKind } from './activity-io';

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
    const held = new Set((meta.tablespaces ?? []).map((t) => t.oid));
    const warnings = (await readTablespaces(client))
      .filter((t) => !held.has(t.oid))
      .map(
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
