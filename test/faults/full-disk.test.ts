// Fault injection: a full volume under restore.dataDir, which is itself the
// mount point (the worst case of issue 10: tar failed with ENOSPC, every
// retry parked on `rename ... EBUSY`, and growing the volume did not help).
// One real recoverToPointInTime on real workers, PostgreSQL and Temporal; the
// volume is a tmpfs mounted at the runbook's restore.dataDir (we run as root).
//
// 1. The volume is too small from the start: preflight refuses with
//    DISK_FULL naming the copies kept on it, before anything is fenced.
// 2. The volume is big enough at preflight and shrinks (remount) while the
//    run waits at approve-fence, so extraction runs out of space: the step
//    fails DISK_FULL at its first attempt, naming the path and the bytes; the
//    operator grows the volume and retries the step; the run reaches the
//    target with exactly its rows and promotes nothing until approved (it is
//    rejected here). The time the fault cost is printed, never asserted.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { approveSignal, rejectSignal, retrySignal, statusQuery } from '../../src/recovery/messages';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { fingerprint, queryAt, waitForStep } from '../harness/faults-cluster';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';
import { artifactsDir } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

const resize = (dir: string, mb: number) => execFileSync('mount', ['-o', `remount,size=${mb}m`, dir]);

it('a full volume at the mount point restore.dataDir: refused in preflight before the fence, naming kept copies; failing mid-extraction, DISK_FULL at once, then grown and retried to exactly the rows at the target', async () => {
  const cluster = await backedUpCluster('fulldisk', cleanups);
  const { tc, name, runbook } = cluster;
  const dataDir = runbook.restore.dataDir;
  await tc.pg.query('create table t (id int primary key, v text)');
  await tc.pg.query(`insert into t select g, md5(g::text) from generate_series(1, 5000) g`);
  const atTarget = await fingerprint(tc.pg.connection, 't');
  await tc.pg.query(`select pg_create_restore_point('full-disk-target')`);
  await tc.pg.query(`insert into t select g, 'after the target' from generate_series(5001, 6000) g`);
  await switchAndWaitArchived(tc.pg);

  // restore.dataDir is the mount point itself, the OS user's, mode 0700.
  mkdirSync(dataDir, { recursive: true });
  const uid = execFileSync('id', ['-u', 'postgres']).toString().trim();
  const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
  execFileSync('mount', [
    '-t',
    'tmpfs',
    '-o',
    `size=8m,mode=0700,uid=${uid},gid=${gid}`,
    'lifeboat-full-disk',
    dataDir,
  ]);
  cleanups.push(async () => {
    await stopRestoredCopy(runbook);
    try {
      execFileSync('umount', [dataDir]);
    } catch {
      // Busy a moment longer (archive-get's prefetcher outlives its postmaster): detach now.
      execFileSync('umount', ['-l', dataDir]);
    }
  });
  const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);
  const start = (id: string) =>
    client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `${id}-${name}`,
      args: [
        { runbook: name, target: { name: 'full-disk-target' }, incident: 'INC-DISK', reason: 'full-disk fault test' },
      ],
    });

  // 1. Too small from the start, with a copy kept on it (planted by this test, removed below).
  const kept = path.join(dataDir, '.lifeboat-aside-20261201T030000Z');
  mkdirSync(path.join(kept, 'base'), { recursive: true });
  writeFileSync(path.join(kept, 'base', 'old-copy'), Buffer.alloc(4 << 20, 1));
  execFileSync('chown', ['-R', 'postgres:postgres', kept]);
  const early = await start('early');
  cleanups.push(() => early.terminate().catch(() => undefined));
  // The run ends by itself (no decision can give the volume room): nothing waits to be aborted.
  const ended = await early.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(((ended as Error).cause as Error & { type?: string }).type).toBe('DISK_FULL');
  const refused = await early.query(statusQuery);
  expect(refused.phase).toBe('failed');
  const pre = refused.steps.find((s) => s.id === 'preflight')!.error!;
  expect(pre.type).toBe('DISK_FULL');
  expect(pre.message).toMatch(
    new RegExp(
      `^restore\\.dataDir ${dataDir} has no room for this restore: the file system of ${dataDir} has \\d+ bytes \\(.+\\) free, the restore needs \\d+ bytes`,
    ),
  );
  expect(pre.hints[0]).toBe(
    `copies moved aside by Lifeboat on that file system, 4.0 MiB in all, which an operator may remove once no longer needed (Lifeboat never does): ${kept} (4.0 MiB)`,
  );
  // Nothing fenced: the gates were never reached and the writers' gate is still open.
  expect(
    refused.steps
      .filter((s) => ['approve-fence', 'disable-writers', 'restore-base-backup'].includes(s.id))
      .map((s) => s.state),
  ).toEqual(['pending', 'pending', 'pending']);
  expect(await tc.pg.query(`select enabled from system_gate where gate_name = 'writers'`)).toEqual([{ enabled: true }]);
  // The test's own planted copy: provably ours to remove.
  rmSync(kept, { recursive: true, force: true });

  // 2. Room at preflight; the volume shrinks while the run waits at approve-fence.
  resize(dataDir, 512);
  const wf = await start('shrunk');
  cleanups.push(() => wf.terminate().catch(() => undefined));
  await waitForStep(wf, 'approve-fence', 'awaiting-approval');
  resize(dataDir, 8);
  const t0 = Date.now();
  await wf.signal(approveSignal, { step: 'approve-fence', by: 'alice' });
  const failedAt = await waitForStep(wf, 'restore-base-backup', 'failed');
  const failMs = Date.now() - t0;
  const err = failedAt.steps.find((s) => s.id === 'restore-base-backup')!.error!;
  expect(err.type).toBe('DISK_FULL');
  expect(err.message).toMatch(
    new RegExp(
      `^no space left on device at ${dataDir} while extracting backup \\S+ into restore\\.dataDir ${dataDir}: the file system of ${dataDir} has \\d+ bytes \\(.+\\) free, the restore needs \\d+ bytes`,
    ),
  );
  expect(err.hints[0]).toContain(
    `then retry restore-base-backup (lifeboat retry ${wf.workflowId} restore-base-backup --as <you>)`,
  );
  // Not retried onto the same full volume: one attempt.
  const events = (await wf.fetchHistory()).events ?? [];
  const typeOf = new Map(
    events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]),
  );
  const restoreAttempts = events
    .filter(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        typeOf.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'restoreBaseBackup',
    )
    .map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(restoreAttempts).toEqual([1]);

  // The operator grows the volume and retries the step.
  resize(dataDir, 512);
  const t1 = Date.now();
  await wf.signal(retrySignal, { step: 'restore-base-backup', by: 'alice' });
  await waitForStep(wf, 'approve-promote', 'awaiting-approval');
  const retryMs = Date.now() - t1;
  const restored = { host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' };
  expect(await fingerprint(restored, 't')).toEqual(atTarget);
  expect(await queryAt(restored, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);
  // This run's partial copy was removed, not kept; nothing else was moved aside.
  expect(readdirSync(dataDir).filter((e) => e.startsWith('.lifeboat-aside-'))).toEqual([]);
  const summary = (await wf.query(statusQuery)).steps.find((s) => s.id === 'restore-base-backup')!.summary;
  expect(summary).toContain("this run's interrupted extraction was removed");
  await wf.signal(rejectSignal, { step: 'approve-promote', by: 'alice', reason: 'fault test: nothing is promoted' });
  await expect(wf.result()).rejects.toMatchObject({ cause: { type: 'RECOVERY_REJECTED' } });
  expect(await queryAt(restored, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);
  const line = `full volume at the mount point restore.dataDir: DISK_FULL ${(failMs / 1000).toFixed(1)} s after approve-fence (one attempt, no automatic retry); grown and retried, paused at the target ${(retryMs / 1000).toFixed(1)} s after the retry (issue 10: no recovery at all)`;
  console.log(line);
  const out = path.join(artifactsDir(), 'faults');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'full-disk.md'), `${line}\n`);
});
