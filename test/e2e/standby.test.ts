// recoverToPointInTime with a warm standby (DESIGN.md §4.4), end to end on
// real services: a PostgreSQL 15 primary archiving into a file://
// repository, the standby built from the newest backup with a 1 h delay,
// workers polling a Temporal dev server. A target older than the standby's
// position is restored from the older backup (the evidence says why); a
// target after it takes the standby over, and the promoted copy holds
// exactly the rows of the target. The 1 h delay holds every later commit
// back for longer than the test runs: nothing depends on timing. A drill
// runs first and leaves the standby alone; a drill asked to use the standby
// (source: 'standby') clones it while it replays, reaches the target past
// the commit the standby holds back, and leaves it in its own directory.
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { buildStandby } from '../../src/standby/build';
import { observeStandby, readStandbyStatus } from '../../src/standby/status';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { asPostgres, switchAndWaitArchived, stopRestoredCopy, PG_BIN } from '../harness/postgres';
import { freePort, waitFor } from '../harness/ports';
import { backedUpCluster, recoveryWorkers } from '../harness/recovery-cluster';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

/** Approves (as alice) each approval step as it comes, or rejects `rejectAt`, until the run ends. */
async function decideAll(wf: WorkflowHandle, rejectAt?: string): Promise<void> {
  for (;;) {
    const s = await waitFor(
      'an approval or the end',
      async () => {
        const st = await wf.query(statusQuery);
        return st.pending?.kind === 'approval' || st.phase !== 'running' ? st : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 100 },
    );
    if (s.phase !== 'running' && s.phase !== 'waiting') return;
    if (!s.pending || s.pending.kind !== 'approval') {
      if (s.pending?.kind === 'failed')
        throw new Error(
          `step ${s.pending.step} failed: ${JSON.stringify(s.steps.find((x) => x.id === s.pending!.step)?.error)}`,
        );
      continue;
    }
    const step = s.pending.step;
    await wf.executeUpdate(decideUpdate, {
      args: [{ step, decision: step === rejectAt ? 'reject' : 'approve', by: 'alice' }],
    });
    if (step === rejectAt) return;
    await waitFor(
      `${step} to be decided`,
      async () => ((await wf.query(statusQuery)).pending?.step !== step ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 100 },
    );
  }
}

const seconds = (e: Evidence, id: string) => {
  const st = e.steps.find((s) => s.id === id)!;
  return (Date.parse(st.finishedAt!) - Date.parse(st.startedAt!)) / 1000;
};

describe('recoverToPointInTime with a warm standby, on real services', () => {
  it('leaves the standby to a drill, lets a drill clone it (never take it), restores an older target from a backup (evidence says why) and takes the standby over for a target after its position', async () => {
    const cluster = await backedUpCluster('sbe2e', cleanups);
    const { tc } = cluster;
    await tc.pg.query('create table t (id int primary key, batch int)');
    const at = async () =>
      (
        await tc.pg.query<{ t: string }>(
          `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as t`,
        )
      )[0]!.t;
    await tc.pg.query(`insert into t select g, 1 from generate_series(1, 100) g`);
    const beforeStandby = await at();
    await tc.pg.query(`insert into t select g, 2 from generate_series(101, 200) g`);
    const newest = await takeBaseBackup({ runbook: cluster.runbook });
    // The standby, from the newest backup, 1 h behind.
    const port = await freePort();
    writeFileSync(
      tc.runbookFile,
      `${readFileSync(tc.runbookFile, 'utf8').trimEnd()}\nstandby: { host: ${cluster.host}, dataDir: ${tc.stateDir}/standby, port: ${port}, delay: 1h }\n`,
    );
    const runbook = await loadRunbook(cluster.name);
    cleanups.push(async () => {
      for (const d of readdirSync(tc.stateDir)
        .filter((e) => e.startsWith('standby'))
        .map((e) => path.join(tc.stateDir, e))) {
        if (existsSync(path.join(d, 'postmaster.pid')))
          await asPostgres(`${PG_BIN}/pg_ctl`, ['stop', '-D', d, '-m', 'immediate', '-w']).catch(() => '');
      }
    });
    const built = await buildStandby(runbook);
    expect(built).toMatchObject({ action: 'built', backupId: newest.backupId });
    const beforeBatch3 = await at();
    await tc.pg.query(`insert into t select g, 3 from generate_series(201, 300) g`);
    const afterStandby = await at();
    await tc.pg.query(`insert into t select g, 4 from generate_series(301, 400) g`);
    await switchAndWaitArchived(tc.pg);
    // Held: the standby has read batch 3's commit and waits out its delay.
    await waitFor(
      'the standby to hold batch 3 back',
      async () => ((await observeStandby(runbook)).delayWait ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const { client, taskQueue } = await recoveryWorkers(cluster, cleanups);

    // 0. A drill never takes the standby (it must stay for the real night): it restores a backup and notes the standby's state.
    const drill = await client.workflow.start('restoreDrill', {
      taskQueue,
      workflowId: `drill-${cluster.name}`,
      args: [{ runbook: cluster.name, target: { time: afterStandby } }],
    });
    const drilled = (await drill.result()) as Evidence;
    expect(drilled.validationStatus).toBe('passed');
    expect(drilled.steps.find((s) => s.id === 'restore-base-backup')?.summary).toMatch(/ MiB into /);
    expect(drilled.notes).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^warm standby, not used by drills \\(they prove the backups restore\\): standby ${runbook.standby!.dataDir} \\(port ${port}, delay 1h\\): replaying, `,
        ),
      ),
    );
    expect(await readStandbyStatus(runbook)).toMatchObject({
      state: 'replaying',
      healthy: true,
      waitingForDelay: true,
    });

    // 0b. A drill asked to use the standby clones it (pg_basebackup from the running standby) and never takes it:
    //     the clone replays to the target, the invariants pass, and the standby is left replaying in its own directory.
    const sbDir = runbook.standby!.dataDir;
    const before = {
      ino: statSync(sbDir).ino,
      marker: readFileSync(path.join(sbDir, '.lifeboat-restore.json'), 'utf8'),
      lsn: (await observeStandby(runbook)).lsn!,
    };
    const fromStandby = await client.workflow.start('restoreDrill', {
      taskQueue,
      workflowId: `drill-${cluster.name}-standby`,
      args: [{ runbook: cluster.name, target: { time: afterStandby }, source: 'standby' }],
    });
    const cloned = (await fromStandby.result()) as Evidence;
    expect(cloned.validationStatus).toBe('passed');
    expect(cloned.invariants.length).toBeGreaterThan(0);
    expect(cloned.invariants.every((i) => i.passed)).toBe(true);
    expect(cloned.restoreSource?.kind).toBe('standby');
    expect(cloned.restoreSource?.why).toMatch(
      new RegExp(
        `^the standby \\(delay 1h\\) had replayed to LSN [0-9A-F]+/[0-9A-F]+.*, before time ${afterStandby.replace(/[.]/g, '\\.')}: cloned with pg_basebackup from the standby \\(consistent at LSN [0-9A-F]+/[0-9A-F]+\\) while it kept replaying, instead of restoring a backup$`,
      ),
    );
    expect(cloned.restoreSource?.standby).toMatchObject({
      from: sbDir,
      backupId: newest.backupId,
      walSegmentSize: 16777216,
    });
    expect(cloned.backupId).toBe(newest.backupId);
    expect(cloned.steps.find((s) => s.id === 'restore-base-backup')?.summary).toMatch(
      new RegExp(
        `^standby clone: \\d+ MiB from ${sbDir} \\(pg_basebackup from the standby, which kept replaying\\) into ${runbook.drill!.dataDir}$`,
      ),
    );
    // It reached its target, past the commit the standby holds back: its last replayed commit is batch 3's (batch 4's is after the target).
    expect(cloned.replayedToTime! > beforeBatch3 && cloned.replayedToTime! <= afterStandby).toBe(true);
    expect(cloned.steps.find((s) => s.id === 'replay-wal')?.summary).toMatch(
      /^paused at [0-9A-F]+\/[0-9A-F]+, last commit /,
    );
    expect(existsSync(runbook.drill!.dataDir)).toBe(false);
    // The standby: the same directory and marker, still in recovery, not paused, holding batch 3 back, never behind where it was.
    expect(statSync(sbDir).ino).toBe(before.ino);
    expect(readFileSync(path.join(sbDir, '.lifeboat-restore.json'), 'utf8')).toBe(before.marker);
    const after = await readStandbyStatus(runbook);
    expect(after).toMatchObject({ state: 'replaying', healthy: true, waitingForDelay: true, pauseState: 'not paused' });
    const lsnNum = (l: string) => BigInt(`0x${l.split('/')[0]}`) * 2n ** 32n + BigInt(`0x${l.split('/')[1]}`);
    expect(lsnNum(after.replayLsn!) >= lsnNum(before.lsn)).toBe(true);
    process.stdout.write(
      `drill from the standby (small database, loaded machine): clone ${seconds(cloned, 'restore-base-backup')} s, replay ${seconds(cloned, 'replay-wal')} s, RTO observed ${cloned.rtoObservedSeconds} s; drill from the backup: restore ${seconds(drilled, 'restore-base-backup')} s, replay ${seconds(drilled, 'replay-wal')} s, RTO observed ${drilled.rtoObservedSeconds} s\n`,
    );

    // 1. A target before the standby's position: restored from the older backup, then rejected (nothing promoted).
    const early = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${cluster.name}-early`,
      args: [{ runbook: cluster.name, target: { time: beforeStandby } }],
    });
    await decideAll(early, 'approve-promote');
    await expect(early.result()).rejects.toThrow();
    const earlyEvidence = JSON.parse(
      readFileSync(
        path.join(tc.repoUrl.replace('file://', ''), tc.name, 'evidence', `${early.firstExecutionRunId}.json`),
        'utf8',
      ),
    ) as Evidence;
    expect(earlyEvidence.restoreSource?.kind).toBe('backup');
    expect(earlyEvidence.restoreSource?.why).toMatch(
      new RegExp(
        `^the standby had replayed to LSN [0-9A-F]+/[0-9A-F]+.*not before time ${beforeStandby.replace(/[.]/g, '\\.')}: PostgreSQL cannot replay backwards, so the backup path restores instead$`,
      ),
    );
    expect(earlyEvidence.steps.find((s) => s.id === 'restore-base-backup')?.summary).toMatch(/ MiB into /);
    expect(await readStandbyStatus(runbook)).toMatchObject({
      state: 'replaying',
      healthy: true,
      pauseState: 'not paused',
    });
    // The rejected run's paused copy is the test's to clear before the next recovery.
    await stopRestoredCopy(runbook);
    rmSync(runbook.restore.dataDir, { recursive: true, force: true });

    // 2. A target after the standby's position: the standby is taken over and promoted.
    const warm = await client.workflow.start('recoverToPointInTime', {
      taskQueue,
      workflowId: `recover-${cluster.name}-warm`,
      args: [{ runbook: cluster.name, target: { time: afterStandby } }],
    });
    await decideAll(warm);
    const evidence = (await warm.result()) as Evidence;
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.restoreSource?.kind).toBe('standby');
    expect(evidence.restoreSource?.why).toMatch(
      new RegExp(
        `^the standby \\(delay 1h\\) had replayed to LSN .*, before time ${afterStandby.replace(/[.]/g, '\\.')}: replay goes on from there instead of restoring a backup$`,
      ),
    );
    expect(evidence.steps.find((s) => s.id === 'restore-base-backup')?.summary).toMatch(
      new RegExp(
        `^standby: ${runbook.standby!.dataDir} \\(replayed to [0-9A-F]+/[0-9A-F]+.*\\) taken over into ${runbook.restore.dataDir}; the standby is consumed, rebuild it: lifeboat standby build --runbook ${cluster.name}$`,
      ),
    );
    // Honest evidence: the standby's base backup and the WAL replayed from where it was paused, both said in a note.
    expect(evidence.backupId).toBe(newest.backupId);
    expect(evidence.restoreSource?.standby).toMatchObject({
      from: runbook.standby!.dataDir,
      backupId: newest.backupId,
      walSegmentSize: 16777216,
    });
    expect(evidence.notes).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^restored from the warm standby ${runbook.standby!.dataDir}, built from backup ${newest.backupId} and taken over at LSN [0-9A-F]+/[0-9A-F]+.*: walSegmentsReplayed and walBytesReplayed count the WAL this recovery replayed, from `,
        ),
      ),
    );
    expect(evidence.notes).toContain(
      `the warm standby ${runbook.standby!.dataDir} was consumed by this recovery (taken over at LSN ${evidence.restoreSource!.standby!.replayLsn}); nothing rebuilds it and until it is rebuilt recoveries restore from a backup: lifeboat standby build --runbook ${cluster.name} on host ${cluster.host}`,
    );
    const c = new Client({ host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' });
    await c.connect();
    try {
      expect(
        (await c.query('select count(*)::int as n, max(id) as max, pg_is_in_recovery() as r from t')).rows,
      ).toEqual([{ n: 300, max: 300, r: false }]);
    } finally {
      await c.end();
    }
    expect(await readStandbyStatus(runbook)).toMatchObject({
      state: 'absent',
      healthy: false,
      takenOver: { workflowId: `recover-${cluster.name}-warm`, into: runbook.restore.dataDir },
    });
    process.stdout.write(
      `standby e2e (small database, loaded machine): to the paused copy via backup ${seconds(earlyEvidence, 'restore-base-backup') + seconds(earlyEvidence, 'replay-wal')} s ` +
        `(restore ${seconds(earlyEvidence, 'restore-base-backup')} s, replay ${seconds(earlyEvidence, 'replay-wal')} s); via the standby ${seconds(evidence, 'restore-base-backup') + seconds(evidence, 'replay-wal')} s ` +
        `(take-over ${seconds(evidence, 'restore-base-backup')} s, replay ${seconds(evidence, 'replay-wal')} s); RTO observed ${evidence.rtoObservedSeconds} s\n`,
    );
  });
});
