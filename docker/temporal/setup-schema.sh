#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the
# version of the server that runs them, with the server's own SQL tool. Run by
# the one-shot `temporal-schema` service of docker-compose.yml (in the
# temporalio/admin-tools image, at the server's version) and by the test
# cluster (test/harness/temporal-server.ts, with the tool and schema files
# scripts/setup.sh builds), so both run the same steps.
#
# Every step is safe to repeat, which compose does on each `up`:
# create-database ignores a database that exists, setup-schema -v 0.0 leaves
# a versioned schema alone, update-schema applies only the versions the
# database lacks. After an image upgrade, the next `up` migrates the schemas
# before the new server starts.
#
# The tool reads its connection from SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER
# and SQL_PASSWORD. Optional: TEMPORAL_SQL_TOOL (default temporal-sql-tool),
# TEMPORAL_SCHEMA_DIR (default /etc/temporal/schema/postgresql/v12, where the
# admin-tools image keeps them), DBNAME and VISIBILITY_DBNAME (the server
# image's variables, default temporal and temporal_visibility).
set -eu

tool=${TEMPORAL_SQL_TOOL:-temporal-sql-tool}
schema=${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}

setup() { # database, schema kind (temporal or visibility)
  echo "setup-schema: $1 ($2 schema from $schema/$2/versioned)"
  "$tool" --db "$1" create-database
  "$tool" --db "$1" setup-schema -v 0.0
  "$tool" --db "$1" update-schema -d "$schema/$2/versioned"
}

setup "${DBNAME:-temporal}" temporal
setup "${VISIBILITY_DBNAME:-temporal_visibility}" visibility
echo "setup-schema: done"
