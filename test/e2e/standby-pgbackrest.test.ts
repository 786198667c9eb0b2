// The warm standby on a pgBackRest stanza (issue 18), end to end on real
// services: a PostgreSQL 15 primary archiving through `pgbackrest
// archive-push` into a posix repository (test/harness/pgbackrest-e2e.ts), the
// standby built by the buildStandby activity with `pgbackrest restore
// --type=standby`, 1 h behind, replaying through pgBackRest's archive-get.
// The 1 h delay holds every later commit back for longer than the test runs:
// what is observed is held (the standby's startup process waiting on a
// commit's delay), never waited out. `lifeboat check` on the standby's host
// reports it; a drill asked to use it clones it (and leaves it replaying, its
// own directory untouched); a recovery to a time after its position takes
// it over, the promoted copy holds exactly the rows of the target and
// archives into the stanza on its new timeline, and the evidence names the
// engine and the standby.
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { buildStandby } from '../../activities/standby';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate } from '../../src/recovery/messages';
import { BLOCK_BEGIN } from '../../src/restore/recovery-conf';
import { isBeforeTarget } from '../../src/standby/adopt';
import { observeStandby, readStandbyStatus } from '../../src/standby/status';
import { startWorkers } from '../../src/worker';
import { activity } from '../harness/activity';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { waitForStep } from '../harness/faults-cluster';
import { seedOrders, startPgBackRestRunbook, stopCopy } from '../harness/pgbackrest-e2e';
import { switchAndWaitArchived } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

/** How long a step of a run took, from its evidence. */
const seconds = (e: Evidence, id: string) => {
  const st = e.steps.find((x) => x.id === id)!;
  return (Date.parse(st.finishedAt!) - Date.parse(st.startedAt!)) / 1000;
};
const lsnNum = (l: string) => BigInt(`0x${l.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${l.split('/')[1]}`);

describe('the warm standby on a pgBackRest stanza', () => {
  it('is built with pgbackrest restore --type=standby, follows the stanza, shows in lifeboat check, is cloned by a drill and taken over by a recovery to the exact rows of the target; the evidence names the engine', async () => {
    const name = 'brstandby';
    const host = `${name}${process.pid}`;
    const standbyPort = await freePort();
    let standbyDir = '';
    const r = await startPgBackRestRunbook(cleanups, {
      name,
      host,
      // Beside restore.dataDir, on one file system: a recovery moves the standby there by a rename.
      edit: (yaml) => {
        const stateDir = /dataDir: (\S+)\/recovery,/.exec(yaml)![1]!;
        standbyDir = `${stateDir}/standby`;
        return `${yaml}standby: { host: ${host}, dataDir: ${standbyDir}, port: ${standbyPort}, delay: 1h }\n`;
      },
    });
    cleanups.push(() => stopCopy(standbyDir));
    const runbook = await r.load();
    const pg = r.s.primary;
    const at = async () =>
      (
        await pg.query<{ t: string }>(
          `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
        )
      )[0]!.t;
    // The demo's orders, gates and outbox (the runbook's invariants and fence), and the rows the test counts.
    await seedOrders(pg);
    await pg.query('create table t (id int primary key, batch int)');
    await pg.query(`insert into t select g, 1 from generate_series(1, 100) g`);
    const backup = await r.engine.takeBackup({ type: 'full' });

    // 1. Built through the activity (no refusal on this engine) from pgBackRest's backup.
    const buildStarted = Date.now();
    const { result: built } = await activity(buildStandby, { runbook: name });
    const buildSeconds = (Date.now() - buildStarted) / 1000;
    expect(built).toMatchObject({
      action: 'built',
      backupId: backup.backupId,
      why: `built from backup ${backup.backupId}, the newest whose WAL reaches the archive's end without a gap`,
    });
    // pgBackRest wrote its restore_command for this directory; Lifeboat's block repeats it, with the delay, never archiving.
    const conf = readFileSync(path.join(standbyDir, 'postgresql.auto.conf'), 'utf8');
    const [outside, block] = [conf.slice(0, conf.indexOf(BLOCK_BEGIN)), conf.slice(conf.indexOf(BLOCK_BEGIN))];
    const restoreCommand = new RegExp(
      `^restore_command = 'pgbackrest .*--pg1-path=${standbyDir} .*--stanza=${r.s.stanza} archive-get %f "%p"'$`,
      'm',
    );
    expect(outside).toMatch(restoreCommand);
    expect(outside).toContain(`archive_mode = 'off'`);
    expect(block).toMatch(restoreCommand);
    expect(block).toContain(`recovery_min_apply_delay = '3600s'`);
    expect(block).toContain('archive_mode = off');
    expect(existsSync(path.join(standbyDir, 'standby.signal'))).toBe(true);

    // 2. It follows the stanza's archive: batch 2's commit, archived after the backup, is read and held for the delay.
    await pg.query(`insert into t select g, 2 from generate_series(101, 200) g`);
    const afterBatch2 = await at();
    await pg.query(`insert into t select g, 3 from generate_series(201, 300) g`);
    const afterBatch3 = await at();
    await pg.query(`insert into t select g, 4 from generate_series(301, 400) g`);
    await pg.query(`select pg_create_restore_point('after-batch-4')`);
    await switchAndWaitArchived(pg);
    await waitFor(
      'the standby to hold batch 2 back for its delay',
      async () => ((await observeStandby(runbook)).delayWait ? true : undefined),
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    const status = await readStandbyStatus(runbook);
    expect(status).toMatchObject({
      state: 'replaying',
      healthy: true,
      waitingForDelay: true,
      backupId: backup.backupId,
      pauseState: 'not paused',
      warnings: [],
    });
    // Its lag from the stanza's own listing (pgbackrest repo-ls): the newest segment, on timeline 1.
    const newest = JSON.parse(await r.s.run(['info', '--output=json'])) as Array<{ archive: Array<{ max: string }> }>;
    expect(status.archiveNewest).toBe(newest[0]!.archive[0]!.max);
    expect(status.segmentsBehind).toBeGreaterThanOrEqual(0);
    // A restore point is placed against its position by searching the stanza's archive from there (archive-get, pg_waldump).
    const isBefore = (name: string) =>
      isBeforeTarget(runbook, { name }, { lsn: status.replayLsn! }, backup.backupId, status.backup!);
    expect(await isBefore('after-batch-4')).toBe(true);
    expect(await isBefore('before')).toBe(
      `the archive holds no restore point "before" after its position ${status.replayLsn}`,
    );

    // 3. lifeboat check on the standby's host: its line and healthy (pgbackrest check switched a segment: newer); elsewhere, where to look.
    const check = await r.lifeboat('check', '--runbook', name, '--host', host);
    expect(check.stdout).toMatch(
      new RegExp(
        `\\nstandby ${standbyDir} \\(port ${standbyPort}, delay 1h\\): replaying, replayed to [0-9A-F]+/[0-9A-F]+, .*\\d+ segment\\(s\\) behind the archive's newest [0-9A-F]{24}, holding a commit back for its delay, built from backup ${backup.backupId}\\n`,
      ),
    );
    expect([check.code, check.stdout.trimEnd().split('\n').pop()]).toEqual([0, 'healthy']);
    const json = JSON.parse((await r.lifeboat('check', '--runbook', name, '--host', host, '--json')).stdout) as {
      engine: string;
      standby: { state: string; backupId: string };
    };
    expect(json).toMatchObject({ engine: 'pgbackrest', standby: { state: 'replaying', backupId: backup.backupId } });
    const elsewhere = await r.lifeboat('check', '--runbook', name, '--host', 'another-host');
    expect(elsewhere.stdout).toContain(
      `\nstandby: checked on host ${host}, not here (another-host): lifeboat check --runbook ${name} --host ${host} on that host reports it\n`,
    );

    const taskQueue = `${name}-${process.pid}`;
    const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host, taskQueue });
    cleanups.push(() => workers.shutdown());
    const connection = await Connection.connect({ address: temporalAddress() });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });

    // 4. A drill from the standby clones it, points the clone's archive-get at the clone, replays past the held commit.
    const before = {
      ino: statSync(standbyDir).ino,
      conf,
      marker: readFileSync(path.join(standbyDir, '.lifeboat-restore.json'), 'utf8'),
      lsn: (await observeStandby(runbook)).lsn!,
    };
    const drill = await client.workflow.start('restoreDrill', {
      taskQueue,
      workflowId: `drill-${name}-${process.pid}`,
      // Kept, to read the settings its replay ran with.
      args: [{ runbook: name, target: { time: afterBatch2 }, source: 'standby', keep: true }],
    });
    const drilled = (await drill.result()) as Evidence;
    expect(drilled).toMatchObject({
      engine: 'pgbackrest',
      validationStatus: 'passed',
      backupId: backup.backupId,
      restoreSource: { kind: 'standby', standby: { from: standbyDir, backupId: backup.backupId } },
    });
    expect(drilled.restoreSource?.why).toMatch(
      /^the standby \(delay 1h\) had replayed to LSN .*: cloned with pg_basebackup from the standby \(consistent at LSN [0-9A-F]+\/[0-9A-F]+\) while it kept replaying, instead of restoring a backup$/,
    );
    // Past the commit the standby holds back: batch 2's is the last the clone replayed.
    expect(drilled.replayedToTime! <= afterBatch2).toBe(true);
    // The clone fetched its WAL for itself: pgBackRest's archive-get with --pg1-path=drill.dataDir, not the standby's.
    const drillDir = runbook.drill!.dataDir;
    cleanups.push(() => stopCopy(drillDir));
    const cloneConf = readFileSync(path.join(drillDir, 'postgresql.auto.conf'), 'utf8');
    expect(cloneConf.slice(0, cloneConf.indexOf(BLOCK_BEGIN))).toMatch(
      new RegExp(`^restore_command = 'pgbackrest .*--pg1-path=${drillDir} .*archive-get %f "%p"'$`, 'm'),
    );
    expect(cloneConf).not.toContain(`--pg1-path=${standbyDir} `);
    await stopCopy(drillDir);
    // The standby: its directory, settings and marker as they were, replaying on, never behind where it was.
    expect(statSync(standbyDir).ino).toBe(before.ino);
    expect(readFileSync(path.join(standbyDir, 'postgresql.auto.conf'), 'utf8')).toBe(before.conf);
    expect(readFileSync(path.join(standbyDir, '.lifeboat-restore.json'), 'utf8')).toBe(before.marker);
    const afterDrill = await readStandbyStatus(runbook);
    expect(afterDrill).toMatchObject({ state: 'replaying', healthy: true, waitingForDelay: true });
    expect(lsnNum(afterDrill.replayLsn!) >= lsnNum(before.lsn)).toBe(true);

    // 5. A recovery to a time after its position takes it over.
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${name}-${process.pid}`,
      args: [{ runbook: name, target: { time: afterBatch3 }, incident: 'INC-18', reason: 'batch 4 was wrong' }],
    });
    const approve = (step: 'approve-fence' | 'approve-promote' | 'approve-resume', by: string) =>
      wf.executeUpdate(decideUpdate, { args: [{ step, decision: 'approve', by }] });
    await waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await approve('approve-fence', 'alice');
    await waitForStep(wf, 'approve-promote', 'awaiting-approval');
    // The copy replays through pgBackRest's archive-get for its new directory, archiving once promoted.
    const taken = readFileSync(path.join(runbook.restore.dataDir, 'postgresql.auto.conf'), 'utf8');
    const takenOutside = taken.slice(0, taken.indexOf(BLOCK_BEGIN));
    expect(takenOutside).toMatch(
      new RegExp(`^restore_command = 'pgbackrest .*--pg1-path=${runbook.restore.dataDir} .*archive-get %f "%p"'$`, 'm'),
    );
    expect(taken).not.toContain(`--pg1-path=${standbyDir} `);
    expect(takenOutside).toContain(`\narchive_mode = on\n`);
    await approve('approve-promote', 'alice');
    await waitForStep(wf, 'approve-resume', 'awaiting-approval');
    await approve('approve-resume', 'bob');
    const evidence = (await wf.result()) as Evidence;
    expect(evidence).toMatchObject({
      engine: 'pgbackrest',
      validationStatus: 'passed',
      backupId: backup.backupId,
      target: { time: afterBatch3 },
      restoreSource: { kind: 'standby', standby: { from: standbyDir, backupId: backup.backupId } },
    });
    expect(evidence.restoreSource?.why).toMatch(
      new RegExp(
        `^the standby \\(delay 1h\\) had replayed to LSN .*, before time ${afterBatch3.replace(/[.]/g, '\\.')}: replay goes on from there instead of restoring a backup$`,
      ),
    );
    const copy = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await copy.connect();
    cleanups.push(() => copy.end().catch(() => undefined));
    expect(
      (await copy.query('select count(*)::int as n, max(id) as max, pg_is_in_recovery() as r from t')).rows,
    ).toEqual([{ n: 300, max: 300, r: false }]);
    // The new primary archives into the stanza on timeline 2: held until its archiver pushed the switched segment.
    const { f: segment } = (await copy.query<{ f: string }>('select pg_walfile_name(pg_switch_wal()) as f')).rows[0]!;
    expect(segment.startsWith('00000002')).toBe(true);
    await waitFor(
      `the promoted copy to archive ${segment}`,
      async () => {
        const a = await copy.query<{ last: string | null }>('select last_archived_wal as last from pg_stat_archiver');
        const last = a.rows[0]!.last;
        return last !== null && /^[0-9A-F]{24}$/.test(last) && last >= segment ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    process.stdout.write(
      `standby on pgBackRest (small database, loaded machine): build ${buildSeconds} s; drill clone ${seconds(drilled, 'restore-base-backup')} s, ` +
        `replay ${seconds(drilled, 'replay-wal')} s; recovery take-over ${seconds(evidence, 'restore-base-backup')} s, replay ${seconds(evidence, 'replay-wal')} s, RTO observed ${evidence.rtoObservedSeconds} s\n`,
    );
    expect(await readStandbyStatus(runbook)).toMatchObject({
      state: 'absent',
      healthy: false,
      takenOver: { workflowId: `recover-${name}-${process.pid}`, into: runbook.restore.dataDir },
    });
  });
});
