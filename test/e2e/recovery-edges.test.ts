// recoverToPointInTime where things go wrong, on real services: a WAL gap
// caught in preflight before any gate is touched; targets the archive cannot
// reach (time, restore point, LSN) refused by preflight with the primary
// untouched; a target preflight cannot place (an xid) past the end of the
// archive that ends in RECOVERY_ENDED_BEFORE_TARGET with nothing promoted; a worker killed with SIGKILL during replay-wal, then retargets
// later (replay continues) and earlier (restore again) before promotion; and
// an in-place recovery that keeps the old data directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { stopChild } from '../../src/dev/child';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { decideUpdate, retargetSignal, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { projectRoot } from '../../src/tools';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived, stopRestoredCopy } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { s3Env, temporalAddress } from '../harness/services';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Cleanups = [];
let client: TemporalClient;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });
});
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** A worker in its own process, so a test can SIGKILL it like a crashed host. */
function startWorkerProcess(host: string, taskQueue: string): { child: ChildProcess; log: () => string } {
  let out = '';
  const code = `require(${JSON.stringify(path.join(projectRoot(), 'dist/src/worker.js'))}).startWorkers(${JSON.stringify({ address: temporalAddress(), namespace: 'default', host, taskQueue })}).then((w) => { console.log('polling'); return w.runUntilSignal(); })`;
  const child = spawn(process.execPath, ['-e', code], {
    env: { ...process.env, ...s3Env(), LIFEBOAT_RUNBOOKS_DIR: runbooksDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, log: () => out };
}

interface Setup {
  tc: TestCluster;
  runbook: Runbook;
  host: string;
  taskQueue: string;
  worker: { child: ChildProcess; log: () => string };
  /** Primary times between the batches of rows. */
  times: string[];
}

/** A cluster with the demo schema, a backup, then three batches of 100 rows with a time after each. */
async function setup(label: string, opts: { inPlace?: boolean } = {}): Promise<Setup> {
  const host = `edge${label}${process.pid}`;
  const tc = await startTestCluster({
    name: `edge-${label}`,
    kind: 'file',
    runbooksDir,
    host,
    runbook: { approvers: ['alice'] },
  });
  cleanups.push(() => tc.stop());
  if (opts.inPlace) {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const text = readFileSync(tc.runbookFile, 'utf8').replace(
      /^restore: .*$/m,
      `restore: { host: ${host}, dataDir: ${tc.pg.dataDir}, port: ${tc.pg.port}, mode: in-place }`,
    );
    writeFileSync(tc.runbookFile, text);
  }
  const runbook = await loadRunbook(tc.name);
  // The demo application's gates and the `app` role the writer gate fences.
  await tc.pg.query(DEMO_SCHEMA_SQL);
  await tc.pg.query(`create role app login; grant all on all tables in schema public to app`);
  await tc.pg.query(`create table t (id int primary key, batch int)`);
  await takeBaseBackup({ runbook });
  const times: string[] = [];
  for (let b = 1; b <= 3; b++) {
    await tc.pg.query(`insert into t select g, ${b} from generate_series(${(b - 1) * 100 + 1}, ${b * 100}) g`);
    const [{ now } = { now: '' }] = await tc.pg.query<{ now: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as now`,
    );
    times.push(now);
    await new Promise((r) => setTimeout(r, 1100));
  }
  await switchAndWaitArchived(tc.pg);
  const taskQueue = `edges-${label}-${process.pid}`;
  const worker = startWorkerProcess(host, taskQueue);
  cleanups.push(() => (worker.child.exitCode === null ? stopChild(worker.child) : undefined));
  await waitFor('the worker to poll', async () => (worker.log().includes('polling') ? true : undefined), {
    timeoutMs: 60_000,
  });
  return { tc, runbook, host, taskQueue, worker, times };
}

async function start(s: Setup, input: Record<string, unknown>): Promise<WorkflowHandle> {
  return client.workflow.start('recoverToPointInTime', {
    taskQueue: s.taskQueue,
    workflowId: `recover-${s.tc.name}-${Date.now().toString(36)}`,
    args: [{ runbook: s.tc.name, ...input }],
  });
}

function waitStep(wf: WorkflowHandle, step: string, state: string): Promise<RecoveryStatus> {
  return waitFor(
    `${step} to be ${state}`,
    async () => {
      const st = await wf.query(statusQuery);
      return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
    },
    { timeoutMs: 150_000, intervalMs: 100 },
  );
}

const approve = (wf: WorkflowHandle, step: string) =>
  wf.executeUpdate(decideUpdate, { args: [{ step: step as 'approve-fence', decision: 'approve', by: 'alice' }] });

async function stopRestored(runbook: Runbook): Promise<void> {
  await stopRestoredCopy(runbook);
}

describe('recoverToPointInTime on real services, when things go wrong', () => {
  it('ends the run in preflight on a WAL gap, naming the segment, before any gate is touched and without waiting for a decision', async () => {
    const s = await setup('gap');
    // Lose one archived segment after the backup.
    const walDir = path.join(s.tc.repoUrl.replace('file://', ''), s.tc.name, 'wal');
    const segments = readdirSync(walDir)
      .filter((f) => /^[0-9A-F]{24}\.zst$/.test(f))
      .sort();
    const lost = segments[segments.length - 2]!;
    rmSync(path.join(walDir, lost));
    const wf = await start(s, { target: { latest: true } });
    // Ends by itself: a gap stays a gap however often preflight is retried.
    const err = await wf.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as Error & { type?: string }).type).toBe('WAL_GAP');
    const st = await wf.query(statusQuery);
    expect(st.phase).toBe('failed');
    expect(st.pending).toBeUndefined();
    const error = st.steps[0]!.error!;
    expect(error.type).toBe('WAL_GAP');
    expect(error.message).toContain(`WAL gap on timeline 1: ${lost.replace('.zst', '')} is missing`);
    expect(error.hints).toContain('nothing was touched: no gate, no traffic, no data directory');
    expect(st.steps.filter((x) => x.state !== 'pending').map((x) => x.id)).toEqual(['preflight']);
    const gates = await s.tc.pg.query<{ n: string }>(`select count(*) as n from pg_db_role_setting`);
    expect(gates[0]!.n).toBe('0');
    expect(existsSync(s.runbook.restore.dataDir)).toBe(false);
    await stopChild(s.worker.child);
  });

  it('ends the run in preflight on a target the archive cannot reach (a future time, a misspelt restore point, an LSN past the end), the primary untouched', async () => {
    const s = await setup('unreach');
    await s.tc.pg.query(`select pg_create_restore_point('before-migration-0042')`);
    // What a fence would change: gate rows, role settings, roles; and the restore directory.
    const snapshot = async () =>
      JSON.stringify([
        await s.tc.pg.query(`select * from system_gate order by 1`),
        await s.tc.pg.query(`select setrole::regrole::text as role, setconfig from pg_db_role_setting order by 1`),
        await s.tc.pg.query(`select rolname, rolcanlogin from pg_roles where rolname !~ '^pg_' order by 1`),
        existsSync(s.runbook.restore.dataDir),
      ]);
    const before = await snapshot();
    const [{ lsn } = { lsn: '' }] = await s.tc.pg.query<{ lsn: string }>(
      `select (pg_current_wal_lsn() + 1073741824)::text as lsn`,
    );
    const cases: Array<{ target: Record<string, string>; says: RegExp; hint: string }> = [
      {
        target: { time: '2030-01-01T00:00:00Z' },
        says: /^time 2030-01-01T00:00:00Z is after the newest commit in the WAL archive of cluster edge-unreach /,
        hint: '--to-latest',
      },
      {
        target: { name: 'before-migration-042' },
        says: /^restore point "before-migration-042" is not in the WAL archive of cluster edge-unreach .*the newest "before-migration-0042"/,
        hint: `--to-name 'before-migration-0042'`,
      },
      {
        target: { lsn },
        says: new RegExp(`^LSN ${lsn.replace('/', '\\/')} is past the end of the WAL archive of cluster edge-unreach `),
        hint: '--to-lsn ',
      },
    ];
    for (const c of cases) {
      const wf = await start(s, { target: c.target });
      const err = await wf.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(((err as WorkflowFailedError).cause as Error & { type?: string }).type).toBe('TARGET_UNREACHABLE');
      const st = await wf.query(statusQuery);
      expect(st.phase).toBe('failed');
      expect(st.pending).toBeUndefined();
      const error = st.steps[0]!.error!;
      console.log(`${JSON.stringify(c.target)}: ${error.message}`);
      expect(error.type).toBe('TARGET_UNREACHABLE');
      expect(error.message).toMatch(c.says);
      expect(error.hints.some((h) => h.includes(`lifeboat recover --runbook edge-unreach ${c.hint}`))).toBe(true);
      expect(error.hints).toContain('nothing was touched: no gate, no traffic, no data directory');
      expect(error.message).not.toContain('choose an earlier target');
      expect(st.steps.filter((x) => x.state !== 'pending').map((x) => x.id)).toEqual(['preflight']);
    }
    expect(await snapshot()).toBe(before);
    await stopChild(s.worker.child);
  });

  it('a target preflight cannot place (a transaction id past the end) fails replay-wal with RECOVERY_ENDED_BEFORE_TARGET and promotes nothing', async () => {
    const s = await setup('pastend');
    const [{ xid } = { xid: '' }] = await s.tc.pg.query<{ xid: string }>(
      `select (txid_current() + 100000)::text as xid`,
    );
    const wf = await start(s, { target: { xid }, dryRun: true });
    const st = await waitStep(wf, 'replay-wal', 'failed');
    expect(st.steps.find((x) => x.id === 'replay-wal')!.error!.type).toBe('RECOVERY_ENDED_BEFORE_TARGET');
    expect(st.steps.find((x) => x.id === 'promote')!.state).not.toBe('done');
    // Nothing was promoted: the restored directory has no postmaster running and never left recovery.
    expect(existsSync(path.join(s.runbook.restore.dataDir, 'recovery.signal'))).toBe(true);
    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'replay-wal', decision: 'abort', by: 'alice', comment: 'target too late' }],
    });
    await wf.result().catch(() => undefined);
    await stopRestored(s.runbook);
    await stopChild(s.worker.child);
  });

  it('survives a SIGKILLed worker during replay-wal, then retargets later without restoring and earlier by restoring again', async () => {
    const s = await setup('crash');
    const wf = await start(s, { target: { time: s.times[0] } });
    await waitStep(wf, 'approve-fence', 'awaiting-approval');
    await approve(wf, 'approve-fence');
    await waitStep(wf, 'replay-wal', 'running');
    s.worker.child.kill('SIGKILL');
    await new Promise((r) => s.worker.child.once('exit', r));
    const second = startWorkerProcess(s.host, s.taskQueue);
    cleanups.push(() => (second.child.exitCode === null ? stopChild(second.child) : undefined));
    let st = await waitStep(wf, 'approve-promote', 'awaiting-approval');
    expect(st.steps.find((x) => x.id === 'restore-base-backup')!.runs).toBe(1);
    const rows = async () => {
      const c = new Client({ host: '127.0.0.1', port: s.runbook.restore.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        return (await c.query<{ max: number | null }>('select max(id) as max from t')).rows[0]!.max;
      } finally {
        await c.end();
      }
    };
    expect(await rows()).toBe(100);

    // Later: replay continues from where it paused.
    await wf.signal(retargetSignal, { by: 'alice', target: { time: s.times[1]! } });
    await waitFor(
      'replay to run again',
      async () =>
        (await wf.query(statusQuery)).steps.find((x) => x.id === 'replay-wal')!.runs >= 2 ? true : undefined,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    st = await waitStep(wf, 'approve-promote', 'awaiting-approval');
    expect(st.steps.find((x) => x.id === 'restore-base-backup')!.runs).toBe(1);
    expect(await rows()).toBe(200);

    // Earlier: restore again.
    await wf.signal(retargetSignal, { by: 'alice', target: { time: s.times[0]! } });
    await waitFor(
      'restore to run again',
      async () =>
        (await wf.query(statusQuery)).steps.find((x) => x.id === 'restore-base-backup')!.runs >= 2 ? true : undefined,
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    st = await waitStep(wf, 'approve-promote', 'awaiting-approval');
    expect(await rows()).toBe(100);
    await approve(wf, 'approve-promote');
    await waitStep(wf, 'approve-resume', 'awaiting-approval');
    await approve(wf, 'approve-resume');
    const evidence = (await wf.result()) as Evidence;
    expect(evidence.target).toEqual({ time: s.times[0] });
    expect(evidence.notes.filter((n) => n.startsWith('retargeted'))).toHaveLength(2);
    // The earlier restore moved our own previous copy aside, never deleted it.
    const parent = path.dirname(s.runbook.restore.dataDir);
    expect(
      readdirSync(parent).filter((f) => f.startsWith(`${path.basename(s.runbook.restore.dataDir)}.lifeboat-`)).length,
    ).toBeGreaterThanOrEqual(1);
    // The worker's death was noticed by the heartbeat and the activity ran again: attempt 2 in history.
    const history = await wf.fetchHistory();
    const replayStarts = history.events!.filter(
      (e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt === 2,
    );
    expect(replayStarts.length).toBeGreaterThanOrEqual(1);
    const c = new Client({ host: '127.0.0.1', port: s.runbook.restore.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    expect((await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r).toBe(false);
    await c.query('insert into t values (1000, 9)');
    await c.end();
    await stopRestored(s.runbook);
    await stopChild(second.child);
  });

  it('in place: stops the primary, moves its data directory aside (kept with its files) and promotes the restore there', async () => {
    const s = await setup('inplace', { inPlace: true });
    const wf = await start(s, { target: { time: s.times[1] } });
    await waitStep(wf, 'approve-fence', 'awaiting-approval');
    await approve(wf, 'approve-fence');
    await waitStep(wf, 'approve-promote', 'awaiting-approval');
    await approve(wf, 'approve-promote');
    await waitStep(wf, 'approve-resume', 'awaiting-approval');
    await approve(wf, 'approve-resume');
    const evidence = (await wf.result()) as Evidence;
    const summary = evidence.steps.find((x) => x.id === 'restore-base-backup')!.summary!;
    // In place the copy is where the runbook's primary is: nothing re-pointed, no overlay; the new timeline's history is archived at promote.
    expect(evidence.primary).toMatchObject({ repointed: false, host: '127.0.0.1', port: s.tc.pg.port, timeline: 2 });
    expect(evidence.primary?.overlay).toBeUndefined();
    const moved = /old directory moved to (\S+)$/.exec(summary)?.[1];
    expect(moved).toBeDefined();
    expect(existsSync(path.join(moved!, 'PG_VERSION'))).toBe(true);
    expect(existsSync(path.join(moved!, 'base'))).toBe(true);
    cleanups.push(() => rmSync(moved!, { recursive: true, force: true }));
    const rows = await s.tc.pg.query<{ max: number }>('select max(id) as max from t');
    expect(rows[0]!.max).toBe(200);
    await stopChild(s.worker.child);
  });
});
