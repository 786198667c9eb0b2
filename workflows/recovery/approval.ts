// The wait of an approval step (approve-fence, approve-promote,
// approve-resume, approve-repair) for its quorum, for RecoveryMachine.approval:
// the pending decision with how to give it, the Slack announcement, the
// escalations after the runbook's wait, and the timer whose summary shows
// the wait in the Temporal UI. Rejection and abort end the run; a retarget
// at approve-promote goes back to the workflow.
import { CancellationScope, condition, isCancellation, patched, sleep, workflowInfo } from '@temporalio/workflow';
import type { PendingDecision, StepId } from '../../src/recovery/contract';
import { stepForSummaries } from '../summaries';
import type { RecoveryMachine } from './machine';
import { howToApprove, policyOf, type Policy } from './rules';
import { RunAborted } from './run-errors';

/** Runs from before it wait for approvals without the timer that shows the wait in the UI (showWait). */
const APPROVAL_WAIT_TIMER_PATCH = 'approval-wait-timer';
/**
 * The patch under which a step that starts waiting for a person announces
 * it (the Slack message with the buttons). Asked only when the runbook has
 * notify.slack, so runs without it record the same history as before.
 */
export const ANNOUNCE_APPROVAL_PATCH = 'announce-approval-slack';

const now = () => new Date().toISOString();

/** What the workflow's decision channels do when a wait outlasts escalateAfter (channels.ts). */
export type Escalate = (pending: PendingDecision, waitedSeconds: number) => Promise<void>;

/**
 * Waits for an approval step's quorum. Returns 'approved', or 'retarget'
 * (approve-promote only); rejection and abort end the run.
 */
export async function awaitApproval(
  run: RecoveryMachine,
  id: StepId,
  notify: Escalate,
): Promise<'approved' | 'retarget'> {
  const rec = run.steps.get(id)!;
  run.currentStep = id;
  stepForSummaries(id);
  run.checkAbort(id);
  const policy = policyOf(run.runbook, id);
  run.approvedBy = new Set();
  rec.state = 'awaiting-approval';
  rec.startedAt ??= now();
  rec.runs += 1;
  run.pending = {
    step: id,
    kind: 'approval',
    since: now(),
    approvers: policy.approvers,
    min: policy.min,
    approvedBy: [],
    how: howToApprove(workflowInfo().workflowId, id, run.failedInvariants.length > 0),
  };
  run.publish();
  const decided = () =>
    rec.state !== 'awaiting-approval' || !!run.rejection || !!run.abortRequest || !!run.retargetRequest;
  // A timer whose summary says what the wait is for: the UI draws it on the
  // run's first page (timeline, Events with Metadata), where nothing else
  // says that a person is awaited.
  const shown = patched(APPROVAL_WAIT_TIMER_PATCH) ? showWait(run, id, policy, decided) : undefined;
  // Alongside the wait and never waited for: a decision taken while Slack
  // is slow or down (the activity's retries) does not hold the run up.
  if (run.announce && run.runbook?.notify?.slack && patched(ANNOUNCE_APPROVAL_PATCH)) void run.announce(run.pending);
  let waited = 0;
  for (;;) {
    if (policy.escalateAfterSeconds === undefined) {
      await condition(decided);
      break;
    }
    if (await condition(decided, policy.escalateAfterSeconds * 1000)) break;
    // Escalation notifies again; it never approves.
    waited += policy.escalateAfterSeconds;
    await notify(run.pending, waited);
  }
  await shown;
  run.pending = undefined;
  run.checkAbort(id);
  if (run.rejection) {
    run.finish(rec, 'failed', `rejected by ${run.rejection.by}: ${run.rejection.reason}`);
    throw new RunAborted(id, run.rejection.by, run.rejection.reason, 'rejected');
  }
  if (run.retargetRequest) {
    rec.state = 'pending';
    run.publish();
    return 'retarget';
  }
  return 'approved';
}

/**
 * Keeps one timer running while an approval waits, its summary naming the
 * step, the approvals so far and who may give the rest; a new one replaces
 * it when an approval arrives. The timers never fire in practice (a year)
 * and are cancelled once the step is decided.
 */
async function showWait(run: RecoveryMachine, id: StepId, policy: Policy, decided: () => boolean): Promise<void> {
  for (;;) {
    const seen = run.approvedBy.size;
    const scope = new CancellationScope();
    const timer = scope
      .run(() => sleep('365 days', { summary: waitSummary(id, policy, [...run.approvedBy]) }))
      .catch((err: unknown) => {
        if (!isCancellation(err)) throw err;
      });
    await condition(() => decided() || run.approvedBy.size !== seen);
    scope.cancel();
    await timer;
    if (decided()) return;
  }
}

/**
 * "approve-promote: waiting for approval, 1 of 2 (alice); may approve: alice,
 * bob, carol": the summary of an approval's wait timer.
 */
export function waitSummary(id: StepId, policy: Policy, approvedBy: string[]): string {
  const who = policy.approvers.length ? policy.approvers.join(', ') : 'any named approver';
  const so = `${approvedBy.length} of ${policy.min}${approvedBy.length ? ` (${approvedBy.join(', ')})` : ''}`;
  return `${id}: waiting for approval, ${so}; may approve: ${who}`;
}
