// docker/primary-initdb/10-lifeboat-roles.sh, the compose primary's init
// script, run as the postgres image runs it (POSTGRES_USER, POSTGRES_DB,
// PGDATA, the passwords in the environment, `lifeboat` and psql on PATH,
// LIFEBOAT_RUNBOOKS_DIR naming the compose runbooks) on a real PostgreSQL 15
// with an empty database appdb. Then `lifeboat doctor`, connected as the
// runbook's role, must find nothing missing: the stack's role has what
// `lifeboat grants` lists for docker/runbooks/orders.yaml, not a subset of it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliRunner } from '../harness/cli';
import { PG_BIN, startPrimary, type Primary } from '../harness/postgres';

const ROOT = path.resolve(__dirname, '../..');
const SCRIPT = path.join(ROOT, 'docker/primary-initdb/10-lifeboat-roles.sh');
const work = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-compose-initdb-'));
const runbooksDir = path.join(work, 'runbooks');
const lifeboat = cliRunner(() => ({ ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir, ORDERS_PG_PASSWORD: 'pw-l' }));
let pg: Primary;

beforeAll(async () => {
  pg = await startPrimary();
  await pg.query('create database appdb');
  // The compose runbook with the compose hosts swapped for this cluster, for doctor.
  mkdirSync(runbooksDir);
  mkdirSync(path.join(work, 'repo'));
  const text = readFileSync(path.join(ROOT, 'docker/runbooks/orders.yaml'), 'utf8')
    .replace('{ host: primary, port: 5432,', `{ host: 127.0.0.1, port: ${pg.port},`)
    .replace(/repository: \{[^}]*\}/, `repository: { url: "file://${work}/repo" }`);
  expect(text).toContain(`port: ${pg.port}`);
  writeFileSync(path.join(runbooksDir, 'orders.yaml'), text);
});

afterAll(async () => {
  await pg?.stop();
  rmSync(work, { recursive: true, force: true });
});

it("gives the compose runbook's role everything `lifeboat grants` lists: doctor as the role finds nothing missing", async () => {
  const init = spawnSync('bash', [SCRIPT], {
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${path.join(ROOT, 'bin')}:${PG_BIN}:${process.env.PATH}`,
      PGHOST: '127.0.0.1',
      PGPORT: String(pg.port),
      POSTGRES_USER: 'postgres',
      POSTGRES_DB: 'appdb',
      PGDATA: pg.dataDir,
      ORDERS_PG_PASSWORD: 'pw-l',
      APP_PG_PASSWORD: 'pw-a',
      // As the Dockerfile sets it: the runbooks compose mounts into the primary.
      LIFEBOAT_RUNBOOKS_DIR: path.join(ROOT, 'docker/runbooks'),
    },
  });
  expect(init.stderr).not.toMatch(/\bERROR:/);
  expect(init.status).toBe(0);

  const r = await lifeboat('doctor', '--runbook', 'orders', '--json');
  const report = JSON.parse(r.stdout) as { ok: boolean; primary: { missing: unknown[]; notes: string[] } };
  expect(report.primary.missing).toEqual([]);
  expect(r.code).toBe(0);
  // pg_monitor, optional in `lifeboat grants`, is given for lifeboat metrics' pg_wal figures.
  const [m] = await pg.query<{ monitor: boolean; replication: boolean }>(
    `select pg_has_role('lifeboat', 'pg_monitor', 'member') as monitor, rolreplication as replication
       from pg_roles where rolname = 'lifeboat'`,
  );
  expect(m).toEqual({ monitor: true, replication: true });
  // The replication line pg_basebackup from the worker container needs.
  expect(readFileSync(path.join(pg.dataDir, 'pg_hba.conf'), 'utf8')).toContain(
    'host replication lifeboat all scram-sha-256',
  );
});
