// Before preflight refuses a target as past the archive's end, the primary
// (when it answers) closes its current WAL segment and the archiver is given
// time to push it: a commit a minute ago is normally still only in pg_wal
// (archive_timeout may be off or long), and refusing it would be wrong.
//
// pg_switch_wal() needs EXECUTE granted to a role that is not a superuser;
// without it the check goes on with what the archive holds, and says so.
// Switching when nothing was written since the last switch is a no-op that
// returns the end of the previous segment, whose name pg_walfile_name gives.
import { Client } from 'pg';
import { errorMessage } from '../errors';
import { primaryClientConfig } from '../pg/connect';
import { keys } from '../repository/layout';
import type { Repository } from '../repository/types';
import type { Runbook } from '../runbook/schema';

export interface WalSwitch {
  /** True when the primary switched and the segment it closed is in the repository. */
  archived: boolean;
  segment?: string;
  /** One line for the preflight warnings and the refusal's hints. */
  note: string;
  waitedMs?: number;
}

export async function switchWalAndAwaitArchive(
  runbook: Runbook,
  repo: Repository,
  cluster: string,
  { timeoutMs = 60_000, pollMs = 250 }: { timeoutMs?: number; pollMs?: number } = {},
): Promise<WalSwitch> {
  const p = runbook.cluster.primary;
  const who = `${p.user}@${p.host}:${p.port}/${p.database}`;
  let segment: string;
  const client = new Client(primaryClientConfig(runbook));
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    return { archived: false, note: `the primary ${who} does not answer (${errorMessage(err).split('\n')[0]}): WAL still in its pg_wal is not in the archive` };
  }
  try {
    const { rows } = await client.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
    segment = rows[0]!.walfile;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const note =
      code === '42501'
        ? `the primary did not switch WAL: role ${p.user} may not run pg_switch_wal() (permission denied), so the archive was checked as it is; ` +
          `to let preflight archive recent WAL first, as a superuser in database ${p.database}: GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO ${p.user};`
        : `the primary did not switch WAL (${errorMessage(err).split('\n')[0]}): the archive was checked as it is`;
    return { archived: false, note };
  } finally {
    await client.end().catch(() => undefined);
  }
  const started = Date.now();
  const key = keys.wal(cluster, segment);
  for (;;) {
    if (await repo.head(key)) {
      const waitedMs = Date.now() - started;
      return { archived: true, segment, waitedMs, note: `the primary switched WAL and ${segment} was archived (after ${waitedMs} ms)` };
    }
    if (Date.now() - started >= timeoutMs) {
      return {
        archived: false,
        segment,
        note:
          `the primary switched WAL but ${segment} was not in the archive after ${Math.round(timeoutMs / 1000)} s: the archiver is behind or failing ` +
          `(lifeboat check --runbook ${runbook.name}; pg_stat_archiver on the primary), so the archive was checked as it is`,
      };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
