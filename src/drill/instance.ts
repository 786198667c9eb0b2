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
import { stopPrefetcher } from '../restore/prefetch';
import { restoreSite, siteClientConfig } from '../restore/site';
import { quoteIdent } from '../gates/sql';
import type { Runbook } from '../runbook/schema';
import type { SmokeWriteResult, TeardownResult } from './contract';

/** A table only drill copies ever hold: the smoke write lands there, never in an application table. */
export const SMOKE_TABLE = 'lifeboat_drill_smoke';

/**
 * Where the smoke table goes: the first schema of the role's search_path
 * (by default "$user", public) in which it may create. PostgreSQL 15 gives
 * PUBLIC no CREATE on schema public, and the copy's catalog is the backup's,
 * so nothing can be granted on the copy: the place must exist on the primary
 * before the backup (a schema named after the role, as `lifeboat grants`
 * prints, or CREATE on public). Returns the schema, or what the path holds.
 */
async function smokeSchema(c: Client): Promise<{ schema?: string; searchPath: string; seen: string[] }> {
  const searchPath = (await c.query<{ p: string }>('select current_setting($1) as p', ['search_path'])).rows[0]!.p;
  // current_schemas(false): the schemas of the path that exist, in order ("$user" resolved).
  const { rows } = await c.query<{ s: string; create: boolean }>(
    `select s, has_schema_privilege(s, 'CREATE') as create from unnest(current_schemas(false)) with ordinality as p(s, i) order by i`,
  );
  return {
    schema: rows.find((r) => r.create)?.s,
    searchPath,
    seen: rows.map((r) => `${r.s} (${r.create ? 'CREATE' : 'no CREATE'})`),
  };
}

/**
 * A write in the promoted drill copy, committed, then read back on a second
 * connection: promoted is not enough, the copy must accept and keep a write
 * (a full disk, a read-only default or a broken WAL directory fail here).
 */
export async function smokeWrite(runbook: Runbook, input: { workflowId: string }): Promise<SmokeWriteResult> {
  const site = restoreSite(runbook, 'drill');
  const marker = await requireOurMarker(site.dataDir, input.workflowId, 'smoke-write');
  if (marker.state !== 'promoted') {
    throw new LifeboatError(
      'PG_RUNNING',
      `smoke-write: the drill copy in ${site.dataDir} is not promoted (state ${marker.state})`,
      {
        hints: ['promote must succeed first; nothing was written'],
      },
    );
  }
  const config = siteClientConfig(runbook, site, {
    application_name: 'lifeboat-drill-smoke',
    query_timeout: 30_000,
    connectionTimeoutMillis: 5000,
  });
  const role = String(config.user);
  const database = String(config.database);
  const where = `${site.address}:${site.port} (${site.dataDir}, database ${database})`;
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
  let written: { id: string; lsn: string; table: string; shown: string };
  try {
    written = await connectAnd(async (c) => {
      const place = await smokeSchema(c);
      if (!place.schema) {
        throw new LifeboatError(
          'PRIVILEGE_MISSING',
          `smoke-write: role ${role} may create a table in no schema of its search_path (${place.searchPath}: ${place.seen.join(', ') || 'none of them exists'}) in database ${database} of the drill copy at ${where}`,
          {
            hints: [
              `the copy's catalog is the backup's, so the fix goes on the primary, in database ${database}: CREATE SCHEMA IF NOT EXISTS ${quoteIdent(role)} AUTHORIZATION ${quoteIdent(role)};`,
              `then take a new base backup (lifeboat backup --runbook ${runbook.name}): drills restore backups taken before the grant without it`,
              `lifeboat grants --runbook ${runbook.name} prints this with every other grant the role needs`,
            ],
          },
        );
      }
      const table = `${quoteIdent(place.schema)}.${SMOKE_TABLE}`;
      const shown = `${place.schema}.${SMOKE_TABLE}`;
      // read write explicitly: a role with default_transaction_read_only (a fenced
      // application role carried over from the primary) must not hide a broken copy.
      await c.query('begin read write');
      await c.query(
        `create table if not exists ${table} (id bigint generated always as identity primary key, workflow_id text not null, written_at timestamptz not null default clock_timestamp())`,
      );
      const { rows } = await c.query<{ id: string }>(
        `insert into ${table} (workflow_id) values ($1) returning id::text as id`,
        [input.workflowId],
      );
      await c.query('commit');
      const lsn = (await c.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn;
      return { id: rows[0]!.id, lsn, table, shown };
    });
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError(
      'SQL_FAILED',
      `smoke-write: the promoted drill copy at ${where} refused a write: ${errorMessage(err)}`,
      {
        hints: [
          `the write was: insert into ${SMOKE_TABLE} (created if absent) as ${role}`,
          'a copy that cannot take a write cannot replace the primary: read its server log beside the data directory',
        ],
        cause: err,
      },
    );
  }
  const back = await connectAnd((c) =>
    c.query<{ workflow_id: string }>(`select workflow_id from ${written.table} where id = $1`, [written.id]),
  ).catch((err: unknown) => {
    throw new LifeboatError(
      'SQL_FAILED',
      `smoke-write: the row written in the drill copy at ${where} could not be read back: ${errorMessage(err)}`,
      { cause: err },
    );
  });
  if (back.rows[0]?.workflow_id !== input.workflowId) {
    throw new LifeboatError(
      'SQL_FAILED',
      `smoke-write: row ${written.id} of ${written.shown} in the drill copy at ${where} was committed but reads back as ${JSON.stringify(back.rows[0] ?? null)}`,
      {
        hints: [
          'a committed write that does not read back is data loss: keep the copy (keep: true) and read its server log',
        ],
      },
    );
  }
  return { writableAt: new Date().toISOString(), table: written.shown, id: written.id, lsn: written.lsn };
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
    throw new LifeboatError(
      'PG_RUNNING',
      `teardown: PostgreSQL in the drill copy ${site.dataDir} is still running after pg_ctl stop`,
      {
        hints: [
          `stop it by hand (as ${site.pg.osUser}): ${site.pg.pgBin}/pg_ctl stop -D ${site.dataDir} -m immediate, then remove ${site.dataDir}`,
        ],
      },
    );
  }
  // Its WAL prefetcher may still be writing into the spool: end it first, or the removal fails (ENOTEMPTY).
  await stopPrefetcher(site.dataDir);
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
  return {
    dataDir: site.dataDir,
    log: path.join(path.dirname(site.dataDir), `${path.basename(site.dataDir)}.lifeboat-postgres.log`),
  };
}
