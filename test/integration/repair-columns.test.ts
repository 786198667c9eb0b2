// The repair engine when the table's columns changed between the copy and
// now (issue 14: "a dropped column's data (restore the values into a
// re-added column)"), on a real PostgreSQL 15 as a role with only a repair's
// grants. As in repair-engine.test.ts, B and A are snapshots of the primary
// taken at the moments a restored copy would stand for.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan } from '../../src/repair/apply';
import { classify } from '../../src/repair/classify';
import { repairSqlText } from '../../src/repair/sql';
import { readRows, readSnapshot, snapshotTable } from '../../src/repair/snapshot';
import { startRepairDb, type RepairDb } from '../harness/repair-db';

let db: RepairDb;
beforeAll(async () => {
  db = await startRepairDb();
});
afterAll(async () => {
  await db?.close();
});

const parsed = (m: Map<string, string>) =>
  new Map([...m].map(([k, v]) => [k, JSON.parse(v) as Record<string, unknown>]));

describe('repair engine, columns changed since the copy', () => {
  it('restores the values of a column the incident dropped into the column added back since, leaving a column added since and every legitimate write alone', async () => {
    const s = 'col1';
    await db.ordersSchema(s);
    const c = await db.asRole();
    const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-B.jsonl`) });
    const before = parsed(await db.rowsOf(`${s}.orders`));
    // The incident: the column and its values are gone. A is right after it.
    await db.admin.query(`alter table ${s}.orders drop column note`);
    const a = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-A.jsonl`) });
    // The column is added back (empty, at the end), then legitimate writes: a new column, new orders, edits.
    await db.admin.query(`alter table ${s}.orders add column note text`);
    const aReAdded = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-A2.jsonl`) });
    await db.admin.query(`
      alter table ${s}.orders add column channel text not null default 'web';
      insert into ${s}.orders (customer, status, amount, note) select 'new' || g, 'paid', g, 'new note ' || g from generate_series(1, 5) g;
      update ${s}.orders set note = 'called back' where id in (2, 3);
      update ${s}.orders set status = 'paid' where id = 7;
      update ${s}.orders set channel = 'phone' where id = 8;`);
    const nowRows = parsed(await db.rowsOf(`${s}.orders`));

    // NULL notes in B (every 5th row) equal the added-back column's NULL: unchanged. '' is not NULL: damaged.
    const conflicts = ['2', '3', '7'];
    const damaged = [...before.keys()].filter((id) => before.get(id)!.note !== null && !conflicts.includes(id));
    expect(damaged.length).toBe(797);
    const expectedCounts = {
      damaged: 797,
      changedSince: 3,
      deletedByIncident: 0,
      insertedByIncident: 0,
      insertedSince: 5,
      unchanged: 200,
      candidate: 0,
    };

    // The same classes whether the after target is before the column came back (absent: NULL) or after.
    const withAbsent = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(a.file),
      now: await readRows(c, `${s}.orders`),
      planFile: path.join(db.dir, `${s}-plan-absent.jsonl`),
    });
    expect(withAbsent.counts).toEqual(expectedCounts);
    expect(withAbsent.absentAfter).toEqual(['note']);
    const result = await classify({
      before: await readSnapshot(b.file),
      after: await readSnapshot(aReAdded.file),
      now: await readRows(c, `${s}.orders`),
      planFile: path.join(db.dir, `${s}-plan.jsonl`),
      sampleSize: 3,
    });
    expect(result.counts).toEqual(expectedCounts);
    expect(result.absentAfter).toEqual([]);
    expect(result.onlyOnPrimary).toEqual(['channel']);
    expect(result.shape.columns.map((col) => col.name)).toEqual([
      'id',
      'customer',
      'status',
      'amount',
      'note',
      'placed_at',
    ]);
    expect(result.samples.changedSince[0]).toMatchObject({
      key: { id: '2' },
      before: { note: 'n2' },
      after: { note: null },
      now: { note: 'called back' },
    });
    // The SQL shown names the column by name and never touches the column added since.
    const sqlText = repairSqlText(result.shape, {
      classes: ['damaged'],
      auditTable: 'repair_audit.lifeboat_repair_audit',
      planFile: result.planFile,
    });
    expect(sqlText).toContain('"note" = s.r4::text');
    expect(sqlText).not.toContain('channel');

    const res = await applyPlan(c, { repairId: 'r-col1', planFile: result.planFile, approvedBy: ['alice'] });
    expect(res).toMatchObject({ alreadyApplied: false, updated: 797, inserted: 0, skipped: 0 });
    const expected = new Map(
      [...nowRows].map(([id, row]) => [id, damaged.includes(id) ? { ...row, note: before.get(id)!.note } : row]),
    );
    const after = parsed(await db.rowsOf(`${s}.orders`));
    expect([...after.entries()]).toEqual([...expected.entries()]);
    // Row 8: its note is back, its legitimate channel stays.
    expect(after.get('8')).toMatchObject({ note: 'n8', channel: 'phone', status: 'pending' });
  });

  it('refuses, naming the column, one the copy has and the primary does not or has with another type, in classify and again at apply', async () => {
    const s = 'col2';
    await db.ordersSchema(s, 20);
    const c = await db.asRole();
    const b = await snapshotTable(c, { table: `${s}.orders`, file: path.join(db.dir, `${s}-B.jsonl`) });
    await db.admin.query(`alter table ${s}.orders drop column note`);
    const classifyNow = async (plan: string) =>
      classify({
        before: await readSnapshot(b.file),
        now: await readRows(c, `${s}.orders`),
        planFile: path.join(db.dir, `${s}-${plan}.jsonl`),
      });

    const dropped = await classifyNow('dropped').catch((e: unknown) => e);
    expect(dropped).toMatchObject({ code: 'INPUT_INVALID' });
    expect((dropped as Error).message).toBe(
      'table "col2"."orders" on the live primary does not match the copy at the before target: column note text not on the live primary\n' +
        'HINT: to restore the values of a dropped column, add it back on the primary (ALTER TABLE "col2"."orders" ADD COLUMN "note" text), then start the repair again: its values are restored into it',
    );
    // The refusal ended the live read's transaction: the client is usable.
    expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);

    await db.admin.query(`alter table ${s}.orders add column note varchar(20)`);
    const retyped = await classifyNow('retyped').catch((e: unknown) => e);
    expect((retyped as Error).message).toBe(
      'table "col2"."orders" on the live primary does not match the copy at the before target: column note is text on the copy, character varying(20) on the live primary\n' +
        'HINT: values are compared and restored as text in the column\'s type: give the column on the primary the copy\'s type (ALTER TABLE "col2"."orders" ALTER COLUMN "note" TYPE text), or restore it by hand from the copy',
    );

    // Classified against the column added back right, then dropped again before apply: apply refuses, nothing written.
    await db.admin.query(`alter table ${s}.orders drop column note; alter table ${s}.orders add column note text`);
    const result = await classifyNow('plan');
    expect(result.counts).toMatchObject({ candidate: 16, unchanged: 4 });
    await db.admin.query(`alter table ${s}.orders drop column note`);
    const untouched = await db.rowsOf(`${s}.orders`);
    const atApply = await applyPlan(c, {
      repairId: 'r-col2',
      planFile: result.planFile,
      approvedBy: ['alice'],
      classes: ['candidate'],
    }).catch((e: unknown) => e);
    expect(atApply).toMatchObject({ code: 'INPUT_INVALID' });
    expect((atApply as Error).message).toContain(
      'table "col2"."orders" on the live primary at apply does not match the copy at the before target: column note text not on the live primary at apply',
    );
    expect(await db.rowsOf(`${s}.orders`)).toEqual(untouched);
  });
});
