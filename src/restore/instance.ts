// The restored instance after replay: promote it (step 11, first half), or
// stop it and keep its directory (the end of a dry run).
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import type { Runbook } from '../runbook/schema';
import { readMarker, requireOurMarker, updateMarker } from './marker';
import { postmasterRunning, stopPostmaster } from './postmaster';
import { restoreSite, siteClientConfig, siteLabel } from './site';
import type { RestoreInstanceKind } from '../recovery/contract';

/** archive-get's prefetch spool (src/wal/get.ts): ours, and useless once recovery is over. */
export const PREFETCH_SPOOL = path.join('pg_wal', '.lifeboat-prefetch');

export interface Promoted {
  promotedAt: string;
  timeline: number;
  lsn: string;
}

/** pg_promote on the paused copy; a repeated call reports the promotion that already happened. */
export async function promoteRestored(runbook: Runbook, input: { workflowId: string; instance?: RestoreInstanceKind }): Promise<Promoted> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  let marker = await requireOurMarker(pg.dataDir, input.workflowId, 'promote');
  if (!(await postmasterRunning(pg))) {
    throw new LifeboatError('PG_UNREACHABLE', `promote: PostgreSQL is not running in ${pg.dataDir} (restore state ${marker.state})`, {
      hints: [
        marker.logFile ? `its server log is ${marker.logFile}` : 'replay-wal never started it',
        'nothing was promoted; retry replay-wal (it starts the copy again and waits for the pause), then promote',
      ],
    });
  }
  const client = new Client(siteClientConfig(runbook, site, { application_name: 'lifeboat-promote', query_timeout: 90_000 }));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const inRecovery = async () => (await client.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r;
    if (await inRecovery()) {
      // wait => true: returns once promotion finished, or false after 60 s.
      const { rows } = await client.query<{ ok: boolean }>('select pg_promote(true, 60) as ok');
      if (!rows[0]?.ok || (await inRecovery())) {
        throw new LifeboatError('PG_UNREACHABLE', `promote: PostgreSQL in ${pg.dataDir} did not finish promoting within 60 s`, {
          hints: [`read its server log${marker.logFile ? ` (${marker.logFile})` : ''}; a retry checks again and does not promote twice`],
        });
      }
    }
    const { rows } = await client.query<{ lsn: string; wal: string }>(
      'select pg_current_wal_lsn()::text as lsn, pg_walfile_name(pg_current_wal_lsn()) as wal',
    );
    const promotedAt = marker.promotedAt ?? new Date().toISOString();
    await rm(path.join(pg.dataDir, PREFETCH_SPOOL), { recursive: true, force: true });
    marker = await updateMarker(pg.dataDir, marker, { state: 'promoted', promotedAt }, pg.osUser);
    return { promotedAt, timeline: parseInt(rows[0]!.wal.slice(0, 8), 16), lsn: rows[0]!.lsn };
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError('PG_UNREACHABLE', `promote: cannot talk to PostgreSQL at ${site.address}:${site.port} (${pg.dataDir}): ${errorMessage(err)}`, {
      hints: ['a retry checks whether it was promoted and does not promote twice'],
      cause: err,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Stops the restored postmaster (fast) and keeps the directory; only this workflow's copy. */
export async function stopRestored(runbook: Runbook, input: { workflowId: string; instance?: RestoreInstanceKind }): Promise<{ stopped: boolean; dataDir: string }> {
  const site = restoreSite(runbook, input.instance);
  const pg = site.pg;
  // Nothing there (moved away by hand, or never restored): nothing to stop.
  if (!(await readMarker(pg.dataDir)) && !(await postmasterRunning(pg))) return { stopped: false, dataDir: pg.dataDir };
  await requireOurMarker(pg.dataDir, input.workflowId, 'stop');
  const stopped = await stopPostmaster(pg, `stopping ${siteLabel(site)}, keeping its directory`);
  return { stopped, dataDir: pg.dataDir };
}
