// The incident that motivated Lifeboat, end to end on real services: a
// primary archiving to the repository, an application behind pgbouncer with a
// Redis cache and an outbox; at 14:32 someone cancels every pending order.
// The on-call engineer recovers to just before it with recoverToPointInTime:
// the fence approved the way the Temporal UI does it (a signal through the
// Temporal service), promotion by two approvers (one through the decide
// update, one by signal), then resume. Afterwards a client through
// pgbouncer sees the orders as they were and can write, the outbox does not
// resend what was published before the incident, the cache keys are gone,
// and the evidence is complete, in both repository kinds.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../src/dev/demo-runbook';
import type { Evidence } from '../../src/recovery/contract';
import { approveSignal, decideUpdate, statusQuery } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { loadRunbook } from '../../src/runbook/load';
import { requireTool } from '../../src/tools';
import { startWorkers } from '../../src/worker';
import { startTestCluster } from '../harness/cluster';
import { startPgbouncer } from '../harness/pgbouncer';
import { postgresTempDir, switchAndWaitArchived, stopRestoredCopy } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { startRedis } from '../harness/redis';
import { temporalAddress, useS3Env } from '../harness/services';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

describe.each(['file', 's3'] as const)('the bad UPDATE recovered from a %s:// repository', (kind) => {
  it('brings the orders back, re-asserts the gates, reconciles the outbox, clears the cache and resumes through pgbouncer', async () => {
    useS3Env();
    const runbooksDir = postgresTempDir('runbooks');
    cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const name = `incident-${kind}`;
    const host = `scenario${kind}${process.pid}`;
    // pgbouncer is started once the primary's port is known; its files are named in the runbook.
    const tc = await startTestCluster({
      name,
      kind,
      runbooksDir,
      host,
      runbook: {
        redisUrlEnv: `REDIS_URL_${kind.toUpperCase()}`,
        approvers: ['alice', 'bob', 'carol'],
        pgbouncer: { adminUrlEnv: `PGBOUNCER_ADMIN_${kind.toUpperCase()}`, databasesFile: '/placeholder' },
      },
    });
    cleanups.push(() => tc.stop());
    const pgb = await startPgbouncer({ database: 'postgres', host: '127.0.0.1', port: tc.pg.port, authUser: 'app' });
    cleanups.push(() => pgb.stop());
    // Point the runbook at this pgbouncer's databases file.
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(tc.runbookFile, readFileSync(tc.runbookFile, 'utf8').replace('/placeholder', pgb.databasesFile));
    process.env[`REDIS_URL_${kind.toUpperCase()}`] = redis.url;
    process.env[`PGBOUNCER_ADMIN_${kind.toUpperCase()}`] = pgb.adminUrl;
    const runbook = await loadRunbook(name);

    // The application: orders, gates, an outbox; an `app` role that writes.
    const pg = tc.pg;
    await pg.query(DEMO_SCHEMA_SQL);
    await pg.query(DEMO_SEED_SQL);
    await pg.query(
      `create role app login; grant all on all tables in schema public to app; grant all on all sequences in schema public to app`,
    );
    await takeBaseBackup({ runbook });
    // After the backup: more orders, and the publisher sends outbox rows 451..480.
    await pg.query(
      `insert into orders (customer, status, amount) select 'late-' || g, 'pending', 10 from generate_series(1, 40) g`,
    );
    await pg.query(`update outbox set published_at = now() where id between 451 and 480`);
    await switchAndWaitArchived(pg);
    const [{ target } = { target: '' }] = await pg.query<{ target: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as target`,
    );
    await new Promise((r) => setTimeout(r, 1100));
    // Between the target and the incident the publisher sends rows 481..500: they must not be sent again.
    await pg.query(`update outbox set published_at = now() where id between 481 and 500`);
    const [{ pending } = { pending: '' }] = await pg.query<{ pending: string }>(
      `select count(*) as pending from orders where status = 'pending'`,
    );
    // 14:32: the incident.
    await pg.query(`update orders set status = 'canceled' where status = 'pending'`);
    await switchAndWaitArchived(pg);
    // The application cached orders; a session key is not the runbook's to touch.
    const cache = createClient({ url: redis.url });
    await cache.connect();
    cleanups.push(() => cache.quit());
    for (let i = 1; i <= 50; i++) await cache.set(`orders:${i}`, 'canceled');
    await cache.set('session:abc', 'keep');

    const taskQueue = `scenario-${kind}-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const workflowId = `recover-${name}-${process.pid}`;
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId,
      args: [{ runbook: name, target: { time: target }, incident: 'INC-1234', reason: 'bad UPDATE on orders' }],
    });
    const waitStep = (step: string, state: string) =>
      waitFor(
        `${step} to be ${state}`,
        async () => {
          const s = await wf.query(statusQuery);
          const failed = s.steps.find((x) => x.state === 'failed');
          if (failed)
            throw new Error(
              `${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
            );
          return s.steps.find((x) => x.id === step)?.state === state ? s : undefined;
        },
        { timeoutMs: 150_000, intervalMs: 250 },
      );

    await waitStep('approve-fence', 'awaiting-approval');
    await exec(requireTool('temporal'), [
      'workflow',
      'signal',
      '--address',
      temporalAddress(),
      '--workflow-id',
      workflowId,
      '--name',
      'approve',
      '--input',
      JSON.stringify({ step: 'approve-fence', by: 'alice' }),
    ]);
    const paused = await waitStep('approve-promote', 'awaiting-approval');
    // The old primary is fenced: the application role cannot write there any more.
    const oldApp = new Client({ ...pg.connection, user: 'app' });
    await oldApp.connect();
    await expect(oldApp.query(`insert into orders (customer, status, amount) values ('x', 'paid', 1)`)).rejects.toThrow(
      'cannot execute INSERT in a read-only transaction',
    );
    await oldApp.end();
    expect(paused.invariants?.every((i) => i.passed)).toBe(true);
    expect(paused.replay?.paused).toBe(true);

    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-promote', decision: 'approve', by: 'alice', comment: 'pending orders are back' }],
    });
    await wf.signal(approveSignal, { step: 'approve-promote', by: 'bob' });
    await waitStep('approve-resume', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'carol' }] });
    const evidence = (await wf.result()) as Evidence;

    // Through pgbouncer, as the application: the orders as they were, and writes work.
    const app = new Client({ host: '127.0.0.1', port: pgb.port, user: 'app', database: 'postgres' });
    await app.connect();
    const { rows: orders } = await app.query<{ pending: string; canceled: string }>(
      `select count(*) filter (where status = 'pending') as pending, count(*) filter (where status = 'canceled') as canceled from orders`,
    );
    expect(orders[0]).toEqual({ pending, canceled: '0' });
    await app.query(`insert into orders (customer, status, amount) values ('after-recovery', 'paid', 5)`);
    const { rows: where } = await app.query<{ port: number }>('select inet_server_port() as port');
    expect(where[0]!.port).toBe(runbook.restore.port);
    // Gates: re-asserted off at promotion, then back on by the resume steps.
    const { rows: gates } = await app.query<{ gate_name: string; enabled: boolean }>(
      'select gate_name, enabled from system_gate order by gate_name',
    );
    expect(gates).toEqual([
      { gate_name: 'background_jobs', enabled: true },
      { gate_name: 'outbox_publisher', enabled: true },
      { gate_name: 'writers', enabled: true },
    ]);
    expect(evidence.steps.find((s) => s.id === 'promote')?.summary).toBe(
      `promoted on timeline 2 at ${evidence.promotedAt}; gates re-asserted; primary re-pointed to ${runbook.restore.address}:${runbook.restore.port} in the repository`,
    );
    // The primary overlay: backup, check, drill, checkpoint and the next recovery use the promoted copy.
    expect(evidence.primary).toMatchObject({
      repointed: true,
      host: runbook.restore.address,
      port: runbook.restore.port,
      timeline: 2,
      overlay: keys.primaryOverlay(name),
    });
    // The outbox: rows published before the incident are published in the restored copy too.
    const { rows: outbox } = await app.query<{ unpublished: string }>(
      `select count(*) as unpublished from outbox where published_at is null and id <= 500`,
    );
    expect(outbox[0]).toEqual({ unpublished: '0' });
    expect(evidence.outbox).toMatchObject({ highWater: '500', markedPublished: 20 });
    // The cache: orders:* gone, the session kept.
    expect(await cache.keys('orders:*')).toEqual([]);
    expect(await cache.get('session:abc')).toBe('keep');
    // The evidence, returned and stored.
    expect(evidence).toMatchObject({
      kind: 'recovery',
      runbook: name,
      incident: 'INC-1234',
      target: { time: target },
      validationStatus: 'passed',
    });
    expect(evidence.rpoObservedSeconds).toBeGreaterThanOrEqual(0);
    expect(evidence.rtoObservedSeconds).toBeGreaterThan(0);
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}`)).toEqual([
      'approve-fence:alice',
      'approve-promote:alice',
      'approve-promote:bob',
      'approve-resume:carol',
    ]);
    expect(evidence.steps.map((s) => s.state)).toEqual(Array(18).fill('done'));
    const repo = await openRepository(tc.repoUrl, runbook.repository);
    const stored = await repo.get(keys.evidence(name, evidence.runId));
    expect(JSON.parse(stored!.body.toString())).toEqual(evidence);
    const audit = await repo.get(keys.audit(name, evidence.runId));
    expect(
      audit!.body
        .toString()
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { decision: { by: string } }).decision.by),
    ).toEqual(['alice', 'alice', 'bob', 'carol']);
    await app.end();
    // Stop the promoted instance: it is this test's.
    await stopRestoredCopy(runbook);
  });
});
