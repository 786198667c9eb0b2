// Notifications (DESIGN.md §1: a failed drill notifies). One activity for
// every kind of event; workflows call it with a few retries and record what
// happened, and a notifier that keeps failing never fails the run.
// Also the Slack approval message (src/notify/slack.ts): posted when a step
// starts waiting for a person, and again at escalation.
import { Context } from '@temporalio/activity';
import type { PendingDecision } from '../src/recovery/contract';
import { approvalMessage, postToSlack } from '../src/notify/slack';
import { postWebhook, type NotifyEvent, type NotifyResult } from '../src/notify/webhook';
import { loadRunbook } from '../src/runbook/load';
import type { Runbook } from '../src/runbook/schema';
import { heartbeat, lifeboatActivity } from './failure';

/**
 * Posts the event to the runbook's webhook; throws (and is retried) when the
 * webhook does not answer 2xx. Run twice: the receiver may get one event
 * twice, which a notification can afford.
 */
export async function notify(input: { runbook: string; event: NotifyEvent }): Promise<NotifyResult> {
  return lifeboatActivity(async () => postWebhook(await loadRunbook(input.runbook), input.event));
}

export interface ApprovalNotice {
  runbook: string;
  workflowId: string;
  pending: PendingDecision;
}

/**
 * A step has started waiting for a person: the Slack message with the
 * Approve / Reject buttons, when the runbook has notify.slack.
 */
export async function announceApproval(input: ApprovalNotice): Promise<NotifyResult> {
  return lifeboatActivity(async () => postApprovalToSlack(await loadRunbook(input.runbook), input));
}

/**
 * Posts the approval message once per wait (and once per escalation of it).
 * An incoming webhook has no idempotency key, so the key of this message
 * (workflow, step, the wait's start, the escalation's minute) is
 * heartbeated after Slack answered 2xx: an attempt retried after that (the
 * worker died before its completion reached Temporal) finds the key in its
 * heartbeat details and does not post again. What remains is the window
 * between Slack's answer and the heartbeat reaching Temporal: a second
 * message there is the lesser harm than none.
 */
export async function postApprovalToSlack(
  runbook: Runbook,
  input: ApprovalNotice & { waitedSeconds?: number },
): Promise<NotifyResult> {
  const env = runbook.notify?.slack?.webhookUrlEnv;
  if (!env) return { delivered: false, detail: `runbook ${runbook.name} has no notify.slack.webhookUrlEnv` };
  const url = process.env[env];
  if (!url)
    return { delivered: false, detail: `environment variable ${env} is not set on this worker: no Slack message` };
  const key = `${input.workflowId}/${input.pending.step}/${input.pending.since}/${input.waitedSeconds ?? 0}`;
  if (alreadyPosted(key))
    return {
      delivered: true,
      detail: `Slack message for ${input.pending.step} already posted to $${env} by an earlier attempt`,
    };
  const status = await postToSlack(url, env, approvalMessage({ ...input, runbook: runbook.name }));
  heartbeat({ slackPosted: key });
  return {
    delivered: true,
    detail: `Slack message for ${input.pending.step} with Approve / Reject buttons posted to $${env} (HTTP ${status})`,
  };
}

function alreadyPosted(key: string): boolean {
  try {
    const details = Context.current().info.heartbeatDetails as { slackPosted?: unknown } | undefined;
    return details?.slackPosted === key;
  } catch {
    return false; // not inside an activity
  }
}
