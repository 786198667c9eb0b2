// The least-privilege role on a cluster that is not the demo's: database
// bank, schema ledger (accounts, entries, limits, a sequence of its own), a
// gate table and an outbox in schema ops. The role is created by exactly
// grantsSql()'s output run as a superuser; the check, connected as the role,
// then finds nothing missing. Each piece taken away is named alone, with a
// fix that, run as the superuser, makes the check pass again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectPrivileges, type MissingPrivilege } from '../../src/privileges/check';
import { grantsSql } from '../../src/privileges/grants';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { startPrimary, type Primary } from '../harness/postgres';

const ROLE = 'lifeboat_ops';
const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-privileges-runbooks-'));
let pg: Primary;
let runbook: Runbook;

/** The bank's own schema: nothing of the demo's. */
const BANK_SQL = `
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

function runbookYaml(): string {
  return `
name: bank
cluster:
  primary: { host: 127.0.0.1, port: ${pg.port}, database: bank, user: ${ROLE} }
  pgBin: /usr/lib/postgresql/15/bin
repository: { url: "file://${runbooksDir}/repo" }
restore: { host: bank-host, dataDir: ${runbooksDir}/restore, port: ${pg.port + 1} }
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
drill: { host: bank-host, dataDir: ${runbooksDir}/drill, port: ${pg.port + 2} }
`;
}

async function asSuperuser(sql: string, database = 'bank'): Promise<void> {
  const c = new Client({ ...pg.connection, database });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function check(): Promise<{ missing: MissingPrivilege[]; notes: string[] }> {
  const c = new Client({ host: '127.0.0.1', port: pg.port, user: ROLE, database: 'bank' });
  await c.connect();
  try {
    const r = await inspectPrivileges(c, runbook);
    return { missing: r.missing, notes: r.notes };
  } finally {
    await c.end();
  }
}

const required = (m: MissingPrivilege[]) => m.filter((x) => !x.optional);

beforeAll(async () => {
  pg = await startPrimary();
  await asSuperuser('create database bank', 'postgres');
  await asSuperuser(BANK_SQL);
  writeFileSync(path.join(runbooksDir, 'bank.yaml'), runbookYaml());
  runbook = await loadRunbook('bank', runbooksDir);
});

afterAll(async () => {
  await pg?.stop();
  rmSync(runbooksDir, { recursive: true, force: true });
});

describe('grantsSql and the privilege check, on a schema that is not the demo\'s', () => {
  it('refuses to run in a database other than the runbook\'s, before creating anything', async () => {
    await expect(asSuperuser(grantsSql(runbook), 'postgres')).rejects.toThrow(
      'connected to database postgres, but these grants belong in database bank (psql -d bank)',
    );
    const roles = await pg.query('select 1 from pg_roles where rolname = $1', [ROLE]);
    expect(roles).toEqual([]);
  });

  it('creates a role that is not a superuser and has every piece; only the optional pg_monitor is reported', async () => {
    const sql = grantsSql(runbook);
    await asSuperuser(sql);
    // Idempotent: the same script again changes nothing and does not fail.
    await asSuperuser(sql);
    const [role] = await pg.query<{ rolsuper: boolean; rolreplication: boolean; rolcreaterole: boolean; rolpassword: string | null }>(
      'select rolsuper, rolreplication, rolcreaterole, rolpassword from pg_authid where rolname = $1',
      [ROLE],
    );
    expect(role).toEqual({ rolsuper: false, rolreplication: true, rolcreaterole: true, rolpassword: null });
    const { missing, notes } = await check();
    expect(notes).toEqual([]);
    expect(missing.map((m) => [m.key, m.optional])).toEqual([['member:pg_monitor', true]]);
  });

  const pieces: Array<{ name: string; revoke: string; key: string; fix: string; database?: string }> = [
    {
      name: 'SELECT on a table an invariant reads',
      revoke: `revoke select on ledger.limits from ${ROLE}`,
      key: 'invariant:no debit over its limit',
      fix: `GRANT SELECT ON TABLE "ledger"."limits" TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'EXECUTE on pg_switch_wal()',
      revoke: `revoke execute on function pg_catalog.pg_switch_wal() from ${ROLE}`,
      key: 'execute:pg_switch_wal()',
      fix: `GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'CREATEROLE',
      revoke: `alter role ${ROLE} nocreaterole`,
      key: 'createrole',
      fix: `ALTER ROLE "${ROLE}" WITH CREATEROLE;`,
    },
    {
      name: 'SELECT on a sequence the built-in check reads',
      revoke: `revoke select on sequence ledger.entry_no from ${ROLE}`,
      key: 'sequences',
      fix: `GRANT SELECT ON SEQUENCE "ledger"."entry_no" TO "${ROLE}";`,
      database: 'bank',
    },
    {
      name: 'UPDATE on the gate table',
      revoke: `revoke update on ops.system_gate from ${ROLE}`,
      key: 'gate-table:ops.system_gate',
      fix: `GRANT UPDATE ON TABLE "ops"."system_gate" TO "${ROLE}";`,
      database: 'bank',
    },
  ];
  for (const p of pieces) {
    it(`names exactly the missing ${p.name}, with a fix that makes the check pass again`, async () => {
      await asSuperuser(p.revoke);
      const { missing } = await check();
      expect(required(missing)).toEqual([expect.objectContaining({ key: p.key, fix: p.fix, ...(p.database ? { database: p.database } : {}) })]);
      if (!p.database) expect(required(missing)[0]!.database).toBeUndefined();
      await asSuperuser(required(missing)[0]!.fix);
      expect(required((await check()).missing)).toEqual([]);
    });
  }
});
