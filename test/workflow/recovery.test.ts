// recoverToPointInTime's orchestration on a real Temporal dev server, with
// fake activities: approvals and quorum, the UI's way of signalling, the
// decide update's refusals, failed steps, retarget, abort and dry run.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { approveSignal, decideUpdate, retargetSignal, abortSignal, statusQuery } from '../../src/recovery/messages';
import { requireTool } from '../../src/tools';
import type { Evidence } from '../../src/recovery/contract';
import { temporalAddress } from '../harness/services';
import { NOTHING_TOUCHED_HINT } from '../../workflows/recovery/machine';
import { startHarness, TIME_TARGET, workflowFailure, type Harness } from './recovery-harness';

const exec = promisify(execFile);
let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/**
 * LIFEBOAT_RECORD_HISTORIES=1 writes each finished run's history into
 * test/workflow/histories/, which replay.test.ts replays against the current
 * workflow code: re-record deliberately, never to make a replay failure go away.
 */
async function recordHistory(name: string, wf: WorkflowHandle): Promise<void> {
  if (process.env.LIFEBOAT_RECORD_HISTORIES !== '1') return;
  const history = await wf.fetchHistory();
  mkdirSync(HISTORIES, { recursive: true });
  writeFileSync(path.join(HISTORIES, `${name}.json`), historyToJSON(history));
}
const HISTORIES = path.resolve(__dirname, 'histories');

/** A signal sent through the Temporal service by its own CLI: what the Web UI's signal dialog does. */
async function uiSignal(workflowId: string, name: string, input: unknown): Promise<void> {
  await exec(requireTool('temporal'), [
    'workflow',
    'signal',
    '--address',
    temporalAddress(),
    '--workflow-id',
    workflowId,
    '--name',
    name,
    '--input',
    JSON.stringify(input),
  ]);
}

const refusal = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  return ((err as WorkflowUpdateFailedError).cause as Error).message;
};

describe('recoverToPointInTime', () => {
  it('runs every step in order with UI signals, the decide update and a quorum of two, and returns complete evidence', async () => {
    h = await startHarness('happy');
    const wf = await h.start({ target: TIME_TARGET, incident: 'INC-1234', reason: 'bad UPDATE on orders' });
    let s = await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    expect(s.pending).toMatchObject({
      step: 'approve-fence',
      kind: 'approval',
      approvers: ['alice', 'bob'],
      min: 1,
      approvedBy: [],
    });
    expect(s.steps.slice(0, 2).map((x) => x.state)).toEqual(['done', 'done']);
    expect(h.calls.log.some((l) => l.startsWith('setGate'))).toBe(false);

    // A non-approver's signal is ignored and listed; an approver's (sent like the UI) is taken.
    await uiSignal(wf.workflowId, 'approve', { step: 'approve-fence', by: 'mallory' });
    await uiSignal(wf.workflowId, 'approve', { step: 'approve-fence', by: 'alice', comment: 'fence it' });
    s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(s.ignored).toEqual([
      expect.objectContaining({
        via: 'signal',
        name: 'approve',
        by: 'mallory',
        step: 'approve-fence',
        why: 'NOT_AN_APPROVER: mallory may not decide approve-fence; allowed: alice, bob',
      }),
    ]);
    expect(s.steps.find((x) => x.id === 'disable-writers')?.summary).toBe(
      'ERROR: cannot execute UPDATE in a read-only transaction',
    );
    expect(s.rpoObservedSeconds).toBe(2);

    // The update answers: a non-approver, a wrong step and a repeated decision are refused.
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'mallory' }] }),
      ),
    ).toBe('NOT_AN_APPROVER: mallory may not decide approve-promote; allowed: alice, bob, carol');
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-resume', decision: 'approve', by: 'alice' }] }),
      ),
    ).toBe('approve-resume is not awaiting approval: it is pending (awaiting approval: approve-promote)');
    const first = await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-promote', decision: 'approve', by: 'alice', comment: 'rows look right' }],
    });
    expect(first).toMatchObject({ id: 'approve-promote', state: 'awaiting-approval' });
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] }),
      ),
    ).toBe('alice has already approved approve-promote: 2 distinct approvers are needed, 1 so far');
    s = await h.status(wf);
    expect(s.pending).toMatchObject({ step: 'approve-promote', approvedBy: ['alice'], min: 2 });
    // Each refused update is listed with the refused signal, as the update's caller was answered.
    expect(s.ignored.slice(1)).toEqual([
      expect.objectContaining({
        via: 'update',
        name: 'decide approve',
        by: 'mallory',
        step: 'approve-promote',
        why: 'NOT_AN_APPROVER: mallory may not decide approve-promote; allowed: alice, bob, carol',
      }),
      expect.objectContaining({
        via: 'update',
        name: 'decide approve',
        by: 'alice',
        step: 'approve-resume',
        why: 'approve-resume is not awaiting approval: it is pending (awaiting approval: approve-promote)',
      }),
      expect.objectContaining({
        via: 'update',
        name: 'decide approve',
        by: 'alice',
        step: 'approve-promote',
        why: 'alice has already approved approve-promote: 2 distinct approvers are needed, 1 so far',
      }),
    ]);
    expect(h.calls.log.some((l) => l.startsWith('promoteRestored'))).toBe(false);
    await uiSignal(wf.workflowId, 'approve', { step: 'approve-promote', by: 'bob' });

    // approve-resume defaults to approve-promote's approvers, one of them.
    await h.waitForStep(wf, 'approve-resume', 'awaiting-approval');
    await wf.signal(approveSignal, { step: 'approve-resume', by: 'carol' });
    const evidence = (await wf.result()) as Evidence;

    expect(
      h.calls.log.map(
        (l) =>
          l.split(' ')[0] +
          (l.includes('"gate"')
            ? ` ${JSON.parse(l.slice(l.indexOf(' ') + 1)).gate}/${JSON.parse(l.slice(l.indexOf(' ') + 1)).where}/${JSON.parse(l.slice(l.indexOf(' ') + 1)).enabled}`
            : ''),
      ),
    ).toEqual([
      'preflight',
      'captureForensics',
      'setGate writers/primary/false',
      'setGate backgroundJobs/primary/false',
      'setGate outbox/primary/false',
      'restoreBaseBackup',
      'replayWal',
      'runInvariants',
      'promoteRestored',
      'setGate writers/restored/false',
      'setGate backgroundJobs/restored/false',
      'setGate outbox/restored/false',
      'reconcileOutbox',
      'invalidateCaches',
      'resumeTraffic',
      'setGate writers/restored/true',
      'setGate backgroundJobs/restored/true',
      'setGate outbox/restored/true',
    ]);
    expect(h.calls.log).toContain('reconcileOutbox {"highWater":"450"}');
    expect(evidence).toMatchObject({
      kind: 'recovery',
      runbook: 'orders',
      incident: 'INC-1234',
      backupId: '20261121T120000Z',
      target: TIME_TARGET,
      promotedAt: '2026-11-21T14:45:00Z',
      rpoObservedSeconds: 2,
      replayedToLsn: '0/5000060',
      walSegmentsReplayed: 4,
      validationStatus: 'passed',
      outbox: { markedPublished: 12 },
    });
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}:${a.decision}`)).toEqual([
      'approve-fence:alice:approve',
      'approve-promote:alice:approve',
      'approve-promote:bob:approve',
      'approve-resume:carol:approve',
    ]);
    expect(evidence.steps.map((x) => x.state)).toEqual(Array(18).fill('done'));
    expect(h.calls.evidence).toHaveLength(1);
    await recordHistory('quorum-ui-signals-and-update', wf);
    // The UI's timeline names the runbook step of every activity, not its function.
    const summaries = await activitySummaries(wf);
    expect(summaries).toEqual(
      expect.arrayContaining([
        'preflight: backup, WAL and time 2026-11-21T14:31:59Z checked in the archive, nothing touched',
        'disable-writers: writers gate off on the primary, proven by a refused write',
        'disable-background-jobs: background jobs gate off on the primary',
        'pause-outbox: outbox publisher gate off on the primary',
        'promote: the paused copy promoted (pg_ctl promote)',
        'promote: writers gate off on the promoted copy, proven by a refused write',
        'resume-traffic: traffic switched to the promoted copy',
        'enable-background-jobs: background jobs gate on on the promoted copy',
        'record-evidence: evidence record written',
        'audit log: line 1 (ignored)',
      ]),
    );
    expect(summaries.filter((x) => !x.startsWith('audit log: ') && !/^[a-z-]+: /.test(x))).toEqual([]);
    // Each approval wait shows as a timer saying what it waits for, replaced when an approval arrives.
    expect(await timerSummaries(wf)).toEqual([
      'approve-fence: waiting for approval, 0 of 1; may approve: alice, bob',
      'approve-promote: waiting for approval, 0 of 2; may approve: alice, bob, carol',
      'approve-promote: waiting for approval, 1 of 2 (alice); may approve: alice, bob, carol',
      'approve-resume: waiting for approval, 0 of 1; may approve: alice, bob, carol',
    ]);
    // Every accepted decision, the ignored signal and the refused updates reached the audit log, in order.
    expect(h.calls.audit.map((a) => `${a.event}:${a.ignored?.via ?? ''}:${a.decision?.by ?? a.ignored?.by}`)).toEqual([
      'ignored:signal:mallory',
      'decision::alice',
      'ignored:update:mallory',
      'ignored:update:alice',
      'decision::alice',
      'ignored:update:alice',
      'decision::bob',
      'decision::carol',
    ]);
  });

  it('parks a failed step for the operator: skip needs a reason and a skippable step, retry runs it again', async () => {
    h = await startHarness(
      'failed',
      {},
      {
        failures: {
          setGate: [
            {
              type: 'PG_UNREACHABLE',
              message: 'cannot connect to the primary 127.0.0.1:5999\nHINT: the primary may be the thing that died',
            },
          ],
          replayWal: [{ type: 'UNEXPECTED', message: 'postmaster exited' }],
        },
      },
    );
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-fence', decision: 'approve', by: 'bob' }] });
    let s = await h.waitForStep(wf, 'disable-writers', 'failed');
    expect(s.steps.find((x) => x.id === 'disable-writers')?.error).toEqual({
      type: 'PG_UNREACHABLE',
      message: 'cannot connect to the primary 127.0.0.1:5999',
      hints: ['the primary may be the thing that died'],
    });
    expect(s.pending).toMatchObject({ step: 'disable-writers', kind: 'failed' });
    expect(s.pending!.how[1]).toMatch(/^skip: lifeboat skip recover-.* disable-writers --as <you> --reason "<why>"$/);
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'disable-writers', decision: 'skip', by: 'bob' }] }),
      ),
    ).toBe('skip needs a reason (it goes into the evidence)');
    expect(
      await refusal(wf.executeUpdate(decideUpdate, { args: [{ step: 'replay-wal', decision: 'retry', by: 'bob' }] })),
    ).toBe('replay-wal has not failed (it is pending): only a failed step can be retried');
    const skipped = await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'disable-writers', decision: 'skip', by: 'bob', comment: 'primary host is gone' }],
    });
    expect(skipped).toMatchObject({ id: 'disable-writers', skipped: { by: 'bob', reason: 'primary host is gone' } });

    s = await h.waitForStep(wf, 'replay-wal', 'failed');
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'replay-wal', decision: 'skip', by: 'bob', comment: 'x' }] }),
      ),
    ).toBe(
      "STEP_NOT_SKIPPABLE: replay-wal cannot be skipped: the runbook's skippable steps are capture-forensics, disable-writers, disable-background-jobs, pause-outbox, invalidate-caches; retry or abort instead",
    );
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'replay-wal', decision: 'retry', by: 'alice' }] });
    s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(s.steps.find((x) => x.id === 'replay-wal')).toMatchObject({ state: 'done', runs: 2 });
    expect(s.steps.find((x) => x.id === 'disable-writers')).toMatchObject({
      state: 'skipped',
      summary: 'skipped by bob: primary host is gone',
    });
    // Abort from here: nothing reopened, the run fails with the reason, evidence says aborted.
    await wf.signal(abortSignal, { step: 'approve-promote', by: 'alice', reason: 'wrong target, starting over' });
    const err = await wf.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(((err as WorkflowFailedError).cause as Error).message).toContain(
      'recovery aborted at approve-promote by alice: wrong target, starting over',
    );
    expect(((err as WorkflowFailedError).cause as Error).message).toContain(
      '\nHINT: writers, background jobs and the outbox were left as they were (fenced): reopen them deliberately\n',
    );
    expect(h.calls.log.filter((l) => l.startsWith('setGate')).every((l) => l.includes('"enabled":false'))).toBe(true);
    expect(h.calls.evidence[0]).toMatchObject({ validationStatus: 'aborted' });
    await recordHistory('failed-step-skip-retry-abort', wf);
  });

  it('retargets later by continuing the replay, and earlier by restoring again', async () => {
    h = await startHarness('retarget', {
      approvals: {
        'approve-fence': { approvers: ['alice'] },
        'approve-promote': { approvers: ['alice'] },
        'approve-resume': false,
      },
    });
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.signal(approveSignal, { step: 'approve-fence', by: 'alice' });
    await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    await wf.signal(retargetSignal, { by: 'alice', target: { time: '2026-11-21T14:32:30Z' } });
    await waitForCalls(h, 'replayWal', 2);
    await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(h.calls.log.filter((l) => l.startsWith('restoreBaseBackup'))).toHaveLength(1);
    expect(h.calls.log.filter((l) => l.startsWith('replayWal'))[1]).toBe(
      'replayWal {"target":{"time":"2026-11-21T14:32:30Z"},"continueFrom":true}',
    );

    await wf.signal(retargetSignal, { by: 'alice', target: { time: '2026-11-21T14:20:00Z' } });
    await waitForCalls(h, 'replayWal', 3);
    const s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(h.calls.log.filter((l) => l.startsWith('restoreBaseBackup'))).toHaveLength(2);
    expect(h.calls.log.filter((l) => l.startsWith('replayWal'))[2]).toBe(
      'replayWal {"target":{"time":"2026-11-21T14:20:00Z"},"continueFrom":false}',
    );
    expect(s.target).toEqual({ time: '2026-11-21T14:20:00Z' });
    await wf.signal(approveSignal, { step: 'approve-promote', by: 'alice' });
    const evidence = (await wf.result()) as Evidence;
    expect(evidence.target).toEqual({ time: '2026-11-21T14:20:00Z' });
    expect(evidence.steps.find((x) => x.id === 'approve-resume')).toMatchObject({
      state: 'skipped',
      summary: 'turned off in the runbook (approvals.approve-resume: false)',
    });
    await recordHistory('retarget-later-then-earlier', wf);
  });

  it('after a replay that ended before the target, takes a retarget and restores again instead of making the operator start over', async () => {
    h = await startHarness(
      'pastend',
      { approvals: { 'approve-promote': { approvers: ['alice'] }, 'approve-resume': false } },
      {
        failures: {
          replayWal: [
            {
              type: 'RECOVERY_ENDED_BEFORE_TARGET',
              message:
                'recovery ended at 0/7000000 before reaching time 2026-11-21T14:31:59Z\nHINT: choose an earlier target',
            },
          ],
        },
      },
    );
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.signal(approveSignal, { step: 'approve-fence', by: 'bob' });
    const failed = await h.waitForStep(wf, 'replay-wal', 'failed');
    expect(failed.pending!.how).toContain(
      `retarget: lifeboat retarget ${wf.workflowId} --to-latest|--to-time <iso> --as <you> (restores again to the new target)`,
    );
    await wf.signal(retargetSignal, { by: 'mallory', target: { latest: true } });
    await wf.signal(retargetSignal, { by: 'alice', target: { latest: true } });
    const s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(s.ignored.map((i) => i.why)).toEqual(['NOT_AN_APPROVER: mallory may not retarget this run; allowed: alice']);
    expect(s.target).toEqual({ latest: true });
    expect(h.calls.log.filter((l) => l.startsWith('restoreBaseBackup'))).toHaveLength(2);
    expect(h.calls.log.filter((l) => l.startsWith('replayWal'))[1]).toBe(
      'replayWal {"target":{"latest":true},"continueFrom":false}',
    );
    await wf.signal(approveSignal, { step: 'approve-promote', by: 'alice' });
    const evidence = (await wf.result()) as Evidence;
    expect(evidence.notes).toContain(
      'retargeted by alice from time 2026-11-21T14:31:59Z to the end of the archive: restored again',
    );
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}:${a.decision}`)).toEqual([
      'approve-fence:bob:approve',
      'replay-wal:alice:retarget',
      'approve-promote:alice:approve',
    ]);
    await recordHistory('retarget-after-failed-replay', wf);
  });

  it('needs an explicit override with a reason to promote past a failed invariant, and records it', async () => {
    h = await startHarness(
      'invariant',
      { approvals: { 'approve-promote': { approvers: ['alice'] }, 'approve-resume': false } },
      { invariantsFail: true },
    );
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await wf.signal(approveSignal, { step: 'approve-fence', by: 'anyone' });
    const s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(s.invariants?.filter((i) => !i.passed).map((i) => i.name)).toEqual(['no negative amounts']);
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'alice' }] }),
      ),
    ).toBe(
      'invariants failed on the paused copy (no negative amounts): approving promotion needs "override": true and the reason in comment (lifeboat approve ... --override --comment "<why>")',
    );
    await wf.executeUpdate(decideUpdate, {
      args: [
        {
          step: 'approve-promote',
          decision: 'approve',
          by: 'alice',
          override: true,
          comment: 'three refunds are negative by design',
        },
      ],
    });
    const evidence = (await wf.result()) as Evidence;
    expect(evidence.invariantOverride).toEqual({ by: 'alice', reason: 'three refunds are negative by design' });
    expect(evidence.validationStatus).toBe('failed');
    await recordHistory('invariant-override', wf);
  });

  it('a dry run restores and checks but touches no gate and no traffic', async () => {
    h = await startHarness('dry');
    const wf = await h.start({ target: TIME_TARGET, dryRun: true });
    const evidence = (await wf.result()) as Evidence;
    expect(h.calls.log.map((l) => l.split(' ')[0])).toEqual([
      'preflight',
      'captureForensics',
      'restoreBaseBackup',
      'replayWal',
      'runInvariants',
      'stopRestored',
    ]);
    expect(evidence.dryRun).toBe(true);
    expect(evidence.steps.filter((x) => x.state === 'skipped').map((x) => x.id)).toEqual([
      'approve-fence',
      'disable-writers',
      'disable-background-jobs',
      'pause-outbox',
      'approve-promote',
      'promote',
      'reconcile-outbox',
      'invalidate-caches',
      'approve-resume',
      'resume-traffic',
      'enable-background-jobs',
      'resume-outbox',
    ]);
    await recordHistory('dry-run', wf);
  });

  it('with a runbook without gates, skips approve-fence and claims no gate in the promote and resume-traffic summaries', async () => {
    h = await startHarness('nogates', {
      gates: undefined,
      approvals: { 'approve-promote': { approvers: ['alice'] }, 'approve-resume': false },
    });
    const wf = await h.start({ target: TIME_TARGET });
    const s = await h.waitForStep(wf, 'approve-promote', 'awaiting-approval');
    expect(s.steps.find((x) => x.id === 'approve-fence')).toMatchObject({
      state: 'skipped',
      summary: 'no gates in the runbook: nothing to fence (add approvals.approve-fence to be asked anyway)',
      skipped: { by: 'lifeboat' },
    });
    await wf.signal(approveSignal, { step: 'approve-promote', by: 'alice' });
    const evidence = (await wf.result()) as Evidence;
    const summary = (id: string) => evidence.steps.find((x) => x.id === id)?.summary;
    expect(summary('promote')).toBe(
      'promoted on timeline 2 at 2026-11-21T14:45:00Z; primary re-pointed to 127.0.0.1:6000 in the repository',
    );
    // recordPrimary's answer is the evidence's primary (shared/DESIGN.md §7, extended).
    expect(evidence.primary).toEqual({
      repointed: true,
      host: '127.0.0.1',
      port: 6000,
      timeline: 2,
      replaced: { host: '127.0.0.1', port: 5999 },
      since: '2026-11-21T14:45:01Z',
      overlay: 'orders/primary.json',
    });
    expect(summary('resume-traffic')).toBe('pgbouncer now points at 127.0.0.1:6000');
    expect(h.calls.log.some((l) => l.startsWith('setGate'))).toBe(false);
    expect(evidence.approvals.map((a) => `${a.step}:${a.by}`)).toEqual(['approve-promote:alice']);
    await recordHistory('no-gates', wf);
  });

  it('with a runbook without gates that names approve-fence in its approvals, still asks it', async () => {
    h = await startHarness('nogates-asked', {
      gates: undefined,
      approvals: { 'approve-fence': { approvers: ['bob'] } },
    });
    const wf = await h.start({ target: TIME_TARGET });
    const s = await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    expect(s.pending).toMatchObject({ step: 'approve-fence', approvers: ['bob'] });
    await wf.terminate('test over');
  });

  it('answers malformed signals from the UI and a malformed decide update with the shape the input must have', async () => {
    h = await startHarness('malformed');
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    // The UI's dialog with a bare step id typed as a JSON string, then an object without "by".
    await uiSignal(wf.workflowId, 'approve', 'approve-fence');
    await uiSignal(wf.workflowId, 'approve', { step: 'approve-fence' });
    expect(await refusal(wf.executeUpdate(decideUpdate, { args: ['approve-fence' as never] }))).toBe(
      `decide: the update's input must be a JSON object such as {"step": "approve-fence", "decision": "approve", "by": "alice"} (got a string)`,
    );
    const s = await waitForIgnored(wf, 3);
    expect(s.ignored.filter((i) => i.via === 'signal').map((i) => i.why)).toEqual([
      `signal approve's input must be a JSON object such as {"step": "approve-fence", "by": "alice"} (got a string)`,
      `by: expected who decides, e.g. "alice" (signal approve's input is a JSON object such as {"step": "approve-fence", "by": "alice"})`,
    ]);
    expect(s.ignored.filter((i) => i.via === 'update')).toEqual([
      expect.objectContaining({
        name: 'decide',
        why: `decide: the update's input must be a JSON object such as {"step": "approve-fence", "decision": "approve", "by": "alice"} (got a string)`,
      }),
    ]);
    expect(s.steps.find((x) => x.id === 'approve-fence')?.state).toBe('awaiting-approval');
    await wf.terminate('test over');
  });

  it('reports an observed RPO of 0 with the reason when nothing committed between the backup and the target', async () => {
    h = await startHarness('rpo-quiet', {}, { replayNoCommit: true });
    const wf = await h.start({ target: TIME_TARGET, dryRun: true });
    const evidence = (await wf.result()) as Evidence;
    expect(evidence.rpoObservedSeconds).toBe(0);
    expect(evidence.objectives).toMatchObject({ rpoMet: true });
    expect(evidence.replayedToTime).toBeUndefined();
    expect(evidence.notes).toContain(
      'observed RPO 0 s: no transaction committed between backup 20261121T120000Z (started 2026-11-21T12:00:00Z) and the target 2026-11-21T14:31:59Z, so the restored copy holds every transaction committed before the target',
    );
  });

  it('escalates an approval that waits past escalateAfter by notifying again, never by approving', async () => {
    h = await startHarness('escalate', {
      approvals: { 'approve-fence': { approvers: ['alice'], escalateAfter: '1s' } },
    });
    const wf = await h.start({ target: TIME_TARGET });
    await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    await waitForCalls(h, 'notifyEscalation', 2);
    const s = await h.status(wf);
    expect(s.steps.find((x) => x.id === 'approve-fence')?.state).toBe('awaiting-approval');
    expect(h.calls.log.filter((l) => l.startsWith('notifyEscalation'))[0]).toBe(
      'notifyEscalation {"step":"approve-fence"}',
    );
    expect(h.calls.log.some((l) => l.startsWith('setGate'))).toBe(false);
    await wf.terminate('test over');
  });

  it('ends at once as failed when preflight finds no backup for the target: nothing touched, no decision waited for', async () => {
    const noBackup = [
      'no backup of cluster orders finished before time 2020-01-01T00:00:00Z: the oldest, 20261121T120000Z, finished at 2026-11-21T12:00:05Z',
      'HINT: recover to a time after 2026-11-21T12:00:05Z, or restore a backup from elsewhere into the repository',
    ].join('\n');
    h = await startHarness(
      'nobackup',
      {},
      { failures: { preflight: [{ type: 'BACKUP_NOT_FOUND', message: noBackup }] } },
    );
    const wf = await h.start({ target: { time: '2020-01-01T00:00:00Z' } });
    const failure = await workflowFailure(wf);
    expect(failure.type).toBe('BACKUP_NOT_FOUND');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(`${noBackup}\nHINT: ${NOTHING_TOUCHED_HINT}`);
    const s = await h.status(wf);
    expect(s.phase).toBe('failed');
    expect(s.pending).toBeUndefined();
    expect(s.steps.map((x) => x.state)).toEqual(['failed', ...Array(17).fill('pending')]);
    expect(s.steps[0]!.error).toEqual({
      type: 'BACKUP_NOT_FOUND',
      message: noBackup.split('\n')[0],
      hints: [
        'recover to a time after 2026-11-21T12:00:05Z, or restore a backup from elsewhere into the repository',
        NOTHING_TOUCHED_HINT,
      ],
    });
    // Asked preflight once and stopped: no forensics, no gate, no restore.
    expect(h.calls.log.map((l) => l.split(' ')[0])).toEqual(['preflight']);
    expect(await scheduled(wf)).toEqual(['checkNoOtherRecovery', 'preflight']);
    await recordHistory('preflight-backup-not-found', wf);
  });

  it('ends at once as failed with RUNBOOK_NOT_FOUND when the Temporal UI starts a recovery of a runbook no worker knows', async () => {
    const unknown = 'runbook "nosuch" not found in /etc/lifeboat/runbooks\nHINT: runbooks there: orders';
    h = await startHarness(
      'norunbook',
      {},
      { failures: { preflight: [{ type: 'RUNBOOK_NOT_FOUND', message: unknown }] } },
    );
    // What the UI's Start Workflow form sends: type, task queue, one JSON input.
    const workflowId = `recover-nosuch-${Date.now().toString(36)}`;
    await exec(requireTool('temporal'), [
      'workflow',
      'start',
      '--address',
      temporalAddress(),
      '--task-queue',
      h.taskQueue,
      '--type',
      'recoverToPointInTime',
      '--workflow-id',
      workflowId,
      '--input',
      JSON.stringify({ runbook: 'nosuch', target: { latest: true } }),
    ]);
    const wf = h.client.workflow.getHandle(workflowId);
    const failure = await workflowFailure(wf);
    expect(failure.type).toBe('RUNBOOK_NOT_FOUND');
    expect(failure.message).toBe(`${unknown}\nHINT: ${NOTHING_TOUCHED_HINT}`);
    const s = await h.status(wf);
    expect(s).toMatchObject({ runbook: 'nosuch', phase: 'failed' });
    expect(s.pending).toBeUndefined();
    expect(h.calls.log.map((l) => l.split(' ')[0])).toEqual(['preflight']);
    // A decision after the end is answered by Temporal: the run takes no more.
    const late = await wf.signal(abortSignal, { step: 'preflight', by: 'mallory', reason: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(late)).toMatch(/workflow execution already completed/);
  });

  it('keeps a preflight that failed for a reason a retry can fix waiting for retry or abort, saying nothing was touched and offering no skip', async () => {
    h = await startHarness(
      'preflight-retry',
      {},
      {
        // As the real preflight does: the runbook's operators travel with the failure.
        failures: {
          preflight: [
            {
              type: 'REPOSITORY_UNREACHABLE',
              message: 'cannot list file:///nonexistent/repo/orders/base\nHINT: is the store up?',
              details: { operators: ['alice', 'bob'] },
            },
          ],
        },
      },
    );
    const wf = await h.start({ target: TIME_TARGET });
    const s = await h.waitForStep(wf, 'preflight', 'failed');
    expect(s.phase).toBe('waiting');
    expect(s.pending).toMatchObject({ step: 'preflight', kind: 'failed', approvers: ['alice', 'bob'] });
    // The workflow has no runbook yet, but a stranger still may not end or retry the run.
    expect(
      await refusal(
        wf.executeUpdate(decideUpdate, {
          args: [{ step: 'preflight', decision: 'abort', by: 'mallory', comment: 'x' }],
        }),
      ),
    ).toBe('NOT_AN_APPROVER: mallory may not abort this run; allowed: alice, bob');
    expect(s.pending!.how).toEqual([
      `retry: lifeboat retry ${wf.workflowId} preflight --as <you> (or signal retry {"step": "preflight", "by": "<you>"})`,
      `abort: lifeboat abort ${wf.workflowId} preflight --as <you> --reason "<why>" (nothing has been touched yet)`,
      'Temporal UI: More Actions › Send an Update › decide, with {"step": "preflight", "decision": "retry", "by": "<you>"} (it answers: accepted, or why not; "decision": "abort" with a "comment" saying why)',
    ]);
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'preflight', decision: 'retry', by: 'alice' }] });
    const next = await h.waitForStep(wf, 'approve-fence', 'awaiting-approval');
    expect(next.steps[0]).toMatchObject({ state: 'done', runs: 2 });
    // Rejected before the fence: the failure says nothing was touched, not "fenced".
    await wf.executeUpdate(decideUpdate, {
      args: [{ step: 'approve-fence', decision: 'reject', by: 'alice', comment: 'wrong incident' }],
    });
    const rejected = await workflowFailure(wf);
    expect(rejected.message.split('\n').slice(0, 2)).toEqual([
      'recovery rejected at approve-fence by alice: wrong incident',
      'HINT: nothing was touched: no gate, no traffic, no data directory',
    ]);
  });

  it('ends at once as failed when preflight finds a traffic endpoint that does not answer, after probing caches on the shared queue and traffic on the traffic host; a dry run probes neither', async () => {
    const silent = [
      'traffic of runbook orders: cannot connect to the admin console of pgbouncer at $PGBOUNCER_ADMIN_URL (127.0.0.1:6432): connect ECONNREFUSED 127.0.0.1:6432',
      'HINT: is pgbouncer running and reachable from this worker? (psql "$PGBOUNCER_ADMIN_URL" -c \'SHOW VERSION\')',
      'HINT: bring it up or fix the traffic section of runbook orders, then start the recovery again',
    ].join('\n');
    h = await startHarness(
      'endpoint',
      {},
      { failures: { checkTrafficEndpoint: [{ type: 'ENDPOINT_UNREACHABLE', message: silent }] } },
    );
    const wf = await h.start({ target: TIME_TARGET });
    const failure = await workflowFailure(wf);
    expect(failure.type).toBe('ENDPOINT_UNREACHABLE');
    expect(failure.message).toBe(`${silent}\nHINT: ${NOTHING_TOUCHED_HINT}`);
    const s = await h.status(wf);
    expect(s.phase).toBe('failed');
    expect(s.pending).toBeUndefined();
    expect(s.steps.map((x) => x.state)).toEqual(['failed', ...Array(17).fill('pending')]);
    expect(await scheduled(wf)).toEqual([
      'checkNoOtherRecovery',
      'preflight',
      'checkRestoreSite',
      'checkCacheEndpoints',
      'checkTrafficEndpoint',
    ]);
    // Each probe on the queue of the step it stands for: invalidate-caches on the workflow's, resume-traffic on the traffic host's.
    const history = await wf.fetchHistory();
    const queues = Object.fromEntries(
      (history.events ?? []).flatMap((e) => {
        const a = e.activityTaskScheduledEventAttributes;
        return a?.activityType?.name ? [[a.activityType.name, a.taskQueue?.name]] : [];
      }),
    );
    expect(queues.checkCacheEndpoints).toBe(h.taskQueue);
    expect(queues.checkTrafficEndpoint).toBe(queues.checkRestoreSite);
    await recordHistory('preflight-endpoint-unreachable', wf);

    const dry = await h.start({ target: TIME_TARGET, dryRun: true });
    await dry.result();
    expect((await scheduled(dry)).filter((a) => a.startsWith('check'))).toEqual([
      'checkNoOtherRecovery',
      'checkRestoreSite',
    ]);
  });

  it('fails at once on a bad input, naming the field', async () => {
    h = await startHarness('badinput');
    const wf = await h.start({ target: { time: '2026-11-21 14:31:59' } });
    const err = await wf.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(((err as WorkflowFailedError).cause as Error).message).toBe(
      'recoverToPointInTime input is not valid:\n  target.time: expected an ISO 8601 time with a zone, e.g. "2026-06-04T14:31:59Z"\nHINT: the input is one JSON object, e.g. {"runbook": "orders"}',
    );
  });
});

/** Activity types the run scheduled, in order: what it asked and touched. */
async function scheduled(wf: WorkflowHandle): Promise<string[]> {
  const history = await wf.fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name
      ? [e.activityTaskScheduledEventAttributes.activityType.name]
      : [],
  );
}

/** The summary of every activity the run scheduled, in order (what the Temporal UI's timeline shows). */
async function activitySummaries(wf: WorkflowHandle): Promise<string[]> {
  const history = await wf.fetchHistory();
  const out: string[] = [];
  for (const e of history.events ?? []) {
    if (!e.activityTaskScheduledEventAttributes) continue;
    const p = e.userMetadata?.summary;
    out.push(
      p
        ? (defaultPayloadConverter.fromPayload(p as Payload) as string)
        : `(no summary: ${e.activityTaskScheduledEventAttributes.activityType?.name ?? '?'})`,
    );
  }
  return out;
}

/** The summaries of the timers the run started, in order. */
async function timerSummaries(wf: WorkflowHandle): Promise<string[]> {
  const history = await wf.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.timerStartedEventAttributes)
    .map((e) =>
      e.userMetadata?.summary
        ? (defaultPayloadConverter.fromPayload(e.userMetadata.summary as Payload) as string)
        : '(no summary)',
    );
}

async function waitForIgnored(wf: WorkflowHandle, n: number) {
  const { waitFor } = await import('../harness/ports');
  return waitFor(
    `${n} ignored messages`,
    async () => {
      const s = await wf.query(statusQuery);
      return s.ignored.length >= n ? s : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

async function waitForCalls(harness: Harness, name: string, n: number): Promise<void> {
  const { waitFor } = await import('../harness/ports');
  await waitFor(
    `${n} calls of ${name}`,
    async () => (harness.calls.log.filter((l) => l.startsWith(name)).length >= n ? true : undefined),
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}
