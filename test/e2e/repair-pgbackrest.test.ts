// A repair without failover on a pgBackRest stanza (issue 18): a real
// PostgreSQL 15 primary archiving through `pgbackrest archive-push` into a
// posix repository (test/harness/pgbackrest-e2e.ts), pgBackRest's full backup,
// then a bad `UPDATE shop.orders SET status = 'canceled' WHERE status =
// 'pending'` (and a DELETE of a few orders in the same transaction) between
// two restore points, and legitimate writes after it. repairFromPointInTime
// runs as a non-superuser role with exactly what `lifeboat grants
// --repair-tables` prints (granted before the backup: the copy has its
// backup's catalog), in a schema that is not the demo's. The copy beside
// production is pgBackRest's restore into drill.dataDir (archive-mode off),
// replayed through the restore_command pgBackRest wrote: paused at the
// `before` point, then on to the `after` point (the second replay on the
// same copy), compared with the live primary and repaired in one audited
// transaction. Afterwards: exactly the damaged rows back, the deleted ones
// re-inserted, the conflicts and every later write kept, the evidence naming
// the engine and pgBackRest's backup, the copy gone, nothing archived into
// the stanza by it.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { grantsSql } from '../../src/privileges/grants';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { MARKER_FILE } from '../../src/restore/marker';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { waitForStep } from '../harness/faults-cluster';
import { startPgBackRestRunbook } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { temporalAddress } from '../harness/services';

const ROLE = 'lbrepair';
const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe('repairFromPointInTime on a pgBackRest stanza', () => {
  it('restores exactly the rows a bad UPDATE damaged from a copy pgBackRest restored and replayed twice, keeps every later write, and the evidence names the engine', async () => {
    const name = 'brrepair';
    // Lifeboat's own repository holds the audit log, the evidence and the repair's artefact; the backups and WAL are pgBackRest's.
    // This application has no gates (a repair uses none) and its invariant reads its own schema.
    const r = await startPgBackRestRunbook(cleanups, {
      name,
      stanza: 'rep',
      pgUser: ROLE,
      edit: (yaml) => yaml.replace(/\ngates:\n(  .*\n)+/, '\n').replace('from orders where', 'from shop.orders where'),
    });
    const { s, engine } = r;
    const runbook = await r.load();
    expect(runbook.gates).toBeUndefined();

    const pg = s.primary;
    await pg.query(`
      create schema shop;
      create table shop.orders (id bigserial primary key, customer text not null, status text not null,
        amount numeric(10,2) not null, note text);
      insert into shop.orders (customer, status, amount, note)
        select 'c' || (g % 23), (array['pending','paid','shipped','canceled'])[g % 4 + 1], g * 1.5,
               case when g % 3 = 0 then null else 'n' || g end
          from generate_series(1, 300) g;
      create role ${ROLE} login;`);
    // Exactly what `lifeboat grants --runbook brrepair --repair-tables shop.orders` prints, before pgBackRest's backup.
    await pg.query(grantsSql(runbook, { repair: { tables: ['shop.orders'] } }));
    const [{ superuser } = { superuser: true }] = await pg.query<{ superuser: boolean }>(
      `select rolsuper as superuser from pg_roles where rolname = '${ROLE}'`,
    );
    expect(superuser).toBe(false);
    const backup = await engine.takeBackup({ type: 'full' });

    const rows = async () =>
      new Map(
        (
          await pg.query<{ id: string; j: string }>(
            'select id::text as id, to_jsonb(t)::text as j from shop.orders t order by id',
          )
        ).map((x) => [x.id, x.j]),
      );
    await pg.query(
      `insert into shop.orders (customer, status, amount) select 'late', 'pending', 7 from generate_series(1, 6)`,
    );
    await pg.query(`select pg_create_restore_point('before-bad-update')`);
    const before = await rows();
    const statusOf = (j: string) => (JSON.parse(j) as { status: string }).status;
    const pendingIds = [...before].filter(([, j]) => statusOf(j) === 'pending').map(([id]) => id);
    const deleted = [...before]
      .filter(([, j]) => statusOf(j) === 'shipped')
      .map(([id]) => id)
      .slice(0, 3);
    // The incident, then legitimate writes: new orders, a few cancelled orders edited again (conflicts), other amounts.
    await pg.query(
      `begin; update shop.orders set status = 'canceled' where status = 'pending'; delete from shop.orders where id in (${deleted.join(',')}); commit`,
    );
    await pg.query(`select pg_create_restore_point('after-bad-update')`);
    const conflicts = pendingIds.slice(0, 4);
    await pg.query(`
      insert into shop.orders (customer, status, amount) select 'new', 'paid', 3 from generate_series(1, 10);
      update shop.orders set note = 'customer called back' where id in (${conflicts.join(',')});
      update shop.orders set amount = amount + 1 where id in (1, 3, 5);`);
    await switchAndWaitArchived(pg);
    const now = await rows();
    const damaged = pendingIds.filter((id) => !conflicts.includes(id));

    const taskQueue = `brrepair-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host: r.host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const workflowId = `repair-${name}-${process.pid}`;
    const wf = await client.workflow.start('repairFromPointInTime', {
      taskQueue,
      workflowId,
      args: [
        {
          runbook: name,
          tables: ['shop.orders'],
          before: { name: 'before-bad-update' },
          after: { name: 'after-bad-update' },
          incident: 'INC-18',
          reason: 'bad UPDATE on orders',
        },
      ],
    });
    const waiting = await waitForStep(wf, 'approve-repair', 'awaiting-approval');
    // One restore, two replays on it: to before, then on to after.
    expect(
      waiting.steps
        .filter((x) => ['restore-base-backup', 'replay-wal', 'replay-wal-after'].includes(x.id))
        .map((x) => `${x.id}:${x.state}:${x.runs}`),
    ).toEqual(['restore-base-backup:done:1', 'replay-wal:done:1', 'replay-wal-after:done:1']);
    expect(waiting.steps.find((x) => x.id === 'preflight')?.summary).toMatch(
      new RegExp(
        `^backup ${backup.backupId}, \\d+ WAL segments from ${backup.startWal}; "shop"."orders" \\(key id\\)$`,
      ),
    );
    expect(waiting.repair?.diff?.tables[0]?.counts).toEqual({
      damaged: damaged.length,
      changedSince: conflicts.length,
      deletedByIncident: deleted.length,
      insertedByIncident: 0,
      insertedSince: 10,
      unchanged: before.size - pendingIds.length - deleted.length,
      candidate: 0,
    });
    // The copy, held paused at approve-repair: Lifeboat's marker, replayed through pgBackRest's archive-get, last to the after point.
    const drillDir = runbook.drill!.dataDir;
    const marker = JSON.parse(readFileSync(path.join(drillDir, MARKER_FILE), 'utf8')) as Record<string, unknown>;
    expect(marker).toMatchObject({
      workflowId,
      backupId: backup.backupId,
      instance: 'drill',
      state: 'replaying',
      target: { name: 'after-bad-update' },
    });
    const autoConf = readFileSync(path.join(drillDir, 'postgresql.auto.conf'), 'utf8');
    const block = autoConf.slice(autoConf.indexOf('# lifeboat recovery begin'));
    expect(block).toMatch(
      new RegExp(`^restore_command = 'pgbackrest .*--stanza=${s.stanza} archive-get %f "%p"'$`, 'm'),
    );
    expect(block).toContain(`recovery_target_name = 'after-bad-update'`);
    expect(block).toMatch(/^archive_mode = off$/m);
    // Nothing written to the primary before the approval.
    expect(await rows()).toEqual(now);

    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-repair', decision: 'approve', by: 'alice' }] });
    const evidence = (await wf.result()) as Evidence;

    const expected = new Map(now);
    for (const id of [...damaged, ...deleted]) expected.set(id, before.get(id)!);
    const byId = (m: Map<string, string>) => [...m].sort(([a], [b]) => Number(a) - Number(b));
    expect(byId(await rows())).toEqual(byId(expected));
    expect(evidence).toMatchObject({
      kind: 'repair',
      engine: 'pgbackrest',
      runbook: name,
      backupId: backup.backupId,
      incident: 'INC-18',
      validationStatus: 'passed',
    });
    expect(evidence.steps.filter((x) => x.state !== 'done').map((x) => `${x.id}:${x.state}`)).toEqual([
      'approve-fence:skipped',
      'invalidate-caches:skipped',
    ]);
    // The record is written by its own step, which writing it ends.
    expect(evidence.steps.at(-1)).toMatchObject({
      id: 'record-evidence',
      state: 'done',
      finishedAt: evidence.finishedAt,
    });
    expect(evidence.repair?.applied).toEqual([
      expect.objectContaining({
        table: '"shop"."orders"',
        alreadyApplied: false,
        updated: damaged.length,
        inserted: deleted.length,
        skipped: 0,
      }),
    ]);
    expect(
      await pg.query(
        `select table_name, updated::int, inserted::int, classes, approved_by, applied_by from ${ROLE}.lifeboat_repair_audit where repair_id = $1`,
        [workflowId],
      ),
    ).toEqual([
      {
        table_name: '"shop"."orders"',
        updated: damaged.length,
        inserted: deleted.length,
        classes: ['damaged', 'deletedByIncident'],
        approved_by: ['alice'],
        applied_by: ROLE,
      },
    ]);
    // The artefact and the evidence in Lifeboat's own repository, as for Lifeboat's engine.
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    expect(evidence.repair?.diff?.artefact).toBe(`${repo.url}/${name}/repair/${workflowId}/diff.json`);
    const artefact = JSON.parse((await repo.get(`${name}/repair/${workflowId}/diff.json`))!.body.toString('utf8')) as {
      tables: Array<{ counts: Record<string, number> }>;
    };
    expect(artefact.tables[0]!.counts.damaged).toBe(damaged.length);
    expect(JSON.parse((await repo.get(keys.evidence(name, evidence.runId)))!.body.toString())).toEqual(evidence);
    // The copy and the run's files are gone; the copy archived nothing into the stanza (no timeline 2, no history file).
    expect(existsSync(drillDir)).toBe(false);
    expect(readdirSync(path.dirname(drillDir)).filter((f) => f.startsWith('.lifeboat-repair-'))).toEqual([]);
    expect((await engine.walFiles()).files.filter((f) => !f.startsWith('00000001'))).toEqual([]);
    expect(await engine.listBackups()).toEqual([backup]);
    // Measured, not asserted: how long each step took on this (shared, loaded) machine.
    const took = (id: string) => {
      const st = evidence.steps.find((x) => x.id === id);
      return st?.startedAt && st.finishedAt
        ? `${id} ${((Date.parse(st.finishedAt) - Date.parse(st.startedAt)) / 1000).toFixed(1)} s`
        : `${id} -`;
    };
    const steps = [
      'restore-base-backup',
      'replay-wal',
      'snapshot-before',
      'replay-wal-after',
      'snapshot-after',
      'diff',
    ];
    process.stdout.write(`repair on pgBackRest: ${[...steps, 'apply-repair', 'teardown'].map(took).join(', ')}\n`);
  }, 420_000);
});
