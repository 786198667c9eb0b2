// A DBA's own cluster, not the demo (issue 11): database bank, schema
// ledger, an application role teller behind pgbouncer, a Redis cache, an
// s3:// repository on MinIO, and a runbook role `lifeboat` that is not a
// superuser, created by the superuser running exactly what the built
// `lifeboat grants --runbook` printed (plus its password and pg_hba lines:
// test/harness/own-cluster.ts). Then, only as that role, through the real
// binaries (`lifeboat worker`, `backup`, `checkpoint`, `recover`, `approve`,
// `drill`) in a Temporal namespace of this file's own: a base backup, a
// checkpoint, a bad DELETE, a side-by-side recovery to the checkpoint with
// approvals that gives the ledger back exactly (rows, sum, md5 over every row
// by key) through pgbouncer, and a drill to the end of the archive, smoke
// write included. No run may need --override, and no activity may fail even
// once: a privilege discovered mid-run is what this test exists to catch.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection, type WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { statusQuery } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { grantsSql } from '../../src/privileges/grants';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { requireTool } from '../../src/tools';
import { promoteRestored, replayWal, restoreBaseBackup } from '../../activities/restore';
import { smokeWrite, teardownDrill } from '../../activities/drill';
import { activity, failureOf } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { cliRunner, startCliWorker } from '../harness/cli';
import {
  BARE_ROLE,
  LIFEBOAT_ROLE,
  ledgerFingerprint,
  startOwnCluster,
  transfersSql,
  type LedgerFingerprint,
  type OwnCluster,
} from '../harness/own-cluster';
import { stopRestoredCopy } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { temporalAddress, useS3Env } from '../harness/services';

const exec = promisify(execFile);
const namespace = `lifeboat-own-${process.pid}`;
const cleanups: Cleanups = [];
let oc: OwnCluster;
let runbook: Runbook;
let client: TemporalClient;

const env = () => ({
  ...process.env,
  ...oc.env,
  LIFEBOAT_RUNBOOKS_DIR: oc.runbooksDir,
  TEMPORAL_ADDRESS: temporalAddress(),
  TEMPORAL_NAMESPACE: namespace,
});
const lifeboat = cliRunner(env);

beforeAll(async () => {
  useS3Env();
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
  oc = await startOwnCluster('ownledger', cleanups);
  runbook = await loadRunbook(oc.name, oc.runbooksDir);
  // A copy a run leaves running (the promoted one) is this test's to stop.
  cleanups.push(() => stopRestoredCopy(runbook));
  // The real worker, for the runbook's host and the lifeboat queue of this namespace.
  const worker = await startCliWorker(oc.host, env());
  cleanups.push(() => worker.stop());
}, 180_000);

afterAll(async () => {
  await runCleanups(cleanups);
});

/** Every activity of a run ran once and succeeded: nothing failed, nothing was retried (a grant found missing mid-run would show here). */
async function expectNoActivityFailed(workflowId: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const failed = events.flatMap((e) => {
    const f = e.activityTaskFailedEventAttributes?.failure ?? e.activityTaskTimedOutEventAttributes?.failure;
    return f ? [f.message ?? ''] : [];
  });
  const retried = events.flatMap((e) => {
    const s = e.activityTaskStartedEventAttributes;
    return s && (s.attempt ?? 1) > 1 ? [`attempt ${s.attempt}: ${s.lastFailure?.message ?? ''}`] : [];
  });
  expect({ failed, retried }).toEqual({ failed: [], retried: [] });
}

function waitStep(wf: WorkflowHandle, step: string, state: string): Promise<RecoveryStatus> {
  return waitFor(
    `${step} to be ${state}`,
    async () => {
      const st = await wf.query(statusQuery);
      const failed = st.steps.find((x) => x.state === 'failed');
      if (failed) return { failed } as unknown as RecoveryStatus;
      return st.steps.find((x) => x.id === step)?.state === state ? st : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 200 },
  ).then((st) => {
    const failed = (st as unknown as { failed?: RecoveryStatus['steps'][number] }).failed;
    if (failed)
      throw new Error(
        `${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
      );
    return st;
  });
}

let checkpoint: LedgerFingerprint;
let backupId = '';

it('creates the runbook role from exactly what `lifeboat grants` prints: not a superuser, owner of nothing in the ledger', async () => {
  const grants = await lifeboat('grants', '--runbook', oc.name);
  expect(grants.code).toBe(0);
  // stdout is the SQL and nothing else (how to run it goes to stderr): what the DBA pipes into psql.
  expect(grants.stdout).toBe(grantsSql(runbook));
  const applied = await oc.applyAsSuperuser(grants.stdout);
  console.log(
    `own cluster: lifeboat grants printed ${grants.stdout.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('--')).length} lines of SQL; psql said ${applied.split('\n').filter(Boolean).length} lines`,
  );
  const [role] = await oc.query<{ rolsuper: boolean; rolbypassrls: boolean; rolcreatedb: boolean }>(
    `select rolsuper, rolbypassrls, rolcreatedb from pg_roles where rolname = $1`,
    [LIFEBOAT_ROLE],
  );
  expect(role).toEqual({ rolsuper: false, rolbypassrls: false, rolcreatedb: false });
  // The role logs in with its password, and it is not the owner of anything of the ledger.
  const [{ owners } = { owners: '' }] = await oc.query<{ owners: string }>(
    `select string_agg(distinct pg_get_userbyid(relowner), ',') as owners from pg_class where relnamespace = 'ledger'::regnamespace`,
  );
  expect(owners).toBe('postgres');
  const c = new Client(oc.connection(LIFEBOAT_ROLE));
  await c.connect();
  expect(
    (
      await c.query<{ u: string; s: boolean }>(
        `select current_user as u, current_setting('is_superuser')::boolean as s`,
      )
    ).rows[0],
  ).toEqual({ u: LIFEBOAT_ROLE, s: false });
  await c.end();
});

it(
  'as that role: a base backup, a checkpoint, a bad DELETE, then a side-by-side recovery to the checkpoint gives the ledger back exactly, through pgbouncer, with its evidence',
  { timeout: 600_000 },
  async () => {
    const backup = await lifeboat('backup', '--runbook', oc.name, '--json');
    expect(backup, backup.stderr).toMatchObject({ code: 0 });
    backupId = (JSON.parse(backup.stdout) as { backup: { backupId: string } }).backup.backupId;
    // Every piece is there, on the primary and in the backup's catalog, as the role itself sees it.
    const doctor = await lifeboat('doctor', '--runbook', oc.name);
    expect(doctor, doctor.stdout + doctor.stderr).toMatchObject({ code: 0 });
    // After the backup: more transfers, then the checkpoint with nothing writing in between.
    await oc.query(transfersSql(2001, 180));
    checkpoint = await ledgerFingerprint(oc.connection('postgres'));
    const label = 'before-migration-7';
    const taken = await lifeboat('checkpoint', '--runbook', oc.name, '--label', label);
    expect(taken, taken.stderr).toMatchObject({ code: 0 });
    expect(taken.stdout).toMatch(new RegExp(`^checkpoint "${label}" taken: restore point at LSN `));
    // After the checkpoint: more transfers, then the migration's bad statement.
    await oc.query(transfersSql(2181, 60));
    await oc.query(`delete from ledger.entries where account_id % 5 = 0`);
    const broken = await ledgerFingerprint(oc.connection('postgres'));
    expect(broken.md5).not.toBe(checkpoint.md5);
    // The application cached entries; a session key is not the runbook's to touch.
    const cache = createClient({ url: oc.redis.url });
    await cache.connect();
    cleanups.push(() => cache.quit());
    for (let i = 1; i <= 20; i++) await cache.set(`ledger:account:${i}`, 'stale');
    await cache.set('session:teller-1', 'keep');

    const t0 = Date.now();
    const started = await lifeboat(
      'recover',
      '--runbook',
      oc.name,
      '--to-name',
      label,
      '--incident',
      'INC-7',
      '--reason',
      'bad DELETE on ledger.entries',
      '--json',
    );
    expect(started, started.stderr).toMatchObject({ code: 0 });
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    const wf = client.workflow.getHandle(workflowId);
    const approve = async (step: string, as: string) => {
      const r = await lifeboat('approve', workflowId, step, '--as', as);
      expect(r, `approve ${step} as ${as}`).toMatchObject({ code: 0 });
    };

    await waitStep(wf, 'approve-fence', 'awaiting-approval');
    await approve('approve-fence', 'alice');
    const paused = await waitStep(wf, 'approve-promote', 'awaiting-approval');
    // The old primary is fenced by the non-superuser role (ALTER ROLE teller, its sessions ended): teller cannot book there.
    const oldTeller = new Client(oc.connection('teller'));
    await oldTeller.connect();
    await expect(oldTeller.query(transfersSql(9001, 1))).rejects.toThrow(
      'cannot execute INSERT in a read-only transaction',
    );
    await oldTeller.end();
    expect(
      await oc.query<{ gate_name: string; enabled: boolean }>(
        'select gate_name, enabled from ledger.gate order by gate_name',
      ),
    ).toEqual([
      { gate_name: 'batch_jobs', enabled: false },
      { gate_name: 'writers', enabled: false },
    ]);
    // Every invariant passed on the paused copy as the non-superuser role, built-in ones included (sequences).
    expect(paused.invariants?.filter((i) => !i.passed)).toEqual([]);
    expect(paused.invariants?.map((i) => i.name)).toEqual(
      expect.arrayContaining(['the ledger balances', 'every transfer has two legs', 'no entry without its account']),
    );
    // The identity of accounts and the bigserial of entries were read on the copy (SELECT on sequences, from the grants).
    expect(paused.invariants?.find((i) => i.name === 'built-in: sequences ahead of their columns')).toMatchObject({
      passed: true,
      value: '0',
    });
    await approve('approve-promote', 'alice');
    await approve('approve-promote', 'bob');
    await waitStep(wf, 'approve-resume', 'awaiting-approval');
    await approve('approve-resume', 'bob');
    const evidence = (await wf.result()) as Evidence;
    const recoverySeconds = (Date.now() - t0) / 1000;

    // The evidence: passed, no override, the checkpoint's backup.
    expect(evidence).toMatchObject({
      kind: 'recovery',
      runbook: oc.name,
      target: { name: label },
      backupId,
      incident: 'INC-7',
      validationStatus: 'passed',
    });
    expect(evidence.invariantOverride).toBeUndefined();
    // Preflight checked the role's privileges on the primary and in the backup's recorded catalog, and warned of nothing.
    console.log(`own cluster recovery notes: ${JSON.stringify(evidence.notes)}`);
    expect(evidence.notes.filter((n) => /privilege|grant/i.test(n))).toEqual([]);
    expect(evidence.steps.filter((s) => s.state === 'failed')).toEqual([]);
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}`)).toEqual([
      'approve-fence:alice',
      'approve-promote:alice',
      'approve-promote:bob',
      'approve-resume:bob',
    ]);
    const repo = await openRepository(oc.repoUrl, runbook.repository);
    const stored = await repo.get(keys.evidence(oc.name, evidence.runId));
    expect(JSON.parse(stored!.body.toString())).toEqual(evidence);
    await expectNoActivityFailed(workflowId);

    // Through pgbouncer, as the application: the ledger exactly as at the checkpoint, on the promoted copy, writable.
    const viaPgbouncer = { ...oc.connection('teller'), port: oc.pgbouncer.port };
    expect(await ledgerFingerprint(viaPgbouncer)).toEqual(checkpoint);
    const app = new Client(viaPgbouncer);
    await app.connect();
    try {
      expect((await app.query<{ port: number }>('select inet_server_port() as port')).rows[0]!.port).toBe(
        runbook.restore.port,
      );
      expect(
        (
          await app.query<{ gate_name: string; enabled: boolean }>(
            'select gate_name, enabled from ledger.gate order by gate_name',
          )
        ).rows,
      ).toEqual([
        { gate_name: 'batch_jobs', enabled: true },
        { gate_name: 'writers', enabled: true },
      ]);
      // The next transfer books on the promoted copy (the identity and the sequence go on from where they were).
      await app.query(transfersSql(5001, 1));
    } finally {
      await app.end();
    }
    expect(await cache.keys('ledger:*')).toEqual([]);
    expect(await cache.get('session:teller-1')).toBe('keep');
    console.log(
      `own cluster recovery: ${recoverySeconds.toFixed(1)} s from start to result (machine time, approvals given as soon as asked); ` +
        `evidence RTO ${evidence.rtoObservedSeconds} s, ${evidence.walSegmentsReplayed} segments; ledger ${checkpoint.entries} entries, md5 ${checkpoint.md5}`,
    );
  },
);

it(
  'as that role: a restore drill to the end of the archive passes, the smoke write in the schema grants made for it',
  { timeout: 600_000 },
  async () => {
    // The promoted copy is the new primary: its newest segment is archived, so the end of the archive holds the transfer above.
    const copy = new Client({ ...oc.connection('postgres'), port: runbook.restore.port });
    await copy.connect();
    let walfile = '';
    try {
      walfile = (await copy.query<{ w: string }>('select pg_walfile_name(pg_switch_wal()) as w')).rows[0]!.w;
      await waitFor(
        `the promoted copy to archive ${walfile}`,
        async () => {
          const { rows } = await copy.query<{ last: string | null }>(
            'select last_archived_wal as last from pg_stat_archiver',
          );
          return rows[0]?.last && rows[0].last >= walfile ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
    } finally {
      await copy.end();
    }
    const t0 = Date.now();
    const drill = await lifeboat('drill', '--runbook', oc.name, '--to-latest', '--json');
    const drillSeconds = (Date.now() - t0) / 1000;
    expect(drill, drill.stderr).toMatchObject({ code: 0 });
    const { workflowId, evidence } = JSON.parse(drill.stdout) as { workflowId: string; evidence: Evidence };
    expect(evidence).toMatchObject({
      kind: 'drill',
      runbook: oc.name,
      target: { latest: true },
      validationStatus: 'passed',
    });
    expect(evidence.invariants.filter((i) => !i.passed)).toEqual([]);
    expect(evidence.invariants.find((i) => i.name === 'built-in: sequences ahead of their columns')).toMatchObject({
      passed: true,
      value: '0',
    });
    expect(evidence.notes.filter((n) => /privilege|grant/i.test(n))).toEqual([]);
    expect(evidence.notes.filter((n) => n.startsWith('smoke write:'))).toEqual([
      expect.stringMatching(new RegExp(`^smoke write: row 1 of ${LIFEBOAT_ROLE}\\.lifeboat_drill_smoke committed at `)),
    ]);
    await expectNoActivityFailed(workflowId);
    console.log(
      `own cluster drill: ${drillSeconds.toFixed(1)} s for lifeboat drill --to-latest (machine time); evidence RTO ${evidence.rtoObservedSeconds} s ${JSON.stringify(evidence.rtoPhases)}, ${evidence.walSegmentsReplayed} segments`,
    );
  },
);

it(
  'for a role the grants never reached (its backup holds no grant for it): the copy is still promoted (pg_ctl, no grant), and the pause at the end of the archive and the smoke write fail PRIVILEGE_MISSING with the SQL that fixes them',
  { timeout: 300_000 },
  async () => {
    Object.assign(process.env, oc.env, { LIFEBOAT_RUNBOOKS_DIR: oc.runbooksDir });
    const bare = await loadRunbook(oc.bareName, oc.runbooksDir);
    const drill = bare.drill!;
    // The cluster's one backup, taken by the granted role before: the bare role is in its catalog with no grant.
    expect(backupId).toMatch(/^\d{8}T\d{6}Z$/);
    const restore = (workflowId: string) =>
      activity(restoreBaseBackup, {
        runbook: oc.bareName,
        instance: 'drill',
        backupId,
        mode: 'side-by-side',
        workflowId,
        runId: `${workflowId}-run`,
      });
    const teardown = (workflowId: string) => activity(teardownDrill, { runbook: oc.bareName, workflowId });

    // A named target pauses by itself; promotion needs no grant; the smoke write finds no schema to create in.
    const named = `bare-named-${process.pid}`;
    cleanups.push(() => teardown(named));
    await restore(named);
    await activity(replayWal, {
      runbook: oc.bareName,
      instance: 'drill',
      target: { name: 'before-migration-7' },
      workflowId: named,
      runId: `${named}-run`,
    });
    const { result: promoted } = await activity(promoteRestored, {
      runbook: oc.bareName,
      instance: 'drill',
      workflowId: named,
      runId: `${named}-run`,
    });
    expect(promoted.timeline).toBeGreaterThan(1);
    const smoke = await failureOf(activity(smokeWrite, { runbook: oc.bareName, workflowId: named }));
    expect({ type: smoke.type, nonRetryable: smoke.nonRetryable, message: smoke.message }).toEqual({
      type: 'PRIVILEGE_MISSING',
      nonRetryable: true,
      message:
        `smoke-write: role ${BARE_ROLE} may create a table in no schema of its search_path ("$user", public: public (no CREATE)) in database bank of the drill copy at 127.0.0.1:${drill.port} (${drill.dataDir}, database bank)\n` +
        `HINT: the copy's catalog is the backup's, so the fix goes on the primary, in database bank: CREATE SCHEMA IF NOT EXISTS "${BARE_ROLE}" AUTHORIZATION "${BARE_ROLE}";\n` +
        `HINT: then take a new base backup (lifeboat backup --runbook ${oc.bareName}): drills restore backups taken before the grant without it\n` +
        `HINT: lifeboat grants --runbook ${oc.bareName} prints this with every other grant the role needs`,
    });
    expect((await teardown(named)).result).toMatchObject({ removed: drill.dataDir });

    // To the end of the archive: replay must be paused there by pg_wal_replay_pause(), which only a grant allows.
    const latest = `bare-latest-${process.pid}`;
    cleanups.push(() => teardown(latest));
    await restore(latest);
    const refused = await failureOf(
      activity(replayWal, {
        runbook: oc.bareName,
        instance: 'drill',
        target: { latest: true },
        workflowId: latest,
        runId: `${latest}-run`,
      }),
    );
    const log = `${drill.dataDir}.lifeboat-postgres.log`;
    expect({ type: refused.type, nonRetryable: refused.nonRetryable, message: refused.message }).toEqual({
      type: 'PRIVILEGE_MISSING',
      nonRetryable: true,
      message:
        `replay-wal: role ${BARE_ROLE} may not call pg_wal_replay_pause() in database bank of the copy in ${drill.dataDir} (permission denied for function pg_wal_replay_pause); replay to the end of the archive (latest) cannot stop there\n` +
        `HINT: the copy's catalog is the backup's, so the grant goes on the primary, in database bank: GRANT EXECUTE ON FUNCTION pg_catalog.pg_wal_replay_pause() TO "${BARE_ROLE}";\n` +
        `HINT: then take a new base backup (lifeboat backup --runbook ${oc.bareName}); lifeboat grants --runbook ${oc.bareName} prints every grant the role needs\n` +
        'HINT: or recover to a named target instead (--to-time, --to-name, --to-lsn): those pause without this function\n' +
        `HINT: nothing was promoted; PostgreSQL in ${drill.dataDir} is still replaying (server log: ${log})`,
    });
    expect((await teardown(latest)).result).toMatchObject({ removed: drill.dataDir });
  },
);
