// Fault: the Temporal server SIGKILLed in the middle of a recovery's replay,
// then started again on its persistent database, on the same port.
//
// It is killed twice: once while replay is held (the running activity must
// heartbeat to the restarted server), once more just before the held segment
// is released (replay ends while the server is down, and the server stays
// down longer than replay-wal's heartbeat timeout, so the server times out
// the attempt that was running and a new one must find the paused copy).
//
// Everything here is the test's own: a Temporal dev server started with
// --db-filename (the shared one from global-setup serves every other test),
// a `lifeboat worker --host` process that is never restarted (it must find
// the server again by itself), and a gate in front of the store that HOLDS
// BACK one WAL segment between the backup and the target, so the kill is
// certain to land while replay-wal runs. The held segment is released while
// the server is down: the copy reaches the target and pauses with nobody to
// report to, and the run must pick that up once Temporal is back.
//
// Checked: the rows at the target exactly (a fingerprint over every row,
// taken on the primary at the target), nothing promoted before approval;
// printed: how long Temporal was down and what the fault cost the run.
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { takeBaseBackup } from '../../src/backup/base-backup';
import type { Evidence } from '../../src/recovery/contract';
import { decideUpdate } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import { parseLsn } from '../../src/wal/names';
import { runCleanups, type Cleanups } from '../harness/cleanups';
import { startCliWorker } from '../harness/cli';
import { fingerprint, queryAt, startFaultCluster, waitForStep } from '../harness/faults-cluster';
import { startS3Gate } from '../harness/faults-s3-gate';
import { startOwnTemporal } from '../harness/faults-services';
import { stopRestoredCopy, switchAndWaitArchived } from '../harness/postgres';
import { waitFor } from '../harness/ports';
import { s3Env, s3RepoUrl, useS3Env } from '../harness/services';

const cleanups: Cleanups = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

/** How long the server stays down the second time: past replay-wal's 15 s heartbeat timeout. */
const SECOND_OUTAGE_MS = 20_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

it(
  'recovers exactly the rows at the target when the Temporal server is SIGKILLed during replay and restarted, and promotes only after approval',
  { timeout: 900_000 },
  async () => {
    useS3Env();
    const name = `tkill-${process.pid}`;
    const host = `tkill${process.pid}`;
    const temporal = await startOwnTemporal('restart');
    cleanups.push(() => temporal.stop());
    const cluster = await startFaultCluster({
      name,
      host,
      repoUrl: s3RepoUrl('tkill'),
      storeEnv: s3Env(),
      invariants: [
        { name: 'every entry has a memo', sql: `select count(*) from ledger_entry where memo = ''`, expect: 0 },
      ],
      cleanups,
    });
    process.env.LIFEBOAT_RUNBOOKS_DIR = cluster.runbooksDir;
    const runbook = await loadRunbook(name);
    cleanups.push(() => stopRestoredCopy(runbook));
    const { pg } = cluster;

    // A ledger of the test's own, backed up, then four segments of entries
    // before the target, one batch per segment.
    await pg.query(
      `create table ledger_entry (id bigint primary key, account int not null, amount_cents bigint not null, memo text not null)`,
    );
    await pg.query(
      `insert into ledger_entry select g, g % 97, (g * 37) % 10000 - 5000, 'opening ' || g from generate_series(1, 5000) g`,
    );
    await takeBaseBackup({ runbook });
    const segments: Array<{ walfile: string; startLsn: string }> = [];
    for (let b = 0; b < 4; b++) {
      const [seg] = await pg.query<{ walfile: string; startLsn: string }>(
        `select pg_walfile_name(pg_current_wal_insert_lsn()) as walfile, pg_current_wal_insert_lsn()::text as "startLsn"`,
      );
      segments.push(seg!);
      await pg.query(
        `insert into ledger_entry select g, g % 97, (g * 31) % 9000, 'batch ${b} entry ' || g from generate_series(${10_000 * (b + 1)}, ${10_000 * (b + 1) + 2999}) g`,
      );
      await pg.query(`update ledger_entry set amount_cents = amount_cents + 1 where id % 11 = ${b}`);
      if (b < 3) await pg.query(`select pg_switch_wal()`);
    }
    const [{ lsn: target } = { lsn: '' }] = await pg.query<{ lsn: string }>(`select pg_current_wal_lsn()::text as lsn`);
    const atTarget = await fingerprint(pg.connection, 'ledger_entry');
    // After the target: changes that must not come back.
    await pg.query(`update ledger_entry set memo = 'after the target' where id % 5 = 0`);
    await pg.query(`insert into ledger_entry select g, 1, 1, 'after the target' from generate_series(90000, 90999) g`);
    await switchAndWaitArchived(pg);
    expect((await fingerprint(pg.connection, 'ledger_entry')).md5).not.toBe(atTarget.md5);
    const held = segments[2]!;

    // The worker reaches the store through the gate; the primary archives directly.
    const gate = await startS3Gate(s3Env().S3_ENDPOINT!);
    cleanups.push(() => gate.stop());
    gate.holdBackSegment(held.walfile);
    const worker = await startCliWorker(host, {
      ...process.env,
      ...s3Env(),
      S3_ENDPOINT: gate.endpoint,
      LIFEBOAT_RUNBOOKS_DIR: cluster.runbooksDir,
      TEMPORAL_ADDRESS: temporal.address,
    });
    cleanups.push(() => worker.stop());
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });
    const wf = await client.workflow.start('recoverToPointInTime', {
      taskQueue: 'lifeboat',
      workflowId: `recover-${name}`,
      args: [{ runbook: name, target: { lsn: target }, incident: 'INC-T1', reason: 'Temporal killed during replay' }],
    });
    await waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'alice' }] });

    // Replay held before the held segment: the copy has asked for it, replay-wal runs.
    await waitFor(
      `the restored copy to ask for the held segment ${held.walfile}`,
      async () => (gate.heldRequests() > 0 ? true : undefined),
      { timeoutMs: 300_000, intervalMs: 200 },
    );
    await waitForStep(wf, 'replay-wal', 'running');
    const restored = { host: '127.0.0.1', port: runbook.restore.port, user: 'postgres', database: 'postgres' };
    const [before] = await waitFor(
      'the restored copy to answer while held',
      () =>
        queryAt<{ r: boolean; lsn: string }>(
          restored,
          `select pg_is_in_recovery() as r, pg_last_wal_replay_lsn()::text as lsn`,
        ),
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    expect(before!.r).toBe(true);
    expect(parseLsn(before!.lsn) <= parseLsn(held.startLsn)).toBe(true);

    // First kill, while replay is held: the server comes back on its database
    // and the replay-wal attempt still running on the worker must reach it (its
    // next heartbeat is recorded there; the old server is dead, so any heartbeat
    // recorded after the kill went to the new one).
    const kill1At = Date.now();
    await temporal.kill();
    await temporal.restart();
    const back1At = Date.now();
    const beat = await waitFor(
      'a replay-wal heartbeat recorded by the restarted server',
      async () => {
        const d = await wf.describe();
        const a = d.raw.pendingActivities?.find((p) => p.activityType?.name === 'replayWal');
        const t = a?.lastHeartbeatTime;
        const at = t ? Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
        return at > kill1At ? { at, attempt: a!.attempt ?? 1 } : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );
    expect(gate.heldRequests()).toBeGreaterThan(0);

    // Second kill, while replay is still held; then the held segment is
    // released with the server down, and the copy pauses at the target with
    // nobody to report to.
    const killedAt = Date.now();
    await temporal.kill();
    gate.releaseHeldSegment();
    await waitFor(
      'the restored copy to pause at the target while Temporal is down',
      async () => {
        const [s] = await queryAt<{ pause: string }>(restored, `select pg_get_wal_replay_pause_state() as pause`);
        return s?.pause === 'paused' ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );
    const pausedAt = Date.now();
    // The second outage lasts longer than replay-wal's heartbeat timeout (15 s,
    // workflows/recovery/proxies.ts), as a real server restart may: this is the
    // size of the fault, not a wait for something to happen.
    const outageLeft = killedAt + SECOND_OUTAGE_MS - Date.now();
    if (outageLeft > 0) await new Promise((r) => setTimeout(r, outageLeft));
    const restartAt = Date.now();
    await temporal.restart();
    const backAt = Date.now();

    // The same run goes on: replay-wal reported, invariants run, promotion waits.
    const waiting = await waitForStep(wf, 'approve-promote', 'awaiting-approval', 600_000);
    const replayStep = waiting.steps.find((s) => s.id === 'replay-wal')!;
    expect(replayStep.state).toBe('done');
    const replayDoneAt = Date.parse(replayStep.finishedAt!);
    // Nothing promoted before approval: still in recovery, promote pending.
    const [still] = await queryAt<{ r: boolean }>(restored, `select pg_is_in_recovery() as r`);
    expect(still!.r).toBe(true);
    expect(waiting.steps.find((s) => s.id === 'promote')!.state).toBe('pending');
    expect(await fingerprint(restored, 'ledger_entry')).toEqual(atTarget);

    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] });
    await waitForStep(wf, 'approve-resume', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'alice' }] });
    const evidence = (await wf.result()) as Evidence;

    const [promoted] = await queryAt<{ r: boolean }>(restored, `select pg_is_in_recovery() as r`);
    expect(promoted!.r).toBe(false);
    expect(await fingerprint(restored, 'ledger_entry')).toEqual(atTarget);
    const promote = evidence.steps.find((s) => s.id === 'promote')!;
    expect(promote.state).toBe('done');
    const approval = evidence.approvals.find((a) => a.step === 'approve-promote')!;
    expect(Date.parse(promote.startedAt!)).toBeGreaterThanOrEqual(Date.parse(approval.at));
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}`)).toEqual([
      'approve-fence:alice',
      'approve-promote:alice',
      'approve-resume:alice',
    ]);
    expect(evidence.validationStatus).toBe('passed');
    // The worker process was never restarted: it found the server again by itself.
    expect(worker.log()).not.toMatch(/exited|fatal/i);

    // replay-wal's attempts, from the run's history: one if the same attempt
    // outlived both outages, more if the server timed one out meanwhile.
    const history = await wf.fetchHistory();
    const replayScheduled = new Set(
      (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'replayWal')
        .map((e) => String(e.eventId)),
    );
    const replayAttempts = (history.events ?? [])
      .filter((e) => replayScheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)))
      .map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);

    // What the fault cost the run: from the copy pausing at the target (when
    // an unbroken run would have reported replay-wal done) to the run knowing it.
    process.stdout.write(
      `[fault temporal-restart] kill 1 (replay held): Temporal down ${seconds(back1At - kill1At)}, replay-wal's next heartbeat (attempt ${beat.attempt}) recorded by the restarted server ${seconds(beat.at - kill1At)} after the kill; ` +
        `kill 2: Temporal down ${seconds(backAt - killedAt)} (SIGKILL to answering again on the same port and database); ` +
        `the copy paused at the target ${seconds(pausedAt - killedAt)} after the kill, with the server down; ` +
        `replay-wal reported done ${seconds(replayDoneAt - pausedAt)} after that pause, ${seconds(replayDoneAt - restartAt)} after the server was started again (the fault's cost beyond the outage), ` +
        `on attempt ${replayAttempts.join(', ')}; RTO ${evidence.rtoObservedSeconds} s, ${evidence.walSegmentsReplayed} segments replayed, ${atTarget.rows} rows at the target\n`,
    );
  },
);
