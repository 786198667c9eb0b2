// The restored instance after replay: promote it (step 11, first half), or
// stop it and keep its directory (the end of a dry run).
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import type { Runbook } from '../runbook/schema';
import { readMarker, requireOurMarker, updateMarker } from './marker';
import { runAsOsUser } from './os-user';
import { PREFETCH_SPOOL, stopPrefetcher } from './prefetch';
import { lastLines, postmasterRunning, stopPostmaster } from './postmaster';
import { postmasterSecrets, removeCredentialsFile, writeCredentialsFile } from './secret-file';
import { restoreSite, siteClientConfig, siteLabel } from './site';
import type { RestoreInstanceKind } from '../recovery/contract';

export interface Promoted {
  promotedAt: string;
  timeline: number;
  lsn: string;
}

/** How long to wait for the end of recovery after pg_ctl promote. */
const PROMOTE_WAIT_MS = 60_000;
/** How often pg_is_in_recovery() is asked meanwhile (pg_ctl promote -w reads the control file every 100 ms). */
const PROMOTE_POLL_MS = 20;

/**
 * Promotes the paused copy with `pg_ctl promote -w` as the OS user, not with
 * SQL: pg_promote() needs an EXECUTE grant, and the paused copy is read-only
 * with the backup's catalog, so a role lacking it there can never be granted
 * it (issue 11). pg_ctl writes the promote signal file and signals the
 * postmaster, the same mechanism pg_promote uses, and it ends a paused
 * recovery too. A repeated call reports the promotion that already happened
 * (pg_is_in_recovery() false) instead of promoting again.
 *
 * Paused, the startup process notices the promote signal only when its wait
 * for a resume times out, once a second (recoveryPausesHere() in PG15's
 * xlogrecovery.c sleeps on a condition variable the signal does not wake):
 * promotion took up to 1 s for nothing (issue 13). pg_wal_replay_resume()
 * broadcasts on that condition variable, so it is called right after the
 * signal when the role may: at a target's end-of-recovery pause a resume
 * promotes anyway (recovery_target_action 'pause' falls through to
 * promote), and at a pause replay-wal asked for (latest) the signal ends the
 * pause the same way, so the resume changes when, not what. A role without
 * the grant waits the second, as before. Then pg_is_in_recovery() is polled
 * every 20 ms, not pg_ctl -w's 100 ms.
 */
export async function promoteRestored(
  runbook: Runbook,
  input: { workflowId: string; instance?: RestoreInstanceKind },
): Promise<Promoted> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  let marker = await requireOurMarker(pg.dataDir, input.workflowId, 'promote');
  // The promoted copy archives as the archive identity: a variable of it
  // missing on this worker is refused now, before anything is promoted.
  if (site.instance === 'restore') postmasterSecrets(runbook, 'archive');
  if (!(await postmasterRunning(pg))) {
    throw new LifeboatError(
      'PG_UNREACHABLE',
      `promote: PostgreSQL is not running in ${pg.dataDir} (restore state ${marker.state})`,
      {
        hints: [
          marker.logFile ? `its server log is ${marker.logFile}` : 'replay-wal never started it',
          'nothing was promoted; retry replay-wal (it starts the copy again and waits for the pause), then promote',
        ],
      },
    );
  }
  const client = new Client(
    siteClientConfig(runbook, site, { application_name: 'lifeboat-promote', query_timeout: 30_000 }),
  );
  client.on('error', () => undefined);
  const where = `${site.address}:${site.port} (${pg.dataDir})`;
  try {
    await client.connect();
    const inRecovery = async () => (await client.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r;
    if (await inRecovery()) {
      // -W: signal and return; the wait is below.
      const r = await runAsOsUser(pg.osUser, `${pg.pgBin}/pg_ctl`, ['promote', '-W', '-D', pg.dataDir]);
      if (r.code === 0) {
        // Refused without the grant (42501), or after the startup process has
        // noticed the promotion ("standby promotion is ongoing"): either way
        // the promotion goes on without it.
        await client.query('select pg_wal_replay_resume()').catch(() => undefined);
        await promotionEnds(inRecovery, PROMOTE_WAIT_MS);
      }
      // A non-zero exit with recovery over is a promotion that happened anyway
      // (a dead attempt's); a zero exit still in recovery after the wait is
      // a promotion that never came.
      if (await inRecovery()) {
        const said = lastLines(r.stderr || r.stdout, 4);
        const how =
          r.code === 0
            ? `signalled the promotion, and the copy was still in recovery ${PROMOTE_WAIT_MS / 1000} s later`
            : `exited ${r.code} and the copy is still in recovery`;
        throw new LifeboatError(
          'TOOL_FAILED',
          `promote: pg_ctl promote -D ${pg.dataDir} (as ${pg.osUser}) ${how}${said.length > 0 ? `:\n  ${said.join('\n  ')}` : ''}`,
          {
            hints: [
              `read its server log${marker.logFile ? ` (${marker.logFile})` : ''}`,
              'a retry checks pg_is_in_recovery() first and does not promote twice',
            ],
          },
        );
      }
    }
    // pg_current_wal_lsn() and pg_walfile_name() are PUBLIC's: no grant needed on the promoted copy.
    const { rows } = await client.query<{ lsn: string; wal: string }>(
      'select pg_current_wal_lsn()::text as lsn, pg_walfile_name(pg_current_wal_lsn()) as wal',
    );
    const promotedAt = marker.promotedAt ?? new Date().toISOString();
    await stopPrefetcher(pg.dataDir);
    await rm(path.join(pg.dataDir, PREFETCH_SPOOL), { recursive: true, force: true });
    // restore_command is done: the restore identity's keys go. A recovery's copy
    // is now the primary and its archive_command (the old primary's) must go on
    // archiving: it gets the archive identity, which can write but not delete.
    // A drill's or a repair's copy never archives (archive_mode = off): no keys.
    if (site.instance === 'restore') await writeCredentialsFile(runbook, pg, 'archive');
    else await removeCredentialsFile(pg.dataDir);
    marker = await updateMarker(pg.dataDir, marker, { state: 'promoted', promotedAt }, pg.osUser);
    return { promotedAt, timeline: parseInt(rows[0]!.wal.slice(0, 8), 16), lsn: rows[0]!.lsn };
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError('PG_UNREACHABLE', `promote: cannot talk to PostgreSQL at ${where}: ${errorMessage(err)}`, {
      hints: ['a retry checks whether it was promoted and does not promote twice'],
      cause: err,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls until recovery is over, or `ms` have passed (the caller looks once more and decides). */
async function promotionEnds(inRecovery: () => Promise<boolean>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until && (await inRecovery())) await sleep(PROMOTE_POLL_MS);
}

/** Stops the restored postmaster (fast) and keeps the directory; only this workflow's copy. */
export async function stopRestored(
  runbook: Runbook,
  input: { workflowId: string; instance?: RestoreInstanceKind },
): Promise<{ stopped: boolean; dataDir: string }> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  // Nothing there (moved away by hand, or never restored): nothing to stop.
  if (!(await readMarker(pg.dataDir)) && !(await postmasterRunning(pg))) return { stopped: false, dataDir: pg.dataDir };
  await requireOurMarker(pg.dataDir, input.workflowId, 'stop');
  const stopped = await stopPostmaster(pg, `stopping ${siteLabel(site)}, keeping its directory`);
  // Nothing will ask for WAL any more: its prefetcher need not wait 30 s idle to notice.
  await stopPrefetcher(pg.dataDir);
  // Nor read the repository: its keys go (a replay-wal that starts it again writes them again).
  await removeCredentialsFile(pg.dataDir);
  return { stopped, dataDir: pg.dataDir };
}
