// Retention on the real Temporal server: three real base backups of a real
// primary with archived WAL between them, `expireBackups` with keep=2 run by a
// worker polling a queue of its own, then the repository is inspected.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as retentionActivities from '../../activities/retention';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { isComplete, readCatalog, readWalArchive } from '../../src/catalog/catalog';
import { analyzeChain } from '../../src/catalog/chain';
import { openRepository } from '../../src/repository';
import type { Repository } from '../../src/repository/types';
import { loadRunbook } from '../../src/runbook/load';
import { projectRoot } from '../../src/tools';
import { isSegmentName } from '../../src/wal/names';
import type { ExpireBackupsResult } from '../../workflows/expire-backups';
import { switchAndWaitArchived, type Primary } from '../harness/postgres';
import { startTestCluster } from '../harness/cluster';
import { temporalAddress } from '../harness/services';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-expire-runbooks-'));
const taskQueue = `lifeboat-test-expire-${process.pid}`;
const name = 'expire-file';
const cleanups: Array<() => unknown> = [];

let pg: Primary;
let repo: Repository;
let backups: BackupMeta[];
let client: Client;
let worker: Worker;
let workerRun: Promise<void>;

function lifeboat(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(projectRoot(), 'bin', 'lifeboat'),
      args,
      { env: { ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Every object key in the cluster's part of the repository. */
async function snapshot(): Promise<string[]> {
  return (await repo.list(`${name}/`)).map((o) => o.key);
}

async function segments(): Promise<string[]> {
  return (await readWalArchive(repo, name)).files.map((f) => f.name).filter(isSegmentName);
}

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const cluster = await startTestCluster({
    name,
    kind: 'file',
    runbooksDir,
    host: `exp${process.pid}`,
    runbook: { retainFull: 3 },
  });
  cleanups.push(() => cluster.stop());
  pg = cluster.pg;
  const repoUrl = cluster.repoUrl;
  repo = await openRepository(repoUrl);

  // Three backups with archived WAL before, between and after them.
  const runbook = await loadRunbook(name);
  await pg.query('create table t (id int, v text)');
  backups = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 2000) g`);
      await switchAndWaitArchived(pg);
    }
    backups.push(await takeBaseBackup({ runbook }));
  }
  await switchAndWaitArchived(pg);

  client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address: temporalAddress() }),
    taskQueue,
    workflowsPath: path.resolve(__dirname, '../../workflows/expire-backups.ts'),
    activities: retentionActivities,
  });
  workerRun = worker.run();
});

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await workerRun;
  await client?.connection.close();
  for (const c of cleanups.reverse()) await c();
  rmSync(runbooksDir, { recursive: true, force: true });
});

const execute = (input: Record<string, unknown>) =>
  client.workflow.execute('expireBackups', {
    taskQueue,
    workflowId: `test-expire-${Date.now()}`,
    args: [input],
  }) as Promise<ExpireBackupsResult>;

it('a dry run plans the oldest backup and its WAL away, and deletes nothing', async () => {
  const before = await snapshot();
  const [oldest, second] = backups as [BackupMeta, BackupMeta, BackupMeta];
  const result = await execute({ runbook: name, keep: 2, dryRun: true });
  expect(result.dryRun).toBe(true);
  expect(result.applied).toBeUndefined();
  expect(result.plan.expire.map((e) => e.backupId)).toEqual([oldest.backupId]);
  expect(result.plan.kept.map((k) => k.backupId)).toEqual([second.backupId, backups[2]!.backupId]);
  expect(result.plan.walKeep?.map((r) => r.from)).toEqual([second.startWal]);
  expect(result.plan.walDeleteCount).toBeGreaterThan(0);
  expect(result.plan.walDelete[0]!.last < second.startWal).toBe(true);

  // The CLI's in-process dry run says the same, as an operator reads it.
  const cli = await lifeboat(['expire', '--runbook', name, '--keep', '2', '--dry-run', '--local']);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  expect(cli.stdout).toContain('keep the 2 newest verified backups (dry run: nothing deleted)');
  expect(cli.stdout).toMatch(
    new RegExp(
      `backups would delete:\\n  ${oldest.backupId}  [0-9.]+ [KMG]?i?B, older than the 2 newest verified backups`,
    ),
  );
  expect(cli.stdout).toContain(
    `every segment from ${second.startWal} on (backup ${second.backupId}, the oldest kept, starts there)`,
  );

  expect(await snapshot()).toEqual(before);
});

it("expires the oldest backup with keep=2 and keeps every segment from the second backup's start on", async () => {
  const [oldest, second, newest] = backups as [BackupMeta, BackupMeta, BackupMeta];
  const segmentsBefore = await segments();
  const result = await execute({ runbook: name, keep: 2 });
  expect(result.applied?.deletedBackups.map((b) => b.backupId)).toEqual([oldest.backupId]);
  expect(result.applied?.skippedBackups).toEqual([]);

  const catalog = await readCatalog(repo, name);
  expect(catalog.map((e) => [e.backupId, e.status])).toEqual([
    [second.backupId, 'complete'],
    [newest.backupId, 'complete'],
  ]);
  expect((await snapshot()).some((k) => k.includes(`/base/${oldest.backupId}/`))).toBe(false);

  const segmentsAfter = await segments();
  const needed = segmentsBefore.filter((s) => s >= second.startWal);
  expect(needed.length).toBeGreaterThan(3);
  expect(segmentsAfter).toEqual(needed);
  expect(result.applied?.walDeletedCount).toBe(segmentsBefore.length - needed.length);

  // A check configured by hand over what is left: continuous from the oldest kept backup.
  const archive = await readWalArchive(repo, name);
  const chain = analyzeChain({
    walFiles: archive.files.map((f) => f.name),
    histories: archive.histories,
    backups: catalog.filter(isComplete).map((e) => ({
      backupId: e.backupId,
      timeline: e.meta.timeline,
      startWal: e.meta.startWal,
      startLsn: e.meta.startLsn,
    })),
  });
  expect(chain.gaps).toEqual([]);
  expect(chain.ok).toBe(true);
  expect(chain.timelines[0]?.checkedFrom).toEqual({ segment: second.startWal, backupId: second.backupId });

  // And `lifeboat check` agrees, archiver included.
  const check = await lifeboat(['check', '--runbook', name]);
  expect(check.stdout.trimEnd().split('\n').pop()).toBe('healthy');
  expect(check.code).toBe(0);

  // Run again: nothing is older than retention any more.
  const again = await execute({ runbook: name, keep: 2 });
  expect(again.applied).toBeUndefined();
  expect(again.plan.nothingToDo).toBe('2 verified backups, keep 2: nothing is older than retention');
});

it('fails at once on an input with a misspelt field, naming it', async () => {
  const err = await execute({ runbook: name, dry_run: true }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause.type).toBe('INPUT_INVALID');
  expect(cause.message).toContain('expireBackups input is not valid');
  expect(cause.message).toContain('dry_run');
});
