// Fault injection: a corrupt WAL segment in the repository during a real
// recoverToPointInTime (issue 10, point 4: replay-wal failed as a retryable
// TOOL_FAILED and Temporal restarted PostgreSQL onto the same bad segment
// five times, 104 s, before the operator saw anything).
//
// One archived segment between the base backup and the target is replaced by
// different bytes under its recorded sha256. replay-wal must fail at its first
// attempt with WAL_CHECKSUM_MISMATCH naming that segment, with nothing
// promoted; once the operator puts a good copy back (here: the original
// bytes, as if archived again from the primary's pg_wal) and retries the
// step, the run pauses at the target with exactly its rows. Real workers,
// PostgreSQL and Temporal; the time the fault cost is printed, never asserted.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { readWalArchive } from '../../src/catalog/catalog';
import { approveSignal, rejectSignal, retrySignal, statusQuery } from '../../src/recovery/messages';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { encodeWal } from '../../src/wal/compress';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { fingerprint, queryAt, waitForStep } from '../harness/faults-cluster';
import { asPostgres, PG_BIN, switchAndWaitArchived } from '../harness/postgres';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { artifactsDir } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

/** Attempt numbers of each start of an activity type, from the run's history. */
async function attempts(wf: WorkflowHandle, activityType: string): Promise<number[]> {
  const events = (await wf.fetchHistory()).events ?? [];
  const typeOf = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]),
  );
  return events
    .filter(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        typeOf.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === activityType,
    )
    .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 0);
}

/** From the first start of an activity type to its first failure, by the server's clock (history event times). */
async function activityMs(wf: WorkflowHandle, activityType: string): Promise<number> {
  const events = (await wf.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType)!;
  const id = String(scheduled.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === id)!;
  const failed = events.find((e) => String(e.activityTaskFailedEventAttributes?.scheduledEventId ?? '') === id)!;
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  return ms(failed.eventTime) - ms(started.eventTime);
}

it('a corrupt archived segment: preflight refuses it before the fence; damaged after preflight, replay-wal fails WAL_CHECKSUM_MISMATCH naming it at its first attempt, nothing promoted; a good copy put back and the step retried reaches exactly the rows at the target', async () => {
  const cluster = await backedUpCluster('corruptwal', cleanups);
  const { tc, name, runbook } = cluster;
  const dataDir = runbook.restore.dataDir;
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, md5(g::text) from generate_series(1, 5000) g`);
  // The segment with those rows: after the base backup, before the target.
  const segment = await switchAndWaitArchived(tc.pg);
  await tc.pg.query(`insert into t select g, md5(g::text) from generate_series(5001, 6000) g`);
  const atTarget = await fingerprint(tc.pg.connection, 't');
  await tc.pg.query(`select pg_create_restore_point('corrupt-wal-target')`);
  await tc.pg.query(`insert into t select g, 'after the target' from generate_series(6001, 7000) g`);
  await switchAndWaitArchived(tc.pg);

  // Different bytes under the recorded sha256: the damage only the checksum shows.
  const repo = await openRepository(tc.repoUrl, runbook.repository);
  const key = keys.wal(name, segment);
  const original = (await repo.get(key))!;
  const wrong = Buffer.alloc(16 * 1024 * 1024, 7);
  const corrupt = async () => repo.put(key, await encodeWal(segment, wrong), { sha256: original.info.sha256! });
  const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);
  const start = (workflowId: string) =>
    client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId,
      args: [
        {
          runbook: name,
          target: { name: 'corrupt-wal-target' },
          incident: 'INC-WAL',
          reason: 'corrupt WAL fault test',
        },
      ],
    });

  // Damaged before the run starts: preflight, which reads the archived WAL for
  // the restore point, finds it and the run ends there, nothing fenced.
  await corrupt();
  const early = await start(`corrupt-wal-early-${name}`);
  cleanups.push(() => early.terminate().catch(() => undefined));
  await expect(early.result()).rejects.toMatchObject({ cause: { type: 'WAL_CHECKSUM_MISMATCH' } });
  const earlySteps = (await early.query(statusQuery)).steps;
  expect(earlySteps.find((s) => s.id === 'preflight')!.state).toBe('failed');
  expect(earlySteps.filter((s) => s.id !== 'preflight').map((s) => s.state)).toEqual(
    earlySteps.slice(1).map(() => 'pending'),
  );

  // Damaged after preflight passed (held at approve-fence): replay-wal meets it.
  await repo.put(key, original.body, { sha256: original.info.sha256! });
  const wf = await start(`corrupt-wal-${name}`);
  cleanups.push(() => wf.terminate().catch(() => undefined));
  await waitForStep(wf, 'approve-fence', 'awaiting-approval');
  await corrupt();
  await wf.signal(approveSignal, { step: 'approve-fence', by: 'alice' });
  const failedAt = await waitForStep(wf, 'replay-wal', 'failed');
  const err = failedAt.steps.find((s) => s.id === 'replay-wal')!.error!;
  const failMs = await activityMs(wf, 'replayWal');
  expect(err.type).toBe('WAL_CHECKSUM_MISMATCH');
  expect(err.message.split('\n')[0]).toBe(
    `replay of ${name} towards restore point "corrupt-wal-target" stopped at WAL segment ${segment}: the archived copy is corrupt ` +
      `(${segment} in ${repo.url} (cluster ${name}, object ${key}) does not match its checksum: recorded sha256 ${original.info.sha256}, ` +
      `content sha256 ${createHash('sha256').update(wrong).digest('hex')})`,
  );
  expect(err.hints[0]).toBe(
    `the damaged object is ${key} in ${repo.url}; recovery cannot replay past it with this archive, and a retry of replay-wal as it is fails the same way`,
  );
  // Not retried onto the same segment: one attempt.
  expect(await attempts(wf, 'replayWal')).toEqual([1]);
  // Nothing promoted: stopped in archive recovery on timeline 1, no new timeline archived.
  const control = await asPostgres(`${PG_BIN}/pg_controldata`, [dataDir]);
  expect(control).toMatch(/Database cluster state:\s+in archive recovery/);
  expect(control).toMatch(/Latest checkpoint's TimeLineID:\s+1\n/);
  expect(Object.keys((await readWalArchive(repo, name)).histories)).toEqual([]);

  // The operator puts a good copy back (the primary still had it) and retries the step.
  await repo.put(key, original.body, { sha256: original.info.sha256! });
  const t1 = Date.now();
  await wf.signal(retrySignal, { step: 'replay-wal', by: 'alice' });
  await waitForStep(wf, 'approve-promote', 'awaiting-approval');
  const retryMs = Date.now() - t1;
  const restored = { host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' };
  expect(await fingerprint(restored, 't')).toEqual(atTarget);
  expect(await queryAt(restored, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);
  await wf.signal(rejectSignal, { step: 'approve-promote', by: 'alice', reason: 'fault test: nothing is promoted' });
  await expect(wf.result()).rejects.toMatchObject({ cause: { type: 'RECOVERY_REJECTED' } });
  expect(await queryAt(restored, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);

  const line = `corrupt WAL segment: already damaged at the start, the run ended in preflight with WAL_CHECKSUM_MISMATCH, nothing fenced; damaged after preflight, WAL_CHECKSUM_MISMATCH ${(failMs / 1000).toFixed(1)} s after replay-wal started (one attempt, no automatic retry); good copy put back and retried, paused at the target ${(retryMs / 1000).toFixed(1)} s after the retry (issue 10: 104 s of futile retries, then TOOL_FAILED)`;
  console.log(line);
  const out = path.join(artifactsDir(), 'faults');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'corrupt-wal.md'), `${line}\n`);
});
