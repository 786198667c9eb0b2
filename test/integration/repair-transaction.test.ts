// A repair of several tables is ONE transaction on the live primary
// (src/repair/apply.ts applyPlans): orders and payments (payments referring to
// orders) restored together, parents first, or not at all; the retry after a
// failure repairs both once. As the repair role with exactly its grants
// (harness/repair-db.ts). The moment a failure is observed is HELD: an
// uncommitted payment with a key the repair restores keeps the apply waiting
// inside the payments INSERT, after the orders are restored, until the test
// cancels it.
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { applyPlan, applyPlans } from '../../src/repair/apply';
import { classify } from '../../src/repair/classify';
import { readRows, readSnapshot, snapshotTable } from '../../src/repair/snapshot';
import { waitFor } from '../harness/ports';
import { repairGrants, startRepairDb, type RepairDb } from '../harness/repair-db';

let db: RepairDb;
beforeAll(async () => {
  db = await startRepairDb();
});
afterAll(async () => {
  await db?.close();
});

const entries = (m: Map<string, string>) => [...m.entries()];
/** This repair's audit rows ([] while no repair has created the audit table: its creation rolls back with a failed apply). */
const auditRows = async (repairId: string) =>
  (await db.admin.query<{ t: string | null }>(`select to_regclass('repair_audit.lifeboat_repair_audit')::text as t`))
    .rows[0]?.t == null
    ? []
    : (
        await db.admin.query<{ table_name: string; updated: string; inserted: string; xid: string }>(
          `select table_name, updated::text, inserted::text, xmin::text as xid from repair_audit.lifeboat_repair_audit where repair_id = $1 order by table_name`,
          [repairId],
        )
      ).rows;

/**
 * Orders and payments referring to each other (orders.last_payment_id, payments.order_id), DEFERRABLE or not;
 * the incident deletes orders 6..10 with their payments. Both plans (orders first) and the rows before it.
 */
async function cycle(s: string, deferrable: boolean) {
  const d = deferrable ? 'deferrable' : 'not deferrable';
  await db.admin.query(`
    create schema ${s};
    create table ${s}.orders (id int primary key, customer text not null, last_payment_id int);
    create table ${s}.payments (id int primary key, order_id int not null references ${s}.orders(id) ${d}, amount int not null);
    alter table ${s}.orders add foreign key (last_payment_id) references ${s}.payments(id) ${d};
    insert into ${s}.orders select g, 'c' || g, null from generate_series(1, 10) g;
    insert into ${s}.payments select g, g, g * 10 from generate_series(1, 10) g;
    update ${s}.orders set last_payment_id = id;`);
  await db.admin.query(repairGrants([`${s}.orders`, `${s}.payments`]));
  const c = await db.asRole();
  const snap = async (label: string) => {
    const out = [];
    for (const t of ['orders', 'payments'])
      out.push(await snapshotTable(c, { table: `${s}.${t}`, file: path.join(db.dir, `${s}-${t}-${label}.jsonl`) }));
    return out;
  };
  const b = await snap('B');
  const before = { orders: await db.rowsOf(`${s}.orders`), payments: await db.rowsOf(`${s}.payments`) };
  await db.admin.query(
    `update ${s}.orders set last_payment_id = null where id > 5; delete from ${s}.payments where id > 5; delete from ${s}.orders where id > 5`,
  );
  const a = await snap('A');
  const plans = [];
  for (const [i, t] of ['orders', 'payments'].entries()) {
    plans.push(
      (
        await classify({
          before: await readSnapshot(b[i]!.file),
          after: await readSnapshot(a[i]!.file),
          now: await readRows(c, `${s}.${t}`),
          planFile: path.join(db.dir, `${s}-${t}-plan.jsonl`),
        })
      ).planFile,
    );
  }
  return { c, plans, before };
}

describe('a repair of several tables in one transaction', () => {
  it('restores orders and the payments referring to them in one transaction, parents first though given children first; the next apply says already applied for both', async () => {
    const s = 'tx1';
    const inc = await db.ordersAndPayments(s);
    expect(inc.orders.counts).toMatchObject({
      damaged: 5,
      deletedByIncident: 5,
      insertedSince: 1,
      unchanged: 30,
      changedSince: 0,
    });
    expect(inc.payments.counts).toMatchObject({
      deletedByIncident: 5,
      insertedSince: 1,
      unchanged: 35,
      changedSince: 0,
    });
    const c = await db.asRole();
    // Payments first: restored first, their INSERT would fail on the NOT DEFERRABLE key (the orders are not back yet).
    const res = await applyPlans(c, {
      repairId: 'r-tx1',
      planFiles: [inc.payments.planFile, inc.orders.planFile],
      approvedBy: ['alice'],
    });
    expect(res).toMatchObject([
      { table: `"${s}"."payments"`, alreadyApplied: false, updated: 0, inserted: 5, skipped: 0 },
      { table: `"${s}"."orders"`, alreadyApplied: false, updated: 5, inserted: 5, skipped: 0 },
    ]);
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.expected.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.expected.payments));
    // One transaction: both audit rows and every restored row of both tables carry the same creating transaction id.
    const audit = await auditRows('r-tx1');
    expect(audit.map(({ xid: _, ...r }) => r)).toEqual([
      { table_name: `"${s}"."orders"`, updated: '5', inserted: '5' },
      { table_name: `"${s}"."payments"`, updated: '0', inserted: '5' },
    ]);
    const xids = await db.admin.query<{ xid: string }>(
      `select distinct xmin::text as xid from (select xmin from ${s}.orders where id % 4 = 0 union all select xmin from ${s}.payments where id % 8 = 0) x`,
    );
    expect(xids.rows).toEqual([{ xid: audit[0]!.xid }]);
    expect(audit[1]!.xid).toBe(audit[0]!.xid);

    const again = await applyPlans(await db.asRole(), {
      repairId: 'r-tx1',
      planFiles: [inc.payments.planFile, inc.orders.planFile],
      approvedBy: ['bob'],
    });
    expect(again).toMatchObject([
      { table: `"${s}"."payments"`, alreadyApplied: true, inserted: 5, lockedMs: 0 },
      { table: `"${s}"."orders"`, alreadyApplied: true, updated: 5, inserted: 5, lockedMs: 0 },
    ]);
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.expected.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.expected.payments));
    expect(await auditRows('r-tx1')).toEqual(audit);
  });

  it("a failure in the second table's statements leaves the first table unrepaired too, and the retry repairs both once", async () => {
    const s = 'tx2';
    const inc = await db.ordersAndPayments(s);
    const holder = new Client({ ...db.pg.connection, database: 'shop' });
    await holder.connect();
    const writer = new Client({ ...db.pg.connection, database: 'shop' });
    await writer.connect();
    const ordersLocked = async () => {
      await writer.query('begin');
      try {
        return (await writer.query(`select id from ${s}.orders where id in (4, 12, 20, 28, 36) for update nowait`)).rows
          .length;
      } catch (err) {
        return (err as { code?: string }).code;
      } finally {
        await writer.query('rollback');
      }
    };
    try {
      // The hold: an uncommitted payment 16 (a key the repair re-inserts): the
      // repair's INSERT ... ON CONFLICT waits to learn whether it commits.
      await holder.query('begin');
      await holder.query(`insert into ${s}.payments (id, order_id, amount) values (16, 1, 0)`);
      const applyClient = await db.asRole('lifeboat-repair-tx2');
      const applying = applyPlans(applyClient, {
        repairId: 'r-tx2',
        planFiles: [inc.orders.planFile, inc.payments.planFile],
        approvedBy: ['alice'],
      }).catch((e: unknown) => e);
      const [apply] = await waitFor('the apply to wait inside the payments INSERT', async () => {
        const { rows } = await db.admin.query<{ pid: number; query: string }>(
          `select pid, query from pg_stat_activity where application_name = 'lifeboat-repair-tx2' and wait_event_type = 'Lock'`,
        );
        return rows.length === 1 ? rows : undefined;
      });
      expect(apply!.query).toContain(`insert into "${s}"."payments"`);
      // The orders are restored inside the open transaction: their rows are locked, and nobody else sees them restored.
      expect(await ordersLocked()).toBe('55P03');
      expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.now.orders));
      // The second table's statement fails (an operator's cancel): everything rolls back.
      await db.admin.query('select pg_cancel_backend($1)', [apply!.pid]);
      const err = await applying;
      expect(err).toMatchObject({ code: 'SQL_FAILED' });
      expect((err as Error).message).toBe(
        `repair r-tx2 of "${s}"."orders", "${s}"."payments" failed at "${s}"."payments" and was rolled back, nothing applied to any of the 2 tables: canceling statement due to user request\n` +
          'HINT: the primary is unchanged: fix the cause and apply again (the same repair id is safe to retry)',
      );
      await holder.query('rollback');
      expect(await ordersLocked()).toBe(5);
    } finally {
      await holder.end();
      await writer.end();
    }
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.now.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.now.payments));
    expect(await auditRows('r-tx2')).toEqual([]);

    const retry = await applyPlans(await db.asRole(), {
      repairId: 'r-tx2',
      planFiles: [inc.orders.planFile, inc.payments.planFile],
      approvedBy: ['alice'],
    });
    expect(retry).toMatchObject([
      { alreadyApplied: false, updated: 5, inserted: 5, skipped: 0 },
      { alreadyApplied: false, updated: 0, inserted: 5, skipped: 0 },
    ]);
    const again = await applyPlans(await db.asRole(), {
      repairId: 'r-tx2',
      planFiles: [inc.orders.planFile, inc.payments.planFile],
      approvedBy: ['alice'],
    });
    expect(again.map((r) => r.alreadyApplied)).toEqual([true, true]);
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.expected.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.expected.payments));
    expect((await auditRows('r-tx2')).map((r) => [r.table_name, r.updated, r.inserted])).toEqual([
      [`"${s}"."orders"`, '5', '5'],
      [`"${s}"."payments"`, '0', '5'],
    ]);
  });

  it('a constraint error in the second table rolls back the first: nothing applied, the failing table and the constraint named, and the retry repairs both once the rule allows it', async () => {
    const s = 'tx3';
    const inc = await db.ordersAndPayments(s);
    // A rule added on the primary since the diff (NOT VALID: existing rows are not checked) that restored payments 24, 32, 40 break.
    await db.admin.query(
      `alter table ${s}.payments add constraint payments_amount_small check (amount < 25) not valid`,
    );
    const c = await db.asRole();
    const err = await applyPlans(c, {
      repairId: 'r-tx3',
      planFiles: [inc.orders.planFile, inc.payments.planFile],
      approvedBy: ['alice'],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SQL_FAILED' });
    expect((err as Error).message).toBe(
      `repair r-tx3 of "${s}"."orders", "${s}"."payments" failed at "${s}"."payments" and was rolled back, nothing applied to any of the 2 tables: new row for relation "payments" violates check constraint "payments_amount_small" (Failing row contains (24, 24, 30.00).)\n` +
        'HINT: the primary is unchanged: fix the cause and apply again (the same repair id is safe to retry)',
    );
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.now.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.now.payments));
    expect(await auditRows('r-tx3')).toEqual([]);
    await db.admin.query(`alter table ${s}.payments drop constraint payments_amount_small`);
    const retry = await applyPlans(c, {
      repairId: 'r-tx3',
      planFiles: [inc.orders.planFile, inc.payments.planFile],
      approvedBy: ['alice'],
    });
    expect(retry.map((r) => [r.alreadyApplied, r.updated, r.inserted])).toEqual([
      [false, 5, 5],
      [false, 0, 5],
    ]);
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.expected.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.expected.payments));
  });

  it('restores tables whose DEFERRABLE foreign keys refer to each other (checked at commit); NOT DEFERRABLE ones in a cycle fail the whole transaction with what to do', async () => {
    const ok = await cycle('tx5', true);
    const res = await applyPlans(ok.c, { repairId: 'r-tx5', planFiles: ok.plans, approvedBy: ['alice'] });
    expect(res.map((r) => [r.table, r.inserted])).toEqual([
      ['"tx5"."orders"', 5],
      ['"tx5"."payments"', 5],
    ]);
    expect(entries(await db.rowsOf('tx5.orders'))).toEqual(entries(ok.before.orders));
    expect(entries(await db.rowsOf('tx5.payments'))).toEqual(entries(ok.before.payments));

    const strict = await cycle('tx6', false);
    const err = await applyPlans(strict.c, { repairId: 'r-tx6', planFiles: strict.plans, approvedBy: ['alice'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SQL_FAILED' });
    expect((err as Error).message).toBe(
      'repair r-tx6 of "tx6"."orders", "tx6"."payments" failed at "tx6"."orders" and was rolled back, nothing applied to any of the 2 tables: insert or update on table "orders" violates foreign key constraint "orders_last_payment_id_fkey" (Key (last_payment_id)=(10) is not present in table "payments".)\n' +
        'HINT: foreign key orders_last_payment_id_fkey: a restored row refers to a row deleted since (or a row deleted since refers to it); restore the parent rows first (repair that table too) or exclude these keys\n' +
        'HINT: the foreign keys between "tx6"."orders", "tx6"."payments" form a cycle and are NOT DEFERRABLE, so no order restores both sides: make them DEFERRABLE (ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE; the repair then defers them to its commit) or repair these tables in separate runs',
    );
    expect((await db.admin.query('select count(*)::int as n from tx6.orders')).rows).toEqual([{ n: 5 }]);
    expect(await auditRows('r-tx6')).toEqual([]);
  });

  it('after an older Lifeboat committed one table of the repair on its own, applies the other and reports the first already applied', async () => {
    const s = 'tx4';
    const inc = await db.ordersAndPayments(s);
    const c = await db.asRole();
    expect(
      await applyPlan(c, { repairId: 'r-tx4', planFile: inc.orders.planFile, approvedBy: ['alice'] }),
    ).toMatchObject({ alreadyApplied: false, updated: 5, inserted: 5 });
    const res = await applyPlans(c, {
      repairId: 'r-tx4',
      planFiles: [inc.orders.planFile, inc.payments.planFile],
      approvedBy: ['alice'],
    });
    expect(res).toMatchObject([
      { alreadyApplied: true, updated: 5, inserted: 5, lockedMs: 0 },
      { alreadyApplied: false, updated: 0, inserted: 5, skipped: 0 },
    ]);
    expect(entries(await db.rowsOf(`${s}.orders`))).toEqual(entries(inc.expected.orders));
    expect(entries(await db.rowsOf(`${s}.payments`))).toEqual(entries(inc.expected.payments));
  });
});
