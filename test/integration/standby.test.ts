// The warm standby (DESIGN.md §4.4) on real services: a PostgreSQL 15
// primary archiving into a file:// repository, the standby built from its
// newest backup on the same machine, replaying from the archive `delay`
// behind. The moments observed are held, never waited out: a 1 h delay
// holds every new commit back for far longer than any test runs, and the
// standby's startup process is seen waiting on it (RecoveryApplyDelay).
import { appendFileSync, existsSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activity } from '../harness/activity';
import { cliRunner } from '../harness/cli';
import { startTestCluster, type TestCluster } from '../harness/cluster';
import { asPostgres, postgresTempDir, switchAndWaitArchived, PG_BIN } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { BackupMeta } from '../../src/catalog/backup-meta';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { buildStandby } from '../../src/standby/build';
import { observeStandby, readStandbyStatus, standbyLine } from '../../src/standby/status';
import { buildStandby as buildStandbyActivity, standbyStatus, useStandby } from '../../activities/standby';
import { replayWal, restoreBaseBackup } from '../../activities/restore';
import { cloneStandbyForDrill } from '../../activities/drill';
import { runCleanups } from '../harness/cleanups';

const runbooksDir = postgresTempDir('runbooks');
const lifeboat = cliRunner(() => ({ ...process.env, LIFEBOAT_RUNBOOKS_DIR: runbooksDir }));
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(() => {
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(runbooksDir, { recursive: true, force: true });
});

/** Stops every postmaster the test left in its own state directory (the standby, the restored copy, copies moved aside). */
async function stopAll(stateDir: string): Promise<void> {
  for (const e of readdirSync(stateDir)) {
    const p = path.join(stateDir, e);
    if (existsSync(path.join(p, 'postmaster.pid')))
      await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', p, '-m', 'immediate', '-w']).catch(() => '');
  }
}

/** The runbook file with its standby section set to `delay` (the file is the test's own). */
function setStandby(tc: TestCluster, port: number, delay: string): void {
  const text = readFileSync(tc.runbookFile, 'utf8').replace(/\nstandby: .*\n/, '\n');
  rmSync(tc.runbookFile);
  appendFileSync(
    tc.runbookFile,
    `${text.trimEnd()}\nstandby: { host: sb, dataDir: ${tc.stateDir}/standby, port: ${port}, delay: ${delay} }\n`,
  );
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
  const [row] = await tc.pg.query<{ t: string }>(
    `${sql} returning to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
  );
  return row!.t;
}

describe('the warm standby', () => {
  let tc: TestCluster;
  let port: number;
  let backup: BackupMeta;
  /** The newest backup, once the second test took it. */
  let newest: BackupMeta;

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
    expect(built).toMatchObject({
      action: 'built',
      backupId: backup.backupId,
      status: { state: 'replaying', healthy: true, backupId: backup.backupId, delaySeconds: 3600 },
    });
    expect(built.why).toBe(
      `built from backup ${backup.backupId}, the newest whose WAL reaches the archive's end without a gap`,
    );
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 100 }]);
    // Its settings: the apply delay, no archiving, loopback only, standby.signal.
    const auto = readFileSync(path.join(runbook.standby!.dataDir, 'postgresql.auto.conf'), 'utf8');
    expect(auto).toContain(`recovery_min_apply_delay = '3600s'`);
    expect(auto).toContain(`archive_mode = off`);
    expect(auto).toContain(`listen_addresses = '127.0.0.1'`);
    expect(auto).toContain(`port = ${port}`);
    expect(existsSync(path.join(runbook.standby!.dataDir, 'standby.signal'))).toBe(true);
    // Drills clone it over loopback as the runbook's role (postgres here): one line appended to its own pg_hba.conf.
    expect(readFileSync(path.join(runbook.standby!.dataDir, 'pg_hba.conf'), 'utf8')).toMatch(
      /\n# lifeboat: drills clone the standby with pg_basebackup over loopback, as the runbook role\nhost replication postgres 127\.0\.0\.1\/32 md5\n$/,
    );
    expect(await onStandby(runbook, 'select pg_is_in_recovery() as r')).toEqual([{ r: true }]);

    // Rows committed after a restore point reach the archive...
    await tc.pg.query(`select pg_create_restore_point('standby-lag')`);
    const committed = await commitTime(
      tc,
      `insert into t select g, 'after the standby' from generate_series(101, 110) g`,
    );
    await switchAndWaitArchived(tc.pg);
    // ...and the standby holds their commit back: its startup process waits on the delay.
    await waitFor(
      'the standby to hold a commit back for its delay',
      async () => ((await observeStandby(runbook)).delayWait ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 100 }]);
    const { result: status } = await activity(standbyStatus, { runbook: tc.name });
    expect(status).toMatchObject({
      state: 'replaying',
      healthy: true,
      waitingForDelay: true,
      pauseState: 'not paused',
      warnings: [],
    });
    expect(status.lastReplayTime === undefined || status.lastReplayTime < committed).toBe(true);
    expect(status.segmentsBehind).toBeGreaterThanOrEqual(0);
    expect(standbyLine(status)).toMatch(
      new RegExp(
        `^standby ${runbook.standby!.dataDir} \\(port ${port}, delay 1h\\): replaying, replayed to [0-9A-F]+/[0-9A-F]+, .*segment\\(s\\) behind the archive's newest [0-9A-F]{24}, holding a commit back for its delay, built from backup ${backup.backupId}$`,
      ),
    );

    // The same through the CLI an operator runs on the host (bin/lifeboat: npm run build first).
    const status1 = await lifeboat('standby', 'status', '--runbook', tc.name);
    expect(status1).toMatchObject({ code: 0, stderr: '' });
    expect(status1.stdout).toMatch(
      new RegExp(
        `^standby ${runbook.standby!.dataDir} \\(port ${port}, delay 1h\\): replaying, .*, holding a commit back for its delay, built from backup ${backup.backupId}\nserver log: ${runbook.standby!.dataDir}\\.lifeboat-postgres\\.log\n$`,
      ),
    );
    // check reads the standby on its host only: --host sb says this is it.
    const check = await lifeboat('check', '--runbook', tc.name, '--host', 'sb', '--json');
    expect(JSON.parse(check.stdout)).toMatchObject({
      standby: { state: 'replaying', healthy: true, waitingForDelay: true, backupId: backup.backupId },
    });
    expect((await lifeboat('check', '--runbook', tc.name, '--host', 'sb')).stdout).toContain(
      `\nstandby ${runbook.standby!.dataDir} (port ${port}, delay 1h): replaying, replayed to `,
    );

    // On any other host (the primary's, where cron runs check) the standby is not read: it says where it is checked, healthy.
    const onPrimary = await lifeboat('check', '--runbook', tc.name, '--host', 'db-primary');
    expect(onPrimary).toMatchObject({ code: 0, stderr: '' });
    expect(onPrimary.stdout).toContain(
      `\nstandby: checked on host sb, not here (db-primary): lifeboat check --runbook ${tc.name} --host sb on that host reports it\n`,
    );
    expect(onPrimary.stdout).not.toContain('FELL OFF');
    expect(onPrimary.stdout).toMatch(/\nhealthy\n$/);
    expect(
      JSON.parse((await lifeboat('check', '--runbook', tc.name, '--host', 'db-primary', '--json')).stdout),
    ).toMatchObject({ healthy: true, standbyCheckedOn: 'sb', problems: [] });
    // Without --host the OS host name decides (this machine is not called sb).
    const plain = await lifeboat('check', '--runbook', tc.name);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain(`\nstandby: checked on host sb, not here (${os.hostname()}): `);
    // Built again while healthy: kept as it is.
    const { result: again } = await activity(buildStandbyActivity, { runbook: tc.name });
    expect(again).toMatchObject({
      action: 'reused',
      backupId: backup.backupId,
      why: 'the standby is running and keeps up with the archive',
    });
  });

  it('is restarted, not rebuilt, when only stopped; and rebuilt from a newer backup, its old copy moved aside, once it fell off the archive', async () => {
    const runbook = await loadRunbook(tc.name);
    const dataDir = runbook.standby!.dataDir;
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir, '-m', 'fast', '-w']);
    const stopped = await readStandbyStatus(runbook);
    expect(stopped).toMatchObject({
      state: 'stopped',
      healthy: false,
      warnings: [`its PostgreSQL is not running: lifeboat standby build --runbook ${tc.name} starts it again`],
    });
    expect(stopped.fellOff).toBeUndefined();
    // A drill asked to clone it falls back to the backup, saying why; nothing is made in drill.dataDir.
    const { result: declined } = await activity(cloneStandbyForDrill, {
      runbook: tc.name,
      target: { latest: true },
      workflowId: 'wf-drill-stopped',
      runId: 'wf-drill-stopped-run',
    });
    expect(declined).toEqual({
      used: false,
      why: `the standby is not usable: its PostgreSQL is not running: lifeboat standby build --runbook ${tc.name} starts it again`,
    });
    expect(existsSync(runbook.drill!.dataDir)).toBe(false);
    const restarted = await buildStandby(runbook);
    expect(restarted).toMatchObject({
      action: 'restarted',
      why: 'the standby was stopped; it resumes from its last restartpoint',
      status: { state: 'replaying' },
    });

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
    expect(fell).toMatchObject({
      state: 'replaying',
      healthy: false,
      fellOff: expect.stringMatching(
        new RegExp(
          `^the archive has no segment ${next} after the standby's replay position [0-9A-F]+/[0-9A-F]+, but has later ones up to [0-9A-F]{24}: it can never catch up$`,
        ),
      ) as string,
    });
    expect(standbyLine(fell)).toContain(': FELL OFF, ');
    const checked = await lifeboat('check', '--runbook', tc.name, '--host', 'sb');
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain(
      `standby in ${dataDir}: ${fell.fellOff}; recoveries restore from a backup until it is rebuilt\n  HINT: rebuild it: lifeboat standby build --runbook ${tc.name} (on host sb); the old copy is moved aside, never deleted\n`,
    );
    const fellStatus = await lifeboat('standby', 'status', '--runbook', tc.name);
    expect(fellStatus.code).toBe(1);
    expect(fellStatus.stdout).toContain('HINT: rebuild it: lifeboat standby build (it moves the old copy aside)');

    // The only backup lies before the gap: no standby can be built from it.
    await expect(buildStandby(runbook)).rejects.toMatchObject({
      code: 'BACKUP_NOT_FOUND',
      what: expect.stringContaining('lies before a gap in the WAL archive') as string,
    });
    // A new backup after the gap: the rebuild uses it and keeps the old copy.
    const newer = await takeBaseBackup({ runbook });
    const rebuilt = await buildStandby(runbook);
    expect(rebuilt).toMatchObject({
      action: 'built',
      backupId: newer.backupId,
      status: { state: 'replaying', healthy: true },
    });
    expect(rebuilt.why).toMatch(
      new RegExp(`^rebuilt from backup ${newer.backupId}, .*: the archive has no segment ${next} `),
    );
    expect(rebuilt.movedAside).toMatch(new RegExp(`^${dataDir.replace(/[.]/g, '\\.')}\\.lifeboat-\\d{8}T\\d{6}Z$`));
    expect(JSON.parse(readFileSync(path.join(rebuilt.movedAside!, '.lifeboat-restore.json'), 'utf8'))).toMatchObject({
      workflowId: `lifeboat-standby-${tc.name}`,
      instance: 'standby',
    });
    expect(await onStandby(runbook, 'select count(*)::int as n from t')).toEqual([{ n: 112 }]);
    // The archive healed again (the segment put back): older backups restore through it.
    for (const f of moved) renameSync(path.join(hidden, f), path.join(repoWal, f));
    newest = newer;
  });

  it('is taken over by a recovery whose target is after its position (replay goes on to the target and pauses), and declines one before it, untouched', async () => {
    const runbook = await loadRunbook(tc.name);
    const standbyDir = runbook.standby!.dataDir;
    await tc.pg.query(`insert into t select g, 'before the target' from generate_series(300, 309) g`);
    const [{ t: target }] = (await tc.pg.query<{ t: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
    )) as [{ t: string }];
    await tc.pg.query(`insert into t select g, 'after the target' from generate_series(400, 409) g`);
    await switchAndWaitArchived(tc.pg);

    // Targets before its position: an early LSN, a time before its backup ended. Nothing is touched.
    for (const [early, reason, found] of [
      [
        { lsn: '0/1000000' },
        /at or after LSN 0\/1000000: PostgreSQL cannot replay backwards, so the backup path restores instead$/,
      ],
      // A restore point where preflight found it, before the standby's position: judged from that, not searched again.
      [
        { name: 'made-early' },
        /at or after restore point "made-early" \(LSN 0\/1000000, where preflight found it\): PostgreSQL cannot replay backwards/,
        { lsn: '0/1000000', searchedFrom: '0/0' },
      ],
      [
        { time: newest.startTime },
        new RegExp(
          `not before time ${newest.startTime.replace(/[.]/g, '\\.')}: PostgreSQL cannot replay backwards, so the backup path restores instead$`,
        ),
      ],
    ] as const) {
      const { result: declined } = await activity(useStandby, {
        runbook: tc.name,
        target: early,
        mode: 'side-by-side',
        workflowId: 'wf-early',
        runId: 'wf-early-run',
        ...(found ? { restorePoint: found } : {}),
      });
      expect(declined.used).toBe(false);
      expect(declined.why).toMatch(/^the standby had replayed to LSN [0-9A-F]+\/[0-9A-F]+/);
      expect(declined.why).toMatch(reason);
      expect(await readStandbyStatus(runbook)).toMatchObject({
        state: 'replaying',
        healthy: true,
        pauseState: 'not paused',
      });
      expect(existsSync(runbook.restore.dataDir)).toBe(false);
    }

    // A target after its position: paused, stopped, moved into restore.dataDir; replay-wal goes on from there.
    const viaStandby = Date.now();
    const { result: used } = await activity(useStandby, {
      runbook: tc.name,
      target: { time: target },
      mode: 'side-by-side',
      workflowId: 'wf-warm',
      runId: 'wf-warm-run',
    });
    expect(used).toMatchObject({
      used: true,
      result: {
        dataDir: runbook.restore.dataDir,
        port: runbook.restore.port,
        standby: { from: standbyDir, backupId: newest.backupId, walSegmentSize: 16777216 },
      },
    });
    expect(used.why).toMatch(
      new RegExp(
        `^the standby \\(delay 1h\\) had replayed to LSN [0-9A-F]+/[0-9A-F]+.*, before time ${target.replace(/[.]/g, '\\.')}: replay goes on from there instead of restoring a backup$`,
      ),
    );
    expect(existsSync(standbyDir)).toBe(false);
    // Run twice: the second call finds the takeover done and returns it as it was.
    expect(
      (
        await activity(useStandby, {
          runbook: tc.name,
          target: { time: target },
          mode: 'side-by-side',
          workflowId: 'wf-warm',
          runId: 'wf-warm-run',
        })
      ).result,
    ).toEqual(used);
    const { result: replayed } = await activity(replayWal, {
      runbook: tc.name,
      target: { time: target },
      workflowId: 'wf-warm',
      runId: 'wf-warm-run',
    });
    const warmMs = Date.now() - viaStandby;
    expect(replayed.paused).toBe(true);
    const rows = async () => {
      const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      try {
        return (
          await c.query(
            'select count(*)::int as n, max(id) as max, pg_is_in_recovery() as r, pg_get_wal_replay_pause_state() as s from t',
          )
        ).rows;
      } finally {
        await c.end();
      }
    };
    expect(await rows()).toEqual([{ n: 122, max: 309, r: true, s: 'paused' }]);
    // Its delay went with the standby's settings; the standby is gone until rebuilt.
    expect(readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8')).not.toContain(
      'recovery_min_apply_delay',
    );
    // Its status says which recovery took it and how to rebuild it (the copy's marker tells), on its host only.
    const takenAt = used.used ? used.result.finishedAt : '';
    const fellOff = `standby taken over by recovery wf-warm at ${takenAt}; rebuild it with lifeboat standby build --runbook ${tc.name}`;
    expect(await readStandbyStatus(runbook)).toMatchObject({
      state: 'absent',
      healthy: false,
      takenOver: { workflowId: 'wf-warm', at: takenAt, into: runbook.restore.dataDir },
      fellOff,
    });
    const taken = await lifeboat('check', '--runbook', tc.name, '--host', 'sb');
    expect(taken.code).toBe(1);
    expect(taken.stdout).toContain(
      `\nstandby ${standbyDir}: ${fellOff}\n  HINT: it became the recovery's copy in ${runbook.restore.dataDir}; until it is rebuilt, recoveries restore from a backup (nothing rebuilds it on its own): lifeboat standby build --runbook ${tc.name} (on host sb)\n`,
    );

    // The same target from the newest backup, for the measured comparison.
    await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', runbook.restore.dataDir, '-m', 'immediate', '-w']);
    rmSync(runbook.restore.dataDir, { recursive: true, force: true }); // the test's own state directory
    const viaBackup = Date.now();
    await activity(restoreBaseBackup, {
      runbook: tc.name,
      backupId: newest.backupId,
      mode: 'side-by-side',
      workflowId: 'wf-cold',
      runId: 'wf-cold-run',
    });
    await activity(replayWal, {
      runbook: tc.name,
      target: { time: target },
      workflowId: 'wf-cold',
      runId: 'wf-cold-run',
    });
    const coldMs = Date.now() - viaBackup;
    expect(await rows()).toEqual([{ n: 122, max: 309, r: true, s: 'paused' }]);
    process.stdout.write(
      `standby RTO to the paused copy (small database, loaded machine): via the standby ${warmMs} ms, via backup ${newest.backupId} ${coldMs} ms\n`,
    );
  });
});
