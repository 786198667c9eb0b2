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
import { LifeboatError, errorMessage } from '../errors';
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

/** Whether the archive holds a segment: a HEAD in Lifeboat's repository, or an engine's listing. */
export type ArchivedCheck = (segment: string) => Promise<boolean>;

/** The check for Lifeboat's own repository. */
export function inRepository(repo: Repository, cluster: string): ArchivedCheck {
  return async (segment) => (await repo.head(keys.wal(cluster, segment))) !== undefined;
}

export async function switchWalAndAwaitArchive(
  runbook: Runbook,
  isArchived: ArchivedCheck,
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
    return {
      archived: false,
      note: `the primary ${who} does not answer (${errorMessage(err).split('\n')[0]}): WAL still in its pg_wal is not in the archive`,
    };
  }
  let before: ArchiverState | undefined;
  try {
    before = await archiverState(client);
    const { rows } = await client.query<{ walfile: string }>('select pg_walfile_name(pg_switch_wal()) as walfile');
    segment = rows[0]!.walfile;
  } catch (err) {
    await client.end().catch(() => undefined);
    const code = (err as { code?: string }).code;
    const note =
      code === '42501'
        ? `the primary did not switch WAL: role ${p.user} may not run pg_switch_wal() (permission denied), so the archive was checked as it is; ` +
          `to let preflight archive recent WAL first, as a superuser in database ${p.database}: GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO ${p.user};`
        : `the primary did not switch WAL (${errorMessage(err).split('\n')[0]}): the archive was checked as it is`;
    return { archived: false, note };
  }
  const started = Date.now();
  try {
    for (;;) {
      if (await isArchived(segment)) {
        const waitedMs = Date.now() - started;
        return {
          archived: true,
          segment,
          waitedMs,
          note: `the primary switched WAL and ${segment} was archived (after ${waitedMs} ms)`,
        };
      }
      const failing = await archiverFailing(client, segment, before, Date.now() - started);
      if (failing) {
        return {
          archived: false,
          segment,
          note:
            `the primary switched WAL but its archiver is failing (${failing}), so ${segment} was not waited for and the archive was checked as it is ` +
            `(the reason is in the primary's server log; lifeboat check --runbook ${runbook.name})`,
        };
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
  } finally {
    await client.end().catch(() => undefined);
  }
}

interface ArchiverState {
  failed: number;
  lastFailedWal: string | null;
  lastFailedAt: Date | null;
  lastArchivedAt: Date | null;
}

/** pg_stat_archiver, which every role may read; undefined when it cannot be read. */
async function archiverState(client: Client): Promise<ArchiverState | undefined> {
  try {
    const { rows } = await client.query<{ n: string; wal: string | null; failed: Date | null; archived: Date | null }>(
      'select failed_count::text as n, last_failed_wal as wal, last_failed_time as failed, last_archived_time as archived from pg_stat_archiver',
    );
    const r = rows[0];
    return r
      ? { failed: Number(r.n), lastFailedWal: r.wal, lastFailedAt: r.failed, lastArchivedAt: r.archived }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Grace for an archiver that was failing before the switch: a transient failure is followed by a success within it. */
const FAILING_GRACE_MS = 3_000;

/**
 * Why waiting for `segment` is pointless, or undefined. PostgreSQL's
 * archiver archives in order and tries a file three times, a second apart,
 * then sleeps a minute: three failures since the switch of this segment or
 * one before it, or an archiver that was failing before the switch and has
 * archived nothing for a few seconds since, will not get `segment` archived
 * within the wait (an old primary refused with TIMELINE_SUPERSEDED, a full
 * or unreachable repository, bad credentials).
 */
async function archiverFailing(
  client: Client,
  segment: string,
  before: ArchiverState | undefined,
  waitedMs: number,
): Promise<string | undefined> {
  if (!before) return undefined;
  const now = await archiverState(client);
  if (!now?.lastFailedWal || !now.lastFailedAt) return undefined;
  const progressed = (now.lastArchivedAt?.getTime() ?? 0) > (before.lastArchivedAt?.getTime() ?? 0);
  if (progressed || (now.lastArchivedAt && now.lastArchivedAt >= now.lastFailedAt)) return undefined;
  if (now.lastFailedWal.slice(0, 24) > segment) return undefined;
  const since = now.failed - before.failed;
  const what = `${now.lastFailedWal} failed ${since > 0 ? `${since} times since the switch, ` : ''}last at ${now.lastFailedAt.toISOString()}`;
  if (since >= 3) return what;
  const failingBefore =
    before.lastFailedAt !== null && (before.lastArchivedAt === null || before.lastFailedAt > before.lastArchivedAt);
  return failingBefore && waitedMs >= FAILING_GRACE_MS ? `${what}; failing since before the switch` : undefined;
}

/** A reach refusal that stands after the switch: the switch's note goes before its last hint (nothing was touched). */
export function refusalAfterSwitch(r: LifeboatError, note: string): LifeboatError {
  return new LifeboatError(r.code, r.what, {
    hints: [...r.hints.slice(0, -1), note, ...r.hints.slice(-1)],
    details: r.details,
  });
}
