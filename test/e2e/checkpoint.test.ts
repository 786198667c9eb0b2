// migrationCheckpoint through the real binaries: `lifeboat worker` and
// `lifeboat checkpoint`, in a Temporal namespace of this file's own (the CLI
// uses the `lifeboat` task queue, which other test files' workers poll in
// the default namespace). A checkpoint taken before a destructive statement
// is recovered to by name with recoverToPointInTime and gives back the rows
// from before it; a checkpoint is refused, with the reason and nothing
// written to the primary, when no verified backup exists or the archiver fails.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection, type WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { requireTool } from '../../src/tools';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner, startCliWorker } from '../harness/cli';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { postgresTempDir, switchAndWaitArchived, stopRestoredCopy } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const exec = promisify(execFile);
const runbooksDir = postgresTempDir('runbooks');
const namespace = `lifeboat-checkpoint-${process.pid}`;
const host = `ckpt${process.pid}`;
const cleanups: Cleanups = [];
let cluster: TestCluster;
let client: TemporalClient;

const env = () => ({
  ...process.env,
  LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
  TEMPORAL_ADDRESS: temporalAddress(),
  TEMPORAL_NAMESPACE: namespace,
});

const lifeboat = cliRunner(env);

beforeAll(async () => {
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
  // A new namespace reaches every part of the server after a moment.
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
    name: 'ckpt',
    kind: 'file',
    runbooksDir,
    host,
    runbook: { approvers: ['alice'] },
  });
  cleanups.push(() => cluster.stop());
  // approve-resume off: the recovery below needs two decisions, not three.
  const yaml = readFileSync(cluster.runbookFile, 'utf8');
  expect(yaml).toMatch(/^ {2}approve-promote: .*$/m);
  writeFileSync(cluster.runbookFile, yaml.replace(/^( {2}approve-promote: .*)$/m, '$1\n  approve-resume: false'));
  await cluster.pg.query(DEMO_SCHEMA_SQL);
  await cluster.pg.query(`create role app login; grant all on all tables in schema public to app`);
  await cluster.pg.query(`create table accounts (id int primary key, balance int not null)`);
  await cluster.pg.query(`insert into accounts select g, 100 from generate_series(1, 500) g`);

  const worker = await startCliWorker(host, env());
  cleanups.push(() => worker.stop());
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** The activities a checkpoint run scheduled, from its history. */
async function activitiesRun(workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return history.events!.flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType!.name!] : [],
  );
}

const startedId = (stderr: string) => /^started migrationCheckpoint (checkpoint-ckpt-\d{8}T\d{6}Z) /m.exec(stderr)?.[1];

it('refuses a checkpoint while no verified base backup exists, saying so, and writes nothing to the primary', async () => {
  const r = await lifeboat('checkpoint', '--runbook', 'ckpt', '--label', 'too-early');
  expect(r.code).toBe(1);
  const id = startedId(r.stderr);
  expect(id).toBeDefined();
  expect(r.stderr).toContain(
    `lifeboat: migrationCheckpoint ${id} failed: no checkpoint "too-early" for runbook ckpt: a recovery to it could not be trusted: ` +
      `no verified base backup of cluster ckpt in ${cluster.repoUrl}: a recovery to the checkpoint would have nothing to start from\n` +
      'HINT: take one first: lifeboat backup --runbook ckpt\n' +
      'HINT: lifeboat backups --runbook ckpt lists what is there\n' +
      'HINT: nothing was written to the primary; fix the above (lifeboat check --runbook ckpt shows the same) and run the checkpoint again\n' +
      'HINT: do not start the risky change before a checkpoint has been taken\n',
  );
  expect(await activitiesRun(id!)).toEqual(['checkCheckpoint']);
});

it('takes a checkpoint before a destructive statement, and recovering to its name gives back the rows from before it', async () => {
  const backup = await lifeboat('backup', '--runbook', 'ckpt', '--json');
  expect(backup.code).toBe(0);
  const backupId = (JSON.parse(backup.stdout) as { backup: { backupId: string } }).backup.backupId;
  await cluster.pg.query(`update accounts set balance = balance + id`);
  const [{ sum: before } = { sum: '' }] = await cluster.pg.query<{ sum: string }>(
    'select sum(balance)::text as sum from accounts',
  );

  const r = await lifeboat('checkpoint', '--runbook', 'ckpt', '--label', 'before-migration-0042');
  expect(r.stderr).toMatch(
    /^started migrationCheckpoint checkpoint-ckpt-\d{8}T\d{6}Z \(runbook ckpt, label before-migration-0042\); waiting for a worker on task queue lifeboat$/m,
  );
  expect(r.code).toBe(0);
  const m =
    /^checkpoint "before-migration-0042" taken: restore point at LSN ([0-9A-F]+\/[0-9A-F]+) \((\d{4}-\d\d-\d\dT[\d:.]+Z)\), in segment ([0-9A-F]{24}), archived; a recovery to it starts from base backup (\S+)\n/.exec(
      r.stdout,
    );
  expect(m).not.toBeNull();
  const [, lsn, , segment, fromBackup] = m!;
  expect(fromBackup).toBe(backupId);
  expect(r.stdout.slice(m![0].length)).toBe(
    'to recover to it (target { "name": "before-migration-0042" }):\n' +
      '  lifeboat recover --runbook ckpt --to-name before-migration-0042\n' +
      '  or in the Temporal UI: Start Workflow, type recoverToPointInTime, task queue lifeboat, input:\n' +
      '  {"runbook":"ckpt","target":{"name":"before-migration-0042"}}\n',
  );
  // The segment holding the point is the one PostgreSQL names for its LSN, and it is in the repository already.
  const [{ walfile } = { walfile: '' }] = await cluster.pg.query<{ walfile: string }>(
    `select pg_walfile_name($1::pg_lsn) as walfile`,
    [lsn],
  );
  expect(segment).toBe(walfile);
  expect(existsSync(path.join(cluster.repoUrl.replace('file://', ''), 'ckpt', 'wal', `${segment}.zst`))).toBe(true);

  // The migration goes wrong: a later change, then the destructive statement.
  await cluster.pg.query(`update accounts set balance = 0 where id <= 10`);
  await cluster.pg.query(`delete from accounts where id > 250`);
  await switchAndWaitArchived(cluster.pg);

  const wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue: 'lifeboat',
    workflowId: `recover-ckpt-${Date.now().toString(36)}`,
    args: [{ runbook: 'ckpt', target: { name: 'before-migration-0042' }, reason: 'migration 0042 deleted accounts' }],
  });
  cleanups.push(() => stopRestored());
  await waitStep(wf, 'approve-fence', 'awaiting-approval');
  await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });
  const paused = await waitStep(wf, 'approve-promote', 'awaiting-approval');
  expect(paused.replay?.paused).toBe(true);
  await wf.executeUpdate(decideUpdate, {
    args: [{ step: 'approve-promote', decision: 'approve', by: 'alice', comment: 'accounts are back' }],
  });
  const evidence = (await wf.result()) as Evidence;
  expect(evidence.validationStatus).toBe('passed');
  expect(evidence.target).toEqual({ name: 'before-migration-0042' });
  expect(evidence.backupId).toBe(backupId);
  expect(evidence.steps.find((s) => s.id === 'approve-resume')?.state).toBe('skipped');

  // On the promoted copy: every row from before the checkpoint, none of the changes after it.
  const runbook = await loadRunbook('ckpt', runbooksDir);
  const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: string; sum: string; zero: string }>(
      'select count(*)::text as n, sum(balance)::text as sum, count(*) filter (where balance = 0)::text as zero from accounts',
    );
    expect(rows[0]).toEqual({ n: '500', sum: before, zero: '0' });
  } finally {
    await c.end();
  }

  // The recovery is in the history, and the report shows who approved what.
  const ev = await lifeboat('evidence', '--runbook', 'ckpt');
  expect(ev.stdout).toMatch(
    new RegExp(
      `^recovery +\\S+ \\S+Z +restore point "before-migration-0042" +\\d+\\.\\d s +- +\\d+ +passed +${evidence.runId}$`,
      'm',
    ),
  );
  const out = path.join(runbooksDir, 'report.html');
  expect((await lifeboat('report', '--runbook', 'ckpt', '--out', out)).code).toBe(0);
  const approvals = /<table id="approvals">[\s\S]*?<\/table>/.exec(readFileSync(out, 'utf8'))?.[0] ?? '';
  expect(
    [
      ...approvals.matchAll(
        /<tr><td>([^<]*)<\/td><td>([^<]*)<\/td><td>([^<]*)<\/td><td class="when">[^<]+<\/td><td>([^<]*)<\/td><\/tr>/g,
      ),
    ].map((m) => m.slice(1)),
  ).toEqual([
    ['alice', 'approve-fence', 'approve', ''],
    ['alice', 'approve-promote', 'approve', 'accounts are back'],
  ]);
});

it('refuses a checkpoint while the archiver is failing, with the failure and the hints', async () => {
  // The recovery above promoted its copy, and the primary overlay made it the
  // cluster's primary: the checkpoint goes there, so its archiver is the one to break.
  const runbook = await loadRunbook('ckpt', runbooksDir);
  const primary = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await primary.connect();
  cleanups.push(() => primary.end());
  await primary.query(`alter system set archive_command = 'false'`);
  await primary.query('select pg_reload_conf()');
  cleanups.push(async () => {
    await primary.query('alter system reset archive_command');
    await primary.query('select pg_reload_conf()');
  });
  // pg_reload_conf() only signals: the archiver may still archive the next
  // segment with the old command. So, while no failure shows, another segment
  // is written and switched each second until one meets the failing command,
  // rather than hoping the first does.
  let account = 10_000;
  let switchedAt = 0;
  const nextSegment = async () => {
    account += 1;
    await primary.query(`insert into accounts values (${account}, 1)`);
    await primary.query('select pg_switch_wal()');
    switchedAt = Date.now();
  };
  await nextSegment();
  await waitFor(
    'the archiver to fail',
    async () => {
      const {
        rows: [s],
      } = await primary.query<{ failing: boolean }>(
        'select failed_count > 0 and (last_archived_time is null or last_failed_time > last_archived_time) as failing from pg_stat_archiver',
      );
      if (s?.failing) return true;
      if (Date.now() - switchedAt >= 1000) await nextSegment();
      return undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );

  const r = await lifeboat('checkpoint', '--runbook', 'ckpt', '--label', 'while-failing');
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(
    new RegExp(
      `^primary re-pointed to 127\\.0\\.0\\.1:${runbook.restore.port} \\(timeline 2\\) by recovery recover-ckpt-`,
    ),
  );
  const id = startedId(r.stderr);
  expect(r.stderr).toMatch(
    new RegExp(
      `^lifeboat: migrationCheckpoint ${id} failed: no checkpoint "while-failing" for runbook ckpt: a recovery to it could not be trusted: ` +
        'archiver failing: \\d+ failures?, last [0-9A-F]{24} at \\S+\\n' +
        'HINT: the last success was (?:[0-9A-F]{24}|[0-9A-F]{8}\\.history) at \\S+\\n' +
        'HINT: PostgreSQL keeps retrying; meanwhile WAL piles up in pg_wal, and a full disk stops the primary\\n' +
        'HINT: the PostgreSQL log says why: look for "archive command failed" and the lifeboat archive-push lines before it\\n' +
        'HINT: nothing was written to the primary; fix the above \\(lifeboat check --runbook ckpt shows the same\\) and run the checkpoint again\\n' +
        'HINT: do not start the risky change before a checkpoint has been taken\\n',
      'm',
    ),
  );
  expect(await activitiesRun(id!)).toEqual(['checkCheckpoint']);
});

function waitStep(wf: WorkflowHandle, step: string, state: string): Promise<RecoveryStatus> {
  return waitFor(
    `${step} to be ${state}`,
    async () => {
      const st = await wf.query(statusQuery);
      const failed = st.steps.find((x) => x.state === 'failed');
      if (failed) throw new Error(`${failed.id} failed: ${failed.error?.type} ${failed.error?.message}`);
      return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
    },
    { timeoutMs: 150_000, intervalMs: 200 },
  );
}

async function stopRestored(): Promise<void> {
  const runbook = await loadRunbook('ckpt', runbooksDir);
  await stopRestoredCopy(runbook);
}
