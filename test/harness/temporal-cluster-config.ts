// The Temporal cluster configuration that is tested, in one place: the test
// cluster (test/harness/temporal-server.ts) is built from it, and the compose
// parse test (test/unit/compose.test.ts) checks that docker-compose.yml runs
// the same thing. Two parts are files rather than values, so that both sides
// run the very same bytes:
//   docker/temporal/dynamicconfig.yaml    the server's dynamic config
//   docker/temporal/setup-schema.sh       database and schema setup with the SQL tool
//   docker/temporal/create-namespace.sh   the namespace Lifeboat uses
// What differs on purpose is transport security: the test cluster requires
// mTLS and an API key on loopback; the compose stack is plaintext on its
// private network (README, "The compose stack").
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

export const TEMPORAL_CLUSTER = {
  /** scripts/setup.sh builds this release (TEMPORAL_SERVER_VERSION, with a leading v); the images carry it as their tag. */
  serverVersion: '1.32.2',
  persistence: {
    /** The server's SQL plugin for PostgreSQL 12 and later, for the default store and for visibility. */
    sqlPlugin: 'postgres12',
    database: 'temporal',
    visibilityDatabase: 'temporal_visibility',
    /** Fixed for the life of the database: the server refuses to start with another value. */
    numHistoryShards: 4,
    maxConns: 20,
    visibilityMaxConns: 4,
  },
  namespace: { name: 'default', retention: '1d' },
  files: {
    dynamicConfig: path.join(ROOT, 'docker/temporal/dynamicconfig.yaml'),
    setupSchema: path.join(ROOT, 'docker/temporal/setup-schema.sh'),
    createNamespace: path.join(ROOT, 'docker/temporal/create-namespace.sh'),
  },
} as const;
