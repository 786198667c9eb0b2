// One recovery per runbook at a time (issue 10, point 5): two
// recoverToPointInTime runs of one runbook started together. The workflow
// logic runs on the real Temporal dev server with fake activities, except the
// check itself (activities/one-recovery.ts), which is the real activity
// asking the server's visibility through the worker's client. Visibility
// lags; each check is held until both runs are listed, so the test observes
// the moment both can see each other rather than hoping the index is quick.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { WorkflowHandle } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import { checkNoOtherRecovery } from '../../activities/one-recovery';
import { abortSignal } from '../../src/recovery/messages';
import { waitFor } from '../harness/ports';
import { startHarness, TIME_TARGET, workflowFailure, type Harness } from './recovery-harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

/** The real check, each call held until `count` running recoveries of this harness's queue are listed by visibility. */
function heldCheck(count: () => number): typeof checkNoOtherRecovery {
  return async (input) => {
    const client = Context.current().client;
    await waitFor(
      `${count()} running recoveries listed by visibility`,
      async () => {
        let n = 0;
        for await (const _ of client.workflow.list({
          query: `LifeboatRunbook = 'orders' AND ExecutionStatus = 'Running' AND TaskQueue = '${h!.taskQueue}'`,
        }))
          n += 1;
        return n >= count() ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    return checkNoOtherRecovery(input);
  };
}

/**
 * LIFEBOAT_RECORD_HISTORIES=1 writes the runs' histories into
 * test/workflow/histories/ for replay.test.ts (see recovery.test.ts).
 */
async function recordHistory(name: string, wf: WorkflowHandle): Promise<void> {
  if (process.env.LIFEBOAT_RECORD_HISTORIES !== '1') return;
  const dir = path.resolve(__dirname, 'histories');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), historyToJSON(await wf.fetchHistory()));
}

/** Activity types the run scheduled, in order: what it touched. */
async function scheduled(wf: WorkflowHandle): Promise<string[]> {
  const history = await wf.fetchHistory();
  return (history.events ?? []).flatMap((e) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name
      ? [e.activityTaskScheduledEventAttributes.activityType.name]
      : [],
  );
}

describe('one recovery per runbook', () => {
  it('of two recoveries of one runbook started together, the earlier proceeds past preflight and the later fails at once with RECOVERY_ALREADY_RUNNING naming it, having touched nothing', async () => {
    let expected = 2;
    h = await startHarness('one-recovery', {}, { checkNoOtherRecovery: heldCheck(() => expected) });
    const [a, b] = await Promise.all([h.start({ target: TIME_TARGET }), h.start({ target: TIME_TARGET })]);
    const [da, db] = await Promise.all([a.describe(), b.describe()]);
    const startedFirst =
      da.startTime.getTime() < db.startTime.getTime() ||
      (da.startTime.getTime() === db.startTime.getTime() && a.workflowId < b.workflowId);
    const [first, second] = startedFirst ? [a, b] : [b, a];
    const firstStart = (startedFirst ? da : db).startTime.toISOString();
    const firstRunId = (startedFirst ? da : db).runId;

    const failure = await workflowFailure(second);
    expect(failure.type).toBe('RECOVERY_ALREADY_RUNNING');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      [
        `another recovery of runbook orders is running: workflow ${first.workflowId} (run ${firstRunId}), started ${firstStart}; this one (${second.workflowId}) stopped before touching anything`,
        `HINT: follow that one: lifeboat status ${first.workflowId} --watch`,
        `HINT: to recover with this one instead, end that one first (lifeboat abort ${first.workflowId} <step> --as <you> --reason "...") and start this again`,
        'HINT: if both must run (two targets side by side, each on its own restore host), start this one with lifeboat recover --concurrent (input "concurrent": true)',
      ].join('\n'),
    );
    // The refused run asked visibility and nothing else: no preflight, no approval, no gate.
    expect(await scheduled(second)).toEqual(['checkNoOtherRecovery']);
    const refused = await h.status(second);
    expect(refused.steps.find((s) => s.id === 'preflight')).toMatchObject({
      state: 'failed',
      error: { type: 'RECOVERY_ALREADY_RUNNING' },
    });
    expect(refused.steps.filter((s) => s.id !== 'preflight').every((s) => s.state === 'pending')).toBe(true);

    // The earlier one goes on to the fence approval; preflight ran once, for it.
    const s = await h.waitForStep(first, 'approve-fence', 'awaiting-approval');
    expect(s.steps.slice(0, 2).map((x) => x.state)).toEqual(['done', 'done']);
    expect(h.calls.log.filter((l) => l.startsWith('preflight'))).toHaveLength(1);
    expect(h.calls.log.some((l) => l.startsWith('setGate'))).toBe(false);

    // Once it has ended, a new recovery of the runbook proceeds.
    await first.signal(abortSignal, {
      step: 'approve-fence',
      by: 'alice',
      reason: 'starting over with another target',
    });
    expect((await workflowFailure(first)).type).toBe('RECOVERY_ABORTED');
    await recordHistory('one-recovery-refused', second);
    await recordHistory('one-recovery-first-aborted', first);
    expected = 1;
    const third = await h.start({ target: TIME_TARGET });
    await h.waitForStep(third, 'approve-fence', 'awaiting-approval');
    expect(await scheduled(third)).toEqual([
      'checkNoOtherRecovery',
      'preflight',
      'checkRestoreSite',
      'checkCacheEndpoints',
      'checkTrafficEndpoint',
      'captureForensics',
    ]);
    await third.terminate('test over');
  });

  it('with concurrent: true both recoveries of one runbook proceed past preflight, and neither asks', async () => {
    h = await startHarness('one-recovery-concurrent', {}, { checkNoOtherRecovery: heldCheck(() => 2) });
    const [a, b] = await Promise.all([
      h.start({ target: TIME_TARGET, concurrent: true }),
      h.start({ target: TIME_TARGET, concurrent: true }),
    ]);
    await Promise.all([
      h.waitForStep(a, 'approve-fence', 'awaiting-approval'),
      h.waitForStep(b, 'approve-fence', 'awaiting-approval'),
    ]);
    expect(h.calls.log.filter((l) => l.startsWith('preflight'))).toHaveLength(2);
    for (const wf of [a, b])
      expect(await scheduled(wf)).toEqual([
        'preflight',
        'checkRestoreSite',
        'checkCacheEndpoints',
        'checkTrafficEndpoint',
        'captureForensics',
      ]);
    await Promise.all([a.terminate('test over'), b.terminate('test over')]);
  });
});
