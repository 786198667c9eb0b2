// baseBackup on the real Temporal server, against a real PostgreSQL primary,
// into both repository kinds (file:// and MinIO as s3://).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { postgresTempDir, asPostgres, PG_BIN } from '../harness/postgres';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { s3Env, temporalAddress, useS3Env } from '../harness/services';
import { startWorkers, type RunningWorkers } from '../../src/worker';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { runCleanups } from '../harness/cleanups';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');
const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-runbooks-'));
const taskQueue = `lifeboat-test-backup-${process.pid}`;
const host = `bb${process.pid}`;

let workers: RunningWorkers;
let client: Client;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
  client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
});

afterAll(async () => {
  await workers?.shutdown();
  await client?.connection.close();
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

async function clusterWithData(kind: RepoKind): Promise<TestCluster> {
  const cluster = await startTestCluster({ name: `bb-${kind}`, kind, runbooksDir, host });
  cleanups.push(() => cluster.stop());
  await cluster.pg.query('create table t as select g as id, md5(g::text) as v from generate_series(1, 20000) g');
  return cluster;
}

describe.each(['file', 's3'] as const)('baseBackup into a %s:// repository', (kind) => {
  it('stores a backup that pg_verifybackup accepts and that `lifeboat backups` lists as verified', async () => {
    const { name, repoUrl, endpointEnv } = await clusterWithData(kind);
    const meta = await client.workflow.execute('baseBackup', {
      taskQueue,
      workflowId: `test-backup-${name}-${Date.now()}`,
      args: [{ runbook: name }],
    });
    const backup = meta as BackupMeta;
    expect(backup.cluster).toBe(name);
    expect(backup.verifiedBy).toBe('pg_verifybackup');
    expect(backup.timeline).toBe(1);
    expect(backup.startWal).toMatch(/^00000001[0-9A-F]{16}$/);
    expect(backup.sizeBytes).toBeGreaterThan(1_000_000);

    // The stored copy, not just the staged one, must verify: download,
    // decompress, extract and run pg_verifybackup against its manifest.
    // Every part, part 0 (the directories) first, each matching the sha256
    // of its stored bytes in backup.json.
    const repo = await openRepository(repoUrl, { endpointEnv });
    expect(backup.version).toBe(2);
    const parts = backup.files
      .filter((f) => /^base\.\d{4}\.tar\.zst$/.test(f.name))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
    expect(parts[0]!.name).toBe('base.0000.tar.zst');
    expect(backup.files.map((f) => f.name)).toEqual([...parts.map((p) => p.name), 'backup_manifest']);
    const extractDir = postgresTempDir('extract');
    cleanups.push(() => rmSync(extractDir, { recursive: true, force: true }));
    mkdirSync(path.join(extractDir, 'data'));
    for (const part of parts) {
      const stored = await repo.get(keys.backupFile(name, backup.backupId, part.name));
      expect(createHash('sha256').update(stored!.body).digest('hex')).toBe(part.storedSha256);
      const tarball = path.join(extractDir, part.name);
      writeFileSync(tarball, stored!.body);
      await exec('tar', ['--zstd', '-xf', tarball, '-C', path.join(extractDir, 'data')]);
    }
    await exec('chown', ['-R', 'postgres:postgres', extractDir]);
    await asPostgres(`${PG_BIN}/pg_verifybackup`, ['-q', path.join(extractDir, 'data')]);

    const { stdout } = await exec(CLI, ['backups', '--runbook', name, '--json'], {
      env: { ...process.env, ...s3Env(), LIFEBOAT_RUNBOOKS_DIR: runbooksDir },
    });
    const listed = JSON.parse(stdout) as unknown;
    expect(JSON.stringify(listed)).toContain(backup.backupId);
    expect(JSON.stringify(listed)).toContain(backup.verifiedAt);
  });
});

it('fails a baseBackup whose input names no runbook, naming the field', async () => {
  const err = await client.workflow
    .execute('baseBackup', { taskQueue, workflowId: `test-backup-bad-${Date.now()}`, args: [{ runbook: 42 }] })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('INPUT_INVALID');
  expect(cause.message).toContain('runbook: expected the runbook name');
});

it('fails at once, naming the variable and never a value, when the runbook password variable is unset on the worker', async () => {
  const cluster = await startTestCluster({ name: 'bb-secret', kind: 'file', runbooksDir, host });
  cleanups.push(() => cluster.stop());
  const yaml = readFileSync(cluster.runbookFile, 'utf8').replace(
    'user: postgres }',
    'user: postgres, passwordEnv: LIFEBOAT_TEST_UNSET_PASSWORD }',
  );
  writeFileSync(cluster.runbookFile, yaml);
  delete process.env.LIFEBOAT_TEST_UNSET_PASSWORD;

  const handle = await client.workflow.start('baseBackup', {
    taskQueue,
    workflowId: `test-backup-secret-${Date.now()}`,
    args: [{ runbook: 'bb-secret' }],
  });
  const err = await handle.result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const activityFailure = (err as WorkflowFailedError).cause as ActivityFailure;
  const cause = activityFailure.cause as ApplicationFailure;
  expect(cause.type).toBe('SECRET_MISSING');
  expect(cause.nonRetryable).toBe(true);
  expect(cause.message).toBe(
    'environment variable LIFEBOAT_TEST_UNSET_PASSWORD is not set in this process\n' +
      `HINT: runbook bb-secret reads the password of postgres@127.0.0.1:${cluster.pg.port} from LIFEBOAT_TEST_UNSET_PASSWORD\n` +
      'HINT: set it in the environment of the worker or CLI (never in the runbook)',
  );
  // Not retried: a missing secret does not appear by waiting.
  const history = await handle.fetchHistory();
  const attempts = history
    .events!.filter((e) => e.activityTaskStartedEventAttributes)
    .map((e) => e.activityTaskStartedEventAttributes!.attempt);
  expect(attempts.every((a) => a === 1)).toBe(true);
});
