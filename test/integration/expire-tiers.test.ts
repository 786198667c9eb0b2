// Tiered retention on a real repository: five real base backups of a real
// PostgreSQL 15 primary with archived WAL between them, the runbook's
// `retention:` (daily 14, yearly 7, WAL 7 days) instead of backup.retainFull,
// `expireBackups` run by a worker on the real Temporal server.
//
// Backups cannot be taken years apart in a test: the start and end times in
// four of the five backup.json files are FORGED (moved back by years or
// days, in the order the backups were taken); everything else in them, the
// backups and the WAL are real. Then the repository is inspected, `lifeboat
// check` must call it healthy, and the oldest backup, kept only by the yearly
// tier and with only its own WAL left, is restored and replayed to its end.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as retentionActivities from '../../activities/retention';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { readCatalog, readWalArchive } from '../../src/catalog/catalog';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import type { Repository } from '../../src/repository/types';
import { stopPrefetcher } from '../../src/restore/prefetch';
import { loadRunbook } from '../../src/runbook/load';
import { projectRoot } from '../../src/tools';
import { isSegmentName, parseSegmentName } from '../../src/wal/names';
import type { ExpireBackupsResult } from '../../workflows/expire-backups';
import { activity } from '../harness/activity';
import { startTestCluster } from '../harness/cluster';
import { asPostgres, PG_BIN, switchAndWaitArchived, type Primary } from '../harness/postgres';
import { temporalAddress } from '../harness/services';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-expire-tiers-runbooks-'));
const taskQueue = `lifeboat-test-expire-tiers-${process.pid}`;
const name = 'expire-tiers';
const cleanups: Array<() => unknown> = [];
const DAY = 86_400_000;

let pg: Primary;
let repo: Repository;
/** Oldest first, with the forged times. */
let backups: BackupMeta[];
/** Rows in t when each backup was taken. */
const rowsAt: number[] = [];
let client: Client;
let worker: Worker;
let workerRun: Promise<void>;
let restoreDir: string;

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

async function segments(): Promise<string[]> {
  return (await readWalArchive(repo, name)).files.map((f) => f.name).filter(isSegmentName);
}

/** Moves a backup's start and end times in its backup.json; nothing else changes. */
async function forgeTimes(meta: BackupMeta, start: Date): Promise<BackupMeta> {
  const took = Date.parse(meta.endTime) - Date.parse(meta.startTime);
  const forged = { ...meta, startTime: start.toISOString(), endTime: new Date(start.getTime() + took).toISOString() };
  const body = Buffer.from(`${JSON.stringify(forged, null, 2)}\n`);
  await repo.put(keys.backupMeta(name, meta.backupId), body, {
    sha256: createHash('sha256').update(body).digest('hex'),
  });
  return forged;
}

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const cluster = await startTestCluster({ name, kind: 'file', runbooksDir, host: `ext${process.pid}` });
  cleanups.push(() => cluster.stop());
  pg = cluster.pg;
  repo = await openRepository(cluster.repoUrl);
  restoreDir = path.join(cluster.stateDir, 'recovery');

  // The runbook's retention: tiers instead of backup.retainFull.
  const text = readFileSync(cluster.runbookFile, 'utf8');
  const tiered = text.replace(/retainFull: \d+, /, '');
  expect(tiered).not.toBe(text);
  writeFileSync(cluster.runbookFile, `${tiered}retention:\n  full: { daily: 14, yearly: 7 }\n  wal: 7d\n`);

  const runbook = await loadRunbook(name);
  expect(runbook.retention).toEqual({ full: { daily: 14, yearly: 7 }, wal: 7 * 86400 });
  await pg.query('create table t (id int, v text)');
  const taken: BackupMeta[] = [];
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 2; j++) {
      await pg.query(`insert into t select g, md5(g::text) from generate_series(1, 1000) g`);
      await switchAndWaitArchived(pg);
    }
    const [{ n }] = (await pg.query<{ n: number }>('select count(*)::int as n from t')) as [{ n: number }];
    rowsAt.push(n);
    taken.push(await takeBaseBackup({ runbook }));
  }
  await switchAndWaitArchived(pg);

  // Forged, oldest first as taken: three years ago; two in the year before
  // last (March, September); ten days ago; the newest keeps its real time.
  const year = new Date().getUTCFullYear();
  backups = [
    await forgeTimes(taken[0]!, new Date(Date.UTC(year - 3, 5, 15, 1))),
    await forgeTimes(taken[1]!, new Date(Date.UTC(year - 2, 2, 1, 1))),
    await forgeTimes(taken[2]!, new Date(Date.UTC(year - 2, 8, 1, 1))),
    await forgeTimes(taken[3]!, new Date(Date.now() - 10 * DAY)),
    taken[4]!,
  ];

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
  // The restored copy lives in the cluster's own state directory: stop it before that is removed.
  if (restoreDir && existsSync(path.join(restoreDir, 'postmaster.pid'))) {
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', restoreDir, '-m', 'immediate', '-w']).catch(() => '');
  }
  if (restoreDir) await stopPrefetcher(restoreDir);
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

const execute = (input: Record<string, unknown>) =>
  client.workflow.execute('expireBackups', {
    taskQueue,
    workflowId: `test-expire-tiers-${Date.now()}`,
    args: [input],
  }) as Promise<ExpireBackupsResult>;

const segno = (name: string) => parseSegmentName(name).segno;

it('a dry run says what each tier keeps and why the one backup and the WAL between the yearly backups go', async () => {
  const [b1, b2, b3, b4, b5] = backups as [BackupMeta, BackupMeta, BackupMeta, BackupMeta, BackupMeta];
  const year = new Date().getUTCFullYear();
  const result = await execute({ runbook: name, dryRun: true });
  const plan = result.plan;
  expect(plan.policy).toEqual({ kind: 'tiers', full: { daily: 14, yearly: 7 }, walSeconds: 7 * 86400 });
  expect(plan.expire.map((e) => e.backupId)).toEqual([b2.backupId]);
  const yearly = plan.tiers!.find((t) => t.tier === 'yearly')!;
  expect(yearly.kept.map((k) => k.backupId)).toEqual(
    // b4 (ten days ago) is the newest of its year unless that is this year, where b5 is.
    new Date(b4.startTime).getUTCFullYear() === year
      ? [b5.backupId, b3.backupId, b1.backupId]
      : [b5.backupId, b4.backupId, b3.backupId, b1.backupId],
  );
  expect(plan.tiers!.find((t) => t.tier === 'daily')!.kept.map((k) => k.backupId)).toEqual([b5.backupId, b4.backupId]);
  expect(plan.window).toMatchObject({ backupId: b4.backupId, startWal: b4.startWal });
  expect(plan.kept.find((k) => k.backupId === b1.backupId)?.reason).toBe(`yearly ${year - 3}`);
  expect(plan.walKeep!.map(({ from, to }) => ({ from, to }))).toEqual([
    { from: b4.startWal, to: undefined },
    { from: b1.startWal, to: b1.endWal },
    { from: b3.startWal, to: b3.endWal },
  ]);

  const cli = await lifeboat(['expire', '--runbook', name, '--dry-run', '--local']);
  expect(cli.stderr).toBe('');
  expect(cli.code).toBe(0);
  const out = cli.stdout;
  console.log(`lifeboat expire --dry-run:\n${out}`);
  expect(out).toContain(`tiers daily 14, yearly 7; point-in-time window 7 days (dry run: nothing deleted)`);
  expect(out).toMatch(
    new RegExp(
      `  yearly 7 \\(from ${year - 6}\\): \\d backups\\n(    \\d{4}  \\d{8}T\\d{6}Z\\n)*    ${year - 3}  ${b1.backupId}\\n`,
    ),
  );
  expect(out).toContain(`  ${b1.backupId}  yearly ${year - 3}\n`);
  expect(out).toMatch(
    new RegExp(
      `backups would delete:\\n  ${b2.backupId}  [0-9.]+ [KMG]?i?B, kept by no tier \\(daily keeps from \\d{4}-\\d\\d-\\d\\d; yearly ${year - 2} keeps ${b3.backupId}\\)`,
    ),
  );
  expect(out).toContain(`  ${b1.startWal} .. ${b1.endWal}: backup ${b1.backupId} (yearly ${year - 3})`);
  expect(out).toContain(`  ${b4.startWal} on: point-in-time window (7 days`);
  expect(out).toContain(
    `after the WAL of backup ${b1.backupId} (yearly ${year - 3}), before the WAL of backup ${b3.backupId}`,
  );

  // --keep cannot shortcut the tiers.
  const refused = await lifeboat(['expire', '--runbook', name, '--keep', '2', '--dry-run', '--local']);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain(
    "keep 2 cannot override the runbook's retention: tiers (tiers daily 14, yearly 7; point-in-time window 7 days)\nHINT: change the tiers in the runbook's retention: section instead\nHINT: nothing was deleted",
  );
});

it('expires by tiers: the yearly backups keep only their own WAL, the window everything from its backup on, and check calls it healthy', async () => {
  const [b1, b2, b3, b4, b5] = backups as [BackupMeta, BackupMeta, BackupMeta, BackupMeta, BackupMeta];
  const before = await segments();
  const result = await execute({ runbook: name });
  expect(result.applied?.deletedBackups.map((b) => b.backupId)).toEqual([b2.backupId]);
  expect(result.applied?.skippedBackups).toEqual([]);
  expect((await readCatalog(repo, name)).map((e) => [e.backupId, e.status])).toEqual([
    [b1.backupId, 'complete'],
    [b3.backupId, 'complete'],
    [b4.backupId, 'complete'],
    [b5.backupId, 'complete'],
  ]);

  const own = (b: BackupMeta, s: string) => segno(s) >= segno(b.startWal) && segno(s) <= segno(b.endWal);
  const expected = before.filter((s) => own(b1, s) || own(b3, s) || segno(s) >= segno(b4.startWal));
  const after = await segments();
  expect(after).toEqual(expected);
  // Something went on each side of b3: between the yearly backups, and between b3 and the window.
  expect(before.some((s) => segno(s) > segno(b1.endWal) && segno(s) < segno(b3.startWal))).toBe(true);
  expect(before.some((s) => segno(s) > segno(b3.endWal) && segno(s) < segno(b4.startWal))).toBe(true);
  expect(result.applied?.walDeletedCount).toBe(before.length - after.length);

  const check = await lifeboat(['check', '--runbook', name]);
  expect(check.stdout).toContain(
    `note: retention tiers: WAL checked without gaps from backup ${b4.backupId} on (where the point-in-time window of 7 days starts)`,
  );
  expect(check.stdout.trimEnd().split('\n').pop()).toBe('healthy');
  expect(check.code).toBe(0);

  // Run again: nothing else goes.
  const again = await execute({ runbook: name });
  expect(again.applied).toBeUndefined();
  expect(again.plan.expire).toEqual([]);
  expect(again.plan.walDeleteCount).toBe(0);
  expect(again.plan.kept.map((k) => k.backupId)).toEqual([b1.backupId, b3.backupId, b4.backupId, b5.backupId]);
});

it('restores the oldest backup, kept by the yearly tier with only its own WAL, and replays it to its end', async () => {
  const b1 = backups[0]!;
  const workflowId = 'wf-expire-tiers-yearly';
  await activity(restoreBaseBackup, {
    runbook: name,
    backupId: b1.backupId,
    mode: 'side-by-side',
    workflowId,
    runId: `${workflowId}-run`,
  });
  const { result } = await activity(replayWal, {
    runbook: name,
    target: { lsn: b1.endLsn },
    workflowId,
    runId: `${workflowId}-run`,
  });
  expect(result.paused).toBe(true);
  const runbook = await loadRunbook(name);
  const c = new PgClient({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    expect((await c.query('select count(*)::int as n from t')).rows).toEqual([{ n: rowsAt[0] }]);
  } finally {
    await c.end();
  }
  expect(readdirSync(restoreDir)).toContain('PG_VERSION');
});
