// Preflight refusals of recoverToPointInTime on real services (PostgreSQL 15,
// Temporal, Redis, pgbouncer): what restore-base-backup, invalidate-caches or
// resume-traffic would meet after the fence is refused before it, and the run
// ends at once as failed with the primary untouched. One cluster serves every
// case: a healthy run first (it passes preflight and waits at approve-fence),
// then, one at a time, a stranger's file in restore.dataDir, a previous
// recovery's copy still running there, another server on restore.port, a
// pgbouncer that does not answer (SIGSTOPped: it accepts, never replies), an
// unset REDIS_URL, a Redis that is down, and an unknown runbook started with
// the raw JSON the Temporal UI's Start Workflow form sends.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { RecoveryStatus } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { requireTool } from '../../src/tools';
import { startWorkers } from '../../src/worker';
import { NOTHING_TOUCHED_HINT } from '../../workflows/recovery/machine';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { startPgbouncer, type TestPgbouncer } from '../harness/pgbouncer';
import { PG_BIN, asPostgres, postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { startRedis, type TestRedis } from '../harness/redis';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const runbooksDir = postgresTempDir('runbooks');
const host = `refuse${process.pid}`;
const taskQueue = `refusals-${process.pid}`;
const REDIS_ENV = 'LIFEBOAT_REFUSALS_REDIS_URL';
const PGBOUNCER_ENV = 'LIFEBOAT_REFUSALS_PGBOUNCER_URL';
const REDIS_PASSWORD = 'hunter2-not-for-history';
const cleanups: Cleanups = [];
let client: TemporalClient;
let tc: TestCluster;
let runbook: Runbook;
let redis: TestRedis;
let pgbouncer: TestPgbouncer;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  redis = await startRedis({ password: REDIS_PASSWORD });
  cleanups.push(() => redis.stop());
  process.env[REDIS_ENV] = redis.url;
  tc = await startTestCluster({
    name: 'refusals',
    kind: 'file',
    runbooksDir,
    host,
    runbook: { approvers: ['alice'], redisUrlEnv: REDIS_ENV },
  });
  cleanups.push(() => tc.stop());
  pgbouncer = await startPgbouncer({ database: 'postgres', host: '127.0.0.1', port: tc.pg.port });
  cleanups.push(() => pgbouncer.stop());
  process.env[PGBOUNCER_ENV] = pgbouncer.adminUrl;
  // The traffic section, now that pgbouncer's files exist.
  writeFileSync(
    tc.runbookFile,
    `${readFileSync(tc.runbookFile, 'utf8')}traffic:\n  pgbouncer: { adminUrlEnv: ${PGBOUNCER_ENV}, database: postgres, databasesFile: ${pgbouncer.databasesFile} }\n`,
  );
  runbook = await loadRunbook(tc.name);
  await tc.pg.query(DEMO_SCHEMA_SQL);
  await tc.pg.query(`create role app login; grant all on all tables in schema public to app`);
  await takeBaseBackup({ runbook });
  await tc.pg.query(`insert into orders (customer, status, amount) values ('ada', 'paid', 12)`);
  await switchAndWaitArchived(tc.pg);
  const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  cleanups.push(() => workers.shutdown());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });
}, 240_000);
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** What a fence or a restore would change: gate rows, role settings, roles; the restore directory and its siblings. */
async function snapshot(): Promise<string> {
  const dir = runbook.restore.dataDir;
  return JSON.stringify([
    await tc.pg.query(`select gate_name, enabled from system_gate order by 1`),
    await tc.pg.query(`select setrole::regrole::text as role, setconfig from pg_db_role_setting order by 1`),
    await tc.pg.query(`select rolname, rolcanlogin from pg_roles where rolname !~ '^pg_' order by 1`),
    existsSync(dir) ? readdirSync(dir).sort() : '(absent)',
    readdirSync(path.dirname(dir))
      .filter((f) => f.startsWith(path.basename(dir)))
      .sort(),
  ]);
}

async function start(input: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  return client.workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `recover-refusals-${Date.now().toString(36)}`,
    args: [{ runbook: tc.name, target: { latest: true }, incident: 'INC-7', ...input }],
  });
}

/** The run ended by itself in preflight with `type`: failed, nothing pending, no step but preflight ran, hints honest. */
async function refused(
  wf: WorkflowHandle,
  type: string,
): Promise<{ message: string; hints: string[]; status: RecoveryStatus }> {
  const err = await wf.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as Error & { type?: string };
  expect(cause.type).toBe(type);
  const status = await wf.query(statusQuery);
  expect(status.phase).toBe('failed');
  expect(status.pending).toBeUndefined();
  expect(status.steps.filter((x) => x.state !== 'pending').map((x) => x.id)).toEqual(['preflight']);
  const error = status.steps[0]!.error!;
  expect(error.type).toBe(type);
  // The machinery's own hint, unless the refusal already says what was not touched.
  expect(
    error.hints.at(-1) === NOTHING_TOUCHED_HINT ||
      error.hints.some((h) => h.startsWith('nothing was fenced') || h.startsWith('nothing was touched')),
  ).toBe(true);
  // Nothing was fenced, so nothing may say it was.
  for (const line of [error.message, ...error.hints, cause.message])
    expect(line).not.toMatch(/stay fenced|left fenced|writers are fenced/);
  // History is readable by everyone with the UI: no secret in it.
  const history = JSON.stringify(await wf.fetchHistory());
  expect(history).not.toContain(REDIS_PASSWORD);
  console.log(`${type}: ${error.message}\n  HINT: ${error.hints.join('\n  HINT: ')}`);
  return { message: error.message, hints: error.hints, status };
}

describe('preflight refuses what the run would meet after the fence, ending the run with the primary untouched', () => {
  it('a healthy site and healthy endpoints pass preflight: the run waits at approve-fence, its notes name what answered', async () => {
    const wf = await start();
    const status = await waitFor(
      'approve-fence to wait',
      async () => {
        const s = await wf.query(statusQuery);
        return s.steps.find((x) => x.id === 'approve-fence')?.state === 'awaiting-approval' ? s : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    expect(status.steps[0]!.state).toBe('done');
    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-fence', decision: 'reject', by: 'alice', comment: 'control run' }],
    });
    await wf.result().catch(() => undefined);
    // The evidence of the rejected run records what preflight found answering.
    const run = (await wf.describe()).runId;
    const evidence = JSON.parse(
      readFileSync(path.join(tc.repoUrl.replace('file://', ''), tc.name, 'evidence', `${run}.json`), 'utf8'),
    ) as { notes: string[] };
    expect(evidence.notes).toContain(`preflight: Redis at $${REDIS_ENV} (127.0.0.1:${redis.port}): PONG`);
    expect(
      evidence.notes.find((n) =>
        n.startsWith(`preflight: pgbouncer at $${PGBOUNCER_ENV} (127.0.0.1:${pgbouncer.port}): PgBouncer `),
      ),
    ).toMatch(
      new RegExp(
        `; postgres at 127\\.0\\.0\\.1:${tc.pg.port}/postgres; line 1 of ${pgbouncer.databasesFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );
    expect(JSON.stringify(evidence)).not.toContain(REDIS_PASSWORD);
  });

  it("an occupied restore directory (a stranger's file) is refused with DATA_DIR_NOT_EMPTY, the file left as it was", async () => {
    const dir = runbook.restore.dataDir;
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'precious.txt'), "not lifeboat's");
    const before = await snapshot();
    const wf = await start();
    const r = await refused(wf, 'DATA_DIR_NOT_EMPTY');
    expect(r.message).toBe(
      `restore.dataDir ${dir} is not empty and was not restored by this recovery (workflow ${wf.workflowId}): it holds 1 entry (precious.txt)`,
    );
    expect(r.hints).toContain(
      `if it is no longer needed, move it away (as root or postgres): mv ${dir} ${dir}.old-$(date -u +%Y%m%dT%H%M%SZ), then start the recovery again`,
    );
    expect(r.hints).toContain(`or set restore.dataDir in runbook ${tc.name} to an absent or empty directory`);
    expect(await snapshot()).toBe(before);
    expect(readFileSync(path.join(dir, 'precious.txt'), 'utf8')).toBe("not lifeboat's");
    // The test's own file in the test's own directory.
    rmSync(dir, { recursive: true, force: true });
  });

  it("a previous recovery's copy still running in restore.dataDir on restore.port is refused, saying how to stop it", async () => {
    const dir = runbook.restore.dataDir;
    // A server the way a previous recovery leaves one: its files, its marker, its postmaster on restore.port.
    await asPostgres(`${PG_BIN}/initdb`, ['-D', dir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    const marker = {
      workflowId: 'recover-previous-incident',
      runId: 'r-1',
      backupId: '20261203T000000Z',
      state: 'replaying',
      at: '2026-12-03T00:00:00.000Z',
      mode: 'side-by-side',
      backup: { startLsn: '0/2000028', timeline: 1, walSegmentSize: 16777216 },
    };
    writeFileSync(path.join(dir, '.lifeboat-restore.json'), JSON.stringify(marker));
    await asPostgres(`${PG_BIN}/pg_ctl`, [
      '-D',
      dir,
      '-o',
      `-p ${runbook.restore.port} -c listen_addresses=127.0.0.1 -k ${dir}`,
      '-l',
      path.join(path.dirname(dir), 'previous.log'),
      '-w',
      'start',
    ]);
    cleanups.push(() => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dir, '-m', 'immediate', '-w', 'stop']).catch(() => ''));
    const before = await snapshot();
    const wf = await start();
    const r = await refused(wf, 'DATA_DIR_NOT_EMPTY');
    expect(r.message).toMatch(
      new RegExp(
        `^restore\\.dataDir ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not empty and was not restored by this recovery \\(workflow ${wf.workflowId}\\): it holds a PostgreSQL 15 data directory \\(.*\\) restored by Lifeboat for another recovery: workflow recover-previous-incident \\(run r-1\\), backup 20261203T000000Z, state replaying since 2026-12-03T00:00:00.000Z with a PostgreSQL server running in it$`,
      ),
    );
    expect(r.hints).toContain(
      `stop that server first (as postgres): ${runbook.cluster.pgBin}/pg_ctl stop -D ${dir} -m fast`,
    );
    expect(await snapshot()).toBe(before);
    // Still running: preflight stopped nothing.
    expect(await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dir, 'status'])).toMatch(/server is running/);
    await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dir, '-m', 'fast', '-w', 'stop']);
    // The test's own server directory.
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.join(path.dirname(dir), 'previous.log'), { force: true });
  });

  it('another server on restore.port is refused with PORT_IN_USE naming it', async () => {
    const squatter: Server = createServer((c) => c.end());
    await new Promise<void>((r) => squatter.listen(runbook.restore.port, '127.0.0.1', r));
    try {
      const before = await snapshot();
      const wf = await start();
      const r = await refused(wf, 'PORT_IN_USE');
      expect(r.message).toBe(
        `restore.port ${runbook.restore.port} on 127.0.0.1 is already in use by node (pid ${process.pid}), so the restored copy cannot start there`,
      );
      expect(r.hints[0]).toBe(
        'nothing was fenced, moved, downloaded or started; the process on that port was not touched',
      );
      expect(r.hints).toContain(
        `set restore.port in the runbook to a port nothing else uses on host ${host}, or stop what listens there (see: ss -ltnp 'sport = :${runbook.restore.port}'); then start the recovery again`,
      );
      expect(await snapshot()).toBe(before);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('a pgbouncer admin console that does not answer (SIGSTOPped) is refused with ENDPOINT_UNREACHABLE naming the variable, not the URL', async () => {
    const pid = Number(readFileSync(path.join(pgbouncer.root, 'pgbouncer.pid'), 'utf8').trim());
    process.kill(pid, 'SIGSTOP');
    try {
      const before = await snapshot();
      const wf = await start();
      const r = await refused(wf, 'ENDPOINT_UNREACHABLE');
      expect(r.message).toMatch(
        new RegExp(
          `^traffic of runbook ${tc.name}: cannot connect to the admin console of pgbouncer at \\$${PGBOUNCER_ENV} \\(127\\.0\\.0\\.1:${pgbouncer.port}\\): `,
        ),
      );
      expect(r.message).not.toContain(pgbouncer.adminUrl);
      expect(r.hints).toContain(
        `is pgbouncer running and reachable from this worker? (psql "$${PGBOUNCER_ENV}" -c 'SHOW VERSION')`,
      );
      expect(r.hints).toContain(
        `bring it up or fix the traffic section of runbook ${tc.name}, then start the recovery again`,
      );
      expect(await snapshot()).toBe(before);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('an unset Redis URL variable is refused with SECRET_MISSING naming the variable', async () => {
    delete process.env[REDIS_ENV];
    try {
      const before = await snapshot();
      const wf = await start();
      const r = await refused(wf, 'SECRET_MISSING');
      expect(r.message).toBe(`environment variable ${REDIS_ENV} is not set in this process`);
      expect(r.hints).toContain('set it in the environment of the worker (never in the runbook)');
      expect(r.hints).toContain('once it is set on every worker of the lifeboat queue, start the recovery again');
      expect(await snapshot()).toBe(before);
    } finally {
      process.env[REDIS_ENV] = redis.url;
    }
  });

  it('a Redis that is down is refused with ENDPOINT_UNREACHABLE naming the variable and the host, never the password', async () => {
    await redis.stop();
    const before = await snapshot();
    const wf = await start();
    const r = await refused(wf, 'ENDPOINT_UNREACHABLE');
    expect(r.message).toMatch(
      new RegExp(
        `^cache 1 of runbook ${tc.name}: Redis at \\$${REDIS_ENV} \\(127\\.0\\.0\\.1:${redis.port}\\) does not answer PING: .*ECONNREFUSED`,
      ),
    );
    expect(r.hints).toContain(
      `is Redis up and reachable from the workers of the lifeboat queue? (redis-cli -h 127.0.0.1 -p ${redis.port} ping)`,
    );
    expect(r.hints).toContain("bring it up or fix the runbook's caches list, then start the recovery again");
    expect(await snapshot()).toBe(before);
  });

  it('a target before the oldest backup is refused with BACKUP_NOT_FOUND', async () => {
    const before = await snapshot();
    const r = await refused(await start({ target: { time: '2000-01-01T00:00:00Z' } }), 'BACKUP_NOT_FOUND');
    expect(r.message).toMatch(/2000-01-01T00:00:00Z/);
    expect(await snapshot()).toBe(before);
  });

  it('a role without the grants the runbook needs is refused with PRIVILEGE_MISSING, each piece with its SQL', async () => {
    // The same cluster and repository, through a runbook whose role was never granted anything.
    await tc.pg.query('create role ops_nogrants login');
    const yaml = readFileSync(tc.runbookFile, 'utf8')
      .replace(`name: ${tc.name}\n`, `name: ${tc.name}-ops\ncluster_name_placeholder`)
      .replace('cluster_name_placeholdercluster:\n', `cluster:\n  name: ${tc.name}\n`)
      .replace(/user: \w+ \}/, 'user: ops_nogrants }');
    expect(yaml).toContain('user: ops_nogrants }');
    expect(yaml).toContain(`  name: ${tc.name}\n`);
    writeFileSync(path.join(runbooksDir, `${tc.name}-ops.yaml`), yaml);
    const before = await snapshot();
    const r = await refused(await start({ runbook: `${tc.name}-ops` }), 'PRIVILEGE_MISSING');
    expect(r.message).toMatch(/ops_nogrants/);
    expect(r.hints.join('\n')).toMatch(/GRANT EXECUTE ON FUNCTION pg_catalog\.pg_switch_wal\(\) TO "?ops_nogrants"?/);
    expect(r.hints.join('\n')).toContain(`lifeboat grants --runbook ${tc.name}-ops`);
    expect(await snapshot()).toBe(before);
  });

  it("an unknown runbook started with the raw JSON of the Temporal UI's Start Workflow form ends at once as failed", async () => {
    const workflowId = `recover-nosuch-${Date.now().toString(36)}`;
    const before = await snapshot();
    await exec(requireTool('temporal'), [
      'workflow',
      'start',
      '--address',
      temporalAddress(),
      '--task-queue',
      taskQueue,
      '--type',
      'recoverToPointInTime',
      '--workflow-id',
      workflowId,
      '--input',
      '{"runbook": "nosuch", "target": {"latest": true}, "incident": "INC-8"}',
    ]);
    const r = await refused(client.workflow.getHandle(workflowId), 'RUNBOOK_NOT_FOUND');
    expect(r.message).toMatch(/^runbook "nosuch" not found at .*\/nosuch\.yaml$/);
    expect(r.status.runbook).toBe('nosuch');
    expect(await snapshot()).toBe(before);
  });
});
