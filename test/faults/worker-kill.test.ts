// Fault injection: one real recoverToPointInTime of a real cluster, with a
// `lifeboat worker` process SIGKILLed during each of its 18 steps in turn
// (the 17 of DESIGN.md §4.1, step 16 being two). A dying worker must cost a
// step no more than its heartbeat timeout plus a retry on another worker,
// never the step's start-to-close timeout (issue 10: 603 s for a kill in a
// gate), and the promoted copy must hold exactly the rows at the target.
//
// Every short step is HELD so the kill lands inside it, and the test sees the
// hold reached before it kills:
// - preflight: the test holds an ACCESS EXCLUSIVE lock on the pg_stat_archiver
//   view, so the archiver read waits (pg_stat_activity shows it);
// - capture-forensics: a lock on the table the capture query reads;
// - the three gates on the primary: row locks on their system_gate rows;
// - restore-base-backup, replay-wal, record-evidence: the workers reach the
//   store through a proxy (./s3-hold.ts) that keeps the base archive's GET,
//   the WAL GETs of the restore_command, or the evidence PUT unanswered;
// - run-invariants, promote, reconcile-outbox, resume-traffic,
//   enable-background-jobs, resume-outbox: an invariant and triggers in the
//   restored copy call fk_hold(name), which waits while a hold file of that
//   name exists (created on the primary before the base backup, so the
//   restored catalog has it; it only reads a file's status and sleeps, so it
//   runs on a paused read-only standby too);
// - invalidate-caches: an HTTP purge endpoint that does not answer;
// - the three approvals: nothing runs; the kill hits the worker that holds
//   the workflow's cache, and the approval is sent right after.
// Two workers run all the time, as in production; the one running the held
// activity (its Temporal identity is `<pid>@<host>`) is killed, a new one is
// started at once, and the hold released. The time from the kill to the
// step's completion is printed and written to test-artifacts/faults/, never
// asserted; what is asserted is that each activity was taken over after a
// heartbeat timeout (its ActivityTaskStarted event names the attempt after
// the killed one, and a HEARTBEAT timeout as the last failure), that every
// step ended done, and the rows.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection, type WorkflowHandle } from '@temporalio/client';
import { Client, type ClientConfig } from 'pg';
import { afterAll, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { startOwnDevServer } from '../harness/dev-server';
import type { Evidence, RecoveryStatus, StepId } from '../../src/recovery/contract';
import { approveSignal, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { startCliWorker, type CliWorker } from '../harness/cli';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { postgresTempDir, startPrimary, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { freePort } from '../harness/ports';
import { artifactsDir, s3Env, s3RepoUrl } from '../harness/services';
import { lockHolder, queryOne, startPurgeEndpoint } from './holds';
import { FINGERPRINT_SQL, runbookYaml, schemaSql } from './ledger-app';
import { startS3Hold } from './s3-hold';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

/** PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and TimeoutType.TIMEOUT_TYPE_HEARTBEAT (temporal.api.enums.v1). */
const ACTIVITY_STARTED = 2;
const HEARTBEAT_TIMEOUT = 4;

class StepFailed extends Error {}

/** A proto enum as the client decodes it: its number, or its name. */
function enumIs(value: unknown, num: number, name: string): boolean {
  return value === num || value === name || Number(value) === num;
}

/** Polls until `probe` answers; probe errors are retried (a query may fail while a worker dies), StepFailed is not. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof StepFailed) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

interface KillSpec {
  step: StepId;
  /** What holds the step, for the table. */
  hold: string;
  /** The activity the kill lands in; none for an approval. */
  activity?: string;
  /** Sets the hold up; called before the step before it is released. */
  arm?: () => Promise<void> | void;
  /** True once the held step is provably waiting on the hold. */
  reached?: () => Promise<boolean>;
  /** Releases the hold (for an approval: approves). */
  release: () => Promise<void> | void;
}

interface Measured {
  step: StepId;
  hold: string;
  activity?: string;
  activityId?: string;
  /** The attempt the killed worker was running. */
  killedAttempt?: number;
  killedPid: number;
  killedAt: string;
  /** Kill to the step's finishedAt (workflow clock). */
  costSeconds: number;
  /** Kill to the moment the test's status poll first saw the step done. */
  seenSeconds: number;
  /** Kill to the new worker's "polling" line. */
  newWorkerSeconds?: number;
  summary: string;
}

it('takes over every step of a recovery within a heartbeat timeout of its worker being SIGKILLed, and promotes exactly the rows at the target', async () => {
  // Services of its own where the test needs them: a Temporal server whose
  // `lifeboat` queue only these workers poll, a proxy to the store that can hold requests.
  const tempRoot = postgresTempDir('faults');
  cleanups.push(() => rmSync(tempRoot, { recursive: true, force: true }));
  const temporal = await startOwnDevServer(async () => ({ port: await freePort() }), {
    logFile: path.join(tempRoot, 'temporal.log'),
  });
  cleanups.push(() => temporal.stop());
  const s3 = s3Env();
  const store = await startS3Hold(s3.S3_ENDPOINT!);
  cleanups.push(() => store.stop());
  const purge = await startPurgeEndpoint();
  cleanups.push(() => purge.stop());

  const name = `workerkill-${process.pid}`;
  const host = `workerkill${process.pid}`;
  const runbooksDir = postgresTempDir('runbooks');
  const stateDir = postgresTempDir('state');
  const holdDir = postgresTempDir('holds');
  cleanups.push(() => {
    for (const d of [runbooksDir, stateDir, holdDir]) rmSync(d, { recursive: true, force: true });
  });
  const holdFile = (n: string) => path.join(holdDir, n);
  const hold = (n: string) => writeFileSync(holdFile(n), '');
  const unhold = (n: string) => rmSync(holdFile(n), { force: true });

  const repoUrl = s3RepoUrl('workerkill');
  // The primary archives straight to the store: only the workers' requests go through the proxy.
  const pg = await startPrimary({ archive: { repo: repoUrl, cluster: name, env: s3 } });
  cleanups.push(() => pg.stop());
  const restorePort = await freePort();
  writeFileSync(
    path.join(runbooksDir, `${name}.yaml`),
    runbookYaml({ name, pgPort: pg.port, repoUrl, host, stateDir, restorePort }),
  );
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  Object.assign(process.env, s3);
  const runbook = await loadRunbook(name);
  cleanups.push(() => stopRestoredCopy(runbook));

  // The application, the holds' functions, a base backup, then the rows the recovery must bring back.
  await pg.query(schemaSql(holdDir));
  await takeBaseBackup({ runbook });
  await pg.query(
    `insert into ledger (id, account_id, amount, memo) select g, 1 + g % 50, (g % 71) - 10.5, 'late ' || g from generate_series(2001, 3000) g`,
  );
  await pg.query(`update accounts set balance = balance - 7 where id % 4 = 0`);
  await pg.query(
    `insert into events_out (kind, body, sent_at) select 'ledger.posted', jsonb_build_object('id', g), case when g <= 250 then now() end from generate_series(1, 300) g`,
  );
  await switchAndWaitArchived(pg);
  const [{ fp: expected } = { fp: '' }] = await pg.query<{ fp: string }>(FINGERPRINT_SQL);
  const [{ target } = { target: '' }] = await pg.query<{ target: string }>(
    `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as target`,
  );
  await new Promise((r) => setTimeout(r, 1100));
  // The incident: a third of the ledger deleted, accounts overdrawn, the rest of the outbox published.
  await pg.query(`delete from ledger where id % 3 = 0`);
  await pg.query(`update accounts set balance = -1 where id <= 5`);
  await pg.query(`update events_out set sent_at = now() where sent_at is null`);
  await switchAndWaitArchived(pg);

  // Two workers, each polling `lifeboat` and the restore host's queue, as separate processes.
  const workerEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...s3,
    S3_ENDPOINT: store.endpoint,
    TEMPORAL_ADDRESS: temporal.address,
    LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
    FK_PURGE_URL: purge.url,
  };
  const workers: CliWorker[] = [];
  const everyWorker: CliWorker[] = [];
  cleanups.push(() => Promise.all(everyWorker.map((w) => w.stop())));
  const newWorker = async () => {
    const w = await startCliWorker(host, workerEnv);
    everyWorker.push(w);
    workers.push(w);
    return w;
  };
  await Promise.all([newWorker(), newWorker()]);

  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new TemporalClient({ connection });
  const primaryConfig: ClientConfig = pg.connection;
  const restoredConfig: ClientConfig = { host: '127.0.0.1', port: restorePort, user: 'postgres', database: 'postgres' };
  /** A backend of `config` waiting as `waitType` ('Lock', or the PgSleep of fk_hold) on a statement like `pattern`. */
  const waiting = async (config: ClientConfig, waitType: 'Lock' | 'PgSleep', pattern: string) => {
    const row = await queryOne<{ n: number }>(
      config,
      `select count(*)::int as n from pg_stat_activity where pid <> pg_backend_pid() and query ilike $1 and ${waitType === 'Lock' ? `wait_event_type = 'Lock'` : `wait_event = 'PgSleep'`}`,
      [pattern],
    );
    return (row?.n ?? 0) > 0;
  };
  // Started once the first hold is armed; the closures below run after that.
  const run = {} as { wf: WorkflowHandle };
  const approve = (step: StepId) => run.wf.signal(approveSignal, { step, by: 'alice' });
  let releaseLock: Record<string, () => Promise<void>> = {};
  const lockRow = (gate: string) => async () => {
    releaseLock[gate] = await lockHolder(primaryConfig, [
      `select 1 from system_gate where gate_name = '${gate}' for update`,
    ]);
  };
  const unlock = (key: string) => async () => {
    await releaseLock[key]!();
    delete releaseLock[key];
  };
  cleanups.push(async () => {
    for (const release of Object.values(releaseLock)) await release().catch(() => undefined);
    releaseLock = {};
    for (const n of [
      'run-invariants',
      `gate-writers-off-${restorePort}`,
      `reconcile-${restorePort}`,
      `gate-writers-on-${restorePort}`,
      `gate-background_jobs-on-${restorePort}`,
      `gate-outbox_publisher-on-${restorePort}`,
    ])
      unhold(n);
  });
  const restoredGate = (gate: string, on: boolean): Pick<KillSpec, 'arm' | 'reached' | 'release'> => {
    const file = `gate-${gate}-${on ? 'on' : 'off'}-${restorePort}`;
    return {
      arm: () => hold(file),
      reached: () => waiting(restoredConfig, 'PgSleep', '%system_gate%'),
      release: () => unhold(file),
    };
  };

  const specs: KillSpec[] = [
    {
      step: 'preflight',
      hold: 'pg_stat_archiver view locked by the test',
      activity: 'preflight',
      arm: async () => {
        releaseLock.archiver = await lockHolder(primaryConfig, [
          'lock table pg_catalog.pg_stat_archiver in access exclusive mode',
        ]);
      },
      reached: () => waiting(primaryConfig, 'Lock', '%pg_stat_archiver%'),
      release: unlock('archiver'),
    },
    {
      step: 'capture-forensics',
      hold: 'ledger table locked by the test',
      activity: 'captureForensics',
      arm: async () => {
        releaseLock.ledger = await lockHolder(primaryConfig, ['lock table ledger in access exclusive mode']);
      },
      reached: () => waiting(primaryConfig, 'Lock', '%lifeboat_capture%'),
      release: unlock('ledger'),
    },
    { step: 'approve-fence', hold: 'approval (nothing running)', release: () => approve('approve-fence') },
    {
      step: 'disable-writers',
      hold: 'system_gate row writers locked',
      activity: 'setGate',
      arm: lockRow('writers'),
      reached: () => waiting(primaryConfig, 'Lock', '%system_gate%'),
      release: unlock('writers'),
    },
    {
      step: 'disable-background-jobs',
      hold: 'system_gate row background_jobs locked',
      activity: 'setGate',
      arm: lockRow('background_jobs'),
      reached: () => waiting(primaryConfig, 'Lock', '%system_gate%'),
      release: unlock('background_jobs'),
    },
    {
      step: 'pause-outbox',
      hold: 'system_gate row outbox_publisher locked',
      activity: 'setGate',
      arm: lockRow('outbox_publisher'),
      reached: () => waiting(primaryConfig, 'Lock', '%system_gate%'),
      release: unlock('outbox_publisher'),
    },
    {
      step: 'restore-base-backup',
      hold: "GETs of the base backup's parts unanswered by the store proxy",
      activity: 'restoreBaseBackup',
      arm: () =>
        store.hold(
          'restore',
          (method, p) => method === 'GET' && /\/base\/[^/]+\/base\.\d{4}\.tar\.zst$/.test(p.split('?')[0]!),
        ),
      reached: async () => store.held('restore') > 0,
      release: () => store.release('restore'),
    },
    {
      step: 'replay-wal',
      hold: 'WAL GETs of restore_command unanswered by the store proxy',
      activity: 'replayWal',
      arm: () => store.hold('replay', (method, p) => method === 'GET' && /\/wal\/[^/]+$/.test(p.split('?')[0]!)),
      reached: async () => store.held('replay') > 0,
      release: () => store.release('replay'),
    },
    {
      step: 'run-invariants',
      hold: 'invariant calls fk_hold (hold file)',
      activity: 'runInvariants',
      arm: () => hold('run-invariants'),
      reached: () => waiting(restoredConfig, 'PgSleep', '%fk_hold%'),
      release: () => unhold('run-invariants'),
    },
    { step: 'approve-promote', hold: 'approval (nothing running)', release: () => approve('approve-promote') },
    {
      step: 'promote',
      hold: 'trigger on system_gate (writers off) in the promoted copy',
      activity: 'setGate',
      ...restoredGate('writers', false),
    },
    {
      step: 'reconcile-outbox',
      hold: 'trigger on events_out in the promoted copy',
      activity: 'reconcileOutbox',
      arm: () => hold(`reconcile-${restorePort}`),
      reached: () => waiting(restoredConfig, 'PgSleep', '%events_out%'),
      release: () => unhold(`reconcile-${restorePort}`),
    },
    {
      step: 'invalidate-caches',
      hold: 'HTTP purge endpoint does not answer',
      activity: 'invalidateCaches',
      arm: () => purge.hold(),
      reached: async () => purge.hits() > 0,
      release: () => purge.release(),
    },
    { step: 'approve-resume', hold: 'approval (nothing running)', release: () => approve('approve-resume') },
    {
      step: 'resume-traffic',
      hold: 'trigger on system_gate (writers on)',
      activity: 'setGate',
      ...restoredGate('writers', true),
    },
    {
      step: 'enable-background-jobs',
      hold: 'trigger on system_gate (background_jobs on)',
      activity: 'setGate',
      ...restoredGate('background_jobs', true),
    },
    {
      step: 'resume-outbox',
      hold: 'trigger on system_gate (outbox_publisher on)',
      activity: 'setGate',
      ...restoredGate('outbox_publisher', true),
    },
    {
      step: 'record-evidence',
      hold: 'PUT of the evidence unanswered by the store proxy',
      activity: 'writeEvidence',
      arm: () => store.hold('evidence', (_method, p) => p.split('?')[0]!.includes('/evidence/')),
      reached: async () => store.held('evidence') > 0,
      release: () => store.release('evidence'),
    },
  ];

  const status = async (): Promise<RecoveryStatus> => {
    const s = await run.wf.query(statusQuery);
    const failed = s.steps.find((x) => x.state === 'failed');
    if (failed)
      throw new StepFailed(
        `${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints?.join('\n') ?? ''}`,
      );
    return s;
  };
  /** The worker that ran the workflow's last task: it holds the workflow's cache and its sticky queue. */
  const stickyWorker = async (): Promise<number | undefined> => {
    const history = await run.wf.fetchHistory();
    const started = (history.events ?? []).filter((e) => e.workflowTaskStartedEventAttributes).at(-1);
    const pid = Number(started?.workflowTaskStartedEventAttributes?.identity?.split('@')[0]);
    return Number.isFinite(pid) ? pid : undefined;
  };
  const runningActivity = async (
    type: string,
  ): Promise<{ pid: number; activityId: string; attempt: number } | undefined> => {
    const d = await run.wf.describe();
    const a = (d.raw.pendingActivities ?? []).find(
      (p) => p.activityType?.name === type && enumIs(p.state, ACTIVITY_STARTED, 'PENDING_ACTIVITY_STATE_STARTED'),
    );
    const pid = Number(a?.lastWorkerIdentity?.split('@')[0]);
    return a && Number.isFinite(pid) ? { pid, activityId: a.activityId!, attempt: a.attempt ?? 1 } : undefined;
  };

  await specs[0]!.arm?.();
  run.wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue: 'lifeboat',
    workflowId: `recover-${name}`,
    args: [
      {
        runbook: name,
        target: { time: target },
        incident: 'FAULT-WORKER-KILL',
        reason: 'a worker SIGKILLed in every step',
      },
    ],
  });

  const measured: Measured[] = [];
  for (const [i, spec] of specs.entries()) {
    // 1. The step is provably inside its hold, and we know which worker runs it.
    const victim = await until(`${spec.step} to reach its hold (${spec.hold})`, async () => {
      const s = await status();
      const state = s.steps.find((x) => x.id === spec.step)?.state;
      if (state !== (spec.activity ? 'running' : 'awaiting-approval')) return undefined;
      if (spec.reached && !(await spec.reached())) return undefined;
      if (!spec.activity) {
        const pid = await stickyWorker();
        return pid === undefined ? undefined : { pid, activityId: undefined, attempt: undefined };
      }
      return runningActivity(spec.activity);
    });
    const worker = workers.find((w) => w.pid === victim.pid);
    expect(
      worker,
      `${spec.step} runs on worker ${victim.pid}, one of ours (${workers.map((w) => w.pid).join(', ')})`,
    ).toBeDefined();
    // 2. The kill, a new worker at once, the next step's hold armed, this one released.
    const killedAt = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    workers.splice(workers.indexOf(worker!), 1);
    let workerReadyAt = 0;
    const replacement = newWorker().then((w) => ((workerReadyAt = Date.now()), w));
    await specs[i + 1]?.arm?.();
    await spec.release();
    // 3. The step completes on the surviving worker.
    const done = await until(`${spec.step} to end done after the kill`, async () => {
      const s = await status();
      const step = s.steps.find((x) => x.id === spec.step);
      return step?.state === 'done' && step.finishedAt ? step : undefined;
    });
    // The measure is the test's own clock (it polls every 200 ms). finishedAt
    // is workflow time, the time Temporal gave the workflow task, and has once
    // read 0.3 s before the kill of a step whose history shows the takeover.
    const seenAt = Date.now();
    measured.push({
      step: spec.step,
      hold: spec.hold,
      ...(spec.activity ? { activity: spec.activity } : {}),
      ...(victim.activityId ? { activityId: victim.activityId, killedAttempt: victim.attempt } : {}),
      killedPid: victim.pid,
      killedAt: new Date(killedAt).toISOString(),
      costSeconds: (Date.parse(done.finishedAt!) - killedAt) / 1000,
      seenSeconds: (seenAt - killedAt) / 1000,
      summary: done.summary ?? '',
    });
    await replacement;
    measured.at(-1)!.newWorkerSeconds = (workerReadyAt - killedAt) / 1000;
  }
  const evidence = (await run.wf.result()) as Evidence;

  // How each activity was taken over, from the workflow's history.
  const history = await run.wf.fetchHistory();
  const events = history.events ?? [];
  const takeover = (activityId: string) => {
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === activityId);
    const started = events.find(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled?.eventId),
    );
    const a = started?.activityTaskStartedEventAttributes;
    return {
      attempt: a?.attempt ?? 0,
      heartbeat: enumIs(a?.lastFailure?.timeoutFailureInfo?.timeoutType, HEARTBEAT_TIMEOUT, 'TIMEOUT_TYPE_HEARTBEAT'),
    };
  };
  const rows = measured.map((m) => {
    const t = m.activityId ? takeover(m.activityId) : undefined;
    return {
      ...m,
      takeoverAttempt: t?.attempt,
      takeover: t
        ? `attempt ${m.killedAttempt} killed, attempt ${t.attempt} ran${t.heartbeat ? ' after a heartbeat timeout' : ''}`
        : 'workflow task on the other worker',
    };
  });
  const table = [
    `# Worker SIGKILLed during each step of recoverToPointInTime`,
    '',
    `Measured ${new Date().toISOString()} on ${process.platform}; two workers polling, a new one started right after each kill;`,
    'heartbeat timeouts from workflows/recovery/proxies.ts (10 s SQL/HTTP, 15 s restore and replay). Before: 603 s for a kill in a gate.',
    '',
    '| step | hold | kill → step seen done (s) | kill → finishedAt (s, workflow clock) | kill → new worker polling (s) | takeover |',
    '|---|---|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.step} | ${r.hold} | ${r.seenSeconds.toFixed(1)} | ${r.costSeconds.toFixed(1)} | ${r.newWorkerSeconds?.toFixed(1) ?? '?'} | ${r.takeover} |`,
    ),
    '',
    `Total of the kills' costs: ${rows.reduce((n, r) => n + r.seenSeconds, 0).toFixed(1)} s over ${rows.length} steps; evidence RTO ${evidence.rtoObservedSeconds} s.`,
    '',
  ].join('\n');
  console.log(table);
  const out = path.join(artifactsDir(), 'faults');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'worker-kill.md'), table);
  // For a look afterwards: what was killed when, and the workflow's history.
  writeFileSync(path.join(out, 'worker-kill.json'), JSON.stringify({ measured, history }, null, 1));

  // Every step was killed once, ran, and ended done.
  expect(measured.map((m) => m.step)).toEqual(evidence.steps.map((s) => s.id));
  expect(evidence.steps.map((s) => `${s.id}:${s.state}`)).toEqual(evidence.steps.map((s) => `${s.id}:done`));
  expect(evidence.validationStatus).toBe('passed');
  // The capture ran on the primary (not "primary did not answer").
  expect(measured.find((m) => m.step === 'capture-forensics')?.summary).toBe('high-water mark 300, 1 capture(s)');
  // Each killed activity was taken over by a retry after its heartbeat timed out, not after its start-to-close timeout.
  for (const r of rows.filter((x) => x.activityId)) {
    expect(`${r.step}: ${r.takeover}`).toBe(
      `${r.step}: attempt ${r.killedAttempt} killed, attempt ${r.killedAttempt! + 1} ran after a heartbeat timeout`,
    );
  }
  // The promoted copy holds exactly the rows at the target, gates open again, the outbox reconciled.
  const restored = await queryOne<{ fp: string }>(restoredConfig, FINGERPRINT_SQL);
  expect(restored?.fp).toBe(expected);
  const gates = new Client(restoredConfig);
  await gates.connect();
  cleanups.push(() => gates.end());
  const { rows: gateRows } = await gates.query<{ gate_name: string; enabled: boolean }>(
    'select gate_name, enabled from system_gate order by gate_name',
  );
  expect(gateRows).toEqual([
    { gate_name: 'background_jobs', enabled: true },
    { gate_name: 'outbox_publisher', enabled: true },
    { gate_name: 'writers', enabled: true },
  ]);
  const { rows: unsent } = await gates.query<{ n: number }>(
    'select count(*)::int as n from events_out where sent_at is null',
  );
  expect(unsent[0]!.n).toBe(0);
}, 1_200_000);
