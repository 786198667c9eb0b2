// The restore host's activities of recoverToPointInTime (restore-base-backup,
// replay-wal, promote) against a real PostgreSQL 15 primary archiving into a
// real repository (file://, and MinIO as s3:// for one happy path). Each
// activity runs inside MockActivityEnvironment: a real activity context
// (heartbeats, cancellation), no worker needed. Backups in parts, damaged
// parts and version 1 backups (one base.tar.zst): restore-parts.test.ts.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { activity } from '../harness/activity';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN, clearRestoredCopies } from '../harness/postgres';
import { startTestCluster, type RepoKind, type TestCluster } from '../harness/cluster';
import { freePort, waitFor } from '../harness/ports';
import { useS3Env } from '../harness/services';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { readWalArchive } from '../../src/catalog/catalog';
import { initSandboxPrimary, startSandboxPrimary, type SandboxPg } from '../../src/dev/sandbox-pg';
import { openRepository } from '../../src/repository';
import { keys } from '../../src/repository/layout';
import { encodeWal } from '../../src/wal/compress';
import type { ReplayInput, ReplayProgress, RestoreInput, RestoreProgress, Target } from '../../src/recovery/contract';
import { loadRunbook } from '../../src/runbook/load';
import { clusterName, type Runbook } from '../../src/runbook/schema';
import { promoteRestored, replayWal, restoreBaseBackup, stopRestored } from '../../activities/restore';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = postgresTempDir('runbooks');
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  useS3Env();
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

interface Fixture {
  tc: TestCluster;
  runbook: Runbook;
  backup: BackupMeta;
  /** A time between the commits of ids 101-200 and 201-250. */
  afterBackupTime: string;
}

/** Rows 1-100 before the backup; the rest only reachable through the WAL archive. */
async function fixture(kind: RepoKind): Promise<Fixture> {
  const tc = await startTestCluster({ name: `rs-${kind}`, kind, runbooksDir, host: 'rs' });
  cleanups.push(() => tc.stop());
  const runbook = await loadRunbook(tc.name);
  const pg = tc.pg;
  await pg.query('create table t (id int primary key, v text)');
  await pg.query(`insert into t select g, 'before backup' from generate_series(1, 100) g`);
  const backup = await takeBaseBackup({ runbook });
  await pg.query(`insert into t select g, 'after backup' from generate_series(101, 200) g`);
  const [{ now }] = (await pg.query<{ now: string }>(
    `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as now`,
  )) as [{ now: string }];
  await switchAndWaitArchived(pg);
  await pg.query(`insert into t select g, 'after the time' from generate_series(201, 250) g`);
  await pg.query(`select pg_create_restore_point('before-bad-delete')`);
  await pg.query('delete from t where id > 50');
  await pg.query(`insert into t values (1000, 'after the restore point')`);
  await switchAndWaitArchived(pg);
  await pg.query(`insert into t values (2000, 'later')`);
  await pg.query(`select pg_create_restore_point('later-point')`);
  await pg.query(`insert into t values (3000, 'last row')`);
  await switchAndWaitArchived(pg);
  return { tc, runbook, backup, afterBackupTime: now };
}

function restoredClient(runbook: Runbook): Client {
  return new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
}

async function onRestored<T>(runbook: Runbook, sql: string): Promise<T[]> {
  const c = restoredClient(runbook);
  await c.connect();
  try {
    return (await c.query(sql)).rows as T[];
  } finally {
    await c.end();
  }
}

const ROWS = `select count(*)::int as n, max(id) as max, count(*) filter (where v = 'after backup')::int as after from t`;

async function pgCtlStatus(dataDir: string): Promise<number> {
  return asPostgres(`${PG_BIN}/pg_ctl`, ['status', '-D', dataDir]).then(
    () => 0,
    (e: { code?: number }) => e.code ?? 1,
  );
}

function restoreInput(f: Fixture, workflowId: string, over: Partial<RestoreInput> = {}): RestoreInput {
  return {
    runbook: f.tc.name,
    backupId: f.backup.backupId,
    mode: 'side-by-side',
    workflowId,
    runId: `${workflowId}-run`,
    ...over,
  };
}

function replayInput(f: Fixture, workflowId: string, target: Target, over: Partial<ReplayInput> = {}): ReplayInput {
  return { runbook: f.tc.name, target, workflowId, runId: `${workflowId}-run`, ...over };
}

describe('restore-base-backup and replay-wal from a file:// repository', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture('file');
  });
  afterEach(async () => {
    if (f) await clearRestoredCopies(f.runbook.restore.dataDir);
  });

  it('restores, replays to a time target and pauses with the rows of that moment; a retry returns the same restore, a restore again moves the copy aside', async () => {
    const dataDir = f.runbook.restore.dataDir;
    const { result: restored, beats } = await activity(restoreBaseBackup, restoreInput(f, 'wf-time'));
    // The parts of the data directory (backup.json version 2), without the manifest.
    const stored = {
      storedSize: f.backup.files.filter((x) => x.name !== 'backup_manifest').reduce((n, x) => n + x.storedSize, 0),
    };
    expect(restored).toEqual({
      dataDir,
      port: f.runbook.restore.port,
      bytes: f.backup.sizeBytes,
      files: expect.any(Number) as number,
      finishedAt: expect.any(String) as string,
    });
    expect(restored.files).toBeGreaterThan(900);
    const progress = beats as RestoreProgress[];
    expect(progress[0]).toEqual({ phase: 'preparing', bytes: 0, totalBytes: 0, text: 'preparing the data directory' });
    expect(progress.some((p) => p.phase === 'downloading' && p.bytes > 0 && p.totalBytes === stored.storedSize)).toBe(
      true,
    );
    expect(progress.at(-1)).toEqual({
      phase: 'done',
      bytes: stored.storedSize,
      totalBytes: stored.storedSize,
      text: expect.stringMatching(/^restored: .* \(100 %\)$/) as string,
    });
    // The OS user owns the copy, mode 0700, and the marker says whose it is.
    const st = statSync(dataDir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(statSync(f.tc.pg.dataDir).uid);
    expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      workflowId: 'wf-time',
      runId: 'wf-time-run',
      backupId: f.backup.backupId,
      state: 'extracted',
    });

    // A retry after the extraction finished returns the same restore, untouched.
    expect((await activity(restoreBaseBackup, restoreInput(f, 'wf-time'))).result).toEqual(restored);

    const target = { time: f.afterBackupTime };
    const { result: replayed, beats: replayBeats } = await activity(replayWal, replayInput(f, 'wf-time', target));
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 200, max: 200, after: 100 }]);
    expect(
      await onRestored(f.runbook, 'select pg_is_in_recovery() as r, pg_get_wal_replay_pause_state() as s'),
    ).toEqual([{ r: true, s: 'paused' }]);
    const [pos] = await onRestored<{ lsn: string }>(f.runbook, 'select pg_last_wal_replay_lsn()::text as lsn');
    const lsnValue = (l: string) => BigInt(`0x${l.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${l.split('/')[1]}`);
    const replayedBytes = Number(lsnValue(pos!.lsn) - lsnValue(f.backup.startLsn));
    expect(replayed).toEqual({
      paused: true,
      lsn: pos!.lsn,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/) as string,
      timeline: 1,
      walSegmentsReplayed:
        Math.floor((Number(lsnValue(pos!.lsn)) - 1) / 16777216) -
        Math.floor(Number(lsnValue(f.backup.startLsn)) / 16777216) +
        1,
      walBytesReplayed: replayedBytes,
    });
    expect(replayed.time! <= f.afterBackupTime).toBe(true);
    const rp = replayBeats as ReplayProgress[];
    expect(rp.at(-1)).toEqual({
      phase: 'paused',
      startLsn: f.backup.startLsn,
      targetTime: f.afterBackupTime,
      lsn: pos!.lsn,
      time: replayed.time,
      text: `paused at ${pos!.lsn}; last commit ${replayed.time}, target ${f.afterBackupTime}`,
    });

    // Restoring again for this workflow (a retarget to an earlier point):
    // the paused copy is stopped and moved aside, never deleted.
    const { result: again } = await activity(restoreBaseBackup, restoreInput(f, 'wf-time'));
    expect(again.movedAside).toMatch(new RegExp(`^${dataDir.replace(/[.]/g, '\\.')}\\.lifeboat-\\d{8}T\\d{6}Z$`));
    expect(await pgCtlStatus(again.movedAside!)).toBe(3);
    expect(existsSync(path.join(again.movedAside!, 'backup_label.old'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'backup_label'))).toBe(true);
  });

  it('refuses a data directory that is not empty and not its own, and leaves it untouched', async () => {
    const dataDir = f.runbook.restore.dataDir;
    mkdirSync(path.join(dataDir, 'keep'), { recursive: true });
    writeFileSync(path.join(dataDir, 'customer-data.csv'), 'id,name\n1,alice\n');
    await expect(activity(restoreBaseBackup, restoreInput(f, 'wf-foreign'))).rejects.toMatchObject({
      type: 'DATA_DIR_NOT_EMPTY',
      nonRetryable: true,
      message: [
        `restore.dataDir ${dataDir} is not empty and was not restored by this recovery (workflow wf-foreign): it holds 2 entries (customer-data.csv, keep)`,
        'HINT: Lifeboat never deletes a data directory it cannot prove is its own; nothing in it was changed',
        `HINT: if it is no longer needed, move it away (as root or postgres): mv ${dataDir} ${dataDir}.old-$(date -u +%Y%m%dT%H%M%SZ), then retry the step`,
        `HINT: or set restore.dataDir in runbook ${f.tc.name} to an absent or empty directory`,
      ].join('\n'),
    });
    expect(readdirSync(dataDir).sort()).toEqual(['customer-data.csv', 'keep']);
    expect(readFileSync(path.join(dataDir, 'customer-data.csv'), 'utf8')).toBe('id,name\n1,alice\n');
    expect(readdirSync(path.dirname(dataDir)).filter((n) => n.startsWith(`${path.basename(dataDir)}.`))).toEqual([]);
  });

  it('fails with BACKUP_NOT_FOUND for a backup the repository does not have, before touching the directory', async () => {
    await expect(
      activity(restoreBaseBackup, restoreInput(f, 'wf-missing', { backupId: '20000101T000000Z' })),
    ).rejects.toMatchObject({
      type: 'BACKUP_NOT_FOUND',
      nonRetryable: true,
      message: [
        `backup 20000101T000000Z of cluster ${f.tc.name} is not in ${f.tc.repoUrl}`,
        `HINT: complete backups there: ${f.backup.backupId}`,
        `HINT: list them with: lifeboat backups --runbook ${f.tc.name}`,
        'HINT: start the recovery again with one of them (or without backupId, so preflight chooses)',
      ].join('\n'),
    });
    expect(existsSync(f.runbook.restore.dataDir)).toBe(false);
  });

  it('in-place: stops the old primary, moves its whole directory aside and keeps every file of it', async () => {
    const dataDir = f.runbook.restore.dataDir;
    const old: SandboxPg = {
      dataDir,
      port: await freePort(),
      socketDir: path.dirname(dataDir),
      logFile: path.join(path.dirname(dataDir), 'old-primary.log'),
      pgBin: PG_BIN,
      osUser: 'postgres',
    };
    await initSandboxPrimary(old);
    await startSandboxPrimary(old);
    await asPostgres(`${PG_BIN}/psql`, [
      '-h',
      '127.0.0.1',
      '-p',
      String(old.port),
      '-U',
      'postgres',
      '-c',
      'create table only_on_the_old_primary (x int)',
    ]);
    const before = readdirSync(dataDir)
      .filter((n) => !n.startsWith('postmaster.'))
      .sort();

    const { result } = await activity(restoreBaseBackup, restoreInput(f, 'wf-inplace', { mode: 'in-place' }));
    expect(result.movedAside).toMatch(
      new RegExp(`^${dataDir.replace(/[.]/g, '\\.')}\\.lifeboat-moved-\\d{8}T\\d{6}Z$`),
    );
    const moved = result.movedAside!;
    expect(await pgCtlStatus(moved)).toBe(3);
    expect(
      readdirSync(moved)
        .filter((n) => !n.startsWith('postmaster.'))
        .sort(),
    ).toEqual(before);
    expect(readFileSync(path.join(moved, 'PG_VERSION'), 'utf8').trim()).toBe('15');
    // The restored directory is the backup's, not the old primary's.
    expect(existsSync(path.join(dataDir, 'backup_label'))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      state: 'extracted',
      movedAside: moved,
      mode: 'in-place',
    });
  });

  it('replays to a restore point name; a second replay-wal while it runs only waits; continueFrom a later target goes on without extracting again', async () => {
    const dataDir = f.runbook.restore.dataDir;
    await activity(restoreBaseBackup, restoreInput(f, 'wf-name'));
    const ino = statSync(dataDir).ino;
    const input = replayInput(f, 'wf-name', { name: 'before-bad-delete' });

    const env = new MockActivityEnvironment();
    const beats: ReplayProgress[] = [];
    env.on('heartbeat', (d: ReplayProgress) => beats.push(d));
    const first = env.run(replayWal, input);
    await waitFor('the first replay-wal to start PostgreSQL', async () => (beats.length > 0 ? true : undefined), {
      timeoutMs: 60_000,
    });
    const { result: second } = await activity(replayWal, input);
    expect(await first).toEqual(second);
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 250, max: 250, after: 100 }]);
    const marker = JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8')) as {
      logFile: string;
    };
    const starts = () =>
      readFileSync(marker.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('starting PostgreSQL')).length;
    expect(starts()).toBe(1);

    const { result: later } = await activity(
      replayWal,
      replayInput(f, 'wf-name', { name: 'later-point' }, { continueFrom: true }),
    );
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 52, max: 2000, after: 0 }]);
    expect(BigInt(later.walBytesReplayed)).toBeGreaterThan(BigInt(second.walBytesReplayed));
    expect(statSync(dataDir).ino).toBe(ino);
    expect(
      readdirSync(path.dirname(dataDir)).filter((n) => n.startsWith(`${path.basename(dataDir)}.lifeboat-2`)),
    ).toEqual([]);
    expect(starts()).toBe(2);

    const { result: stopped } = await activity(stopRestored, { runbook: f.tc.name, workflowId: 'wf-name' });
    expect(stopped).toEqual({ stopped: true, dataDir });
    expect(await pgCtlStatus(dataDir)).toBe(3);
  });

  it('fails with RECOVERY_ENDED_BEFORE_TARGET for a target past the end of the archive, and promotes nothing', async () => {
    const dataDir = f.runbook.restore.dataDir;
    await activity(restoreBaseBackup, restoreInput(f, 'wf-past'));
    const future = new Date(Date.now() + 3600_000).toISOString();
    const [archiver] = await f.tc.pg.query<{ last: string }>('select last_archived_wal as last from pg_stat_archiver');
    const err = await activity(replayWal, replayInput(f, 'wf-past', { time: future })).then(
      () => undefined,
      (e: { type: string; nonRetryable: boolean; message: string }) => e,
    );
    expect(err).toMatchObject({ type: 'RECOVERY_ENDED_BEFORE_TARGET', nonRetryable: true });
    const log = `${dataDir}.lifeboat-postgres.log`;
    const reached =
      /^recovery of rs-file in \S+ ended before reaching time \S+: the archive ends at segment \S+ \(replay reached LSN ([0-9A-F/]+), last commit at (.+)\)\n/.exec(
        err!.message,
      );
    expect(reached).not.toBeNull();
    const [, lsn, commit] = reached!;
    expect(err!.message).toBe(
      [
        `recovery of rs-file in ${dataDir} ended before reaching time ${future}: the archive ends at segment ${archiver!.last} (replay reached LSN ${lsn}, last commit at ${commit})`,
        `HINT: choose an earlier target: the furthest this archive reaches is LSN ${lsn}, last commit at ${commit}`,
        `HINT: if WAL after ${archiver!.last} should exist, check the archiver on the primary: select last_archived_wal, last_failed_wal, failed_count from pg_stat_archiver; and run lifeboat check --runbook rs-file`,
        `HINT: nothing was promoted: PostgreSQL in ${dataDir} has stopped, still in archive recovery (server log: ${log})`,
      ].join('\n'),
    );
    expect(await pgCtlStatus(dataDir)).toBe(3);
    const control = await asPostgres(`${PG_BIN}/pg_controldata`, [dataDir]);
    expect(control).toMatch(/Database cluster state:\s+in archive recovery/);
    expect(control).toMatch(/Latest checkpoint's TimeLineID:\s+1\n/);
    const repo = await openRepository(f.tc.repoUrl, f.runbook.repository);
    expect(Object.keys((await readWalArchive(repo, f.tc.name)).histories)).toEqual([]);
  });

  it('a cancelled replay-wal stops waiting and leaves PostgreSQL replaying; the next call (a new worker) only waits for the pause', async () => {
    const dataDir = f.runbook.restore.dataDir;
    await activity(restoreBaseBackup, restoreInput(f, 'wf-cancel'));
    const input = replayInput(f, 'wf-cancel', { latest: true });
    const env = new MockActivityEnvironment();
    const beats: ReplayProgress[] = [];
    env.on('heartbeat', (d: ReplayProgress) => beats.push(d));
    const first = env.run(replayWal, input);
    await waitFor('replay to begin', async () => (beats.some((b) => b.phase === 'replaying') ? true : undefined), {
      timeoutMs: 60_000,
    });
    env.cancel();
    await expect(first).rejects.toBeInstanceOf(CancelledFailure);
    expect(await pgCtlStatus(dataDir)).toBe(0);

    const { result } = await activity(replayWal, input);
    expect(result).toMatchObject({ paused: true, timeline: 1 });
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 53, max: 3000, after: 0 }]);
    const marker = JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8')) as {
      logFile: string;
    };
    expect(
      readFileSync(marker.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('starting PostgreSQL')),
    ).toHaveLength(1);
  });

  // Last in this cluster: the promoted copy archives a new timeline into the
  // repository, which every later replay to 'latest' would follow.
  it('replays to the end of the archive and pauses without promoting; promote then makes it writable on a new timeline and removes the prefetch spool; a later replay to latest follows that timeline, not the old primary past the branch', async () => {
    const dataDir = f.runbook.restore.dataDir;
    await activity(restoreBaseBackup, restoreInput(f, 'wf-latest'));
    const { result: replayed } = await activity(replayWal, replayInput(f, 'wf-latest', { latest: true }));
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 53, max: 3000, after: 0 }]);
    expect(
      await onRestored(f.runbook, 'select pg_is_in_recovery() as r, pg_get_wal_replay_pause_state() as s'),
    ).toEqual([{ r: true, s: 'paused' }]);
    expect(replayed.timeline).toBe(1);
    expect(existsSync(path.join(dataDir, 'standby.signal'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'pg_wal', '.lifeboat-prefetch'))).toBe(true);

    const input = { runbook: f.tc.name, workflowId: 'wf-latest', runId: 'wf-latest-run' };
    const { result: promoted } = await activity(promoteRestored, input);
    expect(promoted).toEqual({
      promotedAt: expect.any(String) as string,
      timeline: 2,
      lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) as string,
    });
    await onRestored(f.runbook, `insert into t values (4000, 'written after promotion')`);
    expect(await onRestored(f.runbook, 'select pg_is_in_recovery() as r, count(*)::int as n from t')).toEqual([
      { r: false, n: 54 },
    ]);
    expect(existsSync(path.join(dataDir, 'pg_wal', '.lifeboat-prefetch'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(dataDir, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      state: 'promoted',
      promotedAt: promoted.promotedAt,
    });
    // Promoting again reports the promotion that happened.
    expect((await activity(promoteRestored, input)).result).toMatchObject({
      promotedAt: promoted.promotedAt,
      timeline: 2,
    });
    // A promoted copy may be the new primary: never replayed or restored over.
    await expect(activity(replayWal, replayInput(f, 'wf-latest', { latest: true }))).rejects.toMatchObject({
      type: 'PG_RUNNING',
      message: `replay-wal: the restored copy in ${dataDir} was already promoted at ${promoted.promotedAt}; it can replay no further\nHINT: a different target needs a fresh restore (retarget restores again)`,
    });
    await expect(activity(restoreBaseBackup, restoreInput(f, 'wf-latest'))).rejects.toMatchObject({
      type: 'DATA_DIR_NOT_EMPTY',
      message: [
        `restore.dataDir ${dataDir} holds this recovery's copy, promoted at ${promoted.promotedAt}; it is not restored over`,
        'HINT: a promoted copy may be serving as the primary: Lifeboat neither stops nor moves it',
        'HINT: if it truly must be replaced, stop it and move it away by hand, then retry the step',
      ].join('\n'),
    });
    expect(await pgCtlStatus(dataDir)).toBe(0);

    // The promoted copy is now timeline 2's primary, and the old primary goes
    // on archiving timeline 1 past the branch (issue 11, point 3): a replay to
    // latest follows timeline 2 to its end and pauses there, instead of
    // waiting for the old primary's further segments.
    const copy = { query: (sql: string) => onRestored(f.runbook, sql), dataDir } as unknown as Parameters<
      typeof switchAndWaitArchived
    >[0];
    const branchSegment = await switchAndWaitArchived(copy);
    // Until the old timeline reaches further than the new one: what "the newest segment of any timeline" picked.
    // archive-push now refuses the old primary's segments past the branch
    // (TIMELINE_SUPERSEDED); an archiver from before that, or another tool,
    // stored them: put each in the repository as it did, once PostgreSQL has
    // finished it (its .ready file).
    const repo = await openRepository(f.runbook.repository.url, f.runbook.repository);
    let oldEnd = '';
    for (let i = 0; i < 10 && !(oldEnd.slice(8) > branchSegment.slice(8)); i++) {
      await f.tc.pg.query(`insert into t values (${5000 + i}, 'old primary after the branch')`);
      const [row] = await f.tc.pg.query<{ w: string }>('select pg_walfile_name(pg_switch_wal()) as w');
      oldEnd = row!.w;
      const walPath = path.join(f.tc.pg.dataDir, 'pg_wal', oldEnd);
      await waitFor(
        `${oldEnd} finished`,
        async () =>
          existsSync(`${path.join(f.tc.pg.dataDir, 'pg_wal', 'archive_status', oldEnd)}.ready`) ? true : undefined,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const content = readFileSync(walPath);
      await repo.put(keys.wal(clusterName(f.runbook), oldEnd), await encodeWal(oldEnd, content), {
        sha256: createHash('sha256').update(content).digest('hex'),
        ifAbsent: true,
      });
    }
    expect(oldEnd.slice(8) > branchSegment.slice(8)).toBe(true);
    expect(branchSegment.slice(0, 8)).toBe('00000002');

    const drill = f.runbook.drill!;
    cleanups.push(() =>
      asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', drill.dataDir, '-m', 'immediate', '-w']).catch(() => ''),
    );
    await activity(restoreBaseBackup, restoreInput(f, 'wf-latest-tl2', { instance: 'drill' }));
    const { result } = await activity(
      replayWal,
      replayInput(f, 'wf-latest-tl2', { latest: true }, { instance: 'drill' }),
    );
    expect(result.paused).toBe(true);
    const c = new Client({ host: '127.0.0.1', port: drill.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      const { rows } = await c.query<{ ids: number[] }>(
        'select array_agg(id order by id) as ids from t where id >= 3000',
      );
      // Timeline 2's row is there, the old primary's row after the branch is not.
      expect(rows[0]!.ids).toEqual([3000, 4000]);
      const { rows: lsn } = await c.query<{ lsn: string }>('select pg_last_wal_replay_lsn()::text as lsn');
      console.log(
        `latest after a recovery: paused at ${lsn[0]!.lsn} (timeline 2 ends in ${branchSegment}; the old primary's timeline 1 reaches ${oldEnd})`,
      );
    } finally {
      await c.end();
    }
  });
});

describe('restore-base-backup and replay-wal from an s3:// repository', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture('s3');
  });
  afterEach(async () => {
    if (f) await clearRestoredCopies(f.runbook.restore.dataDir);
  });

  it('restores from MinIO and replays through archive-get to a restore point with exactly the rows of that moment', async () => {
    const { result: restored } = await activity(restoreBaseBackup, restoreInput(f, 'wf-s3'));
    expect(restored.bytes).toBe(f.backup.sizeBytes);
    const { result: replayed } = await activity(replayWal, replayInput(f, 'wf-s3', { name: 'before-bad-delete' }));
    expect(replayed).toMatchObject({ paused: true, timeline: 1 });
    expect(await onRestored(f.runbook, ROWS)).toEqual([{ n: 250, max: 250, after: 100 }]);
  });
});
