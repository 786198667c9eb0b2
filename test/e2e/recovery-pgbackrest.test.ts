// The bad UPDATE recovered on a pgBackRest stanza (issue 18): a real
// PostgreSQL 15 primary archiving through `pgbackrest archive-push` into a
// posix repository (test/harness/pgbackrest.ts), a base backup taken by
// pgBackRest, a restore point, then an application role (no superuser)
// cancels every pending order. recoverToPointInTime on the dev Temporal
// server, approvals through the decide update: preflight through the engine,
// pgbackrest restore inside Lifeboat's claim and marker, replay with the
// restore_command pgBackRest wrote, promotion. The promoted copy holds the
// orders as they were at the restore point, and the evidence names the engine.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL, demoRunbookYaml } from '../../src/dev/demo-runbook';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { MARKER_FILE } from '../../src/restore/marker';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { startPgBackRestPrimary } from '../harness/pgbackrest';
import { postgresTempDir, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('recoverToPointInTime on a pgBackRest stanza', () => {
  it('brings the orders back to the restore point, promotes, and the evidence names the engine', async () => {
    const runbooksDir = postgresTempDir('runbooks');
    const stateDir = postgresTempDir('state');
    const repoDir = postgresTempDir('repo');
    cleanups.push(() => {
      for (const d of [runbooksDir, stateDir, repoDir]) rmSync(d, { recursive: true, force: true });
    });
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const s = await startPgBackRestPrimary('rec');
    cleanups.push(() => s.stop());
    const name = 'brrecover';
    const host = `brrecover${process.pid}`;
    // Lifeboat's own repository holds only the audit log and the evidence; the backups and WAL are pgBackRest's.
    const yaml = demoRunbookYaml({
      name,
      pgPort: s.primary.port,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl: `file://${repoDir}`,
      host,
      stateDir,
      restorePort: await freePort(),
      drillPort: await freePort(),
    });
    writeFileSync(
      path.join(runbooksDir, `${name}.yaml`),
      `${yaml}engine: { kind: pgbackrest, stanza: ${s.stanza}, configPath: ${s.config} }\n`,
    );
    const runbook = await loadRunbook(name);

    const pg = s.primary;
    await pg.query(DEMO_SCHEMA_SQL);
    await pg.query(DEMO_SEED_SQL);
    await pg.query(
      'create role app login; grant all on all tables in schema public to app; grant all on all sequences in schema public to app',
    );
    const engine = new PgBackRestEngine(s.setting, { osUser: 'postgres' });
    const backup = await engine.takeBackup({ type: 'full' });
    // After the backup, as the application: more orders, then the restore point before the incident.
    const app = new Client({ ...pg.connection, user: 'app' });
    // The fence ends the application's sessions on the old primary.
    app.on('error', () => undefined);
    await app.connect();
    cleanups.push(() => app.end().catch(() => undefined));
    await app.query(
      `insert into orders (customer, status, amount) select 'late-' || g, 'pending', 10 from generate_series(1, 40) g`,
    );
    const before = (await app.query<{ id: number; status: string }>('select id, status from orders order by id')).rows;
    expect(before.filter((o) => o.status === 'pending').length).toBeGreaterThan(40);
    await pg.query(`select pg_create_restore_point('before-cancel')`);
    // The incident, by the application role.
    await app.query(`update orders set status = 'canceled' where status = 'pending'`);
    await switchAndWaitArchived(pg);

    const taskQueue = `brrecover-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${name}-${process.pid}`,
      args: [{ runbook: name, target: { name: 'before-cancel' }, incident: 'INC-18', reason: 'bad UPDATE on orders' }],
    });
    const waitStep = (step: string, state: string) =>
      waitFor(
        `${step} to be ${state}`,
        async () => {
          const st = await wf.query(statusQuery);
          const failed = st.steps.find((x) => x.state === 'failed');
          if (failed)
            throw new Error(
              `${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
            );
          return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 250 },
      );

    const fence = await waitStep('approve-fence', 'awaiting-approval');
    // Preflight chose pgBackRest's backup and said what it could not check on this engine.
    expect(fence.steps.find((x) => x.id === 'preflight')?.summary).toMatch(
      new RegExp(`^backup ${backup.backupId}, \\d+ WAL segments from ${backup.startWal}`),
    );
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    // The copy is Lifeboat's (its marker) and replays through pgBackRest's archive-get.
    const marker = JSON.parse(readFileSync(path.join(runbook.restore.dataDir, MARKER_FILE), 'utf8')) as {
      backupId: string;
      state: string;
    };
    expect(marker).toMatchObject({ backupId: backup.backupId, state: 'replaying' });
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    const block = autoConf.slice(autoConf.indexOf('# lifeboat recovery begin'));
    expect(block).toMatch(
      new RegExp(`^restore_command = 'pgbackrest .*--stanza=${s.stanza} archive-get %f "%p"'$`, 'm'),
    );
    expect(block).toContain(`recovery_target_name = 'before-cancel'`);
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] });
    await waitStep('approve-resume', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'bob' }] });
    const evidence = (await wf.result()) as Evidence;

    // The promoted copy, as the application: exactly the rows at the restore point, and it takes writes.
    const restored = new Client({
      host: runbook.restore.address,
      port: runbook.restore.port,
      user: 'app',
      database: 'postgres',
    });
    await restored.connect();
    cleanups.push(() => restored.end().catch(() => undefined));
    expect(
      (await restored.query<{ id: number; status: string }>('select id, status from orders order by id')).rows,
    ).toEqual(before);
    await restored.query(`insert into orders (customer, status, amount) values ('after-recovery', 'paid', 5)`);
    expect((await restored.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).toBe(false);
    // The new primary archives into the stanza on its new timeline: held until its archiver pushed the switched segment.
    const admin = new Client({
      host: runbook.restore.address,
      port: runbook.restore.port,
      user: 'postgres',
      database: 'postgres',
    });
    await admin.connect();
    cleanups.push(() => admin.end().catch(() => undefined));
    // The segment the switch completed (pg_switch_wal returns an LSN within it), named on timeline 2.
    const { f: segment } = (await admin.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f')).rows[0]!;
    expect(segment.startsWith('00000002')).toBe(true);
    await waitFor(
      `the promoted copy to archive ${segment}`,
      async () => {
        const r = await admin.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
        const last = r.rows[0]!.last;
        return last !== null && /^[0-9A-F]{24}$/.test(last) && last >= segment ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const info = JSON.parse(await s.run(['info', '--output=json'])) as Array<{ archive: Array<{ max: string }> }>;
    expect(info[0]!.archive[0]!.max >= segment).toBe(true);

    expect(evidence).toMatchObject({
      kind: 'recovery',
      engine: 'pgbackrest',
      runbook: name,
      backupId: backup.backupId,
      target: { name: 'before-cancel' },
      validationStatus: 'passed',
    });
    // Every step done but the caches, which this runbook has none of.
    expect(evidence.steps.filter((x) => x.state !== 'done').map((x) => `${x.id}:${x.state}`)).toEqual([
      'invalidate-caches:skipped',
    ]);
    expect(evidence.primary?.history).toMatch(/^00000002\.history not pushed: the WAL archive is pgBackRest's/);
    expect(
      evidence.notes.some((n) =>
        n.startsWith('preflight on pgBackRest stanza rec skipped: whether the archive reaches the target'),
      ),
    ).toBe(true);
    // Stored in Lifeboat's own repository, as for every engine.
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    expect(JSON.parse((await repo.get(keys.evidence(name, evidence.runId)))!.body.toString())).toEqual(evidence);
    await restored.end();
    await admin.end();
    await stopRestoredCopy(runbook);
  });
});
