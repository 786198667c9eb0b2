// What an end-to-end test of a recovery run needs before it starts one: a
// test cluster with the demo schema and its `app` role, a verified base
// backup, and (once the test has written the WAL it wants replayed) workers
// on a queue of the test's own plus a Temporal client. Everything started is
// pushed onto the test's `cleanups`, which it runs in reverse in afterAll.
import { rmSync } from 'node:fs';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { takeBaseBackup } from '../../src/backup/base-backup';
import { DEMO_SCHEMA_SQL } from '../../src/dev/demo-runbook';
import { loadRunbook } from '../../src/runbook/load';
import type { RecoveryStatus, Target } from '../../src/recovery/contract';
import { approveSignal, statusQuery } from '../../src/recovery/messages';
import type { Runbook } from '../../src/runbook/schema';
import { startWorkers } from '../../src/worker';
import type { Cleanups } from './cleanups';
import { startTestCluster, type RepoKind, type TestCluster } from './cluster';
import { postgresTempDir, stopRestoredCopy } from './postgres';
import { waitFor } from './ports';
import { temporalAddress, useS3Env } from './services';

export interface BackedUpCluster {
  name: string;
  host: string;
  tc: TestCluster;
  runbook: Runbook;
}

/**
 * A test cluster named `<label>-<pid>` (approver alice), with the demo schema, an `app` role and a base backup;
 * file:// unless `kind` says s3:// (the run's MinIO, whose variables are then set in this process).
 */
export async function backedUpCluster(
  label: string,
  cleanups: Cleanups,
  kind: RepoKind = 'file',
  primaryInit?: Parameters<typeof startTestCluster>[0]['primaryInit'],
): Promise<BackedUpCluster> {
  if (kind === 's3') useS3Env();
  const runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const host = `${label}${process.pid}`;
  const name = `${label}-${process.pid}`;
  const tc = await startTestCluster({
    name,
    kind,
    runbooksDir,
    host,
    runbook: { approvers: ['alice'] },
    ...(primaryInit ? { primaryInit } : {}),
  });
  cleanups.push(() => tc.stop());
  const runbook = await loadRunbook(name);
  // A copy a run leaves paused or promoted is the test's to stop.
  cleanups.push(() => stopRestoredCopy(runbook));
  await tc.pg.query(DEMO_SCHEMA_SQL);
  await tc.pg.query(`create role app login; grant all on all tables in schema public to app`);
  await takeBaseBackup({ runbook });
  return { name, host, tc, runbook };
}

/** Workers for the cluster's host on a task queue of the test's own, and a client to start runs on it. */
export async function recoveryWorkers(
  cluster: BackedUpCluster,
  cleanups: Cleanups,
): Promise<{ client: TemporalClient; taskQueue: string }> {
  const taskQueue = cluster.name;
  const workers = await startWorkers({
    address: temporalAddress(),
    namespace: 'default',
    host: cluster.host,
    taskQueue,
  });
  cleanups.push(() => workers.shutdown());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  return { client: new TemporalClient({ connection }), taskQueue };
}

/**
 * recoverToPointInTime on the cluster with workers of this process, the
 * fence approved (a signal, as the UI sends it) as alice; held until the
 * copy waits for approve-promote (a failed step ends the wait with its
 * error). The run is terminated by the cleanups.
 */
export async function recoverUntilPaused(
  cluster: BackedUpCluster,
  cleanups: Cleanups,
  args: { target: Target; backupId?: string },
): Promise<RecoveryStatus> {
  const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);
  const wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `recover-${cluster.name}`,
    args: [{ runbook: cluster.name, ...args }],
  });
  cleanups.push(() => wf.terminate('test over').catch(() => undefined));
  return waitFor(
    'the copy to pause at the target',
    async () => {
      const s = await wf.query(statusQuery);
      const failed = s.steps.find((x) => x.state === 'failed');
      if (failed) throw new Error(`${failed.id} failed: ${failed.error?.type} ${failed.error?.message}`);
      if (s.pending?.step === 'approve-fence') await wf.signal(approveSignal, { step: 'approve-fence', by: 'alice' });
      return s.pending?.step === 'approve-promote' ? s : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 250 },
  );
}
