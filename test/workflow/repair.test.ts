// repairFromPointInTime's orchestration on a real Temporal dev server, with
// fake activities (the recovery's fakes for restore and replay, and fakes of
// the repair's own): approvals with the runbook's quorum, conflicts left out
// unless an approver includes them, reject, dry run, and a retried apply that
// the audit row reports as already applied. The real activities run against
// real services in test/e2e/repair.test.ts and test/integration/repair-engine.test.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client, Connection, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterEach, describe, expect, it } from 'vitest';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import { approveSignal, decideUpdate, retrySignal, statusQuery } from '../../src/recovery/messages';
import type { RepairActivities, RepairApplied, RepairDiff, RepairInput } from '../../src/repair/contract';
import { hostQueue } from '../../src/runbook/schema';
import { waitFor } from '../harness/ports';
import { temporalAddress } from '../harness/services';
import { fakeActivities, testRunbook, workflowBundle, workflowFailure, type Calls } from './recovery-harness';

const BEFORE = { time: '2026-11-21T14:31:59Z' };
const AFTER = { name: 'after-bad-update' };

const DIFF: RepairDiff = {
  withAfter: true,
  artefact: 'file:///nonexistent/repo/orders/repair/x/diff.json',
  diffedAt: '2026-11-21T15:00:00Z',
  tables: [
    {
      table: '"public"."orders"',
      keyColumns: ['id'],
      counts: {
        damaged: 238,
        changedSince: 12,
        deletedByIncident: 0,
        insertedByIncident: 0,
        insertedSince: 40,
        unchanged: 750,
        candidate: 0,
      },
      planned: { damaged: 238, changedSince: 12 },
      samples: {
        damaged: [
          {
            key: { id: '4' },
            before: { id: '4', status: 'pending' },
            after: { id: '4', status: 'canceled' },
            now: { id: '4', status: 'canceled' },
          },
        ],
      },
      sql: 'begin isolation level read committed; ...',
    },
  ],
};

interface Harness {
  calls: Calls;
  start(input: Partial<RepairInput>): Promise<WorkflowHandle>;
  status(h: WorkflowHandle): Promise<RecoveryStatus>;
  waitForStep(h: WorkflowHandle, step: string, state: string): Promise<RecoveryStatus>;
  stop(): Promise<void>;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

let seq = 0;
/** The recovery's fakes plus the repair's; `applyCrashes` makes the first apply commit, then lose its connection. */
async function startRepairHarness(opts: { applyCrashes?: boolean } = {}): Promise<Harness> {
  seq += 1;
  const id = `repair-${process.pid}-${seq}-${Date.now().toString(36)}`;
  const host = `fakerep${process.pid}x${seq}`;
  const runbook = testRunbook('orders', host);
  const calls: Calls = { log: [], audit: [], evidence: [] };
  const committed = new Map<string, RepairApplied[]>();
  const rec = (name: string, arg: unknown) => calls.log.push(`${name} ${JSON.stringify(arg)}`);
  const repair: RepairActivities = {
    async checkRepairTables(i) {
      rec('checkRepairTables', { tables: i.tables, write: i.write });
      return [{ table: '"public"."orders"', keyColumns: ['id'], columns: 7 }];
    },
    async snapshotRepairCopy(i) {
      rec('snapshotRepairCopy', { label: i.label, where: i.where });
      return { label: i.label, tables: [{ table: '"public"."orders"', rows: 1000 }] };
    },
    async diffRepair(i) {
      rec('diffRepair', { withAfter: i.withAfter });
      return i.withAfter
        ? DIFF
        : {
            ...DIFF,
            withAfter: false,
            tables: [
              {
                ...DIFF.tables[0]!,
                counts: { ...DIFF.tables[0]!.counts, damaged: 0, changedSince: 0, candidate: 250, unchanged: 750 },
                planned: { candidate: 250 },
              },
            ],
          };
    },
    async applyRepair(i) {
      rec('applyRepair', { classes: i.classes, approvedBy: i.approvedBy });
      const prior = committed.get(i.workflowId);
      if (prior) return prior.map((a) => ({ ...a, alreadyApplied: true, skippedKeys: [] }));
      const applied: RepairApplied[] = [
        {
          table: '"public"."orders"',
          alreadyApplied: false,
          updated: 238,
          inserted: 0,
          skipped: 0,
          skippedKeys: [],
          sequencesAdvanced: [],
          auditTable: '"public".lifeboat_repair_audit',
          transactionMs: 40,
          lockedMs: 12,
        },
      ];
      committed.set(i.workflowId, applied);
      if (opts.applyCrashes)
        throw ApplicationFailure.create({
          type: 'PG_UNREACHABLE',
          message: 'repair x of "public"."orders" lost its connection to the primary',
          nonRetryable: true,
        });
      return applied;
    },
    async invalidateRepairCaches(i) {
      rec('invalidateRepairCaches', { classes: i.classes });
      return [{ kind: 'redis', target: 'redis $REDIS_URL orders:{id} (repaired keys)', deleted: 238 }];
    },
    async teardownRepairCopy() {
      rec('teardownRepairCopy', {});
      return {
        stopped: true,
        removed: '/tmp/lifeboat-fake/drill',
        workDirRemoved: '/tmp/lifeboat-fake/.lifeboat-repair-x',
      };
    },
  };
  const activities = { ...fakeActivities(runbook, calls), ...repair };
  const address = temporalAddress();
  const nc = await NativeConnection.connect({ address });
  const taskQueue = `wf-${id}`;
  const workers = [
    await Worker.create({ connection: nc, taskQueue, workflowBundle: await workflowBundle(), activities }),
    await Worker.create({ connection: nc, taskQueue: hostQueue(host), activities }),
  ];
  const running = workers.map((w) => w.run());
  const connection = await Connection.connect({ address });
  const client = new Client({ connection });
  return {
    calls,
    start: (input) =>
      client.workflow.start('repairFromPointInTime', {
        taskQueue,
        workflowId: `${id}-${Math.random().toString(36).slice(2, 7)}`,
        args: [{ runbook: 'orders', tables: ['orders'], before: BEFORE, ...input }],
      }),
    status: (wf) => wf.query(statusQuery),
    waitForStep: (wf, step, state) =>
      waitFor(
        `step ${step} to be ${state}`,
        async () => {
          const s = await wf.query(statusQuery);
          return s.steps.find((x) => x.id === step)?.state === state ? s : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      ),
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await nc.close();
      await connection.close();
    },
  };
}

/** LIFEBOAT_RECORD_HISTORIES=1 writes the run's history for replay.test.ts (re-record deliberately, never to make a replay failure go away). */
async function recordHistory(name: string, wf: WorkflowHandle): Promise<void> {
  if (process.env.LIFEBOAT_RECORD_HISTORIES !== '1') return;
  const dir = path.resolve(__dirname, 'histories');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), historyToJSON(await wf.fetchHistory()));
}

const names = (calls: Calls) => calls.log.map((l) => l.split(' ')[0]);

describe('repairFromPointInTime', () => {
  it('restores only the safe classes after a quorum of approve-promote approvers, with conflicts left out, and records the repair in its evidence', async () => {
    h = await startRepairHarness();
    const wf = await h.start({ after: AFTER, incident: 'INC-1234', where: "status = 'canceled'" });
    let s = await h.waitForStep(wf, 'approve-repair', 'awaiting-approval');
    expect(s.workflow).toBe('repairFromPointInTime');
    expect(s.steps.map((x) => [x.id, x.state])).toEqual([
      ['preflight', 'done'],
      ['approve-fence', 'skipped'],
      ['restore-base-backup', 'done'],
      ['replay-wal', 'done'],
      ['snapshot-before', 'done'],
      ['replay-wal-after', 'done'],
      ['snapshot-after', 'done'],
      ['diff', 'done'],
      ['approve-repair', 'awaiting-approval'],
      ['apply-repair', 'pending'],
      ['invalidate-caches', 'pending'],
      ['teardown', 'pending'],
      ['record-evidence', 'pending'],
    ]);
    // No approve-repair in the runbook: approve-promote's approvers and quorum (2 of alice, bob, carol).
    expect(s.pending).toMatchObject({ step: 'approve-repair', approvers: ['alice', 'bob', 'carol'], min: 2 });
    expect(s.steps.find((x) => x.id === 'diff')?.summary).toBe(
      '"public"."orders": 238 damaged, 0 deleted by the incident, 12 changed since (conflicts), 40 inserted since, 750 unchanged',
    );
    expect(s.repair?.diff?.tables[0]?.counts.changedSince).toBe(12);
    expect(s.pending?.how.some((l) => l.includes('"include": ["changedSince"]'))).toBe(true);
    // Replay went on from the paused copy to the after target; the where predicate reached both snapshots.
    expect(h.calls.log.filter((l) => l.startsWith('replayWal') || l.startsWith('snapshotRepairCopy'))).toEqual([
      `replayWal ${JSON.stringify({ target: BEFORE, continueFrom: false })}`,
      `snapshotRepairCopy ${JSON.stringify({ label: 'before', where: "status = 'canceled'" })}`,
      `replayWal ${JSON.stringify({ target: AFTER, continueFrom: true })}`,
      `snapshotRepairCopy ${JSON.stringify({ label: 'after', where: "status = 'canceled'" })}`,
    ]);

    // A recovery's step is refused; mallory is not an approver; then two approvers, one by signal as the UI sends it.
    const refused = await wf
      .executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(((refused as WorkflowUpdateFailedError).cause as Error).message).toMatch(
      /^approve-promote is not a step of this run; its steps are preflight, approve-fence, /,
    );
    await wf.signal(approveSignal, { step: 'approve-repair', by: 'mallory' });
    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-repair', decision: 'approve', by: 'alice', comment: 'diff checked' }],
    });
    expect(names(h.calls)).not.toContain('applyRepair');
    await wf.signal(approveSignal, { step: 'approve-repair', by: 'bob' });
    const evidence: Evidence = await wf.result();

    expect(h.calls.log.filter((l) => l.startsWith('applyRepair'))).toEqual([
      `applyRepair ${JSON.stringify({ classes: ['damaged', 'deletedByIncident'], approvedBy: ['alice', 'bob'] })}`,
    ]);
    expect(names(h.calls).slice(-3)).toEqual(['applyRepair', 'invalidateRepairCaches', 'teardownRepairCopy']);
    expect(names(h.calls)).not.toContain('promoteRestored');
    expect(evidence).toMatchObject({
      kind: 'repair',
      validationStatus: 'passed',
      target: BEFORE,
      incident: 'INC-1234',
    });
    expect(evidence.repair).toMatchObject({
      classes: ['damaged', 'deletedByIncident'],
      approvedBy: ['alice', 'bob'],
      applied: [{ updated: 238, skipped: 0, alreadyApplied: false }],
    });
    expect(evidence.approvals.map((a) => a.by)).toEqual(['alice', 'bob']);
    // Every step ended; writing the record ends record-evidence, at the record's finishedAt.
    expect(evidence.steps.filter((x) => x.state !== 'done' && x.state !== 'skipped')).toEqual([]);
    expect(evidence.steps.at(-1)).toMatchObject({
      id: 'record-evidence',
      state: 'done',
      finishedAt: evidence.finishedAt,
    });
    s = await h.status(wf);
    expect(s.phase).toBe('finished');
    await recordHistory('repair-quorum', wf);
    expect(s.ignored).toEqual([
      expect.objectContaining({
        name: 'decide approve',
        why: expect.stringMatching(/^approve-promote is not a step of this run/),
      }),
      expect.objectContaining({
        name: 'approve',
        by: 'mallory',
        why: 'NOT_AN_APPROVER: mallory may not decide approve-repair; allowed: alice, bob, carol',
      }),
    ]);
  });

  it('restores the conflicts too when an approver includes them explicitly', async () => {
    h = await startRepairHarness();
    const wf = await h.start({ after: AFTER });
    await h.waitForStep(wf, 'approve-repair', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, {
      args: [
        {
          step: 'approve-repair',
          decision: 'approve',
          by: 'carol',
          include: ['changedSince'],
          comment: 'customer asked',
        },
      ],
    });
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-repair', decision: 'approve', by: 'alice' }] });
    const evidence: Evidence = await wf.result();
    expect(h.calls.log.find((l) => l.startsWith('applyRepair'))).toBe(
      `applyRepair ${JSON.stringify({ classes: ['damaged', 'deletedByIncident', 'changedSince'], approvedBy: ['carol', 'alice'] })}`,
    );
    expect(evidence.approvals[0]).toMatchObject({ by: 'carol', include: ['changedSince'] });
  });

  it('writes nothing to the primary when the diff is rejected, tears the copy down and fails RECOVERY_REJECTED', async () => {
    h = await startRepairHarness();
    const wf = await h.start({ after: AFTER });
    await h.waitForStep(wf, 'approve-repair', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-repair', decision: 'reject', by: 'bob', comment: 'wrong table' }],
    });
    const failure = await workflowFailure(wf);
    expect(failure.type).toBe('RECOVERY_REJECTED');
    expect(failure.message).toBe(
      'repair rejected at approve-repair by bob: wrong table\nHINT: nothing was written to the primary\nHINT: the evidence record is in the repository under evidence/' +
        (await wf.describe()).runId +
        '.json',
    );
    expect(names(h.calls)).not.toContain('applyRepair');
    expect(names(h.calls)).toContain('teardownRepairCopy');
    expect(h.calls.evidence[0]).toMatchObject({ kind: 'repair', validationStatus: 'rejected' });
  });

  it('stops after the diff in a dry run: no approval, no apply, the copy torn down, only read privileges asked', async () => {
    h = await startRepairHarness();
    const wf = await h.start({ dryRun: true });
    const evidence: Evidence = await wf.result();
    expect(names(h.calls)).toEqual([
      'preflight',
      'checkRepairTables',
      'restoreBaseBackup',
      'replayWal',
      'snapshotRepairCopy',
      'diffRepair',
      'teardownRepairCopy',
    ]);
    expect(h.calls.log[1]).toBe(`checkRepairTables ${JSON.stringify({ tables: ['orders'], write: false })}`);
    const s = await h.status(wf);
    expect(s.steps.filter((x) => x.state === 'skipped').map((x) => x.id)).toEqual([
      'approve-fence',
      'replay-wal-after',
      'snapshot-after',
      'approve-repair',
      'apply-repair',
      'invalidate-caches',
    ]);
    expect(s.steps.find((x) => x.id === 'diff')?.summary).toBe(
      '"public"."orders": 250 candidates (no after target), 40 inserted since, 750 unchanged',
    );
    expect(evidence).toMatchObject({ kind: 'repair', dryRun: true, validationStatus: 'passed' });
  });

  it('retries a failed apply on request and reports the transaction the first attempt committed as already applied, never twice', async () => {
    h = await startRepairHarness({ applyCrashes: true });
    const wf = await h.start({ after: AFTER });
    await h.waitForStep(wf, 'approve-repair', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-repair', decision: 'approve', by: 'alice' }] });
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-repair', decision: 'approve', by: 'bob' }] });
    const s = await h.waitForStep(wf, 'apply-repair', 'failed');
    expect(s.pending).toMatchObject({ step: 'apply-repair', kind: 'failed' });
    expect(s.steps.find((x) => x.id === 'apply-repair')?.error?.type).toBe('PG_UNREACHABLE');
    await wf.signal(retrySignal, { step: 'apply-repair', by: 'alice' });
    const evidence: Evidence = await wf.result();
    expect(names(h.calls).filter((n) => n === 'applyRepair')).toHaveLength(2);
    expect(evidence.repair?.applied).toEqual([expect.objectContaining({ alreadyApplied: true, updated: 238 })]);
    expect(evidence.steps.find((x) => x.id === 'apply-repair')?.summary).toBe(
      '"public"."orders": already applied: 238 updated, 0 inserted, 0 skipped; rows locked 12 ms',
    );
    await recordHistory('repair-apply-retried', wf);
  });

  it('fails at once on an input without tables or with "latest" as the before target, naming the field', async () => {
    h = await startRepairHarness();
    const wf = await h.start({ tables: [], before: { latest: true } as never });
    const failure = await workflowFailure(wf);
    expect(failure.type).toBe('INPUT_INVALID');
    expect(failure.message).toBe(
      'repairFromPointInTime input is not valid:\n  tables: expected at least one table\n  before: expected a point before the incident, not the end of the archive\nHINT: the input is one JSON object, e.g. {"runbook": "orders"}',
    );
    expect(h.calls.log).toEqual([]);
  });
});
