// What a repair needs of the runbook's role is exactly what `lifeboat grants
// --repair-tables` prints (src/privileges/repair-needs.ts): a role given only
// CONNECT and that repairs a table, and each piece taken away fails the
// repair with PRIVILEGE_MISSING naming it, is named alone by the check, and
// the check's fix makes the repair work again. Real PostgreSQL 15.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingNeeds } from '../../src/privileges/check';
import { repairNeeds } from '../../src/privileges/repair-needs';
import { applyPlan } from '../../src/repair/apply';
import { classify } from '../../src/repair/classify';
import { readRows, readSnapshot, snapshotTable } from '../../src/repair/snapshot';
import { AUDIT_SCHEMA, REPAIR_ROLE, repairGrants, startRepairDb, type RepairDb } from '../harness/repair-db';

let db: RepairDb;
beforeAll(async () => {
  db = await startRepairDb();
});
afterAll(async () => {
  await db?.close();
});

describe('repair grants', () => {
  it("a role with only CONNECT and the repair grants repairs a table; each piece taken away fails the repair naming it, and the check's fix restores it", async () => {
    const s = 'g1';
    await db.ordersSchema(s, 100);
    const c = await db.asRole();
    const needs = () => repairNeeds(REPAIR_ROLE, 'shop', [`${s}.orders`], AUDIT_SCHEMA);
    expect(await missingNeeds(c, needs(), 'shop')).toEqual([]);

    const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-B.jsonl`) });
    const before = await db.rowsOf(`${s}.orders`);
    // The incident: pending orders canceled, the last ten deleted and the id sequence set back (so apply moves it forward).
    await db.admin.query(`update ${s}.orders set status = 'canceled' where status = 'pending';
      delete from ${s}.orders where id > 90; select setval('${s}.orders_id_seq', 90)`);
    const a = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-A.jsonl`) });
    // Since: a column with its own sequence (a deleted row inserted back takes nextval from it); grants run again after it, as the README says.
    await db.admin.query(`alter table ${s}.orders add column ticket bigserial`);
    await db.admin.query(repairGrants([`${s}.orders`]));
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, `${s}.orders`),
      planFile: path.join(db.dir, `${s}-plan.jsonl`),
    });
    expect(result.counts).toMatchObject({ damaged: 22, deletedByIncident: 10, unchanged: 68 });
    expect(result.onlyOnPrimary).toEqual(['ticket']);

    const pieces = [
      {
        revoke: `revoke temporary on database shop from ${REPAIR_ROLE}`,
        key: 'repair:temporary:shop',
        refused: 'permission denied to create temporary tables in database "shop"',
      },
      {
        revoke: `revoke create on schema ${AUDIT_SCHEMA} from ${REPAIR_ROLE}`,
        key: `repair:audit-schema:${AUDIT_SCHEMA}`,
        refused: `permission denied for schema ${AUDIT_SCHEMA}`,
      },
      {
        revoke: `revoke select on ${s}.orders from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for table orders',
      },
      {
        revoke: `revoke update on ${s}.orders from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for table orders',
      },
      {
        revoke: `revoke insert on ${s}.orders from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for table orders',
      },
      {
        revoke: `revoke select on sequence ${s}.orders_id_seq from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for sequence orders_id_seq',
      },
      {
        revoke: `revoke update on sequence ${s}.orders_id_seq from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for sequence orders_id_seq',
      },
      // nextval for the ticket of a row inserted back: UPDATE allows it as USAGE would, so USAGE is not granted.
      {
        revoke: `revoke update on sequence ${s}.orders_ticket_seq from ${REPAIR_ROLE}`,
        key: `repair:table:${s}.orders`,
        refused: 'permission denied for sequence orders_ticket_seq',
      },
    ];
    const untouched = await db.rowsOf(`${s}.orders`);
    for (const [i, p] of pieces.entries()) {
      await db.admin.query(p.revoke);
      const err = await applyPlan(c, {
        repairId: `g-${i}`,
        planFile: result.planFile,
        approvedBy: ['alice'],
        auditSchema: AUDIT_SCHEMA,
      }).catch((e: unknown) => e);
      expect(err, p.revoke).toMatchObject({ code: 'PRIVILEGE_MISSING' });
      expect((err as Error).message, p.revoke).toContain(p.refused);
      const missing = await missingNeeds(c, needs(), 'shop');
      expect(
        missing.map((m) => m.key),
        p.revoke,
      ).toEqual([p.key]);
      await db.admin.query(missing[0]!.fix);
      expect(await missingNeeds(c, needs(), 'shop'), p.revoke).toEqual([]);
    }
    expect(await db.rowsOf(`${s}.orders`)).toEqual(untouched);

    const res = await applyPlan(c, {
      repairId: 'g-ok',
      planFile: result.planFile,
      approvedBy: ['alice'],
      auditSchema: AUDIT_SCHEMA,
    });
    expect(res).toMatchObject({ updated: 22, inserted: 10, skipped: 0, sequencesAdvanced: [`${s}.orders_id_seq`] });
    // Row by row: every row as before the incident, plus its ticket (the rows inserted back got new ones).
    const after = await db.rowsOf(`${s}.orders`);
    const withoutTicket = (j: string) => {
      const { ticket, ...rest } = JSON.parse(j) as Record<string, unknown>;
      expect(ticket).toEqual(expect.any(Number));
      return rest;
    };
    expect([...after].map(([id, j]) => [id, withoutTicket(j)])).toEqual(
      [...before].map(([id, j]) => [id, JSON.parse(j) as unknown]),
    );
  });
});
