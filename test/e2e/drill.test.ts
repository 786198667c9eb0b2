// restoreDrill on real services (PostgreSQL 15, Temporal, file:// and s3://
// repositories, a real webhook): a drill of a primary under write load that
// passes with measured figures and leaves nothing behind; a broken archive
// that fails with the gap named and notifies; a failed invariant; and the
// refusals when the drill's port or directory belongs to someone else.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure, Client as TemporalClient, Connection, WorkflowFailedError } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../src/dev/demo-runbook';
import type { Evidence } from '../../src/recovery/contract';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { portAnswers } from '../../src/restore/port';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { startWorkers } from '../../src/worker';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress, useS3Env } from '../harness/services';
import { startTestWebhook, type TestWebhook } from '../harness/webhook';

const exec = promisify(execFile);
const runbooksDir = postgresTempDir('runbooks');
const host = `drill${process.pid}`;
const taskQueue = `drill-${process.pid}`;
const WEBHOOK_ENV = 'LIFEBOAT_DRILL_TEST_WEBHOOK';
const cleanups: Cleanups = [];
let client: TemporalClient;
let webhook: TestWebhook;

beforeAll(async () => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  webhook = await startTestWebhook();
  cleanups.push(() => webhook.close());
  process.env[WEBHOOK_ENV] = webhook.url;
  const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  cleanups.push(() => workers.shutdown());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection });
});
afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

interface Setup {
  tc: TestCluster;
  runbook: Runbook;
}

/** A cluster with the demo schema and orders, notifying the test webhook, and one verified base backup. */
async function setup(
  label: string,
  kind: RepoKind,
  opts: Parameters<typeof startTestCluster>[0]['runbook'] & { primaryConf?: string[] } = {},
): Promise<Setup> {
  const { primaryConf, ...runbookOpts } = opts;
  const tc = await startTestCluster({
    name: `drill-${label}`,
    kind,
    runbooksDir,
    host,
    runbook: { notifyWebhookUrlEnv: WEBHOOK_ENV, ...runbookOpts },
    ...(primaryConf ? { primaryConf } : {}),
  });
  cleanups.push(() => tc.stop());
  await tc.pg.query(DEMO_SCHEMA_SQL);
  await tc.pg.query(DEMO_SEED_SQL);
  const runbook = await loadRunbook(tc.name);
  await takeBaseBackup({ runbook });
  return { tc, runbook };
}

function startDrill(s: Setup, input: Record<string, unknown> = {}) {
  return client.workflow.start('restoreDrill', {
    taskQueue,
    workflowId: `drill-${s.tc.name}-${Date.now().toString(36)}`,
    args: [{ runbook: s.tc.name, ...input }],
  });
}

async function storedEvidence(s: Setup, runId: string): Promise<Evidence> {
  const repo = await openRepository(s.runbook.repository.url, s.runbook.repository);
  const got = await repo.get(keys.evidence(s.tc.name, runId));
  expect(got, `evidence ${keys.evidence(s.tc.name, runId)}`).toBeDefined();
  return JSON.parse(got!.body.toString('utf8')) as Evidence;
}

/** The DRILL_FAILED failure a failed drill ends with. */
async function drillFailure(result: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).type).toBe('DRILL_FAILED');
  return cause as ApplicationFailure;
}

/** Postmasters whose command line names this data directory. */
async function postmastersOf(dataDir: string): Promise<string[]> {
  const { stdout } = await exec('ps', ['-eo', 'pid,args']);
  return stdout.split('\n').filter((l) => l.includes(`-D ${dataDir}`) || l.includes(`-D${dataDir}`));
}

async function expectNothingLeft(runbook: Runbook): Promise<void> {
  const drill = runbook.drill!;
  expect(await portAnswers('127.0.0.1', drill.port)).toBe(false);
  expect(await postmastersOf(drill.dataDir)).toEqual([]);
  expect(existsSync(drill.dataDir)).toBe(false);
  expect(existsSync(`${drill.dataDir}.lifeboat-postgres.log`)).toBe(false);
  expect(readdirSync(path.dirname(drill.dataDir)).filter((f) => f.startsWith(path.basename(drill.dataDir)))).toEqual(
    [],
  );
}

describe('restoreDrill on real services', () => {
  it('drills a primary under write load to a random time in the window: passed, measured RTO and RPO, nothing left behind', async () => {
    const s = await setup('load', 'file', { primaryConf: ['archive_timeout = 2s'] });
    // The application keeps writing throughout: one order every 50 ms.
    const writer = new Client(s.tc.pg.connection);
    await writer.connect();
    let writing = true;
    // When the first load commit returned: a target before it has nothing to replay.
    let firstCommitAt: number | undefined;
    const written = (async () => {
      let n = 0;
      while (writing) {
        await writer.query(`insert into orders (customer, status, amount) values ($1, 'pending', 12.5)`, [
          `load-${n++}`,
        ]);
        firstCommitAt ??= Date.now();
        await new Promise((r) => setTimeout(r, 50));
      }
      return n;
    })();
    cleanups.push(() => writer.end());
    try {
      // A few archive_timeout switches after the backup, so the window holds archived commits.
      const repoWal = path.join(s.tc.repoUrl.replace('file://', ''), s.tc.name, 'wal');
      const before = readdirSync(repoWal).length;
      await waitFor(
        'three more archived segments',
        async () => (readdirSync(repoWal).length >= before + 3 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      const handle = await startDrill(s);
      const evidence = (await handle.result()) as Evidence;

      expect(evidence.kind).toBe('drill');
      expect(evidence.validationStatus).toBe('passed');
      expect(evidence.notes.filter((n) => n.startsWith('FAILED'))).toEqual([]);
      expect(evidence.steps.map((st) => [st.id, st.state])).toEqual([
        ['pick-target', 'done'],
        ['preflight', 'done'],
        ['restore-base-backup', 'done'],
        ['replay-wal', 'done'],
        ['run-invariants', 'done'],
        ['promote', 'done'],
        ['smoke-write', 'done'],
        ['teardown', 'done'],
        ['record-evidence', 'done'],
      ]);
      // A random time inside the window the archive covers, after the backup.
      const picked = evidence.steps.find((st) => st.id === 'pick-target')!.summary!;
      expect(picked).toMatch(
        /^time \S+Z: random time in the window \S+ \.\. \S+, from the end of backup \S+, the oldest usable verified backup to the newest archived commit \(\S+, in [0-9A-F]{24}\)$/,
      );
      expect('time' in evidence.target).toBe(true);
      // RPO: the target minus the last replayed commit, within one archive_timeout under this load.
      expect(evidence.rpoObservedSeconds).toBeGreaterThanOrEqual(0);
      expect(evidence.rpoObservedSeconds).toBeLessThanOrEqual(2);
      const targetTime = Date.parse((evidence.target as { time: string }).time);
      const quiet = evidence.notes.find((n) =>
        n.startsWith('observed RPO 0 s: no transaction committed between backup'),
      );
      if (evidence.replayedToTime === undefined) {
        // The random target fell between the backup's end and the first load
        // commit: nothing to replay, and the evidence says why the RPO is 0.
        expect(quiet).toBeDefined();
        expect(evidence.rpoObservedSeconds).toBe(0);
        expect(targetTime).toBeLessThanOrEqual(firstCommitAt!);
      } else {
        expect(quiet).toBeUndefined();
        expect(targetTime - Date.parse(evidence.replayedToTime)).toBeGreaterThanOrEqual(0);
      }
      // RTO: measured, with its phases, and the phases account for it.
      expect(evidence.rtoObservedSeconds).toBeGreaterThan(0);
      expect(Object.keys(evidence.rtoPhases!)).toEqual([
        'preflight',
        'restore',
        'replay',
        'invariants',
        'promote',
        'smoke',
      ]);
      const phaseSum = Object.values(evidence.rtoPhases!).reduce((a, b) => a + b, 0);
      expect(phaseSum).toBeGreaterThan(0);
      expect(phaseSum).toBeLessThanOrEqual(evidence.rtoObservedSeconds! + 0.6);
      expect(evidence.walSegmentsReplayed).toBeGreaterThan(0);
      expect(evidence.walBytesReplayed).toBeGreaterThan(0);
      expect(evidence.baseBackupBytes).toBeGreaterThan(0);
      expect(evidence.objectives).toEqual({ rpoSeconds: 300, rtoSeconds: 2700, rpoMet: true, rtoMet: true });
      expect(evidence.invariants.find((i) => i.name === 'no negative amounts')).toEqual({
        name: 'no negative amounts',
        passed: true,
        value: '0',
        expected: '0',
      });
      expect(
        evidence.notes.some((n) =>
          /^smoke write: row \d+ of public\.lifeboat_drill_smoke committed at [0-9A-F]+\/[0-9A-F]+ and read back at /.test(
            n,
          ),
        ),
      ).toBe(true);
      // The record in the repository is the result.
      expect(await storedEvidence(s, handle.firstExecutionRunId)).toEqual(evidence);
      // Nothing of the drill is left: no listener, no postmaster, no directory, no log.
      await expectNothingLeft(s.runbook);
      // The promoted copy archived nothing: no timeline 2 in the production repository.
      expect(readdirSync(repoWal).filter((f) => f.startsWith('00000002'))).toEqual([]);
      // The primary was never touched: its smoke table does not exist, writes went on.
      expect(await s.tc.pg.query(`select to_regclass('lifeboat_drill_smoke') as t`)).toEqual([{ t: null }]);
      expect(webhook.received.filter((p) => p.body?.workflowId === handle.workflowId)).toEqual([]);
      console.log(
        `drill figures: ${JSON.stringify({ rto: evidence.rtoObservedSeconds, phases: evidence.rtoPhases, rpo: evidence.rpoObservedSeconds, segments: evidence.walSegmentsReplayed, walBytes: evidence.walBytesReplayed, baseBackupBytes: evidence.baseBackupBytes })}`,
      );
    } finally {
      writing = false;
      await written;
    }
  });

  it('fails a drill of an archive with a lost segment, naming the gap, and notifies drill-failed even when the webhook fails once', async () => {
    const s = await setup('gap', 'file');
    for (let b = 0; b < 3; b++) {
      await s.tc.pg.query(
        `insert into orders (customer, status, amount) select 'gap-' || g, 'paid', 3 from generate_series(1, 50) g`,
      );
      await switchAndWaitArchived(s.tc.pg);
    }
    const walDir = path.join(s.tc.repoUrl.replace('file://', ''), s.tc.name, 'wal');
    const segments = readdirSync(walDir)
      .filter((f) => /^[0-9A-F]{24}\.zst$/.test(f))
      .sort();
    const lost = segments[segments.length - 2]!.replace('.zst', '');
    // Moved out of the repository (the test's own directory): the archive now has a hole.
    const outside = postgresTempDir('lost-wal');
    cleanups.push(() => rmSync(outside, { recursive: true, force: true }));
    writeFileSync(path.join(outside, `${lost}.zst`), readFileSync(path.join(walDir, `${lost}.zst`)));
    rmSync(path.join(walDir, `${lost}.zst`));
    const [{ now } = { now: '' }] = await s.tc.pg.query<{ now: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as now`,
    );

    webhook.failNext(1);
    const handle = await startDrill(s, { target: { time: now } });
    const failure = await drillFailure(handle.result());
    const evidenceAt = `${s.runbook.repository.url}/${keys.evidence(s.tc.name, handle.firstExecutionRunId)}`;
    expect(failure.message).toContain(
      `restore drill of ${s.tc.name} failed (drill host ${host}, ${s.runbook.drill!.dataDir}, port ${s.runbook.drill!.port}):\n  step preflight failed: WAL_GAP: the WAL archive of cluster ${s.tc.name} cannot carry backup`,
    );
    expect(failure.message).toContain(`WAL gap on timeline 1: ${lost} is missing`);
    expect(failure.message).toContain(`HINT: the evidence record is ${evidenceAt}`);

    const evidence = await storedEvidence(s, handle.firstExecutionRunId);
    expect(evidence.validationStatus).toBe('failed');
    const preflight = evidence.steps.find((st) => st.id === 'preflight')!;
    expect(preflight.state).toBe('failed');
    expect(preflight.error).toContain(`WAL_GAP: the WAL archive of cluster ${s.tc.name} cannot carry backup`);
    expect(preflight.error).toContain(`${lost} is missing`);
    expect(evidence.steps.filter((st) => st.state === 'pending').map((st) => st.id)).toEqual([
      'restore-base-backup',
      'replay-wal',
      'run-invariants',
      'promote',
      'smoke-write',
    ]);
    expect(evidence.rtoObservedSeconds).toBeUndefined();

    // The webhook answered 500 once; the retry delivered, and the evidence says so.
    const posts = webhook.received.filter((p) => p.body?.workflowId === handle.workflowId);
    expect(posts.map((p) => [p.body?.kind, p.status])).toEqual([
      ['drill-failed', 500],
      ['drill-failed', 204],
    ]);
    const body = posts[1]!.body!;
    expect(body.runbook).toBe(s.tc.name);
    expect(body.text).toContain(`Restore drill ${handle.workflowId} of ${s.tc.name} FAILED at preflight`);
    expect(body.text).toContain(`${lost} is missing`);
    expect(body.text).toContain(`Evidence: ${evidenceAt}`);
    expect(body.details).toMatchObject({ step: 'preflight', errorType: 'WAL_GAP', evidence: evidenceAt });
    expect(evidence.notes).toContain(`notify drill-failed: posted drill-failed to $${WEBHOOK_ENV} (HTTP 204)`);
    await expectNothingLeft(s.runbook);
  });

  it('fails a drill whose invariant fails, naming the invariant, after measuring the rest (s3:// repository)', async () => {
    const s = await setup('inv', 's3', {
      extraInvariants: [
        { name: 'no order over 1000', sql: 'select count(*) from orders where amount > 1000', expect: 0 },
      ],
    });
    await s.tc.pg.query(`insert into orders (customer, status, amount) values ('whale', 'paid', 5000)`);
    await switchAndWaitArchived(s.tc.pg);
    const handle = await startDrill(s, { target: { latest: true } });
    const failure = await drillFailure(handle.result());
    expect(failure.message).toContain(
      `:\n  invariant "no order over 1000" failed: got 1, expected 0\nHINT: the evidence record is `,
    );
    const evidence = await storedEvidence(s, handle.firstExecutionRunId);
    expect(evidence.validationStatus).toBe('failed');
    expect(evidence.invariants.find((i) => i.name === 'no order over 1000')).toEqual({
      name: 'no order over 1000',
      passed: false,
      value: '1',
      expected: '0',
    });
    expect(evidence.notes[0]).toBe('FAILED: invariant "no order over 1000" failed: got 1, expected 0');
    // The drill went on: promoted, written, measured, torn down.
    expect(evidence.steps.filter((st) => st.state !== 'done').map((st) => [st.id, st.state, st.summary])).toEqual([
      ['pick-target', 'skipped', 'given in the input: the end of the archive'],
    ]);
    expect(evidence.rtoObservedSeconds).toBeGreaterThan(0);
    expect(evidence.rpoObservedSeconds).toBeUndefined();
    const post = await webhook.waitFor((p) => p.body?.workflowId === handle.workflowId);
    expect(post.body?.kind).toBe('drill-failed');
    expect(post.body?.text).toContain('invariant "no order over 1000" failed: got 1, expected 0');
    await expectNothingLeft(s.runbook);
  });

  it('refuses when another listener holds the drill port, or the drill directory holds something not its own, and changes nothing', async () => {
    const s = await setup('refuse', 'file');
    const drill = s.runbook.drill!;

    // Someone else's server on drill.port.
    const squatter: Server = createServer((c) => c.end());
    await new Promise<void>((r) => squatter.listen(drill.port, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => squatter.close(r)));
    let handle = await startDrill(s, { target: { latest: true } });
    let failure = await drillFailure(handle.result());
    expect(failure.message).toContain(
      `step preflight failed: PORT_IN_USE: drill.port ${drill.port} on 127.0.0.1 is already in use by node (pid ${process.pid}), so the drill copy cannot start there`,
    );
    let evidence = await storedEvidence(s, handle.firstExecutionRunId);
    // Refused in preflight: nothing restored.
    expect(evidence.steps.find((st) => st.id === 'restore-base-backup')!.state).toBe('pending');
    expect(evidence.steps.find((st) => st.id === 'preflight')!.error).toContain(
      'HINT: nothing was moved, downloaded or started; the process on that port was not touched',
    );
    expect(evidence.steps.find((st) => st.id === 'preflight')!.error).toContain(
      `HINT: set drill.port in the runbook to a port nothing else uses on host ${host}, or stop what listens there (see: ss -ltnp 'sport = :${drill.port}'); then start the drill again (lifeboat drill --runbook ${s.runbook.name})`,
    );
    expect(existsSync(drill.dataDir)).toBe(false);
    expect(await portAnswers('127.0.0.1', drill.port)).toBe(true);
    await new Promise((r) => squatter.close(r));

    // Someone's files in drill.dataDir.
    mkdirSync(drill.dataDir);
    writeFileSync(path.join(drill.dataDir, 'precious.txt'), "not lifeboat's");
    handle = await startDrill(s, { target: { latest: true } });
    failure = await drillFailure(handle.result());
    expect(failure.message).toContain(
      `step preflight failed: DATA_DIR_NOT_EMPTY: drill.dataDir ${drill.dataDir} is not empty and was not restored by this drill (workflow ${handle.workflowId}): it holds 1 entry (precious.txt)`,
    );
    evidence = await storedEvidence(s, handle.firstExecutionRunId);
    expect(evidence.steps.find((st) => st.id === 'teardown')!.summary).toBe(
      `${drill.dataDir} was left as it is: it has no marker of this drill`,
    );
    expect(readdirSync(drill.dataDir)).toEqual(['precious.txt']);
    expect(readFileSync(path.join(drill.dataDir, 'precious.txt'), 'utf8')).toBe("not lifeboat's");
    expect(
      readdirSync(path.dirname(drill.dataDir)).filter((f) => f.startsWith(`${path.basename(drill.dataDir)}.`)),
    ).toEqual([]);
    // The drill's test directory, provably the test's own.
    rmSync(drill.dataDir, { recursive: true, force: true });
  });

  it('keeps the promoted copy with keep: true; the next drill refuses its port while it runs, and moves its directory aside once it is stopped', async () => {
    const s = await setup('keep', 'file');
    const drill = s.runbook.drill!;
    await s.tc.pg.query(`insert into orders (customer, status, amount) values ('kept', 'paid', 7)`);
    await switchAndWaitArchived(s.tc.pg);
    const kept = await startDrill(s, { target: { latest: true }, keep: true });
    const keptEvidence = (await kept.result()) as Evidence;
    expect(keptEvidence.validationStatus).toBe('passed');
    expect(keptEvidence.steps.find((st) => st.id === 'teardown')).toEqual({
      id: 'teardown',
      state: 'skipped',
      summary: `kept (keep: true): drill host ${host}, ${drill.dataDir}, port ${drill.port}; stop it with pg_ctl stop -D ${drill.dataDir} -m fast as postgres and remove the directory when done`,
    });
    // The kept copy answers on loopback with the smoke row in it.
    const c = new Client({ host: '127.0.0.1', port: drill.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    const rows = (
      await c.query<{ n: string }>(`select count(*)::text as n from lifeboat_drill_smoke where workflow_id = $1`, [
        kept.workflowId,
      ])
    ).rows;
    await c.end();
    expect(rows).toEqual([{ n: '1' }]);

    const refused = await startDrill(s, { target: { latest: true } });
    const failure = await drillFailure(refused.result());
    // Refused in preflight, before anything was restored: the kept copy is another drill's and still runs.
    expect(failure.message).toContain(
      `step preflight failed: DATA_DIR_NOT_EMPTY: drill.dataDir ${drill.dataDir} holds the copy of another restore drill (restore drill, workflow ${kept.workflowId} (run ${kept.firstExecutionRunId}), backup `,
    );
    expect(failure.message).toContain('with PostgreSQL still running in it');
    const refusedEvidence = await storedEvidence(s, refused.firstExecutionRunId);
    expect(refusedEvidence.steps.find((st) => st.id === 'restore-base-backup')!.state).toBe('pending');
    expect(refusedEvidence.steps.find((st) => st.id === 'preflight')!.error).toContain(
      `HINT: when it is no longer needed, stop it (as postgres): ${s.runbook.cluster.pgBin}/pg_ctl stop -D ${drill.dataDir} -m fast; the next drill moves its directory aside`,
    );
    expect(refusedEvidence.steps.find((st) => st.id === 'teardown')!.summary).toContain(
      `${drill.dataDir} was left as it is: it holds restore drill, workflow ${kept.workflowId}`,
    );

    await exec('runuser', [
      '-u',
      'postgres',
      '--',
      `${s.runbook.cluster.pgBin}/pg_ctl`,
      'stop',
      '-D',
      drill.dataDir,
      '-m',
      'fast',
      '-w',
    ]);
    const next = await startDrill(s, { target: { latest: true } });
    const evidence = (await next.result()) as Evidence;
    expect(evidence.validationStatus).toBe('passed');
    const summary = evidence.steps.find((st) => st.id === 'restore-base-backup')!.summary!;
    const aside = /an earlier drill's directory moved to (\S+)$/.exec(summary)?.[1];
    expect(aside).toMatch(
      new RegExp(`^${drill.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.lifeboat-drill-\\d{8}T\\d{6}Z$`),
    );
    // Moved, not deleted: the kept drill's copy is all there, marker and all.
    expect(JSON.parse(readFileSync(path.join(aside!, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      workflowId: kept.workflowId,
      instance: 'drill',
      state: 'promoted',
    });
    expect(existsSync(path.join(aside!, 'PG_VERSION'))).toBe(true);
    expect(existsSync(drill.dataDir)).toBe(false);
    expect(await portAnswers('127.0.0.1', drill.port)).toBe(false);
    // The moved-aside copy was made by this test's drills: provably ours to remove.
    rmSync(aside!, { recursive: true, force: true });
  });
});
