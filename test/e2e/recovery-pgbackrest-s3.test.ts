// recoverToPointInTime on a pgBackRest stanza whose repository is S3 on a
// MinIO over TLS with a test CA (issue 18; test/harness/pgbackrest-s3.ts):
// the keys in pgBackRest's configuration file, the CA as
// repo1-storage-ca-file. A full backup, more orders, a time target, then an
// application role (no superuser) cancels every pending order. The workflow
// on the dev Temporal server, approvals through the decide update: preflight
// from pgbackrest info over S3, pgbackrest restore from the bucket, replay
// with the restore_command pgBackRest wrote (its WAL from the bucket),
// promotion. The promoted copy holds the orders as they were at the time;
// no key is in the evidence, the status or the copy's settings.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL, demoRunbookYaml } from '../../src/dev/demo-runbook';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTlsMinio } from '../harness/minio-tls';
import { startPgBackRestS3Primary } from '../harness/pgbackrest-s3';
import { postgresTempDir, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

describe('recoverToPointInTime on a pgBackRest stanza on S3 over TLS', () => {
  it('brings the orders back to a time, from the bucket, and promotes', async () => {
    const runbooksDir = postgresTempDir('runbooks');
    const stateDir = postgresTempDir('state');
    const repoDir = postgresTempDir('repo');
    cleanups.push(() => {
      for (const d of [runbooksDir, stateDir, repoDir]) rmSync(d, { recursive: true, force: true });
    });
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const minio = await startTlsMinio('recovery');
    cleanups.push(() => minio.stop());
    const s = await startPgBackRestS3Primary(minio, 'recs3');
    cleanups.push(() => s.stop());
    const name = 'brrecovers3';
    const host = `brrecovers3${process.pid}`;
    // Lifeboat's own repository holds only the audit log and the evidence; the backups and WAL are in the bucket.
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
    // The target: a millisecond after the server's clock read after those inserts committed (JavaScript keeps milliseconds)...
    const read = (await pg.query<{ t: Date }>('select clock_timestamp() as t'))[0]!.t;
    const target = new Date(read.getTime() + 1).toISOString();
    // ... and the incident only once the server's clock is past it, so its commit is after the target.
    await waitFor(
      'the server clock past the target',
      async () =>
        (await pg.query<{ past: boolean }>('select clock_timestamp() > $1::timestamptz as past', [target]))[0]!.past
          ? true
          : undefined,
      { intervalMs: 5 },
    );
    await app.query(`update orders set status = 'canceled' where status = 'pending'`);
    await switchAndWaitArchived(pg);

    const taskQueue = `brrecovers3-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${name}-${process.pid}`,
      args: [{ runbook: name, target: { time: target }, incident: 'INC-18-S3', reason: 'bad UPDATE on orders' }],
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
    expect(fence.steps.find((x) => x.id === 'preflight')?.summary).toMatch(new RegExp(`^backup ${backup.backupId}, `));
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    expect(paused.replay?.paused).toBe(true);
    const autoConf = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toMatch(
      new RegExp(
        `^restore_command = 'pgbackrest --config=${s.config} .*--stanza=${s.stanza} archive-get %f "%p"'$`,
        'm',
      ),
    );
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] });
    await waitStep('approve-resume', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'bob' }] });
    const evidence = (await wf.result()) as Evidence;
    const status = await wf.query(statusQuery);

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
    expect((await restored.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).toBe(false);

    expect(evidence).toMatchObject({
      kind: 'recovery',
      engine: 'pgbackrest',
      runbook: name,
      backupId: backup.backupId,
      target: { time: target },
      validationStatus: 'passed',
    });
    // The keys are pgBackRest's: in no workflow result, status or setting of the copy.
    for (const text of [JSON.stringify(evidence), JSON.stringify(status), autoConf]) {
      expect(text).not.toContain(minio.secretKey);
      expect(text).not.toContain(minio.accessKey);
    }
    await restored.end();
    await stopRestoredCopy(runbook);
  });
});
