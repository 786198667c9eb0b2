// run-invariants against what the recovery really checks: first a healthy
// primary (every check passes), then a hot standby made with
// `pg_basebackup -R` and paused with pg_wal_replay_pause(), i.e. read-only
// and in recovery like a restore paused at its target, holding one of each
// problem the checks exist for.
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInvariants } from '../../activities/invariants';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL, demoRunbookYaml } from '../../src/dev/demo-runbook';
import { startSandboxPrimary, stopSandboxPrimary, type SandboxPg } from '../../src/dev/sandbox-pg';
import { freePort, waitFor } from '../harness/ports';
import { PG_BIN, asPostgres, postgresTempDir, startPrimary, type Primary } from '../harness/postgres';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-invariants-runbooks-'));
const env = new MockActivityEnvironment();
const invariants = (runbook: string) => env.run(runInvariants, { runbook }) as ReturnType<typeof runInvariants>;
let pg: Primary;
const cleanups: Array<() => Promise<unknown>> = [];

function writeRunbook(name: string, restorePort: number, invariantLines: string[]): void {
  const yaml = demoRunbookYaml({
    name,
    pgPort: pg.port,
    pgUser: 'postgres',
    database: 'appdb',
    repoUrl: `file://${runbooksDir}/repo`,
    host: 'inv-host',
    stateDir: runbooksDir,
    restorePort,
    drillPort: restorePort + 1,
  });
  // The demo's own invariant stays first; these follow it.
  writeFileSync(
    path.join(runbooksDir, `${name}.yaml`),
    yaml.replace(/^invariants:\n(.*\n)/m, `invariants:\n$1${invariantLines.map((l) => `  - ${l}\n`).join('')}`),
  );
}

async function appdb(sql: string): Promise<void> {
  const c = new Client({ ...pg.connection, database: 'appdb' });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A hot standby of `pg`, paused: read-only and in recovery, as a restore paused at its target. */
async function pausedStandby(opts: { pgHbaFirstLine: string }): Promise<number> {
  const root = postgresTempDir('standby');
  const dataDir = path.join(root, 'data');
  const port = await freePort();
  await asPostgres(`${PG_BIN}/pg_basebackup`, [
    '-D',
    dataDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '-h',
    '127.0.0.1',
    '-p',
    String(pg.port),
    '-U',
    'postgres',
  ]);
  appendFileSync(
    path.join(dataDir, 'postgresql.conf'),
    `\nport = ${port}\nunix_socket_directories = '${root}'\nhot_standby = on\n`,
  );
  const hba = path.join(dataDir, 'pg_hba.conf');
  writeFileSync(hba, `${opts.pgHbaFirstLine}\n${readFileSync(hba, 'utf8')}`);
  const standby: SandboxPg = {
    dataDir,
    port,
    socketDir: root,
    logFile: path.join(root, 'postgres.log'),
    pgBin: PG_BIN,
    osUser: 'postgres',
  };
  await startSandboxPrimary(standby);
  cleanups.push(async () => {
    await stopSandboxPrimary(standby, 'immediate');
    // The harness's own temporary directory: provably ours.
    rmSync(root, { recursive: true, force: true });
  });
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    await c.query('select pg_wal_replay_pause()');
    await waitFor('replay to pause', async () => {
      const { rows } = await c.query<{ state: string }>('select pg_get_wal_replay_pause_state() as state');
      return rows[0]?.state === 'paused' ? true : undefined;
    });
    const { rows } = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
    expect(rows[0]?.r).toBe(true);
  } finally {
    await c.end();
  }
  return port;
}

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  pg = await startPrimary();
  await pg.query('create database appdb');
  await appdb(DEMO_SCHEMA_SQL);
  await appdb(DEMO_SEED_SQL);
});

afterAll(async () => {
  await runCleanups(cleanups);
  await pg?.stop();
  rmSync(runbooksDir, { recursive: true, force: true });
});

describe('run-invariants', () => {
  it('passes every invariant and built-in check on a healthy copy', async () => {
    writeRunbook('healthy', pg.port, [
      `{ name: writers gate open, sql: "select enabled from system_gate where gate_name = 'writers'", expect: true }`,
    ]);
    expect(await invariants('healthy')).toEqual([
      { name: 'no negative amounts', passed: true, value: '0', expected: '0' },
      { name: 'writers gate open', passed: true, value: 't', expected: 'true' },
      {
        name: 'built-in: every database accepts connections',
        builtin: true,
        passed: true,
        value: 'all 3 (appdb, postgres, template1)',
        expected: 'all',
      },
      { name: 'built-in: no invalid indexes', builtin: true, passed: true, value: '0', expected: '0' },
      {
        name: 'built-in: installed extensions have their files',
        builtin: true,
        passed: true,
        value: '0',
        expected: '0',
      },
      { name: 'built-in: sequences ahead of their columns', builtin: true, passed: true, value: '0', expected: '0' },
    ]);
  });

  it('reports a failed invariant, an invariant whose SQL fails, and each built-in problem on a paused standby', async () => {
    await appdb(`insert into orders (customer, status, amount) values ('refund gone wrong', 'paid', -5)`);
    // The sequence set back below ids already used, as a restore of an old sequence state would leave it.
    await appdb(`select setval('orders_id_seq', 10)`);
    // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
    await appdb('create table dup (v int); insert into dup values (1), (1)');
    await expect(appdb('create unique index concurrently dup_v_key on dup (v)')).rejects.toThrow(
      'could not create unique index "dup_v_key"',
    );
    // An installed extension version with no control file on this host, as
    // when the restore host lacks the package the primary had (this is a
    // throwaway cluster: editing the catalog is the honest way to get there).
    await appdb(`update pg_extension set extversion = '0.0-lost' where extname = 'plpgsql'`);
    await pg.query('create database closed_db');

    const port = await pausedStandby({ pgHbaFirstLine: 'host closed_db all 127.0.0.1/32 reject' });
    writeRunbook('paused', port, [
      `{ name: writers gate open, sql: "select enabled from system_gate where gate_name = 'writers'", expect: true }`,
      `{ name: refunds table empty, sql: "select count(*) from refunds", expect: 0 }`,
      `{ name: ids still available, sql: "select nextval('orders_id_seq') > 0", expect: true }`,
    ]);

    expect(await invariants('paused')).toEqual([
      { name: 'no negative amounts', passed: false, value: '1', expected: '0' },
      { name: 'writers gate open', passed: true, value: 't', expected: 'true' },
      {
        name: 'refunds table empty',
        passed: false,
        value: '',
        expected: '0',
        error: 'relation "refunds" does not exist',
      },
      {
        name: 'ids still available',
        passed: false,
        value: '',
        expected: 'true',
        error: 'cannot execute nextval() in a read-only transaction',
      },
      {
        name: 'built-in: every database accepts connections',
        builtin: true,
        passed: false,
        value:
          '3 of 4; refused: closed_db: pg_hba.conf rejects connection for host "127.0.0.1", user "postgres", database "closed_db", no encryption',
        expected: 'all',
      },
      {
        name: 'built-in: no invalid indexes',
        builtin: true,
        passed: false,
        value: '1: dup_v_key on dup in appdb',
        expected: '0',
      },
      {
        name: 'built-in: installed extensions have their files',
        builtin: true,
        passed: false,
        value: '1: plpgsql 0.0-lost in appdb (no control file for that version on this host)',
        expected: '0',
      },
      {
        name: 'built-in: sequences ahead of their columns',
        builtin: true,
        passed: false,
        value: '1: public.orders_id_seq would hand out 11, but max(public.orders.id) is 501',
        expected: '0',
      },
    ]);
  });

  it('fails with PG_UNREACHABLE when the restored instance does not answer', async () => {
    const port = await freePort();
    writeRunbook('not-started', port, []);
    const err = await invariants('not-started').then(
      () => undefined,
      (e: unknown) => e as { type?: string; message?: string },
    );
    expect(err?.type).toBe('PG_UNREACHABLE');
    expect(err?.message).toBe(
      [
        `the restored instance at postgres@127.0.0.1:${port}/appdb did not answer: connect ECONNREFUSED 127.0.0.1:${port}`,
        `HINT: check that PostgreSQL runs on inv-host with data directory ${runbooksDir}/recovery and listens on 127.0.0.1:${port}`,
        'HINT: the replay-wal step starts it; see its log in the data directory',
      ].join('\n'),
    );
  });
});
