// The end of replay-wal and the promotion, noticed as they happen (issue 13):
// replay-wal wakes on the server log's pause line instead of its next poll,
// and promote wakes PostgreSQL's paused startup process instead of waiting
// for its once-a-second check. Real PostgreSQL 15 primary, file:// repository.
// No time is asserted: replay-wal runs with a poll of an hour, so it returns
// only because it read the log; the measured gaps are printed.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { promoteRestored, restoreBaseBackup } from '../../activities/restore';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { ReplayProgress } from '../../src/recovery/contract';
import { replayWal } from '../../src/restore/replay';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { activity } from '../harness/activity';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { runCleanups } from '../harness/cleanups';
import { postgresTempDir, stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const HOUR = 3_600_000;
let tc: TestCluster;
let runbook: Runbook;
let backupId: string;
/** The same cluster and restore site, as a role that may not call pg_wal_replay_resume(). */
let plainRole: string;

beforeAll(async () => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  tc = await startTestCluster({ name: `wake-${process.pid}`, kind: 'file', runbooksDir, host: `wake${process.pid}` });
  cleanups.push(() => tc.stop());
  await tc.pg.query('create table t (id int primary key)');
  await tc.pg.query('insert into t select generate_series(1, 100)');
  await tc.pg.query('create role lb_plain login');
  await tc.pg.query('grant select on t to lb_plain');
  runbook = await loadRunbook(tc.name);
  backupId = (await takeBaseBackup({ runbook })).backupId;
  await tc.pg.query('insert into t select generate_series(101, 200)');
  await tc.pg.query(`select pg_create_restore_point('wake-here')`);
  await tc.pg.query('insert into t select generate_series(201, 300)');
  await switchAndWaitArchived(tc.pg);
  plainRole = `${tc.name}-plain`;
  writeFileSync(
    path.join(runbooksDir, `${plainRole}.yaml`),
    readFileSync(tc.runbookFile, 'utf8')
      .replace(`name: ${tc.name}\ncluster:\n`, `name: ${plainRole}\ncluster:\n  name: ${tc.name}\n`)
      .replace('user: postgres', 'user: lb_plain'),
  );
}, 180_000);

afterEach(async () => {
  await stopRestoredCopy(runbook);
  // The copy this test file restored, in its own temporary state directory.
  rmSync(runbook.restore.dataDir, { recursive: true, force: true });
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

async function onCopy<T>(sql: string): Promise<T> {
  const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows[0] as T;
  } finally {
    await c.end();
  }
}

/** The server log's time for the first line matching `re` (log_line_prefix '%m [%p] ', PostgreSQL's default). */
function loggedAt(logFile: string, re: RegExp): number {
  const line = readFileSync(logFile, 'utf8')
    .split('\n')
    .find((l) => re.test(l));
  expect(line, `${re} in ${logFile}`).toBeDefined();
  return Date.parse(line!.slice(0, 23).replace(' ', 'T') + 'Z');
}

/** Restores the backup and replays to the restore point with a poll of an hour; returns when replay-wal did. */
async function replayToPoint(workflowId: string): Promise<{ logFile: string; returnedAt: number }> {
  await activity(restoreBaseBackup, {
    runbook: tc.name,
    backupId,
    mode: 'side-by-side',
    workflowId,
    runId: `${workflowId}-run`,
  });
  const beats: ReplayProgress[] = [];
  const r = await replayWal(
    runbook,
    { runbook: tc.name, target: { name: 'wake-here' }, workflowId, runId: `${workflowId}-run` },
    { onProgress: (p) => beats.push(p), pollMs: HOUR },
  );
  const returnedAt = Date.now();
  expect(r.paused).toBe(true);
  expect(beats.at(-1)?.phase).toBe('paused');
  expect(
    await onCopy('select count(*)::int as n, max(id) as max, pg_get_wal_replay_pause_state() as s from t'),
  ).toEqual({ n: 200, max: 200, s: 'paused' });
  const marker = JSON.parse(readFileSync(path.join(runbook.restore.dataDir, '.lifeboat-restore.json'), 'utf8')) as {
    logFile: string;
  };
  return { logFile: marker.logFile, returnedAt };
}

describe('the pause and the promotion, noticed as they happen', () => {
  it('replay-wal polling once an hour still returns at the pause, woken by the server log; promote ends the pause at once as a role that may resume replay', async () => {
    const { logFile, returnedAt } = await replayToPoint('wf-wake');
    const paused = loggedAt(logFile, /pausing at the end of recovery/);
    const t = Date.now();
    const { result } = await activity(promoteRestored, {
      runbook: tc.name,
      workflowId: 'wf-wake',
      runId: 'wf-wake-run',
    });
    const promoteMs = Date.now() - t;
    expect(result.timeline).toBe(2);
    expect(await onCopy('select pg_is_in_recovery() as r, count(*)::int as n from t')).toEqual({ r: false, n: 200 });
    // The promoted copy is the next primary: it archives timeline 2's history into the repository. Held until it
    // is there, so that the next case's promotion deterministically takes timeline 3 (it raced the copy's stop).
    const repo = await openRepository(runbook.repository.url, runbook.repository);
    await waitFor('the promoted copy to archive 00000002.history', async () =>
      (await repo.head(keys.wal(tc.name, '00000002.history'))) ? true : undefined,
    );
    console.log(
      `replay-wal returned ${returnedAt - paused} ms after the log's "pausing at the end of recovery" (log times are whole ms); promote (superuser, pg_wal_replay_resume) took ${promoteMs} ms`,
    );
  });

  it('a role that may not resume replay promotes too, after PostgreSQL notices the signal by itself', async () => {
    await replayToPoint('wf-plain');
    const t = Date.now();
    const { result } = await activity(promoteRestored, {
      runbook: plainRole,
      workflowId: 'wf-plain',
      runId: 'wf-plain-run',
    });
    const promoteMs = Date.now() - t;
    // Past timeline 2, whose history the first case's copy archived.
    expect(result.timeline).toBe(3);
    expect(await onCopy('select pg_is_in_recovery() as r, count(*)::int as n from t')).toEqual({ r: false, n: 200 });
    console.log(`promote as lb_plain (no EXECUTE on pg_wal_replay_resume) took ${promoteMs} ms`);
  });
});
