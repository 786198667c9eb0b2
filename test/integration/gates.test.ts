// The SQL activities of the recovery around a real PostgreSQL 15 primary
// holding the demo application's schema: the writer gate (proven by a write
// that a new session of the `app` role must have refused), the row gates,
// forensics before the restore and outbox reconciliation after it. The
// "restored instance" of these runbooks is the same server (restore.port =
// the primary's port); invariants.test.ts uses a real paused standby.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { failureOf } from '../harness/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureForensics } from '../../activities/forensics';
import { setGate } from '../../activities/gates';
import { reconcileOutbox } from '../../activities/outbox';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL, demoRunbookYaml } from '../../src/dev/demo-runbook';
import { freePort } from '../harness/ports';
import { startPrimary, type Primary } from '../harness/postgres';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-gates-runbooks-'));
const env = new MockActivityEnvironment({ workflowExecution: { workflowId: 'rec-42', runId: 'run-1' } });
let pg: Primary;
const cleanups: Array<() => Promise<unknown>> = [];

const PROOF =
  'as app, "update "system_gate" set updated_at = updated_at where false" was refused: cannot execute UPDATE in a read-only transaction (SQLSTATE 25006)';

function writeRunbook(
  name: string,
  opts: { port: number; extra?: string; drop?: RegExp; replace?: [RegExp, string] },
): void {
  let yaml = demoRunbookYaml({
    name,
    pgPort: opts.port,
    pgUser: 'postgres',
    database: 'appdb',
    repoUrl: `file://${runbooksDir}/repo`,
    host: 'gates-host',
    stateDir: runbooksDir,
    // The restored instance of this runbook is the primary itself.
    restorePort: opts.port,
    drillPort: opts.port + 1,
  });
  if (opts.drop) yaml = yaml.replace(opts.drop, '');
  if (opts.replace) yaml = yaml.replace(...opts.replace);
  writeFileSync(path.join(runbooksDir, `${name}.yaml`), yaml + (opts.extra ?? ''));
}

/** A session as the application role, the way the application logs in; `errors` collects what the server sends unasked. */
async function appSession(): Promise<Client & { errors: string[] }> {
  const c = Object.assign(new Client({ host: '127.0.0.1', port: pg.port, user: 'app', database: 'appdb' }), {
    errors: [] as string[],
  });
  c.on('error', (err) => c.errors.push(err.message));
  await c.connect();
  cleanups.push(() => c.end().catch(() => undefined));
  return c;
}

async function appdb<T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'appdb' });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** setGate as the worker runs it, inside an activity context (whose workflow id feeds the skip hint). */
const gate = (input: Parameters<typeof setGate>[0]) => env.run(setGate, input) as ReturnType<typeof setGate>;
const capture = (input: Parameters<typeof captureForensics>[0]) =>
  env.run(captureForensics, input) as ReturnType<typeof captureForensics>;
const reconcile = (input: Parameters<typeof reconcileOutbox>[0]) =>
  env.run(reconcileOutbox, input) as ReturnType<typeof reconcileOutbox>;

const gateRows = () =>
  appdb<{ gate_name: string; enabled: boolean }>('select gate_name, enabled from system_gate order by gate_name');

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  pg = await startPrimary();
  await pg.query('create database appdb');
  await pg.query('create role app login');
  await appdb(DEMO_SCHEMA_SQL);
  await appdb(DEMO_SEED_SQL);
  await appdb(
    'grant select, insert, update, delete on all tables in schema public to app; grant usage on all sequences in schema public to app',
  );
  writeRunbook('orders', {
    port: pg.port,
    extra: [
      'capture:',
      '  - { name: orders changed after target, sql: "select id, status from orders where updated_at > $1 order by id" }',
      '  - { name: many rows, sql: "select g as n from generate_series(1, 1500) g;" }',
      '  - { name: broken, sql: "select * from no_such_table" }',
      '',
    ].join('\n'),
  });
});

afterAll(async () => {
  await runCleanups(cleanups);
  await pg?.stop();
  rmSync(runbooksDir, { recursive: true, force: true });
});

describe('writer gate', () => {
  it('fences writers: the gate row goes off, the open session of app is ended, and a new session of app is refused a write', async () => {
    const open = await appSession();
    await open.query(`insert into orders (customer, status, amount) values ('before fence', 'pending', 1)`);
    const [{ pid }] = (await open.query<{ pid: number }>('select pg_backend_pid() as pid')).rows as [{ pid: number }];

    const result = await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false });

    expect(result).toEqual({
      gate: 'writers',
      enabled: false,
      rolesAltered: ['app'],
      sessionsTerminated: 1,
      proof: PROOF,
    });
    expect(await pg.query('select 1 from pg_stat_activity where pid = $1', [pid])).toEqual([]);
    await expect.poll(() => open.errors[0]).toBe('terminating connection due to administrator command');
    const fresh = await appSession();
    await expect(
      fresh.query(`insert into orders (customer, status, amount) values ('after fence', 'pending', 1)`),
    ).rejects.toThrow('cannot execute INSERT in a read-only transaction');
    expect(await gateRows()).toContainEqual({ gate_name: 'writers', enabled: false });
  });

  it('fencing twice ends in the same state, with nothing left to end the second time', async () => {
    await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false });
    const again = await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false });
    expect(again).toEqual({
      gate: 'writers',
      enabled: false,
      rolesAltered: ['app'],
      sessionsTerminated: 0,
      proof: PROOF,
    });
    const settings = await appdb<{ setconfig: string[] }>(
      `select setconfig from pg_db_role_setting where setrole = 'app'::regrole and setdatabase = 0`,
    );
    expect(settings).toEqual([{ setconfig: ['default_transaction_read_only=on'] }]);
  });

  it('reopening the writer gate lets app write again', async () => {
    const result = await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: true });
    expect(result).toEqual({ gate: 'writers', enabled: true, rolesAltered: ['app'] });
    const fresh = await appSession();
    const inserted = await fresh.query(
      `insert into orders (customer, status, amount) values ('after reopen', 'pending', 1)`,
    );
    expect(inserted.rowCount).toBe(1);
    expect(await gateRows()).toContainEqual({ gate_name: 'writers', enabled: true });
    expect(await appdb(`select 1 from pg_db_role_setting where setrole = 'app'::regrole`)).toEqual([]);
  });

  it('reports GATE_NOT_ENFORCED when app turns read-only off again in its database', async () => {
    await pg.query('alter role app in database appdb set default_transaction_read_only = off');
    try {
      const failure = await failureOf(gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false }));
      expect(failure.type).toBe('GATE_NOT_ENFORCED');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toBe(
        [
          'writer gate on the primary is not enforced:',
          '  as app, "update "system_gate" set updated_at = updated_at where false" succeeded: new sessions of app can write',
          '  role app has default_transaction_read_only=off in database appdb, which wins over the role-wide setting',
          'HINT: if that override is not needed: ALTER ROLE "app" IN DATABASE "appdb" RESET default_transaction_read_only; then retry the step',
          'HINT: the gate row is off and ALTER ROLE ... SET default_transaction_read_only = on was run, but writes by the application are not proven to be refused',
        ].join('\n'),
      );
    } finally {
      await pg.query('alter role app in database appdb reset default_transaction_read_only');
      await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: true });
    }
  });

  it('reports GATE_NOT_ENFORCED with how to prove it by hand when it cannot log in as app', async () => {
    // A connection limit of 0 refuses app's logins (not a superuser's): the proof cannot be made.
    await pg.query('alter role app connection limit 0');
    try {
      const failure = await failureOf(gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false }));
      expect(failure.type).toBe('GATE_NOT_ENFORCED');
      expect(failure.message).toBe(
        [
          'writer gate on the primary is not enforced:',
          '  could not log in as app to attempt a write: too many connections for role "app"',
          'HINT: the gate row is off and ALTER ROLE ... SET default_transaction_read_only = on was run, but writes by the application are not proven to be refused',
          'HINT: Lifeboat proves the gate by logging in as app: name the variable holding its password in gates.writers.proofPasswordEnv, allow the login from this worker in pg_hba.conf (e.g. a cert entry), or',
          'HINT: prove it by hand (psql as app, a write must fail with "cannot execute ... in a read-only transaction") and skip the step with that reason',
        ].join('\n'),
      );
    } finally {
      await pg.query('alter role app connection limit -1');
      await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: true });
    }
  });

  it('proves the gate with the password from gates.writers.proofPasswordEnv when pg_hba.conf asks app for one', async () => {
    const hba = path.join(pg.dataDir, 'pg_hba.conf');
    const original = readFileSync(hba, 'utf8');
    await pg.query(`set password_encryption = 'scram-sha-256'; alter role app password 'app-secret-1'`);
    writeFileSync(hba, `host all app 127.0.0.1/32 scram-sha-256\n${original}`);
    await pg.query('select pg_reload_conf()');
    try {
      const without = await failureOf(gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: false }));
      expect(without.type).toBe('GATE_NOT_ENFORCED');
      expect(without.message).toContain(
        'could not log in as app to attempt a write: the server asks for a password for app, and the runbook names no gates.writers.proofPasswordEnv',
      );
      writeRunbook('proof-password', {
        port: pg.port,
        replace: [/readOnlyRoles: \[app\] \}/, 'readOnlyRoles: [app], proofPasswordEnv: LB_TEST_APP_PASSWORD }'],
      });
      const missing = await failureOf(
        gate({ runbook: 'proof-password', where: 'primary', gate: 'writers', enabled: false }),
      );
      expect(missing.type).toBe('SECRET_MISSING');
      process.env.LB_TEST_APP_PASSWORD = 'app-secret-1';
      const proven = await gate({ runbook: 'proof-password', where: 'primary', gate: 'writers', enabled: false });
      expect(proven.proof).toBe(PROOF);
      expect(JSON.stringify(proven)).not.toContain('app-secret-1');
    } finally {
      delete process.env.LB_TEST_APP_PASSWORD;
      writeFileSync(hba, original);
      await pg.query('select pg_reload_conf()');
      await pg.query('alter role app password null');
      await gate({ runbook: 'orders', where: 'primary', gate: 'writers', enabled: true });
    }
  });

  it('refuses to fence roles that cannot log in, since their settings reach no session', async () => {
    await pg.query('create role app_group nologin');
    writeRunbook('group-role', { port: pg.port, replace: [/readOnlyRoles: \[app\]/, 'readOnlyRoles: [app_group]'] });
    const failure = await failureOf(gate({ runbook: 'group-role', where: 'primary', gate: 'writers', enabled: false }));
    expect(failure.type).toBe('RUNBOOK_INVALID');
    expect(failure.message).toBe(
      [
        'none of gates.writers.readOnlyRoles (app_group) can log in, so making them read-only fences nobody',
        'HINT: ALTER ROLE ... SET applies to logins of that very role, not to members of a group role: list the roles the application logs in as',
      ].join('\n'),
    );
    // Refused before anything was touched.
    expect(await gateRows()).toContainEqual({ gate_name: 'writers', enabled: true });
    expect(await appdb(`select 1 from pg_db_role_setting where setrole = 'app_group'::regrole`)).toEqual([]);
  });

  it('says the primary may be the thing that died, and how to skip, when it does not answer', async () => {
    const deadPort = await freePort();
    writeRunbook('dead-primary', { port: deadPort });
    const failure = await failureOf(
      gate({ runbook: 'dead-primary', where: 'primary', gate: 'writers', enabled: false }),
    );
    expect(failure.type).toBe('PG_UNREACHABLE');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toBe(
      [
        `the primary at postgres@127.0.0.1:${deadPort}/appdb did not answer: connect ECONNREFUSED 127.0.0.1:${deadPort}`,
        `HINT: the primary (127.0.0.1:${deadPort}) may be the thing that died; if it is down or unreachable, nothing can write to it either`,
        'HINT: check it is running and reachable from this worker, then retry the step',
        'HINT: or skip the step with a reason: lifeboat skip rec-42 disable-writers --as <you> --reason "<why>"',
      ].join('\n'),
    );
  });
});

describe('row gates', () => {
  it('turns background jobs and the outbox publisher off and on, on the primary and on the restored instance', async () => {
    expect(await gate({ runbook: 'orders', where: 'primary', gate: 'backgroundJobs', enabled: false })).toEqual({
      gate: 'background_jobs',
      enabled: false,
    });
    expect(await gate({ runbook: 'orders', where: 'primary', gate: 'outbox', enabled: false })).toEqual({
      gate: 'outbox_publisher',
      enabled: false,
    });
    expect(await gateRows()).toEqual([
      { gate_name: 'background_jobs', enabled: false },
      { gate_name: 'outbox_publisher', enabled: false },
      { gate_name: 'writers', enabled: true },
    ]);
    await gate({ runbook: 'orders', where: 'restored', gate: 'backgroundJobs', enabled: true });
    await gate({ runbook: 'orders', where: 'restored', gate: 'outbox', enabled: true });
    expect(await gateRows()).toEqual([
      { gate_name: 'background_jobs', enabled: true },
      { gate_name: 'outbox_publisher', enabled: true },
      { gate_name: 'writers', enabled: true },
    ]);
  });

  it('creates a gate row that is missing', async () => {
    await appdb(`delete from system_gate where gate_name = 'background_jobs'`);
    await gate({ runbook: 'orders', where: 'primary', gate: 'backgroundJobs', enabled: false });
    expect(await gateRows()).toContainEqual({ gate_name: 'background_jobs', enabled: false });
    await gate({ runbook: 'orders', where: 'primary', gate: 'backgroundJobs', enabled: true });
  });

  it('refuses a gate the runbook does not configure, naming the missing field', async () => {
    writeRunbook('no-jobs-gate', { port: pg.port, drop: /^ {2}backgroundJobs: .*\n/m });
    const failure = await failureOf(
      gate({ runbook: 'no-jobs-gate', where: 'primary', gate: 'backgroundJobs', enabled: false }),
    );
    expect(failure.type).toBe('RUNBOOK_INVALID');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      [
        'runbook no-jobs-gate has no gates.backgroundJobs, so this gate cannot be set',
        'HINT: add it to the runbook, e.g. backgroundJobs: { gate: background_jobs }',
        'HINT: or skip the step with a reason if the application has no such gate',
      ].join('\n'),
    );
  });
});

describe('forensics and the outbox', () => {
  it('captures the outbox high-water mark and the rows of each capture query, recording a failing query', async () => {
    const [mark] = await appdb<{ t: string }>(
      `select to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
    );
    // Orders 7 and 8 change "after the target", as the bad UPDATE of an incident would.
    await appdb(`update orders set status = 'canceled', updated_at = now() + interval '1 hour' where id in (7, 8)`);
    const target = { time: mark!.t };

    const result = await capture({ runbook: 'orders', target });

    expect(result.primaryReachable).toBe(true);
    expect(result.outboxHighWater).toBe('450');
    const [changed, many, broken] = result.captures;
    expect(changed).toEqual({
      name: 'orders changed after target',
      rowCount: 2,
      rows: [
        { id: '7', status: 'canceled' },
        { id: '8', status: 'canceled' },
      ],
      truncated: false,
    });
    expect(many).toMatchObject({ name: 'many rows', rowCount: 1500, truncated: true });
    expect(many?.rows).toHaveLength(1000);
    expect(many?.rows.at(-1)).toEqual({ n: 1000 });
    expect(broken).toEqual({
      name: 'broken',
      rowCount: 0,
      rows: [],
      truncated: false,
      error: 'relation "no_such_table" does not exist',
    });
  });

  it('records that the primary did not answer, without failing', async () => {
    const result = await capture({ runbook: 'dead-primary', target: { latest: true } });
    expect(result).toEqual({ capturedAt: result.capturedAt, primaryReachable: false, captures: [] });
  });

  it('marks published exactly the restored outbox rows at or below the high-water mark', async () => {
    // As after a restore from before their publication: 441-450 were published
    // on the old primary but come back unpublished; 451-500 were never published.
    await appdb('update outbox set published_at = null where id > 440');
    const result = await reconcile({ runbook: 'orders', highWater: '450' });
    expect(result).toEqual({ table: 'outbox', highWater: '450', markedPublished: 10 });
    const [counts] = await appdb<{ published: string; unpublished: string; first_unpublished: string }>(
      `select count(*) filter (where published_at is not null) as published,
              count(*) filter (where published_at is null) as unpublished,
              min(id) filter (where published_at is null) as first_unpublished from outbox`,
    );
    expect(counts).toEqual({ published: '450', unpublished: '50', first_unpublished: '451' });
  });

  it('skips reconciliation without a high-water mark or without an outbox, and says why', async () => {
    expect(await reconcile({ runbook: 'orders' })).toEqual({
      table: 'outbox',
      markedPublished: 0,
      skippedReason: 'no high-water mark was captured (the primary did not answer, or had published no outbox rows)',
    });
    writeRunbook('no-outbox', { port: pg.port, drop: /^ {2}outbox: .*\n/m });
    expect(await reconcile({ runbook: 'no-outbox', highWater: '450' })).toEqual({
      markedPublished: 0,
      skippedReason: 'runbook no-outbox configures no outbox (gates.outbox)',
    });
  });
});
