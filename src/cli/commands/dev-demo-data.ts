// The demo application of `lifeboat dev`: its roles, database, tables and
// rows on the sandbox primary (each created only when missing), the Redis
// cache it fills through pgbouncer, and the first base backup.
import { Client as PgClient } from 'pg';
import { errorMessage } from '../../errors';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../dev/demo-runbook';
import { cacheOrders } from '../../dev/sandbox-redis';
import { DEMO_DATABASE } from '../../dev/sandbox-state';
import { TASK_QUEUE } from '../../runbook/schema';
import { say } from './dev-sandbox';

/** The approvers the demo runbook names. */
export const APPROVERS = ['alice', 'bob'];

/**
 * Roles, database, tables and rows, each only when missing: the primary
 * persists across starts, and after a recovery fenced it, role app is
 * read-only there, so nothing may be written that already exists.
 */
export async function ensureDemo(port: number): Promise<void> {
  const admin = new PgClient({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    const has = async (sql: string, name: string) => (await admin.query(sql, [name])).rows.length > 0;
    // The sandbox's Lifeboat role: a superuser only because this is a toy on
    // loopback; production runbooks use a role with REPLICATION and pg_monitor.
    if (!(await has('select 1 from pg_roles where rolname = $1', 'lifeboat')))
      await admin.query('create role lifeboat login superuser replication');
    // The application's role: owns the demo tables; the writer gate fences it.
    if (!(await has('select 1 from pg_roles where rolname = $1', 'app'))) await admin.query('create role app login');
    if (!(await has('select 1 from pg_database where datname = $1', DEMO_DATABASE)))
      await admin.query(`create database ${DEMO_DATABASE} owner app`);
  } finally {
    await admin.end();
  }
  const app = new PgClient({ host: '127.0.0.1', port, user: 'app', database: DEMO_DATABASE });
  await app.connect();
  try {
    const { rows } = await app.query<{ missing: boolean }>(
      `select to_regclass('orders') is null or to_regclass('system_gate') is null or to_regclass('outbox') is null as missing`,
    );
    if (rows[0]?.missing) {
      say('creating the demo tables orders, system_gate and outbox');
      await app.query(DEMO_SCHEMA_SQL);
    }
    const empty = (await app.query('select 1 from orders limit 1')).rows.length === 0;
    if (empty) await app.query(DEMO_SEED_SQL);
  } finally {
    await app.end();
  }
}

/** The application reads its first orders through pgbouncer and caches them; a cache that cannot be filled is not fatal. */
export async function fillCache(redisUrl: string, pgbouncerPort: number): Promise<number | undefined> {
  const app = new PgClient({ host: '127.0.0.1', port: pgbouncerPort, user: 'app', database: DEMO_DATABASE });
  try {
    await app.connect();
    return await cacheOrders(redisUrl, app);
  } catch (err) {
    say(`the Redis cache was not filled: reading orders through pgbouncer failed: ${errorMessage(err)}`);
    return undefined;
  } finally {
    await app.end().catch(() => undefined);
  }
}

export async function firstBaseBackup(address: string, repoUrl: string): Promise<void> {
  const { Client, Connection } = await import('@temporalio/client');
  const client = new Client({ connection: await Connection.connect({ address }), namespace: 'default' });
  try {
    const { openRepository } = await import('../../repository');
    const repo = await openRepository(repoUrl);
    if ((await repo.list('demo/base/')).some((o) => o.key.endsWith('/backup.json'))) return;
    say('taking the first base backup (workflow baseBackup)...');
    const meta = await client.workflow.execute('baseBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: `backup-demo-first`,
      args: [{ runbook: 'demo' }],
    });
    say(`base backup ${(meta as { backupId: string }).backupId} verified and stored`);
  } finally {
    await client.connection.close();
  }
}
