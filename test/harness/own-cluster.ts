// A DBA's own cluster, not the demo (issue 11): a PostgreSQL 15 primary with a
// `bank` database holding schema `ledger` (accounts with an identity column,
// entries with a bigserial, its own gate table), an application role
// `teller` behind pgbouncer with a Redis cache, archiving into a fresh s3://
// repository on the run's MinIO, and a runbook written by hand the way
// runbooks/orders.example.yaml says, whose role `lifeboat` is NOT a
// superuser and logs in with a password.
//
// What the superuser does here is only what `lifeboat grants` cannot do:
//   - CREATE ROLE lifeboat LOGIN PASSWORD (grants never sets a password; the
//     password is the runbook's passwordEnv variable);
//   - pg_hba.conf lines: scram-sha-256 for `lifeboat`, for connections and
//     for replication (pg_basebackup); `teller` and `postgres` trusted on
//     loopback (the application's and the harness's logins are not what the
//     test is about);
//   - a second login, lifeboat_bare, given nothing, with a runbook of its own
//     on the same cluster: what a copy does for a role the grants never reached.
// The grants themselves are the test's to apply (applyAsSuperuser), from
// exactly what the built `lifeboat grants` printed.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { chownToOsUser } from '../../src/dev/sandbox-pg';
import type { Cleanups } from './cleanups';
import { startPgbouncer, type TestPgbouncer } from './pgbouncer';
import { freePort } from './ports';
import { asPostgres, PG_BIN, postgresTempDir, startPrimary, type Primary } from './postgres';
import { startRedis, type TestRedis } from './redis';
import { s3Env, s3RepoUrl } from './services';

export const LEDGER_DB = 'bank';
export const LIFEBOAT_ROLE = 'lifeboat';
/** A login given nothing at all, in the catalog before the backup: what a restored copy does for a role the grants never reached. */
export const BARE_ROLE = 'lifeboat_bare';

/** The ledger: accounts, double-entry transfers (two legs summing to zero), the application's own gate table. */
export const LEDGER_SCHEMA_SQL = `
create schema ledger;
create table ledger.accounts (
  id bigint generated always as identity primary key,
  owner text not null,
  opened_at timestamptz not null default now()
);
create table ledger.entries (
  id bigserial primary key,
  transfer_id bigint not null,
  account_id bigint not null references ledger.accounts,
  amount numeric(14,2) not null,
  booked_at timestamptz not null default clock_timestamp()
);
create index on ledger.entries (transfer_id);
create table ledger.gate (
  gate_name text primary key,
  enabled boolean not null,
  updated_at timestamptz not null default now()
);
insert into ledger.gate (gate_name, enabled) values ('writers', true), ('batch_jobs', true);
create role teller login;
grant usage on schema ledger to teller;
grant select, insert, update, delete on all tables in schema ledger to teller;
grant usage, select on all sequences in schema ledger to teller;
`;

/** \`transfers\` transfers between the accounts, each two legs summing to zero; amounts vary so the sum per account does. */
export function transfersSql(first: number, transfers: number): string {
  return `
insert into ledger.entries (transfer_id, account_id, amount)
select t, leg.account_id, leg.amount
from generate_series(${first}, ${first + transfers - 1}) t,
     lateral (values (1 + t % 40, -((t % 997) + 0.25)), (1 + (t * 7 + 3) % 40, (t % 997) + 0.25)) as leg(account_id, amount);`;
}

/** Row count, sum and an md5 over every row ordered by key: what "exactly as at the checkpoint" is checked with. */
export const LEDGER_FINGERPRINT_SQL = `
select (select count(*) from ledger.entries)::text as entries,
       (select coalesce(sum(amount), 0) from ledger.entries)::text as sum,
       (select sum(amount) from ledger.entries where account_id = 1)::text as account1,
       (select count(*) from ledger.accounts)::text as accounts,
       (select md5(string_agg(format('%s|%s|%s|%s|%s', id, transfer_id, account_id, amount, booked_at), ',' order by id)) from ledger.entries) as md5`;

export interface LedgerFingerprint {
  entries: string;
  sum: string;
  account1: string;
  accounts: string;
  md5: string;
}

export interface OwnCluster {
  name: string;
  /** A runbook of the same cluster whose role is BARE_ROLE. */
  bareName: string;
  /** The worker host (its lifeboat-host-<host> queue). */
  host: string;
  pg: Primary;
  repoUrl: string;
  runbooksDir: string;
  runbookFile: string;
  stateDir: string;
  redis: TestRedis;
  pgbouncer: TestPgbouncer;
  /** Variables the worker and the CLI need: the role's password, S3, Redis, pgbouncer's admin URL. */
  env: Record<string, string>;
  /** Connection settings of a role on the primary (teller and postgres: trust; lifeboat: its password). */
  connection(user: 'postgres' | 'teller' | typeof LIFEBOAT_ROLE | typeof BARE_ROLE, port?: number): ClientConfig;
  /** A query as the superuser in database bank. */
  query<T extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs an SQL script as the superuser in database bank with psql -v ON_ERROR_STOP=1 -f, as a DBA would. */
  applyAsSuperuser(sql: string): Promise<string>;
}

/** Starts everything above; every piece is pushed onto `cleanups`. */
export async function startOwnCluster(label: string, cleanups: Cleanups): Promise<OwnCluster> {
  const name = `${label}-${process.pid}`;
  const host = `${label}${process.pid}`;
  const passwordEnv = `${label.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PG_PASSWORD`;
  const password = randomBytes(12).toString('hex');
  const runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  const stateDir = postgresTempDir('state');
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const repoUrl = s3RepoUrl(name);

  const pg = await startPrimary({ archive: { repo: repoUrl, cluster: name, env: s3Env() } });
  cleanups.push(() => pg.stop());
  const hba = [
    '# the harness (tests only)',
    'local all postgres trust',
    'host all postgres 127.0.0.1/32 trust',
    "# the application behind pgbouncer: its login is not this test's subject",
    'host all teller 127.0.0.1/32 trust',
    '# the runbook role: a password, also for replication (pg_basebackup); grants cannot write this file',
    `host replication ${LIFEBOAT_ROLE} 127.0.0.1/32 scram-sha-256`,
    `host all ${LIFEBOAT_ROLE} 127.0.0.1/32 scram-sha-256`,
    `host all ${BARE_ROLE} 127.0.0.1/32 scram-sha-256`,
    '',
  ].join('\n');
  const hbaFile = path.join(pg.dataDir, 'pg_hba.conf');
  writeFileSync(hbaFile, hba, { mode: 0o600 });
  chownToOsUser(hbaFile, 'postgres');
  await pg.query('select pg_reload_conf()');

  await pg.query(`create database ${LEDGER_DB}`);
  const connection = (
    user: 'postgres' | 'teller' | typeof LIFEBOAT_ROLE | typeof BARE_ROLE,
    port = pg.port,
  ): ClientConfig => ({
    host: '127.0.0.1',
    port,
    user,
    database: LEDGER_DB,
    ...(user === LIFEBOAT_ROLE || user === BARE_ROLE ? { password } : {}),
  });
  const query = async <T extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]> => {
    const c = new Client(connection('postgres'));
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
  await query(LEDGER_SCHEMA_SQL);
  await query(`insert into ledger.accounts (owner) select 'customer-' || g from generate_series(1, 40) g`);
  await query(transfersSql(1, 2000));
  // What grants cannot do: the login and its password (a literal: CREATE ROLE takes no parameters).
  await query(`create role ${LIFEBOAT_ROLE} login password '${password}'`);
  await query(`create role ${BARE_ROLE} login password '${password}'`);

  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const pgbouncer = await startPgbouncer({ database: LEDGER_DB, host: '127.0.0.1', port: pg.port, authUser: 'teller' });
  cleanups.push(() => pgbouncer.stop());

  const vars = label.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  const env: Record<string, string> = {
    ...s3Env(),
    [passwordEnv]: password,
    [`${vars}_BARE_PG_PASSWORD`]: password,
    [`${vars}_REDIS_URL`]: redis.url,
    [`${vars}_PGBOUNCER_ADMIN`]: pgbouncer.adminUrl,
  };
  const runbookFile = path.join(runbooksDir, `${name}.yaml`);
  const drillPort = await freePort();
  const yaml = `# The ledger of bank: written from runbooks/orders.example.yaml for a cluster of our own.
name: ${name}
cluster:
  primary: { host: 127.0.0.1, port: ${pg.port}, database: ${LEDGER_DB}, user: ${LIFEBOAT_ROLE}, passwordEnv: ${passwordEnv} }
  pgBin: ${PG_BIN}
  osUser: postgres
repository: { url: "${repoUrl}", endpointEnv: S3_ENDPOINT }
backup: { host: ${host}, retainFull: 3, scratchDir: ${stateDir}/scratch }
restore: { host: ${host}, dataDir: ${stateDir}/recovery, port: ${await freePort()}, mode: side-by-side }
gates:
  table: ledger.gate
  writers: { gate: writers, readOnlyRoles: [teller] }
  backgroundJobs: { gate: batch_jobs }
capture:
  - { name: newest entries, sql: "select id, transfer_id, account_id, amount from ledger.entries order by id desc limit 20" }
invariants:
  - { name: the ledger balances, sql: "select coalesce(sum(amount), 0) from ledger.entries", expect: 0 }
  - { name: every transfer has two legs, sql: "select count(*) from (select transfer_id from ledger.entries group by transfer_id having count(*) <> 2) t", expect: 0 }
  - { name: no entry without its account, sql: "select count(*) from ledger.entries e where not exists (select 1 from ledger.accounts a where a.id = e.account_id)", expect: 0 }
caches:
  - redis: { urlEnv: ${vars}_REDIS_URL, patterns: ["ledger:*"] }
traffic:
  pgbouncer: { adminUrlEnv: ${vars}_PGBOUNCER_ADMIN, database: ${LEDGER_DB}, databasesFile: ${pgbouncer.databasesFile} }
approvals:
  approve-fence: { approvers: [alice, bob] }
  approve-promote: { approvers: [alice, bob], min: 2 }
  approve-resume: { approvers: [alice, bob] }
objectives: { rpoSeconds: 300, rtoSeconds: 2700 }
drill: { host: ${host}, dataDir: ${stateDir}/drill, port: ${drillPort}, targetWindow: 24h }
`;
  writeFileSync(runbookFile, yaml);
  // The bare role's runbook: the same cluster and repository, a drill site of its own.
  const bareName = `${name}-bare`;
  writeFileSync(
    path.join(runbooksDir, `${bareName}.yaml`),
    yaml
      .replace(`name: ${name}\n`, `name: ${bareName}\n`)
      .replace('cluster:\n', `cluster:\n  name: ${name}\n`)
      .replace(
        `user: ${LIFEBOAT_ROLE}, passwordEnv: ${passwordEnv}`,
        `user: ${BARE_ROLE}, passwordEnv: ${vars}_BARE_PG_PASSWORD`,
      )
      .replace(
        `dataDir: ${stateDir}/drill, port: ${drillPort}`,
        `dataDir: ${stateDir}/drill-bare, port: ${await freePort()}`,
      ),
  );

  return {
    name,
    bareName,
    host,
    pg,
    repoUrl,
    runbooksDir,
    runbookFile,
    stateDir,
    redis,
    pgbouncer,
    env,
    connection,
    query,
    async applyAsSuperuser(sql: string) {
      const file = path.join(pg.root, `script-${Date.now()}.sql`);
      writeFileSync(file, sql, { mode: 0o600 });
      chownToOsUser(file, 'postgres');
      try {
        return await asPostgres(`${PG_BIN}/psql`, [
          '-X',
          '-h',
          '127.0.0.1',
          '-p',
          String(pg.port),
          '-U',
          'postgres',
          '-d',
          LEDGER_DB,
          '-v',
          'ON_ERROR_STOP=1',
          '-f',
          file,
        ]);
      } finally {
        rmSync(file, { force: true });
      }
    },
  };
}

export async function ledgerFingerprint(config: ClientConfig): Promise<LedgerFingerprint> {
  const c = new Client(config);
  await c.connect();
  try {
    return (await c.query<LedgerFingerprint & Record<string, unknown>>(LEDGER_FINGERPRINT_SQL)).rows[0]!;
  } finally {
    await c.end();
  }
}
