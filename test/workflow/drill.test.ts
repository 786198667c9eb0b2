// Workflow-logic tests of restoreDrill: the real workflow on the real
// Temporal dev server with fake activities, for what is orchestration:
// objectives judged, notifications sent (and a failing notifier tolerated),
// teardown after a failed step, keep, input validation. The activities
// themselves run against real services in test/e2e/drill.test.ts.
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, describe, expect, it } from 'vitest';
import type * as standbyActivities from '../../activities/standby';
import type { DrillActivities } from '../../src/drill/contract';
import type { NotifyEvent } from '../../src/notify/webhook';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { Evidence, PreflightResult } from '../../src/recovery/contract';
import { hostQueue, type Runbook } from '../../src/runbook/schema';
import { temporalAddress } from '../harness/services';
import { testRunbook, workflowBundle } from './recovery-harness';
import { runCleanups } from '../harness/cleanups';

const TARGET = '2026-11-21T14:31:59.000Z';
const CLONE_SOURCE = {
  from: '/tmp/lifeboat-fake/standby',
  replayLsn: '0/7000100',
  backupId: '20261120T000000Z',
  walSegmentSize: 16777216,
};
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  await runCleanups(cleanups);
});

interface Fakes {
  /** Activity name, then its input's interesting part. */
  log: string[];
  notified: NotifyEvent[];
  evidence: Evidence[];
}

interface FakeOpts {
  /** Replay stops this many seconds before the target (the observed RPO). */
  rpoSeconds?: number;
  archiverProblems?: string[];
  notifyFails?: boolean;
  replayFails?: { type: string; message: string };
  /** Replay reports no commit time: nothing committed between the backup and the target. */
  noCommit?: boolean;
  /** cloneStandbyForDrill declines with this reason (else it clones). */
  standbyDeclines?: string;
}

type Used = Pick<
  RecoveryActivities,
  | 'preflight'
  | 'checkRestoreSite'
  | 'restoreBaseBackup'
  | 'replayWal'
  | 'runInvariants'
  | 'promoteRestored'
  | 'writeEvidence'
> &
  DrillActivities &
  Pick<typeof standbyActivities, 'standbyStatus'> & {
    resolveRunbook(i: { runbook: string }): Promise<Runbook>;
    notify(i: { runbook: string; event: NotifyEvent }): Promise<{ delivered: boolean; detail: string }>;
  };

function fakes(runbook: Runbook, f: Fakes, o: FakeOpts): Used {
  const backup = {
    backupId: '20261121T120000Z',
    startLsn: '0/2000028',
    endLsn: '0/2000100',
    startTime: '2026-11-21T12:00:00Z',
    endTime: '2026-11-21T12:00:05Z',
    timeline: 1,
    sizeBytes: 50 << 20,
    storedBytes: 10 << 20,
    why: 'newest verified backup that finished before the target',
  };
  return {
    async resolveRunbook() {
      return runbook;
    },
    async pickDrillTarget(i) {
      f.log.push(i.after ? `pickDrillTarget after ${i.after}` : 'pickDrillTarget');
      return {
        target: { time: TARGET },
        why: 'random time in the window',
        window: { from: '2026-11-21T12:00:06Z', to: '2026-11-21T15:00:00Z' },
      };
    },
    async preflight(i) {
      f.log.push(`preflight ${i.instance}`);
      const r: PreflightResult = {
        runbook,
        cluster: 'orders',
        backup,
        walFrom: '000000010000000000000002',
        walSegmentsAvailable: 9,
        primaryReachable: true,
        archiver: 'healthy',
        rtoEstimateSeconds: 130,
        warnings: [],
      };
      return o.archiverProblems ? { ...r, archiverProblems: o.archiverProblems } : r;
    },
    // Not logged: the room check runs inside preflight and changes nothing.
    async checkRestoreSite(i) {
      return {
        dataDir: runbook.drill!.dataDir,
        measured: runbook.drill!.dataDir,
        freeBytes: 10 << 30,
        neededBytes: i.backupBytes,
        kept: [],
      };
    },
    async restoreBaseBackup(i) {
      f.log.push(`restoreBaseBackup ${i.instance}`);
      return {
        dataDir: runbook.drill!.dataDir,
        port: runbook.drill!.port,
        bytes: 50 << 20,
        files: 900,
        finishedAt: TARGET,
      };
    },
    async replayWal(i) {
      f.log.push(`replayWal ${i.instance}`);
      if (o.replayFails) throw ApplicationFailure.create({ ...o.replayFails, nonRetryable: true });
      const time = new Date(Date.parse(TARGET) - (o.rpoSeconds ?? 0) * 1000).toISOString();
      return {
        paused: true,
        lsn: '0/9000000',
        ...(o.noCommit ? {} : { time }),
        timeline: 1,
        walSegmentsReplayed: 7,
        walBytesReplayed: 7 << 24,
      };
    },
    async runInvariants(i) {
      f.log.push(`runInvariants ${i.instance}`);
      return [{ name: 'no negative amounts', passed: true, value: '0', expected: '0' }];
    },
    async promoteRestored(i) {
      f.log.push(`promoteRestored ${i.instance}`);
      return { promotedAt: TARGET, timeline: 2, lsn: '0/9000100' };
    },
    async smokeWrite() {
      f.log.push('smokeWrite');
      return { writableAt: TARGET, table: 'lifeboat_drill_smoke', id: '1', lsn: '0/9000200' };
    },
    async standbyStatus() {
      f.log.push('standbyStatus');
      return {
        dataDir: '/tmp/lifeboat-fake/standby',
        port: 6002,
        delaySeconds: 3600,
        state: 'replaying',
        healthy: true,
        warnings: [],
        lastReplayTime: '2026-11-21T14:00:00.000000Z',
        line: 'standby /tmp/lifeboat-fake/standby (port 6002, delay 1h): replaying',
      };
    },
    async cloneStandbyForDrill(i) {
      f.log.push(`cloneStandbyForDrill ${JSON.stringify(i.target)}`);
      if (o.standbyDeclines) return { used: false, why: o.standbyDeclines };
      return {
        used: true,
        why: 'the standby (delay 1h) had replayed to LSN 0/7000000, before the target: cloned',
        result: {
          dataDir: runbook.drill!.dataDir,
          port: runbook.drill!.port,
          bytes: 30 << 20,
          files: 900,
          finishedAt: TARGET,
          standby: CLONE_SOURCE,
        },
      };
    },
    async teardownDrill() {
      f.log.push('teardownDrill');
      return { stopped: true, removed: runbook.drill!.dataDir };
    },
    async writeEvidence(i) {
      f.evidence.push(i.evidence);
      return { key: `orders/evidence/${i.evidence.runId}.json`, repository: 'file:///nonexistent/repo' };
    },
    async notify(i) {
      f.notified.push(i.event);
      if (o.notifyFails)
        throw ApplicationFailure.create({ type: 'UNEXPECTED', message: 'the webhook in $HOOK answered HTTP 503' });
      return { delivered: true, detail: `posted ${i.event.kind} to $HOOK (HTTP 204)` };
    },
  };
}

let seq = 0;
async function harness(o: FakeOpts & { runbook?: Record<string, unknown> } = {}) {
  seq += 1;
  const host = `drillfake${process.pid}x${seq}`;
  const taskQueue = `drill-wf-${process.pid}-${seq}`;
  const runbook = testRunbook('orders', host, o.runbook ?? {});
  const f: Fakes = { log: [], notified: [], evidence: [] };
  const activities = fakes(runbook, f, o);
  const nc = await NativeConnection.connect({ address: temporalAddress() });
  const workers = [
    await Worker.create({ connection: nc, taskQueue, workflowBundle: await workflowBundle(), activities }),
    await Worker.create({ connection: nc, taskQueue: hostQueue(host), activities }),
  ];
  const running = workers.map((w) => w.run());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(async () => {
    for (const w of workers) w.shutdown();
    await Promise.all(running);
    await nc.close();
    await connection.close();
  });
  const client = new Client({ connection });
  const run = (input: Record<string, unknown> = {}) =>
    client.workflow.execute('restoreDrill', {
      taskQueue,
      workflowId: `drill-wf-${process.pid}-${seq}-${Date.now().toString(36)}`,
      args: [{ runbook: 'orders', ...input }],
    });
  return { f, run, runbook };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause as ApplicationFailure;
}

describe('restoreDrill orchestration', () => {
  it('runs every step on the drill instance and returns the passed evidence', async () => {
    const { f, run } = await harness({ rpoSeconds: 2 });
    const evidence = (await run()) as Evidence;
    expect(f.log).toEqual([
      'pickDrillTarget',
      'preflight drill',
      'restoreBaseBackup drill',
      'replayWal drill',
      'runInvariants drill',
      'promoteRestored drill',
      'smokeWrite',
      'teardownDrill',
    ]);
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.rpoObservedSeconds).toBe(2);
    expect(evidence.objectives).toMatchObject({ rpoMet: true, rtoMet: true });
    expect(f.evidence).toEqual([evidence]);
    expect(f.notified).toEqual([]);
  });

  it('restores from a clone of the warm standby when asked (evidence: source standby, its backup), and from the backup with the reason when the standby cannot serve', async () => {
    const withStandby = (host: string) => ({
      standby: { host, dataDir: '/tmp/lifeboat-fake/standby', port: 6002, delay: '1h' },
    });
    // The standby on the drill host: harness() names its host drillfake<pid>x<seq> with the next seq.
    const { f, run, runbook } = await harness({
      rpoSeconds: 2,
      runbook: withStandby(`drillfake${process.pid}x${seq + 1}`),
    });
    expect(runbook.standby?.host).toBe(runbook.drill!.host);
    const evidence = (await run({ target: { time: TARGET }, source: 'standby' })) as Evidence;
    expect(f.log).toEqual([
      'preflight drill',
      `cloneStandbyForDrill {"time":"${TARGET}"}`,
      'replayWal drill',
      'runInvariants drill',
      'promoteRestored drill',
      'smokeWrite',
      'teardownDrill',
    ]);
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.restoreSource).toEqual({
      kind: 'standby',
      why: 'the standby (delay 1h) had replayed to LSN 0/7000000, before the target: cloned',
      standby: CLONE_SOURCE,
    });
    expect(evidence.backupId).toBe('20261120T000000Z');
    expect(evidence.steps.find((s) => s.id === 'restore-base-backup')?.summary).toBe(
      `standby clone: 30 MiB from /tmp/lifeboat-fake/standby (pg_basebackup from the standby, which kept replaying) into ${runbook.drill!.dataDir}`,
    );
    expect(evidence.notes).toContain(
      "restored from a clone of the warm standby /tmp/lifeboat-fake/standby (built from backup 20261120T000000Z, consistent at LSN 0/7000100); the standby kept replaying and was not touched; walSegmentsReplayed counts the WAL replayed from the clone's start",
    );

    const declined = await harness({
      rpoSeconds: 2,
      standbyDeclines: 'the standby is not usable: its PostgreSQL is not running',
      runbook: withStandby(`drillfake${process.pid}x${seq + 1}`),
    });
    const fellBack = (await declined.run({ target: { time: TARGET }, source: 'standby' })) as Evidence;
    expect(declined.f.log.slice(0, 3)).toEqual([
      'preflight drill',
      `cloneStandbyForDrill {"time":"${TARGET}"}`,
      'restoreBaseBackup drill',
    ]);
    expect(fellBack.restoreSource).toEqual({
      kind: 'backup',
      why: 'the standby is not usable: its PostgreSQL is not running',
    });
    expect(fellBack.backupId).toBe('20261121T120000Z');
    expect(fellBack.notes).toContain(
      'asked to restore from the warm standby, restored backup 20261121T120000Z instead: the standby is not usable: its PostgreSQL is not running',
    );
    // Without a target, it is drawn after the standby's last replayed commit (a clone cannot replay backwards).
    const random = await harness({ rpoSeconds: 2, runbook: withStandby(`drillfake${process.pid}x${seq + 1}`) });
    expect(((await random.run({ source: 'standby' })) as Evidence).restoreSource?.kind).toBe('standby');
    expect(random.f.log.slice(0, 3)).toEqual([
      'standbyStatus',
      'pickDrillTarget after 2026-11-21T14:00:00.000000Z',
      'preflight drill',
    ]);
    // Without the option a drill never asks for a clone.
    const plain = await harness({ rpoSeconds: 2, runbook: withStandby(`drillfake${process.pid}x${seq + 1}`) });
    expect(((await plain.run({ target: { time: TARGET } })) as Evidence).restoreSource).toBeUndefined();
    expect(plain.f.log).not.toContainEqual(expect.stringMatching(/^cloneStandbyForDrill/));
    expect(plain.f.log).toContain('standbyStatus');
  });

  it('reports an observed RPO of 0 with the reason when nothing committed between the backup and the target', async () => {
    const { run } = await harness({ noCommit: true, runbook: { objectives: { rpoSeconds: 1, rtoSeconds: 2700 } } });
    const evidence = (await run()) as Evidence;
    expect(evidence.validationStatus).toBe('passed');
    expect(evidence.rpoObservedSeconds).toBe(0);
    expect(evidence.objectives).toMatchObject({ rpoMet: true });
    expect(evidence.notes).toContain(
      `observed RPO 0 s: no transaction committed between backup 20261121T120000Z (started 2026-11-21T12:00:00Z) and the target ${TARGET}, so the restored copy holds every transaction committed before the target`,
    );
  });

  it('fails a drill that misses the RPO objective: DRILL_FAILED, drill-failed and objective-missed posted, torn down', async () => {
    const { f, run, runbook } = await harness({
      rpoSeconds: 10,
      runbook: { objectives: { rpoSeconds: 1, rtoSeconds: 2700 } },
    });
    const failure = await failureOf(run());
    expect(failure.type).toBe('DRILL_FAILED');
    const d = runbook.drill!;
    expect(failure.message.split('\n')).toEqual([
      `restore drill of orders failed (drill host ${d.host}, ${d.dataDir}, port ${d.port}):`,
      '  RPO objective missed: observed 10 s, objective 1 s (objectives.rpoSeconds)',
      `HINT: the evidence record is file:///nonexistent/repo/orders/evidence/${f.evidence[0]!.runId}.json`,
      'HINT: the drill copy was torn down; run the drill with keep: true to inspect it',
    ]);
    expect(f.log).toContain('teardownDrill');
    expect(f.notified.map((n) => n.kind)).toEqual(['drill-failed', 'objective-missed']);
    expect(f.notified[1]!.text).toContain('RPO objective missed: observed 10 s, objective 1 s (objectives.rpoSeconds)');
    const e = f.evidence[0]!;
    expect(e.validationStatus).toBe('failed');
    expect(e.objectives).toMatchObject({ rpoSeconds: 1, rpoMet: false, rtoMet: true });
    expect(e.notes[0]).toBe('FAILED: RPO objective missed: observed 10 s, objective 1 s (objectives.rpoSeconds)');
    expect(e.notes).toContain('notify objective-missed: posted objective-missed to $HOOK (HTTP 204)');
  });

  it('goes on when the archiver is stale and the notifier keeps failing: the drill passes and the evidence says what was not delivered', async () => {
    const { f, run } = await harness({
      archiverProblems: ['last archived 000000010000000000000009 20 min ago, beyond objectives.rpoSeconds 300'],
      notifyFails: true,
    });
    const evidence = (await run()) as Evidence;
    expect(evidence.validationStatus).toBe('passed');
    // Three attempts, then the outcome is noted.
    expect(f.notified.map((n) => n.kind)).toEqual(['archive-stale', 'archive-stale', 'archive-stale']);
    expect(f.notified[0]!.text).toContain(
      "the primary's archiver is unhealthy: last archived 000000010000000000000009 20 min ago",
    );
    expect(evidence.notes).toContain(
      'notify archive-stale not delivered after 3 attempts: the webhook in $HOOK answered HTTP 503',
    );
  });

  it('tears down and writes the evidence after a failed replay; later steps stay pending', async () => {
    const { f, run } = await harness({
      replayFails: { type: 'RECOVERY_ENDED_BEFORE_TARGET', message: 'recovery of orders ended before reaching time X' },
    });
    const failure = await failureOf(run());
    expect(failure.message).toContain(
      '\n  step replay-wal failed: RECOVERY_ENDED_BEFORE_TARGET: recovery of orders ended before reaching time X\n',
    );
    expect(f.log.slice(-2)).toEqual(['replayWal drill', 'teardownDrill']);
    expect(f.evidence[0]!.steps.map((s) => `${s.id}:${s.state}`)).toEqual([
      'pick-target:done',
      'preflight:done',
      'restore-base-backup:done',
      'replay-wal:failed',
      'run-invariants:pending',
      'promote:pending',
      'smoke-write:pending',
      'teardown:done',
      'record-evidence:done',
    ]);
    expect(f.notified.map((n) => [n.kind, n.details?.step, n.details?.errorType])).toEqual([
      ['drill-failed', 'replay-wal', 'RECOVERY_ENDED_BEFORE_TARGET'],
    ]);
  });

  it('keeps the drill copy with keep: true and uses a given target without picking one', async () => {
    const { f, run, runbook } = await harness();
    const evidence = (await run({ keep: true, target: { time: TARGET } })) as Evidence;
    expect(f.log).not.toContain('teardownDrill');
    expect(f.log).not.toContain('pickDrillTarget');
    const teardown = evidence.steps.find((s) => s.id === 'teardown')!;
    expect(teardown.state).toBe('skipped');
    expect(teardown.summary).toContain(
      `kept (keep: true): drill host ${runbook.drill!.host}, ${runbook.drill!.dataDir}, port ${runbook.drill!.port}`,
    );
  });

  it('refuses a bad input at once, naming the field', async () => {
    const { run } = await harness();
    const failure = await failureOf(run({ keep: 'yes' }));
    expect(failure.type).toBe('INPUT_INVALID');
    expect(failure.message).toBe(
      'restoreDrill input is not valid:\n  keep: expected true or false\nHINT: the input is one JSON object, e.g. {"runbook": "orders"}',
    );
  });
});
