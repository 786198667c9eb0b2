// Schedules through the real binaries, in a Temporal namespace of this
// file's own (the CLI starts work on the `lifeboat` task queue, which other
// test files' workers poll in the default namespace): `lifeboat backup
// --schedule` and `lifeboat drill --schedule` create (then update, never
// duplicate) plain Temporal schedules; `lifeboat schedules trigger` fires
// them without waiting for the clock; a `lifeboat worker` process runs what
// they start. A scheduled backup is verified and expires the older one; a
// scheduled drill restores a real cluster and its evidence is listed by
// `lifeboat evidence`; a failed scheduled backup posts backup-failed, and a
// webhook that is down does not hide the backup's own error; pause and
// delete through the CLI are what the server describes.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  type ActivityFailure,
  type ApplicationFailure,
  Client as TemporalClient,
  Connection,
  ScheduleNotFoundError,
  WorkflowFailedError,
} from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../src/dev/demo-runbook';
import type { LifeboatSchedule } from '../../src/schedules/schedules';
import { requireTool } from '../../src/tools';
import type { BaseBackupResult } from '../../workflows/base-backup';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner, startCliWorker } from '../harness/cli';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';
import { startTestWebhook, type TestWebhook } from '../harness/webhook';

const exec = promisify(execFile);
const runbooksDir = postgresTempDir('runbooks');
const namespace = `lifeboat-schedules-${process.pid}`;
const host = `sched${process.pid}`;
const WEBHOOK_ENV = 'LIFEBOAT_SCHEDULES_TEST_WEBHOOK';
const cleanups: Cleanups = [];
let cluster: TestCluster;
let client: TemporalClient;
let webhook: TestWebhook;

const env = () => ({
  ...process.env,
  LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
  TEMPORAL_ADDRESS: temporalAddress(),
  TEMPORAL_NAMESPACE: namespace,
  [WEBHOOK_ENV]: webhook.url,
});

const lifeboat = cliRunner(env);

beforeAll(async () => {
  webhook = await startTestWebhook();
  cleanups.push(() => webhook.close());
  await exec(requireTool('temporal'), [
    'operator',
    'namespace',
    'create',
    '--address',
    temporalAddress(),
    '--namespace',
    namespace,
  ]);
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  client = new TemporalClient({ connection, namespace });
  await waitFor(
    'the namespace to be usable',
    async () =>
      await connection.workflowService.describeNamespace({ namespace }).then(
        () => true,
        () => undefined,
      ),
    { timeoutMs: 60_000 },
  );

  cluster = await startTestCluster({
    name: 'sched',
    kind: 'file',
    runbooksDir,
    host,
    runbook: { retainFull: 1, notifyWebhookUrlEnv: WEBHOOK_ENV },
  });
  cleanups.push(() => cluster.stop());
  await cluster.pg.query(DEMO_SCHEMA_SQL);
  await cluster.pg.query(DEMO_SEED_SQL);
  // The same cluster through a runbook whose password variable is unset on the worker: its backups fail.
  const broken = readFileSync(cluster.runbookFile, 'utf8')
    .replace('name: sched', 'name: sched-broken')
    .replace('user: postgres }', 'user: postgres, passwordEnv: LIFEBOAT_SCHEDULES_TEST_UNSET }');
  writeFileSync(path.join(runbooksDir, 'sched-broken.yaml'), broken);

  const worker = await startCliWorker(host, env());
  cleanups.push(() => worker.stop());
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** `lifeboat schedules --json`, once the (eventually consistent) list holds `id`. */
async function listed(id: string): Promise<LifeboatSchedule> {
  return waitFor(
    `${id} in lifeboat schedules`,
    async () => {
      const r = await lifeboat('schedules', '--json');
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as LifeboatSchedule[]).find((s) => s.scheduleId === id);
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
}

/** Triggers through the CLI and returns the workflow id the schedule started. */
async function trigger(runbook: string, kind: 'drill' | 'backup'): Promise<string> {
  const id = `lifeboat-${kind}-${runbook}`;
  const before = (await client.schedule.getHandle(id).describe()).info.numActionsTaken;
  const r = await lifeboat('schedules', 'trigger', runbook, kind);
  expect(r.code).toBe(0);
  expect(r.stdout.split('\n')[0]).toBe(
    `schedule ${id} triggered: ${kind === 'drill' ? 'restoreDrill' : 'baseBackup'} starts now; lifeboat schedules shows its result`,
  );
  const d = await waitFor(
    `${id} to start a run`,
    async () => {
      const x = await client.schedule.getHandle(id).describe();
      return x.info.numActionsTaken > before ? x : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  const workflowId = d.info.recentActions[d.info.recentActions.length - 1]!.action.workflow.workflowId;
  expect(workflowId).toMatch(new RegExp(`^${kind}-${runbook}-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
  return workflowId;
}

it('creates the backup schedule once and updates it; a triggered run is verified, expires the older backup, and shows as the last result', async () => {
  const first = await lifeboat('backup', '--runbook', 'sched', '--json');
  expect(first.code).toBe(0);
  const firstId = (JSON.parse(first.stdout) as { backup: { backupId: string } }).backup.backupId;

  const created = await lifeboat('backup', '--runbook', 'sched', '--schedule', '0 3 * * *');
  expect(created.code).toBe(0);
  expect(created.stdout).toMatch(
    new RegExp(
      "^schedule lifeboat-backup-sched created: baseBackup of runbook sched, cron '0 3 \\* \\* \\*' \\(UTC\\), a run still going when the next is due is skipped\\n" +
        'next runs: \\d{4}-\\d\\d-\\d\\d 03:00:00Z, \\d{4}-\\d\\d-\\d\\d 03:00:00Z, \\d{4}-\\d\\d-\\d\\d 03:00:00Z\\n' +
        'run it now: lifeboat schedules trigger sched backup; pause: lifeboat schedules pause sched backup; or in the Temporal UI under Schedules > lifeboat-backup-sched\\n$',
    ),
  );
  const updated = await lifeboat('backup', '--runbook', 'sched', '--schedule', '30 4 * * *');
  expect(updated.code).toBe(0);
  expect(updated.stdout.split('\n')[0]).toBe(
    "schedule lifeboat-backup-sched updated: baseBackup of runbook sched, cron '30 4 * * *' (UTC), a run still going when the next is due is skipped",
  );
  // One schedule, with the new cron, as the server describes it.
  const d = await client.schedule.getHandle('lifeboat-backup-sched').describe();
  expect(d.spec.calendars?.map((c) => [c.hour, c.minute])).toEqual([
    [[{ start: 4, end: 4, step: 1 }], [{ start: 30, end: 30, step: 1 }]],
  ]);
  expect(d.policies.overlap).toBe('SKIP');
  expect(d.action).toMatchObject({
    workflowType: 'baseBackup',
    taskQueue: 'lifeboat',
    args: [{ runbook: 'sched', expire: true }],
  });
  const ids: string[] = [];
  for await (const s of client.schedule.list()) ids.push(s.scheduleId);
  expect(ids.filter((i) => i.startsWith('lifeboat-backup-'))).toEqual(['lifeboat-backup-sched']);

  const before = await listed('lifeboat-backup-sched');
  expect(before).toMatchObject({
    kind: 'backup',
    runbook: 'sched',
    cron: '30 4 * * *',
    workflowType: 'baseBackup',
    paused: false,
    actionsTaken: 0,
  });
  expect(before.nextRuns[0]).toMatch(/T04:30:00\.000Z$/);
  expect(before.lastResult).toBeUndefined();

  await new Promise((r) => setTimeout(r, 1100)); // backup ids are per second
  const workflowId = await trigger('sched', 'backup');
  const result = (await client.workflow.getHandle(workflowId).result()) as BaseBackupResult;
  expect(result.verifiedBy).toBe('pg_verifybackup');
  expect(result.expiry).toEqual({
    workflowId: `${workflowId}-expire`,
    deletedBackups: [firstId],
    walDeletedCount: expect.any(Number) as number,
  });
  const backups = JSON.parse((await lifeboat('backups', '--runbook', 'sched', '--json')).stdout) as unknown;
  expect(JSON.stringify(backups)).toContain(result.backupId);
  expect(JSON.stringify(backups)).not.toContain(firstId);

  const after = await listed('lifeboat-backup-sched');
  expect(after.lastResult).toMatchObject({ workflowId, status: 'COMPLETED' });
  expect(after.actionsTaken).toBe(1);
  const table = (await lifeboat('schedules')).stdout;
  expect(table).toMatch(/^SCHEDULE +KIND +RUNBOOK +CRON +STATE +NEXT RUN +LAST RUN +LAST RESULT$/m);
  expect(table).toMatch(
    new RegExp(
      `^lifeboat-backup-sched +backup +sched +30 4 \\* \\* \\* +active +\\d{4}-\\d\\d-\\d\\d 04:30:00Z +\\S+ \\S+ ${workflowId} +COMPLETED$`,
      'm',
    ),
  );
});

it('runs a scheduled drill of the cluster when triggered, and its evidence is in lifeboat evidence', async () => {
  // Commits archived after the backup: the drill picks its target among them.
  for (let i = 0; i < 3; i++) {
    await cluster.pg.query(`insert into orders (customer, status, amount) values ('after-${i}', 'paid', 5)`);
    await switchAndWaitArchived(cluster.pg);
    await new Promise((r) => setTimeout(r, 1100));
  }
  const created = await lifeboat('drill', '--runbook', 'sched', '--schedule', '@daily');
  expect(created.code).toBe(0);
  expect(created.stdout.split('\n')[0]).toBe(
    "schedule lifeboat-drill-sched created: restoreDrill of runbook sched, cron '@daily' (UTC), a run still going when the next is due is skipped",
  );
  const workflowId = await trigger('sched', 'drill');
  const handle = client.workflow.getHandle(workflowId);
  await handle.result();
  const runId = (await handle.describe()).runId;

  const ev = await lifeboat('evidence', '--runbook', 'sched');
  expect(ev.code).toBe(0);
  expect(ev.stdout.split('\n')[0]).toMatch(
    /^evidence of cluster sched in file:\/\/\S+: 1 record \(1 drill, 0 recoveries\)$/,
  );
  // RPO is "-" when no commit lies between the backup and the random target (nothing replayed to measure it by).
  expect(ev.stdout).toMatch(
    new RegExp(
      `^drill +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +time \\S+ +\\d+\\.\\d s +(\\d+\\.\\d s|-) +\\d+ +passed +${runId}$`,
      'm',
    ),
  );
  const drill = await listed('lifeboat-drill-sched');
  expect(drill).toMatchObject({
    kind: 'drill',
    runbook: 'sched',
    cron: '@daily',
    lastResult: { workflowId, status: 'COMPLETED' },
  });
  expect(drill.nextRuns[0]).toMatch(/T00:00:00\.000Z$/);
});

it('runs a drill from the CLI and prints its figures; the report draws both drills', async () => {
  const r = await lifeboat('drill', '--runbook', 'sched');
  expect(r.code).toBe(0);
  const workflowId =
    /^started restoreDrill (drill-sched-\d{8}T\d{6}Z) \(runbook sched\); waiting for a worker on task queue lifeboat$/m.exec(
      r.stderr,
    )?.[1];
  expect(workflowId).toBeDefined();
  const runId = (await client.workflow.getHandle(workflowId!).describe()).runId;
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^drill ${workflowId} passed: backup \\d{8}T\\d{6}Z to time \\S+Z$`));
  expect(lines[1]).toMatch(
    /^RTO \d+\.\d s \(objective 2700 s, met\): preflight \d+\.\d s, restore \d+\.\d s, replay \d+\.\d s, invariants \d+\.\d s, promote \d+\.\d s, smoke \d+\.\d s$/,
  );
  expect(lines[2]).toMatch(/^RPO (\d+\.\d s \(objective 300 s, met\)|- \(objective 300 s\))$/);
  expect(lines[3]).toMatch(/^WAL: \d+ segments? replayed to [0-9A-F]+\/[0-9A-F]+( \(\S+\))?$/);
  expect(lines[4]).toMatch(/^invariants: \d+ passed, 0 failed$/);
  expect(lines[lines.length - 1]).toBe(`evidence: sched/evidence/${runId}.json`);

  const ev = await lifeboat('evidence', '--runbook', 'sched', '--json');
  const records = (JSON.parse(ev.stdout) as { records: Array<{ runId: string; kind: string }> }).records;
  expect(records).toHaveLength(2);
  expect(records[1]).toMatchObject({ runId, kind: 'drill' });

  const out = path.join(runbooksDir, 'report.html');
  const rep = await lifeboat('report', '--runbook', 'sched', '--out', out);
  expect(rep.stdout).toBe(`report of cluster sched written to ${out}: 2 drills, 0 recoveries\n`);
  const rto = /<svg id="chart-rto"[\s\S]*?<\/svg>/.exec(readFileSync(out, 'utf8'))![0];
  expect(rto.match(/<circle class="point"/g)).toHaveLength(2);
});

it('prints the figures and the reason of a drill that fails, and exits 1', async () => {
  // A target an hour ahead: the archive ends before it, so replay cannot reach it.
  const future = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const r = await lifeboat('drill', '--runbook', 'sched', '--to-time', future);
  expect(r.code).toBe(1);
  const workflowId = /^started restoreDrill (drill-sched-\d{8}T\d{6}Z) /m.exec(r.stderr)?.[1];
  expect(workflowId).toBeDefined();
  const runId = (await client.workflow.getHandle(workflowId!).describe()).runId;
  // The figures on stdout, from the evidence the failed drill wrote; the reason on stderr.
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^drill ${workflowId} failed: backup \\S+ to time ${future}$`));
  expect(lines[1]).toMatch(/^RTO (\d+\.\d s|-) \(objective 2700 s(, met|, MISSED)?\)/);
  expect(lines.some((l) => /^failed step [a-z-]+: [A-Z_]+: /.test(l))).toBe(true);
  expect(lines[lines.length - 1]).toBe(`evidence: sched/evidence/${runId}.json`);
  expect(r.stderr).toMatch(
    new RegExp(`^lifeboat: restoreDrill ${workflowId} failed: restore drill of sched failed `, 'm'),
  );
  expect(r.stderr).toContain(`HINT: the evidence record is ${cluster.repoUrl}/sched/evidence/${runId}.json\n`);
  const ev = JSON.parse((await lifeboat('evidence', '--runbook', 'sched', '--json')).stdout) as {
    records: Array<{ runId: string; validationStatus: string }>;
  };
  expect(ev.records.find((x) => x.runId === runId)?.validationStatus).toBe('failed');
});

it('posts backup-failed when a scheduled backup fails, and a webhook that is down does not hide the backup error', async () => {
  await lifeboat('backup', '--runbook', 'sched-broken', '--schedule', '0 2 * * *');
  const failedRun = async () => {
    const workflowId = await trigger('sched-broken', 'backup');
    const err = await client.workflow
      .getHandle(workflowId)
      .result()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = ((err as WorkflowFailedError).cause as ActivityFailure).cause as ApplicationFailure;
    expect(cause.type).toBe('SECRET_MISSING');
    return workflowId;
  };
  const delivered = await failedRun();
  const post = await webhook.waitFor((p) => p.body?.workflowId === delivered);
  expect(post.body).toMatchObject({
    kind: 'backup-failed',
    runbook: 'sched-broken',
    text: `Lifeboat: base backup of sched-broken failed on host ${host} (SECRET_MISSING): environment variable LIFEBOAT_SCHEDULES_TEST_UNSET is not set in this process`,
    details: { type: 'SECRET_MISSING', host },
  });
  expect((await listed('lifeboat-backup-sched-broken')).lastResult).toMatchObject({
    workflowId: delivered,
    status: 'FAILED',
  });

  // The webhook answers 500 to every attempt: the run still fails with SECRET_MISSING, after three tries.
  const seen = webhook.received.length;
  webhook.failNext(3);
  const undelivered = await failedRun();
  expect(webhook.received.slice(seen).map((p) => [p.status, p.body?.workflowId])).toEqual([
    [500, undelivered],
    [500, undelivered],
    [500, undelivered],
  ]);
});

it('pauses, unpauses and deletes through the CLI, as the server then describes it', async () => {
  const paused = await lifeboat('schedules', 'pause', 'sched', 'drill', '--note', 'database upgrade tonight');
  expect(paused.code).toBe(0);
  expect(paused.stdout.split('\n')[0]).toBe(
    'schedule lifeboat-drill-sched paused: no restoreDrill starts until lifeboat schedules unpause sched drill',
  );
  expect(paused.stdout).toMatch(/^lifeboat-drill-sched +drill +sched +@daily +paused +- +/m);
  let d = await client.schedule.getHandle('lifeboat-drill-sched').describe();
  expect(d.state).toMatchObject({ paused: true, note: 'database upgrade tonight' });

  expect((await lifeboat('schedules', 'unpause', 'lifeboat-drill-sched')).stdout.split('\n')[0]).toBe(
    'schedule lifeboat-drill-sched unpaused',
  );
  d = await client.schedule.getHandle('lifeboat-drill-sched').describe();
  expect(d.state.paused).toBe(false);

  for (const id of ['lifeboat-drill-sched', 'lifeboat-backup-sched', 'lifeboat-backup-sched-broken']) {
    const r = await lifeboat('schedules', 'delete', id);
    expect(r.stdout).toBe(`schedule ${id} deleted; runs it started are not touched\n`);
    await expect(client.schedule.getHandle(id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
  }
  const gone = await lifeboat('schedules', 'pause', 'sched', 'drill');
  expect(gone.code).toBe(2);
  expect(gone.stderr).toBe(
    `lifeboat: no schedule "lifeboat-drill-sched" in namespace ${namespace}\n` +
      'HINT: lifeboat schedules lists the schedules Lifeboat made\n' +
      'HINT: create one with lifeboat drill --runbook <name> --schedule <cron> (or lifeboat backup ...)\n',
  );
});
