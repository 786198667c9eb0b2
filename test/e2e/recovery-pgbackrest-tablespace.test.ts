// A pgBackRest stanza of a cluster with a tablespace outside its data
// directory. pgBackRest restores a tablespace at its recorded path unless
// told otherwise: on the primary's host that is the primary's, and every
// recovery failed there ("unable to restore to path ... because it contains
// files"; with --delta it would have written into it). Lifeboat now passes
// --tablespace-map-all to a stage beside the copy and moves each tablespace
// into the copy's pg_tblspc/<oid>, as its own backups hold them. One posix
// stanza on a real PostgreSQL 15 primary and pgBackRest 2.45, engine.delta
// on: tablespace `fast` with a table, a full backup, batch A (LSN a), batch B
// (LSN b); archived. Then a recovery to LSN b pauses with exactly the rows at
// b, the tablespace a directory inside the copy, nothing left beside it; the
// same run retargeted to LSN a restores again with --delta over its own copy
// and pauses with exactly the rows at a; the primary's tablespace still
// serves the primary.
import { existsSync, lstatSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retargetSignal, statusQuery } from '../../src/recovery/messages';
import type { Runbook } from '../../src/runbook/schema';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import {
  restoredSession,
  seedOrders,
  startPgBackRestRunbook,
  startRecovery,
  pausedAgain,
  replayRuns,
  rowsOnCopy,
  type PgBackRestRunbook,
  type RecoveryRun,
} from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { fastTablespace, LEDGER_FAST_ROWS as ROWS, type LedgerRow as Row } from '../harness/tablespace';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

let r: PgBackRestRunbook;
let runbook: Runbook;
let location = '';
let oid = '';
const rows: { a: Row[]; b: Row[] } = { a: [], b: [] };
const lsn = { a: '', b: '' };

const ledgerOnCopy = () => rowsOnCopy<Row>(runbook, ROWS, 'postgres');

beforeAll(async () => {
  r = await startPgBackRestRunbook(cleanups, { name: 'brtblspc', stanza: 'tbs', engine: 'delta: true' });
  runbook = await r.load();
  const pg = r.s.primary;
  await seedOrders(pg);
  ({ location, oid } = await fastTablespace(cleanups, pg));
  await r.engine.takeBackup({ type: 'full' });
  const at = async () => (await pg.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l'))[0]!.l;
  await pg.query(`insert into ledger_fast select g, 'a-' || g from generate_series(51, 60) g`);
  lsn.a = await at();
  rows.a = await pg.query<Row>(ROWS);
  await pg.query(`insert into ledger_fast select g, 'b-' || g from generate_series(61, 70) g`);
  lsn.b = await at();
  rows.b = await pg.query<Row>(ROWS);
  await pg.query(`update ledger_fast set note = 'damaged'`);
  await switchAndWaitArchived(pg);
  expect(rows.a.length).toBeLessThan(rows.b.length);
});

describe('a pgBackRest stanza of a cluster with a tablespace outside its data directory', () => {
  let run: RecoveryRun;

  it("recovers to an LSN with exactly its rows, the tablespace inside the copy, not at the primary's path", async () => {
    run = await startRecovery(cleanups, r, { target: { lsn: lsn.b }, incident: 'INC-TBS', reason: 'bad UPDATE' });
    await run.waitStep('approve-fence', 'awaiting-approval');
    await run.approve('approve-fence', 'alice');
    const paused = await run.waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    expect(await ledgerOnCopy()).toEqual(rows.b);
    expect(lstatSync(path.join(runbook.restore.dataDir, 'pg_tblspc', oid)).isDirectory()).toBe(true);
    expect(existsSync(`${runbook.restore.dataDir}.lifeboat-tablespaces`)).toBe(false);
    const session: Cleanups = [];
    try {
      const c = await restoredSession(session, runbook, 'postgres');
      expect((await c.query<{ l: string }>(`select pg_tablespace_location(${oid}) as l`)).rows[0]?.l).toBe(
        `pg_tblspc/${oid}`,
      );
    } finally {
      await runCleanups(session);
    }
  });

  it('retargeted to an earlier LSN, restores again with --delta over its own copy and pauses with the rows there', async () => {
    const before = replayRuns(await run.wf.query(statusQuery));
    await run.wf.signal(retargetSignal, { by: 'alice', target: { lsn: lsn.a }, comment: 'before batch b' });
    const st = await pausedAgain(run, before);
    expect(st.replay?.paused).toBe(true);
    expect(await ledgerOnCopy()).toEqual(rows.a);
    expect(lstatSync(path.join(runbook.restore.dataDir, 'pg_tblspc', oid)).isDirectory()).toBe(true);
    await run.wf.terminate('test: the retargeted copy is checked');
    // The primary still reads and writes its own tablespace.
    const pg = r.s.primary;
    await pg.query(`insert into ledger_fast values (71, 'after-recovery')`);
    expect((await pg.query<Row>(ROWS)).at(-1)).toEqual({ id: 71, note: 'after-recovery' });
    expect((await pg.query<{ l: string }>(`select pg_tablespace_location(${oid}) as l`))[0]?.l).toBe(location);
  });
});
