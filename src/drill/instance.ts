// The drill copy after promotion: prove it takes a write, then take it down.
// Both act only on the copy whose marker names this drill's workflow; what
// is in drill.dataDir otherwise is someone's data and is left alone.
import { existsSync } from 'node:fs';
import { readdir, rm, rmdir } from 'node:fs/promises';
import * as path from 'node:path';
import { Client } from 'pg';
import { LifeboatError, errorMessage } from '../errors';
import { releaseClaimOf } from '../restore/claim';
import { isKeptEntry } from '../restore/data-dir';
import { readMarker, requireOurMarker, describeMarker } from '../restore/marker';
import { postmasterRunning, stopPostmaster } from '../restore/postmaster';
import { restoreSite, siteClientConfig } from '../restore/site';
import type { Runbook } from '../runbook/schema';
import type { SmokeWriteResult, TeardownResult } from './contract';

/** A table only drill copies ever hold: the smoke write lands there, never in an application table. */
export const SMOKE_TABLE = 'lifeboat_drill_smoke';

/**
 * A write in the promoted drill copy, committed, then read back on a second
 * connection: promoted is not enough, the copy must accept and keep a write
 * (a full disk, a read-only default or a broken WAL directory fail here).
 */
export async function smokeWrite(runbook: Runbook, input: { workflowId: string }): Promise<SmokeWriteResult> {
  const site = restoreSite(runbook, 'drill');
  const marker = await requireOurMarker(site.dataDir, input.workflowId, 'smoke-write');
  if (marker.state !== 'promoted') {
    throw new LifeboatError('PG_RUNNING', `smoke-write: the drill copy in ${site.dataDir} is not promoted (state ${marker.state})`, {
      hints: ['promote must succeed first; nothing was written'],
    });
  }
  const config = siteClientConfig(runbook, site, { application_name: 'lifeboat-drill-smoke', query_timeout: 30_000, connectionTimeoutMillis: 5000 });
  const where = `${site.address}:${site.port} (${site.dataDir}, database ${String(config.database)})`;
  const connectAnd = async <T>(body: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client(config);
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await body(c);
    } finally {
      await c.end().catch(() => undefined);
    }
  };
  let written: { id: string; lsn: string };
  try {
    written = await connectAnd(async (c) => {
      // read write explicitly: a role with default_transaction_read_only (a fenced
      // application role carried over from the primary) must not hide a broken copy.
      await c.query('begin read write');
      await c.query(
        `create table if not exists ${SMOKE_TABLE} (id bigint generated always as identity primary key, workflow_id text not null, written_at timestamptz not null default clock_timestamp())`,
      );
      const { rows } = await c.query<{ id: string }>(`insert into ${SMOKE_TABLE} (workflow_id) values ($1) returning id::text as id`, [input.workflowId]);
      await c.query('commit');
      const lsn = (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      return { id: rows[0]!.id, lsn };
    });
  } catch (err) {
    throw new LifeboatError('SQL_FAILED', `smoke-write: the promoted drill copy at ${where} refused a write: ${errorMessage(err)}`, {
      hints: [`the write was: insert into ${SMOKE_TABLE} (created if absent) as ${String(config.user)}`, 'a copy that cannot take a write cannot replace the primary: read its server log beside the data directory'],
      cause: err,
    });
  }
  const back = await connectAnd((c) =>
    c.query<{ workflow_id: string }>(`select workflow_id from ${SMOKE_TABLE} where id = $1`, [written.id]),
  ).catch((err: unknown) => {
    throw new LifeboatError('SQL_FAILED', `smoke-write: the row written in the drill copy at ${where} could not be read back: ${errorMessage(err)}`, { cause: err });
  });
  if (back.rows[0]?.workflow_id !== input.workflowId) {
    throw new LifeboatError('SQL_FAILED', `smoke-write: row ${written.id} of ${SMOKE_TABLE} in the drill copy at ${where} was committed but reads back as ${JSON.stringify(back.rows[0] ?? null)}`, {
      hints: ['a committed write that does not read back is data loss: keep the copy (keep: true) and read its server log'],
    });
  }
  return { writableAt: new Date().toISOString(), table: SMOKE_TABLE, id: written.id, lsn: written.lsn };
}

/**
 * Stops the drill's postmaster and removes its data directory and log, when
 * and only when the marker names this workflow's drill. Safe to repeat.
 */
export async function teardownDrill(runbook: Runbook, input: { workflowId: string }): Promise<TeardownResult> {
  const site = restoreSite(runbook, 'drill');
  const marker = await readMarker(site.dataDir);
  if (!marker || marker.workflowId !== input.workflowId || marker.instance !== 'drill') {
    // A restore of this drill that failed before its marker holds no claim (released then); a
    // claim of this workflow left by a crash is released, anyone else's stays.
    await releaseClaimOf(site.dataDir, input.workflowId);
    if (!existsSync(site.dataDir)) return { stopped: false };
    const running = await postmasterRunning(site.pg).catch(() => false);
    return {
      stopped: false,
      left: `${site.dataDir} was left as it is: ${marker ? `it holds ${describeMarker(marker)}` : 'it has no marker of this drill'}${running ? ', with a PostgreSQL running in it' : ''}`,
    };
  }
  // fast shuts down cleanly; the copy is thrown away, so its state does not matter, only that nothing is left running.
  const stopped = await stopPostmaster(site.pg, 'tearing down the drill copy');
  if (await postmasterRunning(site.pg)) {
    throw new LifeboatError('PG_RUNNING', `teardown: PostgreSQL in the drill copy ${site.dataDir} is still running after pg_ctl stop`, {
      hints: [`stop it by hand (as ${site.pg.osUser}): ${site.pg.pgBin}/pg_ctl stop -D ${site.dataDir} -m immediate, then remove ${site.dataDir}`],
    });
  }
  // The marker proves the directory is this drill's own copy: removing it
  // deletes nothing of anyone's. Except what was moved aside inside it (a
  // mount point: data-dir.ts), kept for an operator; and a mount point itself
  // cannot be removed, only emptied.
  for (const e of await readdir(site.dataDir)) {
    if (!isKeptEntry(e)) await rm(path.join(site.dataDir, e), { recursive: true, force: true });
  }
  await rmdir(site.dataDir).catch(() => undefined);
  // The directory and drill.port are free for the next drill.
  await releaseClaimOf(site.dataDir, input.workflowId);
  // The log sits beside the directory when the parent is the OS user's (src/restore/postmaster.ts runFiles).
  const besideLog = `${site.dataDir}.lifeboat-postgres.log`;
  if (marker.logFile === besideLog) await rm(besideLog, { force: true });
  return { stopped, removed: site.dataDir };
}

/** Paths teardown removes, for tests and messages. */
export function drillPaths(runbook: Runbook): { dataDir: string; log: string } {
  const site = restoreSite(runbook, 'drill');
  return { dataDir: site.dataDir, log: path.join(path.dirname(site.dataDir), `${path.basename(site.dataDir)}.lifeboat-postgres.log`) };
}
