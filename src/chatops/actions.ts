// What chat-ops does to a recovery run, once the request is authentic and
// the chat user is mapped to an approver: read its `status`, or send the
// `decide` update (DESIGN.md §4.2) with `by` = that approver.
//
// A decision reaches the workflow only when the step named is the one
// waiting for a decision and the approver is among that decision's
// approvers, both read from `status` first: a stranger's attempt leaves no
// trace in the run's history. The update's validator stays the second line
// (a decision that raced another, a repeated approval, a kind that does not
// fit the step) and its reason is passed back word for word.
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { failureMessage } from '../client/failure';
import { errorMessage } from '../errors';
import type { DecideUpdate, PendingDecision, RecoveryStatus, StepRecord } from '../recovery/contract';
import { RECOVERY_WORKFLOW, decideUpdate, statusQuery } from '../recovery/messages';
import { checklistLines } from '../cli/ui-link';

export type RefusalCode =
  'UNKNOWN_WORKFLOW' | 'RUN_ENDED' | 'NOT_WAITING' | 'NOT_AN_APPROVER' | 'REFUSED' | 'TEMPORAL_UNAVAILABLE';

/** Why chat-ops or the workflow said no; `status` is the HTTP status of the JSON endpoint. */
export interface Refusal {
  code: RefusalCode;
  status: 403 | 404 | 409 | 422 | 503;
  message: string;
}

export interface Accepted {
  workflowId: string;
  decision: DecideUpdate['decision'];
  step: DecideUpdate['step'];
  by: string;
  /** The step as the update answered: its new state. */
  record: StepRecord;
  /** What the run waits for after the decision, when it could be read. */
  pending?: PendingDecision;
  /** The run the decision went to, for the link to its checklist. */
  runId: string;
}

export type DecideResult = { accepted: Accepted } | { refused: Refusal };
export type StatusResult = { status: RecoveryStatus; running: boolean; runId: string } | { refused: Refusal };

// A query or update waits for a worker; without one it would wait for the
// RPC's own timeout while the chat user stares at a spinner (Slack gives up
// after 3 s anyway).
const QUERY_TIMEOUT_MS = 5_000;
const UPDATE_TIMEOUT_MS = 30_000;

export async function readStatus(client: Client, workflowId: string): Promise<StatusResult> {
  const handle = client.workflow.getHandle(workflowId);
  let running: boolean;
  let runId: string;
  try {
    const description = await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.describe());
    if (description.type !== RECOVERY_WORKFLOW) {
      return {
        refused: {
          code: 'UNKNOWN_WORKFLOW',
          status: 404,
          message: `${workflowId} is a ${description.type} run, not ${RECOVERY_WORKFLOW}`,
        },
      };
    }
    running = description.status.name === 'RUNNING';
    runId = description.runId;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return {
        refused: {
          code: 'UNKNOWN_WORKFLOW',
          status: 404,
          message: `no recovery run ${workflowId} (lifeboat recover prints the id, recover-<runbook>-<time>)`,
        },
      };
    }
    return { refused: unavailable(err) };
  }
  try {
    const status = await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query(statusQuery));
    return { status, running, runId };
  } catch (err) {
    return { refused: unavailable(err, running ? 'is a worker polling its task queue?' : undefined) };
  }
}

export async function decide(client: Client, workflowId: string, update: DecideUpdate): Promise<DecideResult> {
  const { step, by, decision } = update;
  const look = await readStatus(client, workflowId);
  if ('refused' in look) return look;
  if (!look.running) {
    return {
      refused: {
        code: 'RUN_ENDED',
        status: 409,
        message: `${workflowId} has ended (${look.status.phase}): it takes no more decisions`,
      },
    };
  }
  const pending = look.status.pending;
  if (pending?.step !== step) {
    const now = pending
      ? `${pending.step} is ${pending.kind === 'approval' ? 'awaiting approval' : 'failed, waiting for retry, skip or abort'}`
      : 'nothing is waiting for a decision';
    return { refused: { code: 'NOT_WAITING', status: 409, message: `${step} is not waiting for a decision: ${now}` } };
  }
  if (pending.approvers.length > 0 && !pending.approvers.includes(by)) {
    // The workflow's own words (workflows/recovery/rules.ts), said before anything reaches it.
    const message = `NOT_AN_APPROVER: ${by} may not decide ${step}; allowed: ${pending.approvers.join(', ')} (nothing was sent to the run)`;
    return { refused: { code: 'NOT_AN_APPROVER', status: 403, message } };
  }
  const handle = client.workflow.getHandle(workflowId);
  let record: StepRecord;
  try {
    record = await client.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () =>
      handle.executeUpdate(decideUpdate, { args: [update] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      const reason = failureMessage(err.cause ?? err);
      return {
        refused: {
          code: reason.startsWith('NOT_AN_APPROVER') ? 'NOT_AN_APPROVER' : 'REFUSED',
          status: reason.startsWith('NOT_AN_APPROVER') ? 403 : 422,
          message: reason,
        },
      };
    }
    if (err instanceof WorkflowNotFoundError) {
      return {
        refused: { code: 'RUN_ENDED', status: 409, message: `${workflowId} has ended: it takes no more decisions` },
      };
    }
    return { refused: unavailable(err, `the ${decision} may still be applied: check status ${workflowId}`) };
  }
  // Best effort: the decision is taken whether or not this look answers.
  const after = await readStatus(client, workflowId).catch(() => undefined);
  const next = after && 'status' in after ? after.status.pending : undefined;
  return {
    accepted: { workflowId, decision, step, by, record, runId: look.runId, ...(next ? { pending: next } : {}) },
  };
}

function unavailable(err: unknown, hint?: string): Refusal {
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  const timedOut = /deadline/i.test(errorMessage(err));
  return {
    code: 'TEMPORAL_UNAVAILABLE',
    status: 503,
    message: `Temporal did not answer${timedOut ? ' in time' : ''}: ${errorMessage(err)}${cause}${hint ? ` (${hint})` : ''}`,
  };
}

// ---------------------------------------------------------------- words for the chat

/** The line a reply ends with when the Temporal UI's address is known: where the run's checklist is. */
export function uiLine(ui: string | undefined): string[] {
  return ui ? [checklistLines(ui).join(' ')] : [];
}

export function acceptedText(a: Accepted, chatUser: string, ui?: string): string {
  const { record, pending } = a;
  let now = `${a.step} is now ${record.state}`;
  if (record.state === 'awaiting-approval' && pending?.step === a.step) {
    now += `: approved by ${pending.approvedBy.join(', ') || 'nobody yet'}, needs ${pending.min} of ${pending.approvers.join(', ') || 'any approver'}`;
  }
  return [
    `${a.decision} of ${a.step} by ${a.by} (${chatUser}) on ${a.workflowId}: accepted; ${now}`,
    ...uiLine(ui),
  ].join('\n');
}

export function refusalText(r: Refusal, what: string): string {
  return `${what}: refused: ${r.message}`;
}

/** A short status for a chat window: phase, what is waiting and how to answer, steps that have started. */
export function statusText(
  workflowId: string,
  s: RecoveryStatus,
  running: boolean,
  command: string,
  ui?: string,
): string {
  const target = Object.entries(s.target)
    .map(([k, v]) => (k === 'latest' ? 'latest' : `${k} ${String(v)}`))
    .join(', ');
  const lines = [
    `${workflowId}: ${running ? s.phase : `ended (${s.phase})`}; runbook ${s.runbook}, target ${target}${s.incident ? `, incident ${s.incident}` : ''}`,
  ];
  const p = s.pending;
  if (p) {
    if (p.kind === 'approval') {
      const who = p.approvers.length > 0 ? `${p.min} of ${p.approvers.join(', ')}` : `${p.min} approver(s)`;
      lines.push(
        `waiting: ${p.step} needs ${who}${p.approvedBy.length ? `; approved by ${p.approvedBy.join(', ')}` : ''}`,
      );
      lines.push(
        `  ${command} approve ${workflowId} ${p.step} [comment]   or   ${command} reject ${workflowId} ${p.step} <reason>`,
      );
    } else {
      const err = s.steps.find((x) => x.id === p.step)?.error;
      lines.push(`waiting: ${p.step} failed${err ? ` (${err.type}: ${err.message.split('\n')[0]})` : ''}`);
      lines.push(`  ${command} retry|skip|abort ${workflowId} ${p.step} <reason>`);
    }
  }
  for (const step of s.steps)
    if (step.state !== 'pending') lines.push(`  ${step.id}: ${step.state}${step.summary ? ` (${step.summary})` : ''}`);
  return [...lines, ...uiLine(ui)].join('\n');
}
