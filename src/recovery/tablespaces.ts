// Preflight's look at the primary's tablespaces against the chosen backup's
// (backup.json `tablespaces`, src/backup/base-backup.ts). A backup holds its
// tablespaces inside the data directory, so the copy never reaches the
// primary's; but one created after the backup is created again by replay,
// at the primary's location: on the primary's host, the primary's own
// files. A warning for the person approving the fence, never a refusal: the
// target may be before its creation, and the copy may be on another host.
import { Client } from 'pg';
import { readTablespaces } from '../backup/base-backup';
import type { BackupMeta } from '../catalog/backup-meta';
import { primaryClientConfig } from '../pg/connect';
import type { Runbook } from '../runbook/schema';

/** Warnings for the primary's tablespaces the backup does not hold; none when the primary does not answer. */
export async function tablespaceWarnings(
  runbook: Runbook,
  meta: Pick<BackupMeta, 'backupId' | 'tablespaces'>,
): Promise<string[]> {
  const client = new Client(primaryClientConfig(runbook));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const held = new Set((meta.tablespaces ?? []).map((t) => t.oid));
    return (await readTablespaces(client))
      .filter((t) => !held.has(t.oid))
      .map(
        (t) =>
          `tablespace ${t.name} (oid ${t.oid}, at ${t.location}) is on the primary but not in backup ${meta.backupId}: ` +
          `if it was created before the target, replay creates it again at ${t.location}, and on the primary's host ` +
          `the copy would use the primary's own files there. Restore on another host (an empty ${t.location} owned by ` +
          `the PostgreSQL user must exist there), or choose a target before its creation`,
      );
  } catch {
    // The primary not answering is preflight's archiver line to say.
    return [];
  } finally {
    await client.end().catch(() => undefined);
  }
}
