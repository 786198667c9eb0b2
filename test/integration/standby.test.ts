// The warm standby (DESIGN.md §4.4) on real services: a PostgreSQL 15
// primary archiving into a file:// repository, the standby built from its
// newest backup on the same machine, replaying from the archive `delay`
// behind. The moments observed are held, never waited out: a 1 h delay
// holds every new commit back for far longer than any test runs, and the
// standby's startup process is seen waiting on it (RecoveryApplyDelay).
import { appendFileSync, existsSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity } from '../harness/activity';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { buildStandby } from '../../src/standby/build';
import { observeStandby, readStandbyStatus, standbyLine } from '../../src/standby/status';
import { buildStandby as buildStandbyActivity, standbyStatus } from '../../activities/standby';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** Stops every postmaster the test left in its own state directory (the standby, the restored copy, copies moved aside). */
async function stopAll(stateDir: string): Promise<void> {
  for (const e of readdirSync(stateDir)) {
    const p = path.join(stateDir, e);
    if (existsSync(path.join(p, 'postmaster.pid'))) await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', p, '-m', 'immediate', '-w']).catch(() => '');
  }
}

/** The runbook file with its standby section set to `delay` (the file is the test's own). */
function setStandby(tc: TestCluster, port: number, delay: string): void {
  const text = readFileSync(tc.runbookFile, 'utf8').replace(/\nstandby: .*\n/, '\n');
  rmSync(tc.runbookFile);
  appendFileSync(tc.runbookFile, `${text.trimEnd()}\nstandby: { host: sb, dataDir: ${tc.stateDir}/standby, port: ${port}, delay: ${delay} }\n`);
}

async function onStandby<T>(runbook: Runbook, sql: string): Promise<T[]> {
  const c = new Client({ host: '127.0.0.1', port: runbook.standby!.port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

async function commitTime(tc: TestCluster, sql: string): Promise<string> {
  const [row] = await tc.pg.query<{ t: string }>(`${sql} returning to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`);
  return row!.t;
}

describe('the warm standby', () => {
  let tc: TestCluster;
  let port: number;
  let backup: BackupMeta;

  beforeAll(async () => {
    tc = await startTestCluster({ name: 'sb-file', kind: 'file', runbooksDir, host: 'sb' });
    cleanups.push(() => tc.stop());
    cleanups.push(() => stopAll(tc.stateDir));
    port = await freePort();
    await tc.pg.query('create table t (id int primary key, v text)');
    await tc.pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
    backup = await takeBaseBackup({ runbook: await loadRunbook(tc.name) });
    setStandby(tc, port, '1h');
  });

  it('is built from the newest backup, holds every new commit back by its delay, and reports the lag', async () => {
    const runbook = await loadRunbook(tc.name);
    const built = await buildStandby(runbook);
    expect(built).toMatchObject({ action: 'built', backupId: backup.backupId, status: { state: 'replaying', healthy: true, backupId: backup.backupId, delaySeconds: 3600 } });
    expect(built.why).toBe(`built from backup ${backup.backupId}, the newest whose WAL reaches the archive's end without a gap`);
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 100 }]);
    // Its settings: the apply delay, no archiving, loopback only, standby.signal.
    const auto = readFileSync(path.join(runbook.standby!.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toContain(`recovery_min_apply_delay = '3600s'`);
    expect(auto).toContain(`archive_mode = off`);
    expect(auto).toContain(`listen_addresses = '127.0.0.1'`);
    expect(auto).toContain(`port = ${port}`);
    expect(existsSync(path.join(runbook.standby!.dataDir, 'standby.signal'))).toBe(true);
    expect(await onStandby(runbook, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);

    // Rows committed after a restore point reach the archive...
    await tc.pg.query(`select pg_create_restore_point('standby-lag')`);
    const committed = await commitTime(tc, `insert into t select g, 'after the standby' from generate_series(101, 110) g`);
    await switchAndWaitArchived(tc.pg);
    // ...and the standby holds their commit back: its startup process waits on the delay.
    await waitFor('the standby to hold a commit back for its delay', async () => ((await observeStandby(runbook)).delayWait ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 100 }]);
    const { result: status } = await activity(standbyStatus, { runbook: tc.name });
    expect(status).toMatchObject({ state: 'replaying', healthy: true, waitingForDelay: true, pauseState: 'not paused', warnings: [] });
    expect(status.lastReplayTime === undefined || status.lastReplayTime < committed).toBe(true);
    expect(status.segmentsBehind).toBeGreaterThanOrEqual(0);
    expect(standbyLine(status)).toMatch(new RegExp(`^standby ${runbook.standby!.dataDir} \\(port ${port}, delay 1h\\): replaying, replayed to [0-9A-F]+/[0-9A-F]+, .*segment\\(s\\) behind the archive's newest [0-9A-F]{24}, holding a commit back for its delay, built from backup ${backup.backupId}$`));

    // Built again while healthy: kept as it is.
    const { result: again } = await activity(buildStandbyActivity, { runbook: tc.name });
    expect(again).toMatchObject({ action: 'reused', backupId: backup.backupId, why: 'the standby is running and keeps up with the archive' });
  });

  it('is restarted, not rebuilt, when only stopped; and rebuilt from a newer backup, its old copy moved aside, once it fell off the archive', async () => {
    const runbook = await loadRunbook(tc.name);
    const dataDir = runbook.standby!.dataDir;
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'fast', '-w']);
    const stopped = await readStandbyStatus(runbook);
    expect(stopped).toMatchObject({ state: 'stopped', healthy: false, warnings: [`its PostgreSQL is not running: lifeboat standby build --runbook ${tc.name} starts it again`] });
    expect(stopped.fellOff).toBeUndefined();
    const restarted = await buildStandby(runbook);
    expect(restarted).toMatchObject({ action: 'restarted', why: 'the standby was stopped; it resumes from its last restartpoint', status: { state: 'replaying' } });

    // Falling off: the standby is stopped, the primary writes on, and the
    // segment the standby needs next goes missing from the archive (moved
    // out of the test's own repository, not deleted).
    const before = await observeStandby(runbook);
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'fast', '-w']);
    await tc.pg.query(`insert into t values (200, 'segment a')`);
    await switchAndWaitArchived(tc.pg);
    await tc.pg.query(`insert into t values (201, 'segment b')`);
    await switchAndWaitArchived(tc.pg);
    const repoWal = path.join(tc.repoUrl.replace('file://', ''), tc.name, 'wal');
    const lsn = before.lsn!;
    const segno = (BigInt(`0x${lsn.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${lsn.split('/')[1]}`)) / 16777216n;
    const next = `00000001${((segno + 1n) >> 8n).toString(16).toUpperCase().padStart(8, '0')}${((segno + 1n) & 0xffn).toString(16).toUpperCase().padStart(8, '0')}`;
    const moved = readdirSync(repoWal).filter((f) => f.startsWith(next));
    expect(moved.length).toBeGreaterThan(0);
    const hidden = postgresTempDir('hidden-wal');
    cleanups.push(() => rmSync(hidden, { recursive: true, force: true }));
    for (const f of moved) renameSync(path.join(repoWal, f), path.join(hidden, f));
    await asPostgres(`${PG_BIN}/pg_ctl`, ['start', '-D', dataDir, '-l', path.join(hidden, 'standby.log'), '-w']);
    const fell = await readStandbyStatus(runbook);
    expect(fell).toMatchObject({ state: 'replaying', healthy: false, fellOff: expect.stringMatching(new RegExp(`^the archive has no segment ${next} after the standby's replay position [0-9A-F]+/[0-9A-F]+, but has later ones up to [0-9A-F]{24}: it can never catch up$`)) as string });
    expect(standbyLine(fell)).toContain(': FELL OFF, ');

    // The only backup lies before the gap: no standby can be built from it.
    await expect(buildStandby(runbook)).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND', what: expect.stringContaining('lies before a gap in the WAL archive') as string });
    // A new backup after the gap: the rebuild uses it and keeps the old copy.
    const newer = await takeBaseBackup({ runbook });
    const rebuilt = await buildStandby(runbook);
    expect(rebuilt).toMatchObject({ action: 'built', backupId: newer.backupId, status: { state: 'replaying', healthy: true } });
    expect(rebuilt.why).toMatch(new RegExp(`^rebuilt from backup ${newer.backupId}, .*: the archive has no segment ${next} `));
    expect(rebuilt.movedAside).toMatch(new RegExp(`^${dataDir.replace(/[.]/g, '\\.')}\\.lifeboat-\\d{8}T\\d{6}Z$`));
    expect(JSON.parse(readFileSync(path.join(rebuilt.movedAside!, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({ workflowId: `lifeboat-standby-${tc.name}`, instance: 'standby' });
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 112 }]);
  });
});
