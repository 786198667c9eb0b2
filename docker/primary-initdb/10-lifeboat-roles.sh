#!/usr/bin/env bash
# Runs once, when the primary's data directory is first initialised (the
# official image runs /docker-entrypoint-initdb.d/*, as the postgres user,
# against a server on its Unix socket). Creates the roles the runbook
# docker/runbooks/orders.yaml names, with passwords from the environment,
# never from a file in the repository; stand-ins for the application's tables
# the runbook names (replace them with your own schema, then run `lifeboat
# grants` again); and gives the runbook's role exactly what `lifeboat grants`
# prints for this runbook (test/integration/compose-initdb.test.ts runs this
# file on a real PostgreSQL 15 and then `lifeboat doctor` as the role).
set -euo pipefail

psql=(psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB")

"${psql[@]}" -v lifeboat_pw="$ORDERS_PG_PASSWORD" -v app_pw="$APP_PG_PASSWORD" <<'SQL'
-- lifeboat: the runbook's role (cluster.primary.user); its privileges come
-- from `lifeboat grants` below. app: what the application (through
-- pgbouncer) connects as; the writer gate makes it read-only in a recovery.
CREATE ROLE lifeboat LOGIN PASSWORD :'lifeboat_pw';
CREATE ROLE app LOGIN PASSWORD :'app_pw';
GRANT ALL ON SCHEMA public TO app;

-- The gates (gates.table): one row per gate the runbook names.
CREATE TABLE system_gate (name text PRIMARY KEY, enabled boolean NOT NULL DEFAULT true);
INSERT INTO system_gate (name) VALUES ('writers'), ('background_jobs'), ('outbox_publisher');
GRANT SELECT ON system_gate TO app;

-- Stand-ins for the application's tables the runbook reads: the outbox
-- (gates.outbox), the capture query (orders) and the invariant (account_balance).
CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  status text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE account_balance (
  account_id bigint PRIMARY KEY,
  available_amount numeric(14, 2) NOT NULL DEFAULT 0
);
CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payload jsonb NOT NULL,
  published_at timestamptz
);
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, account_balance, outbox TO app;
SQL

# What Lifeboat needs and nothing more, as `lifeboat grants` prints it for this
# runbook (role attributes, pg_signal_backend, the WAL functions, the gate
# table, the outbox's columns, the tables of the invariants and capture
# queries). Run it again after changing the runbook or the schema.
lifeboat grants --runbook orders | "${psql[@]}" -q -f -
# Optional in `lifeboat grants` (printed commented out): lifeboat metrics and
# lifeboat check report the size of pg_wal and the files waiting for the
# archiver with it.
"${psql[@]}" -q -c 'GRANT pg_monitor TO lifeboat'

# pg_basebackup from the worker container: the image's pg_hba.conf only
# opens "all" databases to the network, and "all" does not match replication.
echo 'host replication lifeboat all scram-sha-256' >> "$PGDATA/pg_hba.conf"
