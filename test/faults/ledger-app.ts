// The application the worker-kill fault test recovers: not the demo's (an
// accounts table, a ledger, the gates, an outbox of its own), plus the SQL
// the test's holds need in the restored copy, and its runbook.
import { PG_BIN } from '../harness/postgres';

/** An application that is not the demo's: accounts, a ledger, the gates, an outbox of its own. */
export function schemaSql(holdDir: string): string {
  return `
create table accounts (id int primary key, owner text not null, balance numeric(12,2) not null);
create table ledger (id bigint primary key, account_id int not null references accounts, amount numeric(12,2) not null,
  memo text not null, changed_at timestamptz not null default clock_timestamp());
create table system_gate (gate_name text primary key, enabled boolean not null, updated_at timestamptz not null default now());
insert into system_gate (gate_name, enabled) values ('writers', true), ('background_jobs', true), ('outbox_publisher', true);
create table events_out (id bigserial primary key, kind text not null, body jsonb not null, sent_at timestamptz);
create role teller login;
grant all on all tables in schema public to teller;
grant all on all sequences in schema public to teller;
-- Waits while the hold file <holdDir>/<name> exists. SECURITY DEFINER as the
-- superuser: pg_stat_file on an absolute path needs it.
create function fk_hold(name text) returns int language plpgsql security definer set search_path = pg_catalog as $$
begin
  while (pg_stat_file('${holdDir}/' || name, true)).size is not null loop
    perform pg_sleep(0.1);
  end loop;
  return 0;
end $$;
create function fk_gate_hold() returns trigger language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  perform fk_hold('gate-' || new.gate_name || '-' || case when new.enabled then 'on' else 'off' end || '-' || current_setting('port'));
  return new;
end $$;
create trigger fk_gate_hold before insert or update on system_gate for each row execute function fk_gate_hold();
create function fk_outbox_hold() returns trigger language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  perform fk_hold('reconcile-' || current_setting('port'));
  return null;
end $$;
create trigger fk_outbox_hold before update on events_out for each statement execute function fk_outbox_hold();
insert into accounts select g, 'owner-' || g, 1000 + g from generate_series(1, 50) g;
insert into ledger (id, account_id, amount, memo) select g, 1 + g % 50, (g % 89) - 20.25, 'entry ' || g from generate_series(1, 2000) g;
`;
}

/** Every row of the application's tables, in key order, as one digest: equal digests, equal rows. */
export const FINGERPRINT_SQL = `select (select md5(string_agg(a::text, '|' order by a.id)) from accounts a) || ':' ||
  (select md5(string_agg(l::text, '|' order by l.id)) from ledger l) as fp`;

export function runbookYaml(p: {
  name: string;
  pgPort: number;
  repoUrl: string;
  host: string;
  stateDir: string;
  restorePort: number;
}): string {
  return `name: ${p.name}
cluster:
  primary: { host: 127.0.0.1, port: ${p.pgPort}, database: postgres, user: postgres }
  pgBin: ${PG_BIN}
  osUser: postgres
repository: { url: "${p.repoUrl}", endpointEnv: S3_ENDPOINT }
restore: { host: ${p.host}, dataDir: ${p.stateDir}/recovery, port: ${p.restorePort}, mode: side-by-side }
backup: { host: ${p.host}, retainFull: 3, scratchDir: ${p.stateDir}/scratch }
gates:
  table: system_gate
  writers: { gate: writers, readOnlyRoles: [teller] }
  backgroundJobs: { gate: background_jobs }
  outbox: { gate: outbox_publisher, table: events_out, idColumn: id, publishedColumn: sent_at }
capture:
  - { name: ledger rows changed after the target, sql: "select id, amount from ledger where changed_at > $1" }
invariants:
  - { name: no overdrawn account, sql: "select fk_hold('run-invariants') + count(*) from accounts where balance < 0", expect: 0 }
caches:
  - http: { urlEnv: FK_PURGE_URL, method: POST }
approvals:
  approve-fence: { approvers: [alice] }
  approve-promote: { approvers: [alice] }
  approve-resume: { approvers: [alice] }
objectives: { rpoSeconds: 300, rtoSeconds: 2700 }
`;
}
