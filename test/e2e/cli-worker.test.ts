// The operator's path end to end, through the real binaries only: a
// `lifeboat worker --host` process polling the `lifeboat` queue and its host
// queue, `lifeboat backup` starting baseBackup and waiting, `lifeboat
// backups` listing, `lifeboat expire` running expireBackups, `lifeboat check`.
// No other test polls the shared `lifeboat` queue, so this worker is alone.
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliRunner, startCliWorker, type CliWorker } from '../harness/cli';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { switchAndWaitArchived } from '../harness/postgres';
import { s3Env, temporalAddress } from '../harness/services';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-e2e-runbooks-'));
const host = `e2e${process.pid}`;
let cluster: TestCluster;
let worker: CliWorker | undefined;

const env = () => ({
  ...process.env,
  ...s3Env(),
  LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
  TEMPORAL_ADDRESS: temporalAddress(),
});

const lifeboat = cliRunner(env);

beforeAll(async () => {
  cluster = await startTestCluster({ name: 'e2e', kind: 's3', runbooksDir, host, runbook: { retainFull: 1 } });
  worker = await startCliWorker(host, env());
});

afterAll(async () => {
  if (worker) await worker.stop();
  await cluster?.stop();
  rmSync(runbooksDir, { recursive: true, force: true });
});

it('takes backups through a worker process, lists them, expires the older one and stays healthy', async () => {
  expect(worker!.log()).toContain(`lifeboat worker polling lifeboat and lifeboat-host-${host}`);
  await cluster.pg.query('create table t as select g as id from generate_series(1, 10000) g');

  const first = await lifeboat('backup', '--runbook', 'e2e', '--json');
  expect(first.stderr).toMatch(/^started baseBackup backup-e2e-\d{8}T\d{6}Z \(runbook e2e\)$/m);
  expect(first.code).toBe(0);
  const firstId = (JSON.parse(first.stdout) as { backup: { backupId: string } }).backup.backupId;

  await cluster.pg.query('insert into t select g from generate_series(10001, 20000) g');
  await switchAndWaitArchived(cluster.pg);
  await new Promise((r) => setTimeout(r, 1100)); // backup ids are per second
  const second = await lifeboat('backup', '--runbook', 'e2e');
  expect(second.code).toBe(0);
  expect(second.stdout).toMatch(/^backup \d{8}T\d{6}Z of e2e verified and stored: /);

  const listed = await lifeboat('backups', '--runbook', 'e2e');
  expect(listed.code).toBe(0);
  expect(listed.stdout).toContain(firstId);
  expect(listed.stdout).toContain('2 verified backups of cluster e2e');

  // retainFull is 1: the first backup goes, through the expireBackups workflow on the worker.
  const expired = await lifeboat('expire', '--runbook', 'e2e', '--json');
  expect(expired.code).toBe(0);
  expect(expired.stdout).toContain(firstId);
  const after = await lifeboat('backups', '--runbook', 'e2e', '--json');
  expect(after.stdout).not.toContain(firstId);

  await switchAndWaitArchived(cluster.pg);
  const check = await lifeboat('check', '--runbook', 'e2e');
  expect(check.stdout).toMatch(/^healthy$/m);
  expect(check.code).toBe(0);
});
