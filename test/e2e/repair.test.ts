// The seed's incident repaired without failover, on real services
// (PostgreSQL 15 archiving to a file:// repository, Temporal, Redis, a real
// worker): a bad `UPDATE orders SET status = 'canceled' WHERE status =
// 'pending'` (with, in the same transaction, a DELETE of a few orders)
// between two restore points, then legitimate writes (new orders,
// some cancelled orders edited again, another table written). The repair
// runs as a non-superuser role with only the grants a repair needs, in a
// schema that is not the demo's; approve-repair is given through the CLI
// (the decide update, then the signal the UI sends). Afterwards the orders
// are compared row by row with what is expected: exactly the damaged rows
// restored and the deleted ones re-inserted, the conflicts left as they are,
// a row written while the diff waited for approval skipped and reported,
// every new order and the other table's writes kept; a table without a
// primary key refused in preflight; the repaired keys' cache entries gone, others kept;
// the audit row written; the copy and the work files gone.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { grantsSql } from '../../src/privileges/grants';
import { openRepository } from '../../src/repository';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { startRedis } from '../harness/redis';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const MAIN = path.resolve(__dirname, '../../dist/src/cli/main.js');
const ROLE = 'lifeboat_repairer';
const runbooksDir = postgresTempDir('runbooks');
const cleanups: Cleanups = [];
beforeAll(() => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

async function lifeboat(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [MAIN, ...args], {
      env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), NO_COLOR: '1', LIFEBOAT_UI_URL: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('repairFromPointInTime on real services', () => {
  it('restores exactly the rows the bad UPDATE damaged, leaves the conflicts, keeps every legitimate write', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const name = `repair-${process.pid}`;
    const host = `repair${process.pid}`;
    const tc = await startTestCluster({
      name,
      kind: 'file',
      runbooksDir,
      host,
      runbook: { redisUrlEnv: 'REPAIR_E2E_REDIS_URL', approvers: ['alice', 'bob', 'carol'] },
    });
    cleanups.push(() => tc.stop());
    process.env.REPAIR_E2E_REDIS_URL = redis.url;
    const pg = tc.pg;

    // The application's schema (not the demo's), and the role a repair runs as, with the grants it needs: in the backup, so the copy has them too.
    await pg.query(`
      create schema shop;
      create table shop.customers (id int primary key, name text not null, tier text not null);
      create table shop.orders (id bigserial primary key, customer_id int not null references shop.customers(id), status text not null,
        amount numeric(10,2) not null, note text, placed_at timestamptz not null default '2026-01-01 00:00+00');
      insert into shop.customers select g, 'customer ' || g, 'basic' from generate_series(1, 20) g;
      insert into shop.orders (customer_id, status, amount, note)
        select g % 20 + 1, (array['pending','paid','shipped','canceled'])[g % 4 + 1], g * 1.5, case when g % 3 = 0 then null else 'n' || g end
          from generate_series(1, 400) g;
      create role ${ROLE} login;`);
    // The runbook connects as that role; this application has no gates; its cache keys are shop:orders:<id>.
    const yaml = readFileSync(tc.runbookFile, 'utf8')
      .replace('user: postgres', `user: ${ROLE}`)
      .replace(/\ngates:\n(  .*\n)+/, '\n')
      .replace('from orders where', 'from shop.orders where')
      .replace('"orders:*"', '"shop:orders:{id}"');
    writeFileSync(tc.runbookFile, yaml);
    const runbook = await loadRunbook(name);
    expect(runbook.gates).toBeUndefined();
    // The documented grants (lifeboat grants --runbook <name> --repair-tables shop.orders), run as a superuser before the backup.
    await pg.query(grantsSql(runbook, { repair: { tables: ['shop.orders'] } }));
    await takeBaseBackup({ runbook });

    const rows = async (table: string) =>
      new Map(
        (
          await pg.query<{ id: string; j: string }>(
            `select id::text as id, to_jsonb(t)::text as j from ${table} t order by id`,
          )
        ).map((r) => [r.id, r.j]),
      );
    await pg.query(
      `insert into shop.orders (customer_id, status, amount) select g, 'pending', 7 from generate_series(1, 8) g`,
    );
    await pg.query(`select pg_create_restore_point('before-bad-update')`);
    const before = await rows('shop.orders');
    const pendingIds = [...before.entries()]
      .filter(([, j]) => (JSON.parse(j) as { status: string }).status === 'pending')
      .map(([id]) => id);
    const deleted = [...before.entries()]
      .filter(([, j]) => (JSON.parse(j) as { status: string }).status === 'shipped')
      .map(([id]) => id)
      .slice(0, 4);
    // The incident (the bad UPDATE, and in the same transaction a DELETE of a few shipped orders),
    // then legitimate writes: new orders, cancelled orders edited again (conflicts), another table.
    await pg.query(
      `begin; update shop.orders set status = 'canceled' where status = 'pending'; delete from shop.orders where id in (${deleted.join(',')}); commit`,
    );
    await pg.query(`select pg_create_restore_point('after-bad-update')`);
    const edited = pendingIds.slice(0, 5);
    const reopened = pendingIds[5]!;
    await pg.query(`
      insert into shop.orders (customer_id, status, amount) select g, case when g % 2 = 0 then 'pending' else 'paid' end, 3 from generate_series(1, 12) g;
      update shop.orders set note = 'customer called back' where id in (${edited.join(',')});
      update shop.orders set status = 'pending' where id = ${reopened};
      update shop.orders set amount = amount + 1 where id in (1, 2, 3);
      update shop.customers set tier = 'gold' where id <= 5;
      insert into shop.customers values (21, 'customer 21', 'basic');`);
    await switchAndWaitArchived(pg);
    const now = await rows('shop.orders');
    const customersNow = await rows('shop.customers');
    const conflicts = [...edited, reopened];
    const damaged = pendingIds.filter((id) => !conflicts.includes(id));
    const cache = createClient({ url: redis.url });
    await cache.connect();
    cleanups.push(() => cache.quit());
    for (const id of [...damaged.slice(0, 3), edited[0]!, '1']) await cache.set(`shop:orders:${id}`, 'stale');

    const taskQueue = `repair-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    // A dry run without an after target: every row that differs between before and now is only a candidate
    // (the bad UPDATE's, the deleted, the legitimately edited, the unrelated amount changes), none safe; nothing written.
    const dry = await client.workflow.start('repairFromPointInTime', {
      taskQueue,
      workflowId: `repair-${name}-dry`,
      args: [{ runbook: name, tables: ['shop.orders'], before: { name: 'before-bad-update' }, dryRun: true }],
    });
    const dryEvidence = (await dry.result()) as Evidence;
    // Candidates: the pending orders but the one set back to pending since (equal to before again), the deleted ones, the 3 amounts changed since.
    expect(dryEvidence.repair?.diff?.tables[0]?.counts).toEqual({
      candidate: pendingIds.length - 1 + deleted.length + 3,
      damaged: 0,
      changedSince: 0,
      deletedByIncident: 0,
      insertedByIncident: 0,
      insertedSince: 12,
      unchanged: 408 - pendingIds.length + 1 - deleted.length - 3,
    });
    expect(dryEvidence.steps.filter((x) => x.state === 'skipped').map((x) => x.id)).toEqual([
      'approve-fence',
      'replay-wal-after',
      'snapshot-after',
      'approve-repair',
      'apply-repair',
      'invalidate-caches',
    ]);
    expect(await rows('shop.orders')).toEqual(now);

    const workflowId = `repair-${name}-${Date.now().toString(36)}`;
    const wf = await client.workflow.start('repairFromPointInTime', {
      taskQueue,
      workflowId,
      args: [
        {
          runbook: name,
          tables: ['shop.orders'],
          before: { name: 'before-bad-update' },
          after: { name: 'after-bad-update' },
          incident: 'INC-1234',
          reason: 'bad UPDATE on orders',
        },
      ],
    });
    const s = await waitFor(
      'approve-repair to await approval (or a step to fail)',
      async () => {
        const st: RecoveryStatus = await wf.query(statusQuery);
        return st.steps.some((x) => x.state === 'failed') ||
          st.steps.find((x) => x.id === 'approve-repair')?.state === 'awaiting-approval'
          ? st
          : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500 },
    );
    expect(
      s.steps
        .filter((x) => x.state === 'failed')
        .map((x) => `${x.id}: ${x.error?.type} ${x.error?.message}\n${x.error?.hints.join('\n')}`),
    ).toEqual([]);
    expect(s.repair?.diff?.tables[0]?.counts).toEqual({
      damaged: damaged.length,
      changedSince: conflicts.length,
      deletedByIncident: deleted.length,
      insertedByIncident: 0,
      insertedSince: 12,
      unchanged: 408 - pendingIds.length - deleted.length,
      candidate: 0,
    });
    // Nothing written yet: the primary is as the application left it.
    expect(await rows('shop.orders')).toEqual(now);
    // lifeboat pending lists the repair waiting at approve-repair (visibility catches up with the upsert on its own time).
    const listed = await waitFor(
      'lifeboat pending to list the repair',
      async () => {
        const p = await lifeboat(['pending', '--runbook', name]);
        return p.stdout.includes(workflowId) ? p.stdout : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(listed).toContain('approve-repair');
    // While the diff waits for approval, the application writes a damaged row: the apply must skip it, never overwrite it.
    const lateWrite = damaged[10]!;
    await pg.query(`update shop.orders set note = 'written while the diff waited' where id = $1`, [lateWrite]);
    const lateRow = (await rows('shop.orders')).get(lateWrite)!;

    const first = await lifeboat([
      'approve',
      workflowId,
      'approve-repair',
      '--as',
      'alice',
      '--comment',
      'diff checked',
    ]);
    expect(first.stderr).toBe('');
    expect(first.stdout.split('\n')[0]).toBe(
      'approve of approve-repair by alice: accepted; approve-repair is now awaiting-approval',
    );
    const second = await lifeboat(['approve', workflowId, 'approve-repair', '--as', 'bob', '--signal']);
    expect(second.code).toBe(0);
    const evidence = (await wf.result()) as Evidence;

    const expected = new Map(now);
    for (const id of [...damaged, ...deleted]) expected.set(id, before.get(id)!);
    expected.set(lateWrite, lateRow);
    const byId = (m: Map<string, string>) => [...m.entries()].sort(([a], [b]) => Number(a) - Number(b));
    expect(byId(await rows('shop.orders'))).toEqual(byId(expected));
    expect(await rows('shop.customers')).toEqual(customersNow);
    expect(evidence).toMatchObject({ kind: 'repair', validationStatus: 'passed', incident: 'INC-1234' });
    expect(evidence.repair?.applied).toEqual([
      expect.objectContaining({
        table: '"shop"."orders"',
        alreadyApplied: false,
        updated: damaged.length - 1,
        inserted: deleted.length,
        skipped: 1,
        skippedKeys: [[lateWrite]],
      }),
    ]);
    expect(evidence.notes).toContain(
      '1 row(s) changed between the diff and the apply were skipped, never overwritten: their keys are in repair.applied[].skippedKeys',
    );
    const audit = await pg.query(
      `select table_name, updated::int, inserted::int, skipped::int, classes, approved_by, applied_by from ${ROLE}.lifeboat_repair_audit where repair_id = $1`,
      [workflowId],
    );
    expect(audit).toEqual([
      {
        table_name: '"shop"."orders"',
        updated: damaged.length - 1,
        inserted: deleted.length,
        skipped: 1,
        classes: ['damaged', 'deletedByIncident'],
        approved_by: ['alice', 'bob'],
        applied_by: ROLE,
      },
    ]);
    // The artefact approvers read: the counts, samples side by side and the exact SQL (with its guard), and the plan.
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    const artefact = JSON.parse((await repo.get(`${name}/repair/${workflowId}/diff.json`))!.body.toString('utf8')) as {
      tables: Array<{ counts: Record<string, number>; samples: Record<string, unknown[]>; sql: string }>;
    };
    expect(evidence.repair?.diff?.artefact).toBe(`${repo.url}/${name}/repair/${workflowId}/diff.json`);
    expect(artefact.tables[0]!.counts.damaged).toBe(damaged.length);
    expect(artefact.tables[0]!.samples.changedSince).toHaveLength(conflicts.length);
    expect(artefact.tables[0]!.sql).toContain('is not distinct from s.e');
    const plan = (await repo.get(`${name}/repair/${workflowId}/plan-0.jsonl`))!.body
      .toString('utf8')
      .trim()
      .split('\n');
    expect(plan).toHaveLength(1 + damaged.length + conflicts.length + deleted.length);
    // The repaired keys' cache entries are gone; a conflict's and an untouched order's stay.
    for (const id of damaged.slice(0, 3)) expect(await cache.get(`shop:orders:${id}`)).toBeNull();
    expect(await cache.get(`shop:orders:${edited[0]!}`)).toBe('stale');
    expect(await cache.get('shop:orders:1')).toBe('stale');
    // The copy and the run's files are gone.
    expect(existsSync(runbook.drill!.dataDir)).toBe(false);
    expect(readdirSync(path.dirname(runbook.drill!.dataDir)).filter((f) => f.startsWith('.lifeboat-repair-'))).toEqual(
      [],
    );
    const status = await lifeboat(['status', workflowId]);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('apply-repair');
    // Measured, not asserted: how long each step took on this (shared, loaded) machine.
    const took = (id: string) => {
      const st = evidence.steps.find((x) => x.id === id);
      return st?.startedAt && st.finishedAt
        ? `${id} ${((Date.parse(st.finishedAt) - Date.parse(st.startedAt)) / 1000).toFixed(1)} s`
        : `${id} -`;
    };
    // A table without a primary key is refused in preflight, before anything is restored.
    await pg.query(`create table shop.audit_log (at timestamptz not null default now(), what text)`);
    const refused = await client.workflow.start('repairFromPointInTime', {
      taskQueue,
      workflowId: `${workflowId}-nopk`,
      args: [{ runbook: name, tables: ['shop.audit_log'], before: { name: 'before-bad-update' }, dryRun: true }],
    });
    const failure = await refused.result().then(
      () => undefined,
      (e: unknown) => (e as { cause?: { type?: string; message?: string } }).cause,
    );
    expect(failure?.type).toBe('INPUT_INVALID');
    expect(failure?.message?.split('\n')[0]).toBe(
      'table "shop"."audit_log" has no primary key: a repair matches the rows of the restored copy and of the primary by primary key, and cannot tell which row is which without one',
    );
    expect((await refused.query(statusQuery)).steps.filter((x) => x.runs > 0).map((x) => x.id)).toEqual(['preflight']);
    process.stdout.write(
      `repair e2e: ${['restore-base-backup', 'replay-wal', 'snapshot-before', 'replay-wal-after', 'snapshot-after', 'diff', 'apply-repair', 'teardown'].map(took).join(', ')}\n`,
    );
  }, 420_000);
});
