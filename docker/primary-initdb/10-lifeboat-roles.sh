#!/usr/bin/env bash
# Runs once, when the primary's data directory is first initialised (the
# official image runs /docker-entrypoint-initdb.d/*). Creates the roles the
# runbook docker/runbooks/orders.yaml names, with passwords from the
# environment, never from a file in the repository.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v lifeboat_pw="$ORDERS_PG_PASSWORD" -v app_pw="$APP_PG_PASSWORD" <<'SQL'
-- lifeboat: preflight, forensics, gates (ALTER ROLE app ...) and pg_basebackup;
-- pg_monitor for the pg_wal figures of `lifeboat metrics` and `lifeboat check`.
CREATE ROLE lifeboat LOGIN REPLICATION CREATEROLE PASSWORD :'lifeboat_pw';
GRANT pg_read_all_stats, pg_monitor, pg_signal_backend TO lifeboat;
GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO lifeboat;
-- app: what the application (through pgbouncer) connects as; the writer gate
-- makes it read-only during a recovery.
CREATE ROLE app LOGIN PASSWORD :'app_pw';
GRANT ALL ON SCHEMA public TO app;
CREATE TABLE system_gate (name text PRIMARY KEY, enabled boolean NOT NULL DEFAULT true);
INSERT INTO system_gate (name) VALUES ('writers'), ('background_jobs'), ('outbox_publisher');
GRANT SELECT ON system_gate TO app;
GRANT SELECT, UPDATE ON system_gate TO lifeboat;
SQL

# pg_basebackup from the worker container: the image's pg_hba.conf only
# opens "all" databases to the network, and "all" does not match replication.
echo 'host replication lifeboat all scram-sha-256' >> "$PGDATA/pg_hba.conf"
