// A worker SIGKILLed during a repair's apply (issue 14): the transaction
// (one for all the repair's tables) either committed once or not at all, and
// the retried apply with the same repair id says which. The apply runs in a child process
// (harness/repair-apply-child.cjs) so it can be killed; the moment is HELD:
// an uncommitted row the test puts in the audit table keeps the apply inside
// its transaction at its last statement, and a file the test never creates
// keeps the child from reporting after commit.
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, applyPlans } from '../../src/repair/apply';
import { classify } from '../../src/repair/classify';
import { readRows, readSnapshot, snapshotTable } from '../../src/repair/snapshot';
import { waitFor } from '../harness/ports';
import { REPAIR_ROLE, startRepairDb, type RepairDb } from '../harness/repair-db';

let db: RepairDb;
beforeAll(async () => {
  db = await startRepairDb();
});
afterAll(async () => {
  await db?.close();
});

/** Orders 4, 8, ... 40 set canceled by the incident; a plan restoring them; the expected table after the repair. */
async function incident(s: string) {
  await db.ordersSchema(s, 40);
  const c = await db.asRole();
  const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-B.jsonl`) });
  const before = await db.rowsOf(`${s}.orders`);
  await db.admin.query(`update ${s}.orders set status = 'canceled' where status = 'pending'`);
  const a = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-A.jsonl`) });
  await db.admin.query(`insert into ${s}.orders (customer, status, amount) values ('later', 'paid', 1)`);
  const result = await classify({
    before: await readSnapshot(b.file),
    after: await readSnapshot(a.file),
    now: await readRows(c, `${s}.orders`),
    planFile: path.join(db.dir, `${s}-plan.jsonl`),
  });
  expect(result.counts).toMatchObject({ damaged: 10, insertedSince: 1, unchanged: 30 });
  const expected = new Map(await db.rowsOf(`${s}.orders`));
  for (let id = 4; id <= 40; id += 4) expected.set(String(id), before.get(String(id))!);
  return { planFile: result.planFile, expected };
}

function startApply(
  opts: { repairId: string; appName: string; holdAfterCommit?: string } & (
    { planFile: string } | { planFiles: string[] }
  ),
) {
  const child = spawn(
    process.execPath,
    [
      path.join(__dirname, '../harness/repair-apply-child.cjs'),
      JSON.stringify({
        connection: { ...db.pg.connection, user: REPAIR_ROLE, database: 'shop', application_name: opts.appName },
        ...opts,
      }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exited };
}

const auditRows = async (repairId: string) =>
  (
    await db.admin.query<{ updated: string }>(
      `select updated::text from repair_audit.lifeboat_repair_audit where repair_id = $1`,
      [repairId],
    )
  ).rows;

describe('repair apply, worker killed', () => {
  it('killed inside its transaction with every row restored: its session is rolled back at once, the rows are free again, nothing commits, the retry repairs once and the next says already applied', async () => {
    const s = 'crash1';
    const { planFile, expected } = await incident(s);
    const untouched = await db.rowsOf(`${s}.orders`);
    const damagedIds = Array.from({ length: 10 }, (_, i) => (i + 1) * 4).join(', ');
    // The audit table exists (an earlier repair created it), so the hold below can be taken on it.
    expect(
      await applyPlan(await db.asRole(), {
        repairId: 'r-crash1-earlier',
        planFile,
        approvedBy: ['alice'],
        classes: [],
      }),
    ).toMatchObject({ updated: 0 });
    // The hold: another transaction inserts this repair's audit row and keeps
    // it uncommitted, so the apply, at its very last statement (the audit
    // insert, after every restoring statement), waits on it.
    const holder = new Client({ ...db.pg.connection, database: 'shop' });
    await holder.connect();
    const writer = new Client({ ...db.pg.connection, database: 'shop' });
    await writer.connect();
    const rowsFree = async () => {
      await writer.query('begin');
      try {
        return (await writer.query(`select id from ${s}.orders where id in (${damagedIds}) for update nowait`)).rows
          .length;
      } catch (err) {
        return (err as { code?: string }).code;
      } finally {
        await writer.query('rollback');
      }
    };
    try {
      await holder.query('begin');
      await holder.query(
        `insert into repair_audit.lifeboat_repair_audit (repair_id, table_name, updated, inserted, skipped, classes, approved_by) values ('r-crash1', '"${s}"."orders"', 0, 0, 0, '{}', '{}')`,
      );
      const { child, exited } = startApply({ repairId: 'r-crash1', planFile, appName: 'lifeboat-repair-child' });
      const [orphan] = await waitFor('the child apply to wait at its audit insert', async () => {
        const { rows } = await db.admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where application_name = 'lifeboat-repair-child' and wait_event_type = 'Lock'`,
        );
        return rows.length === 1 ? rows : undefined;
      });
      // Every restored row is locked by the apply's open transaction (lock_not_available).
      expect(await rowsFree()).toBe('55P03');
      child.kill('SIGKILL');
      expect(await exited).toMatchObject({ signal: 'SIGKILL', stdout: '' });
      // PostgreSQL notices a vanished client only when it next talks to it;
      // apply sets client_connection_check_interval, so the orphaned session,
      // still waiting, is ended and rolled back: a dead worker does not leave
      // restored rows of the live table locked.
      await waitFor('the orphaned session to end', async () => {
        const { rows } = await db.admin.query(`select 1 from pg_stat_activity where pid = $1`, [orphan!.pid]);
        return rows.length === 0 ? true : undefined;
      });
      expect(await rowsFree()).toBe(10);
      expect(await db.rowsOf(`${s}.orders`)).toEqual(untouched);
      await holder.query('rollback');
    } finally {
      await holder.end();
      await writer.end();
    }
    expect(await auditRows('r-crash1')).toEqual([]);
    // The retry, as another worker would: nothing committed, so it repairs.
    const retry = await applyPlan(await db.asRole('lifeboat-repair-retry'), {
      repairId: 'r-crash1',
      planFile,
      approvedBy: ['alice'],
    });
    expect(retry).toMatchObject({ alreadyApplied: false, updated: 10, inserted: 0, skipped: 0 });
    expect([...(await db.rowsOf(`${s}.orders`)).entries()]).toEqual([...expected.entries()]);
    const again = await applyPlan(await db.asRole(), { repairId: 'r-crash1', planFile, approvedBy: ['alice'] });
    expect(again).toMatchObject({ alreadyApplied: true, updated: 10 });
    expect([...(await db.rowsOf(`${s}.orders`)).entries()]).toEqual([...expected.entries()]);
    expect(await auditRows('r-crash1')).toEqual([{ updated: '10' }]);
  });

  it('killed after its apply committed, before reporting: the retry finds the audit row, says already applied with the committed counts, and changes nothing', async () => {
    const s = 'crash2';
    const { planFile, expected } = await incident(s);
    // The hold: a file never created, so the child stops between commit and its report.
    const { child, exited } = startApply({
      repairId: 'r-crash2',
      planFile,
      appName: 'lifeboat-repair-child2',
      holdAfterCommit: path.join(db.dir, 'never-released'),
    });
    await waitFor('the child apply to commit', async () => {
      const { rows } = await db.admin.query<{ t: string | null }>(
        `select to_regclass('repair_audit.lifeboat_repair_audit')::text as t`,
      );
      return rows[0]?.t && (await auditRows('r-crash2')).length === 1 ? true : undefined;
    });
    child.kill('SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL', stdout: '' });
    expect([...(await db.rowsOf(`${s}.orders`)).entries()]).toEqual([...expected.entries()]);
    // A legitimate write to a restored row after the repair: the retry leaves it.
    await db.admin.query(`update ${s}.orders set note = 'edited after the repair' where id = 4`);
    expected.set('4', (await db.rowsOf(`${s}.orders`)).get('4')!);
    const retry = await applyPlan(await db.asRole(), { repairId: 'r-crash2', planFile, approvedBy: ['alice'] });
    expect(retry).toMatchObject({ alreadyApplied: true, updated: 10, inserted: 0, skipped: 0 });
    expect([...(await db.rowsOf(`${s}.orders`)).entries()]).toEqual([...expected.entries()]);
    expect(await auditRows('r-crash2')).toEqual([{ updated: '10' }]);
  });

  it('killed after its one transaction over two tables committed, before reporting: the retry finds both audit rows and says already applied for both, changing nothing', async () => {
    const s = 'crash3';
    const inc = await db.ordersAndPayments(s);
    const planFiles = [inc.payments.planFile, inc.orders.planFile];
    const { child, exited } = startApply({
      repairId: 'r-crash3',
      planFiles,
      appName: 'lifeboat-repair-child3',
      holdAfterCommit: path.join(db.dir, 'never-released'),
    });
    // Both audit rows are written in the one transaction: seen together or not at all.
    await waitFor('the child apply to commit', async () => {
      const { rows } = await db.admin.query<{ t: string | null }>(
        `select to_regclass('repair_audit.lifeboat_repair_audit')::text as t`,
      );
      return rows[0]?.t && (await auditRows('r-crash3')).length === 2 ? true : undefined;
    });
    child.kill('SIGKILL');
    expect(await exited).toMatchObject({ signal: 'SIGKILL', stdout: '' });
    const committed = { orders: await db.rowsOf(`${s}.orders`), payments: await db.rowsOf(`${s}.payments`) };
    expect([...committed.orders.entries()]).toEqual([...inc.expected.orders.entries()]);
    expect([...committed.payments.entries()]).toEqual([...inc.expected.payments.entries()]);
    const retry = await applyPlans(await db.asRole(), { repairId: 'r-crash3', planFiles, approvedBy: ['alice'] });
    expect(retry).toMatchObject([
      { table: `"${s}"."payments"`, alreadyApplied: true, updated: 0, inserted: 5, skipped: 0 },
      { table: `"${s}"."orders"`, alreadyApplied: true, updated: 5, inserted: 5, skipped: 0 },
    ]);
    expect(await db.rowsOf(`${s}.orders`)).toEqual(committed.orders);
    expect(await db.rowsOf(`${s}.payments`)).toEqual(committed.payments);
    const audit = await db.admin.query(
      `select table_name, updated::int, inserted::int from repair_audit.lifeboat_repair_audit where repair_id = 'r-crash3' order by table_name`,
    );
    expect(audit.rows).toEqual([
      { table_name: `"${s}"."orders"`, updated: 5, inserted: 5 },
      { table_name: `"${s}"."payments"`, updated: 0, inserted: 5 },
    ]);
  });
});
