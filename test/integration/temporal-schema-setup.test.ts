// docker/temporal/setup-schema.sh, the schema job of docker-compose.yml and
// of the test cluster, against a real PostgreSQL 15 with the Temporal
// server's SQL tool at the tested release (scripts/setup.sh builds it).
// Compose runs the job on every `up`, so a second run over databases it made
// must succeed and change nothing.
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toolsDir } from '../../src/tools';
import { startPrimary, type Primary } from '../harness/postgres';
import { TEMPORAL_CLUSTER } from '../harness/temporal-cluster-config';
import { setupSchemas } from '../harness/temporal-server';

const { database, visibilityDatabase } = TEMPORAL_CLUSTER.persistence;
let pg: Primary;

beforeAll(async () => {
  pg = await startPrimary();
});
afterAll(async () => {
  await pg?.stop();
});

/** The newest versioned step the release ships for a schema, e.g. "1.19". */
function newestVersion(kind: 'temporal' | 'visibility'): string {
  const dir = path.join(toolsDir(), 'temporal-schema', 'postgresql', 'v12', kind, 'versioned');
  const versions = readdirSync(dir).map((d) => d.replace(/^v/, '').split('.').map(Number) as [number, number]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return (versions[versions.length - 1] as number[]).join('.');
}

async function schemaState(db: string): Promise<{ version: string; updates: number; tables: string[] }> {
  const q = async <T extends Record<string, unknown>>(sql: string) => {
    const { Client } = await import('pg');
    const c = new Client({ ...pg.connection, database: db });
    await c.connect();
    try {
      return (await c.query<T>(sql)).rows;
    } finally {
      await c.end();
    }
  };
  const [v] = await q<{ curr_version: string }>('select curr_version from schema_version');
  const [u] = await q<{ n: string }>('select count(*) as n from schema_update_history');
  const tables = await q<{ t: string }>(
    "select table_name as t from information_schema.tables where table_schema = 'public' order by 1",
  );
  return { version: v?.curr_version ?? '', updates: Number(u?.n), tables: tables.map((r) => r.t) };
}

it('creates both databases at the schema versions the release ships, and a second run changes nothing', async () => {
  await setupSchemas(pg);
  const first = { main: await schemaState(database), visibility: await schemaState(visibilityDatabase) };
  expect(first.main.version).toBe(newestVersion('temporal'));
  expect(first.visibility.version).toBe(newestVersion('visibility'));
  expect(first.main.tables).toEqual(
    expect.arrayContaining(['executions', 'history_node', 'namespaces', 'cluster_metadata_info']),
  );
  expect(first.visibility.tables).toContain('executions_visibility');

  // What compose does on the next `up`: the same job over the same databases.
  await setupSchemas(pg);
  expect({ main: await schemaState(database), visibility: await schemaState(visibilityDatabase) }).toEqual(first);
});
