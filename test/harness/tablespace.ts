// A tablespace outside the data directory for the tests of backups and
// restores of a DBA's cluster that has one: `fast`, in a postgres-owned
// directory of its own, holding table ledger_fast (id, note) with 50 rows.
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import type { Cleanups } from './cleanups';
import { postgresTempDir, type Primary } from './postgres';

export type LedgerRow = { id: number; note: string };
export const LEDGER_FAST_ROWS = 'select id, note from ledger_fast order by id';

/** Tablespace `fast` on `pg` with ledger_fast in it; its directory (removed by the cleanups) and oid. */
export async function fastTablespace(cleanups: Cleanups, pg: Primary): Promise<{ location: string; oid: string }> {
  const root = postgresTempDir('tblspc');
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const location = path.join(root, 'fast');
  mkdirSync(location);
  chownToOsUser(location, 'postgres');
  await pg.query(`create tablespace fast location '${location}'`);
  await pg.query(`create table ledger_fast (id int primary key, note text) tablespace fast`);
  await pg.query(`insert into ledger_fast select g, 'before-backup-' || g from generate_series(1, 50) g`);
  const [row] = await pg.query<{ oid: string }>(`select oid::text as oid from pg_tablespace where spcname = 'fast'`);
  return { location, oid: row!.oid };
}
