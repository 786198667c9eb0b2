// A PostgreSQL 15 primary for the repair engine's tests and its benchmark
// (bench/repair.ts; bench/ may not import test/): database `shop`, a role
// with exactly what a repair needs: CONNECT, and what `lifeboat grants
// --repair-tables` prints (src/privileges/repair-needs.ts), nothing by
// default (PUBLIC loses CONNECT and TEMP on the database; the audit table's
// schema, repair_audit, is the role's search_path), an orders
// table per test schema, and the test's own view of a table's rows
// (to_jsonb, independent of the engine's text forms).
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { repairNeeds } from '../privileges/repair-needs';
import { classify, type ClassifyResult } from '../repair/classify';
import { readRows, readSnapshot, snapshotTable } from '../repair/snapshot';
import { startPrimary, type Primary } from './scratch-primary';

export const REPAIR_ROLE = 'lifeboat_repair';
export const AUDIT_SCHEMA = 'repair_audit';

/** The SQL `lifeboat grants --repair-tables` runs for these tables (audit table in repair_audit). */
export function repairGrants(tables: string[]): string {
  return repairNeeds(REPAIR_ROLE, 'shop', tables, AUDIT_SCHEMA)
    .flatMap((n) => n.grant)
    .join('\n');
}

export interface RepairDb {
  pg: Primary;
  /** Superuser, database shop. */
  admin: Client;
  /** A temporary directory for snapshots and plans. */
  dir: string;
  asRole(appName?: string): Promise<Client>;
  /** Every row as its jsonb text (keys sorted by jsonb, not by column position), by id. */
  rowsOf(table: string): Promise<Map<string, string>>;
  /** Schema `s` with an orders table of `rows` rows (note NULL, '' or text), its repair grants given to the role. */
  ordersSchema(s: string, rows?: number): Promise<void>;
  /**
   * Two tables one repair restores together: orders (ordersSchema, 40 rows)
   * and payments (one per order, the order's id, NOT DEFERRABLE foreign key to
   * orders). The incident deletes the orders of ids 8, 16, ... 40 with their
   * payments and cancels the other pending orders (4, 12, ... 36); then a
   * legitimate new order 41 with its payment 41. Both tables' plans, and the
   * rows expected after the repair and before it (now).
   */
  ordersAndPayments(s: string): Promise<TwoTableIncident>;
  close(): Promise<void>;
}

export interface TwoTableIncident {
  orders: ClassifyResult;
  payments: ClassifyResult;
  expected: { orders: Map<string, string>; payments: Map<string, string> };
  now: { orders: Map<string, string>; payments: Map<string, string> };
}

export async function startRepairDb(): Promise<RepairDb> {
  const pg = await startPrimary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-repair-'));
  await pg.query('create database shop');
  const admin = new Client({ ...pg.connection, database: 'shop' });
  await admin.connect();
  await admin.query(`
    create role ${REPAIR_ROLE} login;
    revoke connect, temporary on database shop from public;
    grant connect on database shop to ${REPAIR_ROLE};
    create schema ${AUDIT_SCHEMA};
    alter role ${REPAIR_ROLE} set search_path = ${AUDIT_SCHEMA};`);
  const clients: Client[] = [];
  const db: RepairDb = {
    pg,
    admin,
    dir,
    async asRole(appName = 'lifeboat-repair-test') {
      const c = new Client({ ...pg.connection, user: REPAIR_ROLE, database: 'shop', application_name: appName });
      await c.connect();
      clients.push(c);
      return c;
    },
    async rowsOf(table) {
      const { rows } = await admin.query<{ id: string; j: string }>(
        `select id::text as id, to_jsonb(t)::text as j from ${table} t order by id`,
      );
      return new Map(rows.map((r) => [r.id, r.j]));
    },
    async ordersSchema(s, rows = 1000) {
      await admin.query(`
        create schema ${s};
        create table ${s}.orders (id bigserial primary key, customer text not null, status text not null,
          amount numeric(10,2) not null, note text, placed_at timestamptz not null default now());
        insert into ${s}.orders (customer, status, amount, note, placed_at)
          select 'c' || (g % 37), (array['pending','paid','shipped','canceled'])[g % 4 + 1], (g * 1.25)::numeric(10,2),
                 case when g % 5 = 0 then null when g % 5 = 1 then '' else 'n' || g end,
                 timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
            from generate_series(1, ${rows}) g;`);
      await admin.query(repairGrants([`${s}.orders`]));
    },
    async ordersAndPayments(s) {
      await db.ordersSchema(s, 40);
      await admin.query(`
        create table ${s}.payments (id serial primary key, order_id bigint not null references ${s}.orders(id), amount numeric(10,2) not null);
        insert into ${s}.payments (id, order_id, amount) select id, id, amount from ${s}.orders;
        select setval('${s}.payments_id_seq', 40);`);
      await admin.query(repairGrants([`${s}.payments`]));
      const c = await db.asRole();
      const tables = ['orders', 'payments'] as const;
      const snap = async (label: string) => {
        const out = [];
        for (const t of tables)
          out.push(await snapshotTable(c, { table: `${s}.${t}`, file: path.join(dir, `${s}-${t}-${label}.jsonl`) }));
        return out;
      };
      const b = await snap('B');
      const before = { orders: await db.rowsOf(`${s}.orders`), payments: await db.rowsOf(`${s}.payments`) };
      await admin.query(`
        delete from ${s}.payments where order_id % 8 = 0;
        delete from ${s}.orders where id % 8 = 0;
        update ${s}.orders set status = 'canceled' where status = 'pending';`);
      const a = await snap('A');
      await admin.query(`
        insert into ${s}.orders (customer, status, amount) values ('later', 'paid', 1);
        insert into ${s}.payments (order_id, amount) values (41, 1);`);
      const plans = [];
      for (const [i, t] of tables.entries()) {
        plans.push(
          await classify({
            before: await readSnapshot(b[i]!.file),
            after: await readSnapshot(a[i]!.file),
            now: await readRows(c, `${s}.${t}`),
            planFile: path.join(dir, `${s}-${t}-plan.jsonl`),
          }),
        );
      }
      const now = { orders: await db.rowsOf(`${s}.orders`), payments: await db.rowsOf(`${s}.payments`) };
      const orders = new Map(now.orders);
      const payments = new Map(now.payments);
      for (let id = 4; id <= 40; id += 4) orders.set(String(id), before.orders.get(String(id))!);
      for (let id = 8; id <= 40; id += 8) payments.set(String(id), before.payments.get(String(id))!);
      // In rowsOf's order (by id as text: '1', '10', '11', ... '9').
      const byId = (m: Map<string, string>) => new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      const expected = { orders: byId(orders), payments: byId(payments) };
      return { orders: plans[0]!, payments: plans[1]!, expected, now };
    },
    async close() {
      for (const c of clients) await c.end().catch(() => undefined);
      await admin.end().catch(() => undefined);
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return db;
}
