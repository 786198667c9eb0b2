// A small cluster of a DBA's own for the least-privilege tests: database
// bank, schema ledger (accounts with an identity column, entries whose id
// comes from a sequence of its own, limits without one), a gate table and an
// outbox in schema ops, an application role teller, and a runbook written by
// hand for role lifeboat_ops, which is not a superuser and starts with nothing:
// what it may do comes from `lifeboat grants` in each test.
import { rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { startPrimary, type Primary } from './postgres';

export const ROLE = 'lifeboat_ops';

/** The bank's own schema: nothing of the demo's. */
export const BANK_SQL = `
create role teller login;
create schema ledger;
create table ledger.accounts (id integer generated always as identity primary key, owner text not null);
create sequence ledger.entry_no;
create table ledger.entries (id bigint primary key default nextval('ledger.entry_no'), account_id integer not null references ledger.accounts, amount numeric(12,2) not null);
alter sequence ledger.entry_no owned by ledger.entries.id;
create table ledger.limits (account_id integer primary key, max_debit numeric(12,2) not null);
create schema ops;
create table ops.system_gate (gate_name text primary key, enabled boolean not null, updated_at timestamptz not null default now());
create table ops.outbox (id bigint primary key, payload text, published_at timestamptz);
insert into ledger.accounts (owner) values ('ada'), ('bob');
insert into ledger.entries (account_id, amount) values (1, 10.00), (2, -2.50);
insert into ledger.limits values (1, 100), (2, 50);
grant usage on schema ledger, ops to teller;
grant select, insert, update on all tables in schema ledger, ops to teller;
`;

export function bankRunbookYaml(pg: Pick<Primary, 'port'>, dirs: { repoDir: string; stateDir: string }): string {
  return `
name: bank
cluster:
  primary: { host: 127.0.0.1, port: ${pg.port}, database: bank, user: ${ROLE} }
  pgBin: /usr/lib/postgresql/15/bin
repository: { url: "file://${dirs.repoDir}" }
restore: { host: bank-host, dataDir: ${dirs.stateDir}/restore, port: ${pg.port + 1} }
backup: { scratchDir: ${dirs.stateDir}/scratch }
gates:
  table: ops.system_gate
  writers: { gate: writers, readOnlyRoles: [teller] }
  backgroundJobs: { gate: background_jobs }
  outbox: { gate: outbox_publisher, table: ops.outbox, idColumn: id, publishedColumn: published_at }
capture:
  - { name: entries after target, sql: "select e.id, e.amount from ledger.entries e join ledger.accounts a on a.id = e.account_id where e.id > 0 and now() > $1" }
invariants:
  - { name: ledger sums to 7.50, sql: "select sum(amount) from ledger.entries", expect: 7.5 }
  - { name: no debit over its limit, sql: "select count(*) from ledger.entries e join ledger.limits l on l.account_id = e.account_id where -e.amount > l.max_debit", expect: 0 }
objectives: { rpoSeconds: 300, rtoSeconds: 2700 }
drill: { host: bank-host, dataDir: ${dirs.stateDir}/drill, port: ${pg.port + 2} }
`;
}

export interface BankDirs {
  /** Where bank.yaml is written (the test's own temporary directory). */
  runbooksDir: string;
  /** The file:// repository the primary archives into (the test's own). */
  repoDir: string;
}

/** Runs SQL as the superuser in one database of the bank's primary (bank unless named). */
export async function asSuperuserOn(pg: Primary, sql: string, database = 'bank'): Promise<void> {
  const c = new Client({ ...pg.connection, database });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** The bank's primary, archiving into dirs.repoDir, with its schema, and runbook bank written into dirs.runbooksDir. */
export async function startBank(dirs: BankDirs): Promise<{ pg: Primary; runbook: Runbook }> {
  const pg = await startPrimary({ archive: { repo: `file://${dirs.repoDir}`, cluster: 'bank' } });
  await asSuperuserOn(pg, 'create database bank', 'postgres');
  await asSuperuserOn(pg, BANK_SQL);
  writeFileSync(
    path.join(dirs.runbooksDir, 'bank.yaml'),
    bankRunbookYaml(pg, { repoDir: dirs.repoDir, stateDir: dirs.runbooksDir }),
  );
  return { pg, runbook: await loadRunbook('bank', dirs.runbooksDir) };
}

/** Stops the primary and removes the test's own temporary directories. */
export async function stopBank(pg: Primary | undefined, dirs: BankDirs): Promise<void> {
  await pg?.stop();
  rmSync(dirs.runbooksDir, { recursive: true, force: true });
  rmSync(dirs.repoDir, { recursive: true, force: true });
}
