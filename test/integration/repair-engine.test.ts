// The repair engine (src/repair) on a real PostgreSQL 15, run as a role with
// only the grants a repair needs: CONNECT, and exactly what `lifeboat grants
// --repair-tables` grants for the tables (harness/repair-db.ts repairGrants). The copy's two snapshots are taken from the
// primary itself at the moments the restored copy would stand for: B before
// the incident, A right after it; N is the live table after legitimate
// writes. That is exactly the data a copy replayed to those targets holds,
// without the restore (tested elsewhere).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/repair/apply';
import { classify, type PlanRow } from '../../src/repair/classify';
import { readTableShape } from '../../src/repair/keys';
import { repairSqlText } from '../../src/repair/sql';
import { readRows, readSnapshot, snapshotTable } from '../../src/repair/snapshot';
import { waitFor } from '../harness/ports';
import { startPrimary, type Primary } from '../harness/postgres';
import { REPAIR_ROLE, repairGrants } from '../harness/repair-db';

const ROLE = REPAIR_ROLE;
const MEASURE_ROWS = 200_000;
let pg: Primary;
let dir: string;
let admin: Client;
const roleClients: Client[] = [];

async function asRole(appName = 'lifeboat-repair-test'): Promise<Client> {
  const c = new Client({ ...pg.connection, user: ROLE, database: 'shop', application_name: appName });
  await c.connect();
  roleClients.push(c);
  return c;
}

/** Every row of a table as its jsonb text, by id: the test's own view, independent of the engine. */
async function rowsOf(table: string): Promise<Map<string, string>> {
  const { rows } = await admin.query<{ id: string; j: string }>(
    `select id::text as id, to_jsonb(t)::text as j from ${table} t order by id`,
  );
  return new Map(rows.map((r) => [r.id, r.j]));
}

/** The shop schema: orders (1000 rows, every 4th pending), payments referencing orders; the role's grants. */
async function freshSchema(s: string, orders = 1000): Promise<void> {
  await admin.query(`
    create schema ${s};
    create table ${s}.orders (id bigserial primary key, customer text not null, status text not null,
      amount numeric(10,2) not null, note text, placed_at timestamptz not null default now(),
      total_cents bigint generated always as ((amount * 100)::bigint) stored);
    create table ${s}.payments (id serial primary key, order_id bigint not null references ${s}.orders(id), amount numeric(10,2) not null);
    insert into ${s}.orders (customer, status, amount, note, placed_at)
      select 'c' || (g % 37), (array['pending','paid','shipped','canceled'])[g % 4 + 1], (g * 1.25)::numeric(10,2),
             case when g % 5 = 0 then null when g % 5 = 1 then '' else 'n' || g end,
             timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
        from generate_series(1, ${orders}) g;`);
  await admin.query(repairGrants([`${s}.orders`]));
}

const pendingIds = (n = 1000) => Array.from({ length: n / 4 }, (_, i) => String((i + 1) * 4));

beforeAll(async () => {
  pg = await startPrimary();
  dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repair-'));
  await pg.query('create database shop');
  admin = new Client({ ...pg.connection, database: 'shop' });
  await admin.connect();
  // The role gets what a repair needs and nothing by default: PUBLIC loses CONNECT and TEMP on the database.
  await admin.query(`
    create role ${ROLE} login;
    revoke connect, temporary on database shop from public;
    grant connect on database shop to ${ROLE};
    create schema repair_audit;
    alter role ${ROLE} set search_path = repair_audit;`);
});

afterAll(async () => {
  for (const c of roleClients) await c.end().catch(() => undefined);
  await admin?.end().catch(() => undefined);
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** B, the incident, A, then `legit` writes; classify against the live table. */
async function incident(s: string, bad: string, legit: string, opts: { withAfter?: boolean } = {}) {
  const c = await asRole();
  const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(dir, `${s}-B.jsonl`) });
  const before = await rowsOf(`${s}.orders`);
  await admin.query(bad);
  const a =
    opts.withAfter === false
      ? undefined
      : await snapshotTable(c, { table: `${s}.orders`, file: path.join(dir, `${s}-A.jsonl`) });
  await admin.query(legit);
  const now = await readRows(c, `${s}.orders`);
  const result = await classify({
    before: await readSnapshot(b.file),
    ...(a ? { after: await readSnapshot(a.file) } : {}),
    now,
    planFile: path.join(dir, `${s}-plan.jsonl`),
    sampleSize: 5,
  });
  return { c, before, result, b };
}

function planRows(file: string): PlanRow[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as PlanRow);
}

describe('repair engine', () => {
  it('restores exactly the rows the bad UPDATE damaged, lists the ones edited since as conflicts, keeps every legitimate write, and a second apply changes nothing', async () => {
    const s = 'shop1';
    await freshSchema(s);
    await admin.query(`insert into ${s}.payments (order_id, amount) select g, 1.25 * g from generate_series(1, 20) g`);
    const edited = ['4', '8', '12', '16', '20', '24', '28', '32', '36', '40'];
    const { c, before, result } = await incident(
      s,
      `update ${s}.orders set status = 'canceled' where status = 'pending'`,
      `insert into ${s}.orders (customer, status, amount) select 'new' || g, case when g % 2 = 0 then 'pending' else 'paid' end, g from generate_series(1, 40) g;
       update ${s}.orders set note = 'customer called back' where id in (${edited.join(',')});
       update ${s}.orders set status = 'pending' where id = 44;
       delete from ${s}.orders where id = 48;
       update ${s}.orders set amount = amount + 1 where id in (1, 2, 3, 5);
       insert into ${s}.payments (order_id, amount) select g, 9.99 from generate_series(100, 130) g;`,
    );
    const conflicts = [...edited, '44', '48'];
    const damaged = pendingIds().filter((id) => !conflicts.includes(id));
    expect(result.counts).toEqual({
      damaged: 238,
      changedSince: 12,
      deletedByIncident: 0,
      insertedByIncident: 0,
      insertedSince: 40,
      unchanged: 750,
      candidate: 0,
    });
    expect(result.planned).toEqual({ damaged: 238, changedSince: 12 });
    const plan = planRows(result.planFile);
    // Plans are in key order as text with COLLATE "C" ('100' before '12'), the order both sides are merged in.
    expect(plan.filter((r) => r.class === 'damaged').map((r) => r.key[0])).toEqual([...damaged].sort());
    expect(plan.filter((r) => r.class === 'changedSince').map((r) => r.key[0])).toEqual([...conflicts].sort());
    // The conflict deleted since is planned as an insert (expect null); the side-by-side sample shows all three versions.
    expect(plan.find((r) => r.key[0] === '48')!.expect).toBeNull();
    expect(result.samples.changedSince[0]).toMatchObject({
      key: { id: '12' },
      before: { status: 'pending', note: 'n12' },
      after: { status: 'canceled', note: 'n12' },
      now: { status: 'canceled', note: 'customer called back' },
    });
    // NULL stays null (not ''), text forms are pinned (UTC, ISO).
    expect(result.samples.damaged[0]).toEqual({
      key: { id: '100' },
      before: {
        id: '100',
        customer: 'c26',
        status: 'pending',
        amount: '125.00',
        note: null,
        placed_at: '2026-01-01 01:40:00+00',
        total_cents: '12500',
      },
      after: {
        id: '100',
        customer: 'c26',
        status: 'canceled',
        amount: '125.00',
        note: null,
        placed_at: '2026-01-01 01:40:00+00',
        total_cents: '12500',
      },
      now: {
        id: '100',
        customer: 'c26',
        status: 'canceled',
        amount: '125.00',
        note: null,
        placed_at: '2026-01-01 01:40:00+00',
        total_cents: '12500',
      },
    });

    // The SQL shown to approvers is the SQL apply runs, guard included.
    const sqlText = repairSqlText(await readTableShape(c, `${s}.orders`), {
      classes: ['damaged', 'deletedByIncident'],
      auditTable: 'repair_audit.lifeboat_repair_audit',
      planFile: result.planFile,
    });
    expect(sqlText).toContain('and t."placed_at"::text is not distinct from s.e5');
    expect(sqlText).toContain('set "customer" = s.r1::text,');
    expect(sqlText).not.toContain('"total_cents" = ');
    const nowRows = await rowsOf(`${s}.orders`);
    const paymentsBefore = await rowsOf(`${s}.payments`);
    const res = await applyPlan(c, { repairId: 'r-shop1', planFile: result.planFile, approvedBy: ['alice'] });
    expect(res).toMatchObject({
      alreadyApplied: false,
      updated: 238,
      inserted: 0,
      skipped: 0,
      skippedKeys: [],
      auditTable: '"repair_audit".lifeboat_repair_audit',
    });

    const expected = new Map(nowRows);
    for (const id of damaged) expected.set(id, before.get(id)!);
    const after = await rowsOf(`${s}.orders`);
    expect([...after.entries()]).toEqual([...expected.entries()]);
    expect(await rowsOf(`${s}.payments`)).toEqual(paymentsBefore);

    const again = await applyPlan(c, { repairId: 'r-shop1', planFile: result.planFile, approvedBy: ['bob'] });
    expect(again).toMatchObject({ alreadyApplied: true, updated: 238, inserted: 0, skipped: 0 });
    expect(await rowsOf(`${s}.orders`)).toEqual(after);
    const audit = await admin.query(
      `select repair_id, table_name, updated, inserted, skipped, classes, approved_by, applied_by from repair_audit.lifeboat_repair_audit where repair_id = 'r-shop1'`,
    );
    expect(audit.rows).toEqual([
      {
        repair_id: 'r-shop1',
        table_name: '"shop1"."orders"',
        updated: '238',
        inserted: '0',
        skipped: '0',
        classes: ['damaged', 'deletedByIncident'],
        approved_by: ['alice'],
        applied_by: ROLE,
      },
    ]);
  });

  it('repairs a DELETE by inserting the deleted rows back, and moves a sequence the incident reset forward, never back', async () => {
    const s = 'shop2';
    await freshSchema(s);
    const { c, before, result } = await incident(
      s,
      `delete from ${s}.orders where (status = 'shipped' and id > 500) or id > 990; select setval('${s}.orders_id_seq', 990)`,
      `update ${s}.orders set note = 'still here' where id = 1`,
    );
    const deleted = [...before.keys()].filter((id) => Number(id) > 990 || (Number(id) > 500 && Number(id) % 4 === 2));
    expect(result.counts).toMatchObject({
      damaged: 0,
      changedSince: 0,
      deletedByIncident: deleted.length,
      unchanged: 1000 - deleted.length,
    });
    const nowRows = await rowsOf(`${s}.orders`);
    const res = await applyPlan(c, { repairId: 'r-shop2', planFile: result.planFile, approvedBy: ['alice'] });
    expect(res).toMatchObject({
      updated: 0,
      inserted: deleted.length,
      skipped: 0,
      sequencesAdvanced: ['shop2.orders_id_seq'],
    });
    const expected = new Map(
      [...before.keys()].map((id) => [id, deleted.includes(id) ? before.get(id)! : nowRows.get(id)!]),
    );
    expect([...(await rowsOf(`${s}.orders`)).entries()]).toEqual([...expected.entries()]);
    const nextId = await admin.query<{ id: string }>(
      `insert into ${s}.orders (customer, status, amount) values ('after', 'paid', 1) returning id::text as id`,
    );
    expect(nextId.rows[0]!.id).toBe('1001');
  });

  it('refuses a table without a primary key, naming it and what to do', async () => {
    await admin.query(`create schema shop3; create table shop3.ledger (account text, amount numeric)`);
    await admin.query(repairGrants(['shop3.ledger']));
    const c = await asRole();
    const err = await readTableShape(c, 'shop3.ledger').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INPUT_INVALID' });
    expect((err as Error).message).toBe(
      'table "shop3"."ledger" has no primary key: a repair matches the rows of the restored copy and of the primary by primary key, and cannot tell which row is which without one\n' +
        'HINT: add a primary key on the column(s) that identify a row (ALTER TABLE "shop3"."ledger" ADD PRIMARY KEY (...)), then start the repair again\n' +
        'HINT: or repair this table by hand from the restored copy (lifeboat drill --keep leaves one to read from)',
    );
    await expect(
      snapshotTable(c, { table: 'shop3.ledger', file: path.join(dir, 'ledger.jsonl') }),
    ).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    // The refused read left no transaction open on the client.
    expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('skips and reports a row changed after classify, and one changed while apply waits for its lock, never overwriting them', async () => {
    const s = 'shop4';
    await freshSchema(s);
    const { c, before, result } = await incident(
      s,
      `update ${s}.orders set status = 'canceled' where status = 'pending'`,
      `select 1`,
    );
    expect(result.counts.damaged).toBe(250);
    // Changed after classify, before apply.
    await admin.query(`update ${s}.orders set note = 'edited after approval' where id = 8`);
    // Changed by a transaction that holds the row's lock while apply runs: apply waits, then re-checks the committed row.
    const holder = new Client({ ...pg.connection, database: 'shop' });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`update ${s}.orders set status = 'refunded' where id = 12`);
      const applyClient = await asRole('lifeboat-repair-apply');
      const applying = applyPlan(applyClient, {
        repairId: 'r-shop4',
        planFile: result.planFile,
        approvedBy: ['alice'],
      });
      await waitFor('apply to wait for the held row lock', async () => {
        const { rows } = await admin.query(
          `select 1 from pg_stat_activity where application_name = 'lifeboat-repair-apply' and wait_event_type = 'Lock'`,
        );
        return rows.length === 1 ? true : undefined;
      });
      await holder.query('commit');
      const res = await applying;
      expect(res).toMatchObject({ updated: 248, inserted: 0, skipped: 2, skippedKeys: [['12'], ['8']] });
    } finally {
      await holder.end();
    }
    const rows = await admin.query<{ id: string; status: string; note: string | null }>(
      `select o.id::text, o.status, o.note from ${s}.orders o where o.id in (8, 12, 16) order by o.id`,
    );
    expect(rows.rows).toEqual([
      { id: '8', status: 'canceled', note: 'edited after approval' },
      { id: '12', status: 'refunded', note: 'n12' },
      { id: '16', status: 'pending', note: '' },
    ]);
    expect(before.get('16')).toBe((await rowsOf(`${s}.orders`)).get('16'));
    void c;
  });

  it('without an after target shows every difference as a candidate and plans nothing as safe', async () => {
    const s = 'shop5';
    await freshSchema(s, 100);
    const { c, result } = await incident(
      s,
      `update ${s}.orders set status = 'canceled' where status = 'pending'`,
      `insert into ${s}.orders (customer, status, amount) values ('new', 'paid', 1); delete from ${s}.orders where id = 3`,
      { withAfter: false },
    );
    expect(result.counts).toEqual({
      damaged: 0,
      changedSince: 0,
      deletedByIncident: 0,
      insertedByIncident: 0,
      insertedSince: 1,
      unchanged: 74,
      candidate: 26,
    });
    const res = await applyPlan(c, { repairId: 'r-shop5', planFile: result.planFile, approvedBy: ['alice'] });
    expect(res).toMatchObject({ updated: 0, inserted: 0, skipped: 0 });
  });

  it('refuses the whole repair when a restored row refers to a parent deleted since: SQL_FAILED, nothing applied, no audit row', async () => {
    const s = 'shop7';
    await freshSchema(s, 20);
    await admin.query(`insert into ${s}.payments (order_id, amount) select g, g from generate_series(1, 10) g`);
    await admin.query(repairGrants([`${s}.payments`]));
    const c = await asRole();
    const b = await snapshotTable(c, { table: `${s}.payments`, file: path.join(dir, `${s}-B.jsonl`) });
    await admin.query(`delete from ${s}.payments where order_id <= 5`);
    const a = await snapshotTable(c, { table: `${s}.payments`, file: path.join(dir, `${s}-A.jsonl`) });
    // A legitimate write since: order 5, now without payments, is deleted.
    await admin.query(`delete from ${s}.orders where id = 5`);
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, `${s}.payments`),
      planFile: path.join(dir, `${s}-plan.jsonl`),
    });
    expect(result.counts).toMatchObject({ deletedByIncident: 5, unchanged: 5 });
    const err = await applyPlan(c, { repairId: 'r-shop7', planFile: result.planFile, approvedBy: ['alice'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SQL_FAILED' });
    expect((err as Error).message).toBe(
      'repair r-shop7 of "shop7"."payments" failed and was rolled back, nothing applied: insert or update on table "payments" violates foreign key constraint "payments_order_id_fkey" (Key (order_id)=(5) is not present in table "orders".)\n' +
        'HINT: foreign key payments_order_id_fkey: a restored row refers to a row deleted since (or a row deleted since refers to it); restore the parent rows first (repair that table too) or exclude these keys',
    );
    expect((await admin.query(`select count(*)::int as n from ${s}.payments`)).rows).toEqual([{ n: 5 }]);
    expect(
      (
        await admin.query(
          `select count(*)::int as n from repair_audit.lifeboat_repair_audit where repair_id = 'r-shop7'`,
        )
      ).rows,
    ).toEqual([{ n: 0 }]);
  });

  it('merges composite text keys in the same order on every side whatever the database collation, with a where predicate run read-only', async () => {
    const s = 'shop8';
    // counter is the predicate's, not the repair's: its grant lets nextval reach the read-only check.
    await admin.query(`create schema ${s};
      create table ${s}.tags (owner text, n int, label text, primary key (owner, n));
      create sequence ${s}.counter;
      grant usage on schema ${s} to ${ROLE}; grant usage, select, update on sequence ${s}.counter to ${ROLE};
      insert into ${s}.tags select o, n, o || '-' || n from unnest(array['a', 'B', 'é', 'Z', '😀', '�', '10', '9', 'ß', 'z z', 'Ä']) o, generate_series(1, 4) n;`);
    await admin.query(repairGrants([`${s}.tags`]));
    const c = await asRole();
    const where = 'n < 3';
    const b = await snapshotTable(c, { table: `${s}.tags`, where, file: path.join(dir, `${s}-B.jsonl`) });
    expect(b.rows).toBe(22);
    await admin.query(`update ${s}.tags set label = 'x' where owner in ('é', '😀', 'B', 'ß')`);
    const a = await snapshotTable(c, { table: `${s}.tags`, where, file: path.join(dir, `${s}-A.jsonl`) });
    await admin.query(`update ${s}.tags set label = 'y' where owner = 'ß' and n = 1`);
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, `${s}.tags`, { where }),
      planFile: path.join(dir, `${s}-plan.jsonl`),
    });
    expect(result.counts).toMatchObject({
      damaged: 7,
      changedSince: 1,
      unchanged: 14,
      insertedSince: 0,
      deletedByIncident: 0,
    });
    const res = await applyPlan(c, { repairId: 'r-shop8', planFile: result.planFile, approvedBy: ['alice'] });
    expect(res).toMatchObject({ updated: 7, skipped: 0 });
    const { rows } = await admin.query<{ owner: string; n: number; label: string }>(
      `select owner, n, label from ${s}.tags where label <> owner || '-' || n order by owner collate "C", n`,
    );
    // Rows outside the predicate (n >= 3) are not the repair's; the conflict stays.
    expect(rows).toEqual([
      { owner: 'B', n: 3, label: 'x' },
      { owner: 'B', n: 4, label: 'x' },
      { owner: 'ß', n: 1, label: 'y' },
      { owner: 'ß', n: 3, label: 'x' },
      { owner: 'ß', n: 4, label: 'x' },
      { owner: 'é', n: 3, label: 'x' },
      { owner: 'é', n: 4, label: 'x' },
      { owner: '😀', n: 3, label: 'x' },
      { owner: '😀', n: 4, label: 'x' },
    ]);
    // The predicate is operator SQL run inside a READ ONLY transaction: one that writes is refused.
    const err = await snapshotTable(c, {
      table: `${s}.tags`,
      where: `nextval('${s}.counter') > 0`,
      file: path.join(dir, `${s}-W.jsonl`),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INPUT_INVALID' });
    expect((err as Error).message).toContain('cannot execute nextval() in a read-only transaction');
    expect((await admin.query(`select last_value::int as v, is_called from ${s}.counter`)).rows).toEqual([
      { v: 1, is_called: false },
    ]);
  });

  it('fails the whole apply when a row stays locked past lock_timeout, and the same repair id applies once the lock is gone', async () => {
    const s = 'shop9';
    await freshSchema(s, 40);
    const { c, result } = await incident(
      s,
      `update ${s}.orders set status = 'canceled' where status = 'pending'`,
      `select 1`,
    );
    const holder = new Client({ ...pg.connection, database: 'shop' });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(`select 1 from ${s}.orders where id = 20 for update`);
      const err = await applyPlan(c, {
        repairId: 'r-shop9',
        planFile: result.planFile,
        approvedBy: ['alice'],
        lockTimeoutMs: 300,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SQL_FAILED' });
      expect((err as Error).message).toContain(
        'HINT: a row or table lock was not granted within lock_timeout (300 ms)',
      );
      expect((await admin.query(`select count(*)::int as n from ${s}.orders where status = 'pending'`)).rows).toEqual([
        { n: 0 },
      ]);
      await holder.query('rollback');
    } finally {
      await holder.end();
    }
    const res = await applyPlan(c, {
      repairId: 'r-shop9',
      planFile: result.planFile,
      approvedBy: ['alice'],
      lockTimeoutMs: 300,
    });
    expect(res).toMatchObject({ alreadyApplied: false, updated: 10, skipped: 0 });
  });

  it('a session ended during apply commits nothing, and the retry with the same repair id applies once', async () => {
    const s = 'shop10';
    await freshSchema(s, 40);
    const { result } = await incident(
      s,
      `update ${s}.orders set status = 'canceled' where status = 'pending'`,
      `select 1`,
    );
    const holder = new Client({ ...pg.connection, database: 'shop' });
    await holder.connect();
    const doomed = await asRole('lifeboat-repair-doomed');
    doomed.on('error', () => undefined);
    try {
      await holder.query('begin');
      await holder.query(`select 1 from ${s}.orders where id = 40 for update`);
      const applying = applyPlan(doomed, {
        repairId: 'r-shop10',
        planFile: result.planFile,
        approvedBy: ['alice'],
      }).catch((e: unknown) => e);
      // Held inside the restoring UPDATE (rows before id 40 already written, uncommitted), then the session is ended.
      const waiting = await waitFor('apply to wait for the held row lock', async () => {
        const { rows } = await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity where application_name = 'lifeboat-repair-doomed' and wait_event_type = 'Lock'`,
        );
        return rows.length === 1 ? rows : undefined;
      });
      await admin.query('select pg_terminate_backend($1)', [waiting[0]!.pid]);
      const err = await applying;
      expect(err).toMatchObject({ code: 'PG_UNREACHABLE' });
      expect((err as Error).message).toContain('HINT: apply again with the same repair id');
      await holder.query('rollback');
    } finally {
      await holder.end();
    }
    expect((await admin.query(`select count(*)::int as n from ${s}.orders where status = 'pending'`)).rows).toEqual([
      { n: 0 },
    ]);
    expect(
      (
        await admin.query(
          `select count(*)::int as n from repair_audit.lifeboat_repair_audit where repair_id = 'r-shop10'`,
        )
      ).rows,
    ).toEqual([{ n: 0 }]);
    const retry = await asRole();
    expect(
      await applyPlan(retry, { repairId: 'r-shop10', planFile: result.planFile, approvedBy: ['alice'] }),
    ).toMatchObject({ alreadyApplied: false, updated: 10 });
    expect(
      await applyPlan(retry, { repairId: 'r-shop10', planFile: result.planFile, approvedBy: ['alice'] }),
    ).toMatchObject({ alreadyApplied: true, updated: 10 });
    expect((await admin.query(`select count(*)::int as n from ${s}.orders where status = 'pending'`)).rows).toEqual([
      { n: 10 },
    ]);
  });

  it('measures classify and apply on 200k rows with about 3k damaged (printed, not asserted)', async () => {
    const s = 'shop6';
    await admin.query(`create schema ${s};
      create table ${s}.orders (id bigserial primary key, customer text not null, status text not null, amount numeric(10,2) not null, note text);
      insert into ${s}.orders (customer, status, amount, note) select 'c' || (g % 997), case when g % 64 = 0 then 'pending' else 'paid' end, g % 1000, 'note ' || g from generate_series(1, ${MEASURE_ROWS}) g;
      analyze ${s}.orders;`);
    await admin.query(repairGrants([`${s}.orders`]));
    const c = await asRole();
    const t0 = Date.now();
    const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(dir, `${s}-B.jsonl`) });
    const t1 = Date.now();
    await admin.query(`update ${s}.orders set status = 'canceled' where status = 'pending'`);
    const a = await snapshotTable(c, { table: `${s}.orders`, file: path.join(dir, `${s}-A.jsonl`) });
    await admin.query(
      `update ${s}.orders set note = 'edited' where id % 6400 = 0; insert into ${s}.orders (customer, status, amount) select 'n', 'paid', 1 from generate_series(1, 1000)`,
    );
    const t2 = Date.now();
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, `${s}.orders`),
      planFile: path.join(dir, `${s}-plan.jsonl`),
    });
    const t3 = Date.now();
    const res = await applyPlan(c, { repairId: 'r-shop6', planFile: result.planFile, approvedBy: ['alice'] });
    const t4 = Date.now();
    const pending = Math.floor(MEASURE_ROWS / 64);
    const edited = Math.floor(MEASURE_ROWS / 6400);
    expect(result.counts).toMatchObject({ damaged: pending - edited, changedSince: edited, insertedSince: 1000 });
    expect(res).toMatchObject({ updated: pending - edited, skipped: 0 });
    console.log(
      `repair measure (loaded machine, ${MEASURE_ROWS} rows): snapshot ${t1 - t0} ms, classify (reading the live table) ${t3 - t2} ms, apply ${t4 - t3} ms (transaction ${res.transactionMs} ms, rows locked ${res.lockedMs} ms), ${res.updated} rows restored`,
    );
  });
});
