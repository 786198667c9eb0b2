// resume-traffic against real servers: two PostgreSQL primaries with
// different data (A, the old primary; B, standing in for the promoted
// instance at restore.address:restore.port) and a real pgbouncer in front of
// A. The activity runs in Temporal's MockActivityEnvironment and reads a
// runbook from a temporary directory.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { resumeTraffic } from '../../activities/traffic';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import type { TrafficResult } from '../../src/recovery/contract';
import { loadRunbook } from '../../src/runbook/load';
import { switchRunbookTraffic, type TrafficProgress } from '../../src/traffic';
import { startPgbouncer, type TestPgbouncer } from '../harness/pgbouncer';
import { waitFor } from '../harness/ports';
import { startPrimary, type Primary } from '../harness/postgres';

const ADMIN_PASSWORD = 'adm1n-pw-never-shown';
const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-traffic-'));
const runbooksDir = path.join(root, 'runbooks');
const postgresUid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());

let a: Primary;
let b: Primary;
let pgb: TestPgbouncer;
const opened: Client[] = [];

/** A runbook whose restored instance is B, with this traffic section. */
function writeRunbook(name: string, traffic?: string): string {
  const yaml = demoRunbookYaml({
    name,
    pgPort: a.port,
    pgUser: 'postgres',
    database: 'appdb',
    repoUrl: `file://${root}/repo`,
    host: 'traffictest',
    stateDir: path.join(root, 'state'),
    restorePort: b.port,
    drillPort: b.port === 65535 ? 65534 : b.port + 1,
  });
  writeFileSync(path.join(runbooksDir, `${name}.yaml`), traffic ? `${yaml}traffic:\n  ${traffic}\n` : yaml);
  return name;
}

function pgbouncerRunbook(name: string, databasesFile = pgb.databasesFile): string {
  return writeRunbook(
    name,
    `pgbouncer: { adminUrlEnv: LB_TEST_PGBOUNCER_ADMIN, database: appdb, databasesFile: ${databasesFile} }`,
  );
}

async function run(runbook: string, beats: TrafficProgress[] = []): Promise<TrafficResult> {
  const env = new MockActivityEnvironment();
  env.on('heartbeat', (d: TrafficProgress) => beats.push(d));
  return env.run<[{ runbook: string }], TrafficResult, typeof resumeTraffic>(resumeTraffic, { runbook });
}

/** A client of the application: through pgbouncer, as the application connects. */
async function appClient(): Promise<Client> {
  const c = new Client({ host: '127.0.0.1', port: pgb.port, user: 'postgres', database: 'appdb' });
  opened.push(c);
  await c.connect();
  return c;
}

async function throughPgbouncer(sql: string): Promise<Record<string, unknown>[]> {
  const c = await appClient();
  try {
    return (await c.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

async function onAppdb(pg: Primary, sql: string): Promise<Record<string, unknown>[]> {
  const c = new Client({ ...pg.connection, database: 'appdb' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

async function appdbState(): Promise<{ host: unknown; port: unknown; paused: unknown }> {
  const row = (await pgb.admin('SHOW DATABASES')).find((r) => r.name === 'appdb');
  return { host: row?.host, port: row?.port, paused: row?.paused };
}

function keptFiles(): string[] {
  return readdirSync(path.dirname(pgb.databasesFile)).filter((f) => f.startsWith('databases.ini.lifeboat-'));
}

beforeAll(async () => {
  mkdirSync(runbooksDir);
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  [a, b] = await Promise.all([startPrimary(), startPrimary()]);
  for (const [pg, label] of [
    [a, 'A'],
    [b, 'B'],
  ] as const) {
    await pg.query('create database appdb');
    await onAppdb(
      pg,
      `create table whoami (name text); insert into whoami values ('${label}'); create table orders (note text)`,
    );
  }
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

beforeEach(async () => {
  pgb = await startPgbouncer({ database: 'appdb', host: '127.0.0.1', port: a.port });
  // A password pgbouncer (trust) does not need, and a database the console
  // ignores: neither may show up anywhere.
  process.env.LB_TEST_PGBOUNCER_ADMIN = `postgresql://postgres:${ADMIN_PASSWORD}@127.0.0.1:${pgb.port}/postgres`;
});

afterEach(async () => {
  for (const c of opened.splice(0)) await c.end().catch(() => undefined);
  await pgb.stop();
});

it('moves new connections through pgbouncer from the old primary to the promoted one, keeping the old databases file; a second run changes nothing', async () => {
  expect(await throughPgbouncer('select name from whoami')).toEqual([{ name: 'A' }]);
  const before = readFileSync(pgb.databasesFile, 'utf8');
  const beats: TrafficProgress[] = [];

  const result = await run(pgbouncerRunbook('switch'), beats);

  const [kept, ...more] = keptFiles();
  expect(more).toEqual([]);
  expect(kept).toMatch(/^databases\.ini\.lifeboat-\d{8}T\d{6}Z$/);
  const keptPath = path.join(path.dirname(pgb.databasesFile), kept!);
  expect(result).toEqual({
    kind: 'pgbouncer',
    pointedAt: `127.0.0.1:${b.port}/appdb`,
    steps: [
      'PAUSE appdb: in-flight transactions finished, server connections closed',
      `${pgb.databasesFile}: appdb from 127.0.0.1:${a.port}/appdb to host=127.0.0.1 port=${b.port} dbname=appdb (old file kept as ${keptPath})`,
      'RELOAD',
      'RESUME appdb',
      `SHOW DATABASES: appdb at 127.0.0.1:${b.port}/appdb`,
    ],
  });
  expect(new Set(beats.map((p) => p.phase))).toEqual(
    new Set(['checking', 'pausing', 'switching', 'resuming', 'verifying']),
  );
  expect(JSON.stringify(result)).not.toContain(ADMIN_PASSWORD);

  // The application sees B and can write there.
  expect(await throughPgbouncer('select name from whoami')).toEqual([{ name: 'B' }]);
  await throughPgbouncer(`insert into orders values ('after the switch')`);
  expect(await onAppdb(b, 'select note from orders')).toEqual([{ note: 'after the switch' }]);
  expect(await onAppdb(a, 'select note from orders')).toEqual([]);

  // The old file is kept as it was; the new one keeps pgbouncer's owner and mode.
  expect(readFileSync(keptPath, 'utf8')).toBe(before);
  expect(readFileSync(pgb.databasesFile, 'utf8')).toBe(`appdb = host=127.0.0.1 port=${b.port} dbname=appdb\n`);
  const st = statSync(pgb.databasesFile);
  expect([st.uid, st.mode & 0o777]).toEqual([postgresUid, 0o600]);

  const again = await run('switch');
  expect(again).toEqual({
    kind: 'pgbouncer',
    pointedAt: `127.0.0.1:${b.port}/appdb`,
    steps: [`appdb already points at 127.0.0.1:${b.port}/appdb: nothing to switch`],
  });
  expect(keptFiles()).toEqual([kept]);
});

it('lets a client in the middle of a transaction finish it on the old primary, while a client arriving during PAUSE waits and lands on the new one', async () => {
  const busy = await appClient();
  await busy.query('begin');
  await busy.query(`insert into orders values ('in flight')`);

  const switching = run(pgbouncerRunbook('in-flight'));
  await waitFor('pgbouncer to pause appdb', async () => ((await appdbState()).paused === 1 ? true : undefined));
  const arriving = throughPgbouncer('select name from whoami');

  await busy.query('commit');
  // Session pooling: the server connection is released when the client leaves.
  await busy.end();
  const result = await switching;

  expect(result.pointedAt).toBe(`127.0.0.1:${b.port}/appdb`);
  expect(await arriving).toEqual([{ name: 'B' }]);
  expect(await onAppdb(a, `select note from orders where note = 'in flight'`)).toEqual([{ note: 'in flight' }]);
});

it('resumes pgbouncer, still on the old primary, when the databases file cannot be replaced after PAUSE', async () => {
  const idle = await appClient();
  await idle.query('select 1');
  const before = readFileSync(pgb.databasesFile, 'utf8');
  // Immutable: even root cannot rename over it (config management does this).
  execFileSync('chattr', ['+i', pgb.databasesFile]);
  try {
    const switching = run(pgbouncerRunbook('immutable'));
    await waitFor('pgbouncer to pause appdb', async () => ((await appdbState()).paused === 1 ? true : undefined));
    await idle.end();
    const failure = await switching.catch((e: unknown) => e);

    const [kept] = keptFiles();
    const keptPath = path.join(path.dirname(pgb.databasesFile), kept ?? '?');
    const tmp = path.join(path.dirname(pgb.databasesFile), `.databases.ini.lifeboat-tmp-${process.pid}`);
    expect(failure).toMatchObject({
      type: 'TRAFFIC_SWITCH_FAILED',
      nonRetryable: false,
      message: [
        `switching pgbouncer database appdb failed: rewriting ${pgb.databasesFile}: EPERM: operation not permitted, rename '${tmp}' -> '${pgb.databasesFile}'`,
        `pgbouncer was resumed: clients of appdb go on to 127.0.0.1:${a.port}/appdb`,
        'done before the failure: PAUSE appdb: in-flight transactions finished, server connections closed',
        `HINT: look with: psql "$LB_TEST_PGBOUNCER_ADMIN" -c 'SHOW DATABASES'`,
        'HINT: the step can be retried: what is already switched is not done again, and old databases files are kept, never deleted',
      ].join('\n'),
    });
    expect(JSON.stringify(failure)).not.toContain(ADMIN_PASSWORD);
    expect(await appdbState()).toEqual({ host: '127.0.0.1', port: a.port, paused: 0 });
    expect(await throughPgbouncer('select name from whoami')).toEqual([{ name: 'A' }]);
    expect(readFileSync(pgb.databasesFile, 'utf8')).toBe(before);
    // The copy made before the attempt stays; the temporary file does not.
    expect(readFileSync(keptPath, 'utf8')).toBe(before);
    expect(readdirSync(path.dirname(pgb.databasesFile)).filter((f) => f.includes('lifeboat-tmp'))).toEqual([]);
  } finally {
    execFileSync('chattr', ['-i', pgb.databasesFile]);
  }
});

it('gives up on a PAUSE that a session never lets finish, names who holds it, and leaves pgbouncer resumed', async () => {
  const idle = await appClient();
  await idle.query('select 1');
  const [client] = (await pgb.admin('SHOW CLIENTS')).filter((r) => r.database === 'appdb');
  const runbook = await loadRunbook(pgbouncerRunbook('stuck-session'));

  const failure = await switchRunbookTraffic(runbook, { progress: () => undefined }, { pauseTimeoutMs: 2000 }).catch(
    (e: unknown) => e,
  );

  expect(failure).toMatchObject({
    code: 'TRAFFIC_SWITCH_FAILED',
    message: [
      `switching pgbouncer database appdb failed: PAUSE appdb on pgbouncer at $LB_TEST_PGBOUNCER_ADMIN (127.0.0.1:${pgb.port}) did not finish within 2 s: 1 client connection still held a server connection (postgres@127.0.0.1:${String(client?.port)})`,
      `pgbouncer was resumed: clients of appdb go on to 127.0.0.1:${a.port}/appdb`,
      'done before the failure: PAUSE appdb: gave up waiting',
      'HINT: in session pooling PAUSE waits until each client disconnects: restart or drain the application, then retry the step',
      `HINT: look with: psql "$LB_TEST_PGBOUNCER_ADMIN" -c 'SHOW DATABASES'`,
      'HINT: the step can be retried: what is already switched is not done again, and old databases files are kept, never deleted',
    ].join('\n'),
  });
  expect(await appdbState()).toEqual({ host: '127.0.0.1', port: a.port, paused: 0 });
  // The waiting session was never cut off, and nothing was rewritten.
  expect((await idle.query('select name from whoami')).rows).toEqual([{ name: 'A' }]);
  expect(keptFiles()).toEqual([]);
});

it('fails, resumed, when pgbouncer does not read the databases file the runbook names', async () => {
  const elsewhere = path.join(root, 'not-included.ini');
  writeFileSync(elsewhere, readFileSync(pgb.databasesFile));

  const failure = await run(pgbouncerRunbook('wrong-file', elsewhere)).catch((e: unknown) => e);

  const kept = readdirSync(root).find((f) => f.startsWith('not-included.ini.lifeboat-'));
  expect(failure).toMatchObject({
    type: 'TRAFFIC_SWITCH_FAILED',
    message: [
      `switching pgbouncer database appdb failed: after RELOAD, SHOW DATABASES on pgbouncer at $LB_TEST_PGBOUNCER_ADMIN (127.0.0.1:${pgb.port}) shows appdb at 127.0.0.1:${a.port}/appdb, not at 127.0.0.1:${b.port}/appdb`,
      `pgbouncer was resumed: clients of appdb go on to 127.0.0.1:${a.port}/appdb`,
      `done before the failure: PAUSE appdb: in-flight transactions finished, server connections closed; ${elsewhere}: appdb from 127.0.0.1:${a.port}/appdb to host=127.0.0.1 port=${b.port} dbname=appdb (old file kept as ${path.join(root, kept ?? '?')}); RELOAD; RESUME appdb`,
      `HINT: is ${elsewhere} the file pgbouncer.ini includes under [databases] (%include)? pgbouncer read another one`,
      'HINT: a line in pgbouncer.ini itself for the same database would also win; check its log for RELOAD errors',
      `HINT: look with: psql "$LB_TEST_PGBOUNCER_ADMIN" -c 'SHOW DATABASES'`,
      'HINT: the step can be retried: what is already switched is not done again, and old databases files are kept, never deleted',
    ].join('\n'),
  });
  expect(await appdbState()).toEqual({ host: '127.0.0.1', port: a.port, paused: 0 });
});

it('runs a command hook with RESTORED_HOST, RESTORED_PORT and RESTORED_DATABASE', async () => {
  const out = path.join(root, 'hook-saw');
  const script = `echo $RESTORED_HOST $RESTORED_PORT $RESTORED_DATABASE > ${out}`;

  const result = await run(writeRunbook('hook', `command: { argv: ["/bin/sh", "-c", "${script}"] }`));

  expect(result).toEqual({
    kind: 'command',
    pointedAt: `127.0.0.1:${b.port}/appdb`,
    steps: [
      `ran /bin/sh -c "${script}" with RESTORED_HOST=127.0.0.1 RESTORED_PORT=${b.port} RESTORED_DATABASE=appdb: exit 0`,
    ],
  });
  expect(readFileSync(out, 'utf8')).toBe(`127.0.0.1 ${b.port} appdb\n`);
});

it('says so when the runbook configures no traffic switch', async () => {
  expect(await run(writeRunbook('no-traffic'))).toEqual({
    kind: 'none',
    steps: [`runbook no-traffic configures no traffic switch: point clients at 127.0.0.1:${b.port}/appdb yourself`],
  });
});
