// The Slack message that asks for a decision: who may decide, with Approve
// and Reject buttons, posted to the channel's incoming webhook
// (`notify.slack.webhookUrlEnv`); and the words the chat-ops server puts in
// it once someone has pressed a button (src/chatops/interactions.ts).
//
// Block Kit as Slack documents it (https://api.slack.com/reference/block-kit/blocks,
// .../block-elements#button, .../composition-objects#confirm): a header, a
// section in mrkdwn, a context line, and an `actions` block of two buttons.
// A button's `value` (at most 2000 characters) carries the run and the step;
// the press comes back to the interactivity URL as a `block_actions`
// payload with that value and the button's `action_id`. Messages from an
// incoming webhook of an app with interactivity turned on are interactive
// (https://api.slack.com/messaging/webhooks). The webhook URL is a secret:
// it is read from the worker's environment and never written anywhere.
import type { PendingDecision } from '../recovery/contract';

/** The block and action ids the chat-ops server recognises. */
export const SLACK_IDS = {
  actionsBlock: 'lifeboat-decide',
  outcomeBlock: 'lifeboat-outcome',
  approve: 'lifeboat-approve',
  reject: 'lifeboat-reject',
} as const;

/** What a button's value holds. */
export interface ButtonValue {
  workflowId: string;
  step: string;
}

export type Block = Record<string, unknown> & { type: string; block_id?: string };

export interface SlackMessage {
  /** The notification's text (and what screen readers and old clients show). */
  text: string;
  blocks: Block[];
}

export interface ApprovalMessageInput {
  runbook: string;
  workflowId: string;
  pending: PendingDecision;
  /** Set at escalation: how long the step has waited. */
  waitedSeconds?: number;
  /** The slash command named in the context line (default /lifeboat). */
  command?: string;
}

/** Slack's mrkdwn needs only these three escaped (https://api.slack.com/reference/surfaces/formatting#escaping). */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** "2 of alice, bob" or "1 approver (any)": who may decide, as every line of the message says it. */
export function whoMayDecide(p: Pick<PendingDecision, 'approvers' | 'min'>): string {
  return p.approvers.length > 0 ? `${p.min} of ${p.approvers.join(', ')}` : `${p.min} approver(s), any named one`;
}

export function approvalMessage(input: ApprovalMessageInput): SlackMessage {
  const { workflowId, pending: p } = input;
  const command = input.command ?? '/lifeboat';
  const waited = input.waitedSeconds !== undefined ? ` for ${Math.round(input.waitedSeconds / 60)} min` : '';
  const escalation = input.waitedSeconds !== undefined ? 'Still waiting' : 'Waiting';
  const text = `Lifeboat ${workflowId}: ${p.step} has been waiting${waited} for approval by ${whoMayDecide(p)}`;
  const value = JSON.stringify({ workflowId, step: p.step } satisfies ButtonValue);
  const e = escapeMrkdwn;
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `${escalation} for approval: ${p.step}`.slice(0, 150) } },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: [
            `*Run:* \`${e(workflowId)}\` (runbook ${e(input.runbook)})`,
            `*Step:* \`${e(p.step)}\`, waiting since ${e(p.since)}${waited}`,
            `*Who may decide:* ${e(whoMayDecide(p))}`,
            `*Approved so far:* ${e(p.approvedBy.join(', ') || 'nobody')}`,
          ].join('\n'),
        },
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: e(`Reject asks no reason here; to give one: ${command} reject ${workflowId} ${p.step} <reason>`),
          },
        ],
      },
      {
        type: 'actions',
        block_id: SLACK_IDS.actionsBlock,
        elements: [
          {
            type: 'button',
            action_id: SLACK_IDS.approve,
            style: 'primary',
            text: { type: 'plain_text', text: 'Approve' },
            value,
          },
          {
            type: 'button',
            action_id: SLACK_IDS.reject,
            style: 'danger',
            text: { type: 'plain_text', text: 'Reject' },
            value,
            // Rejecting ends the run without promoting: asked twice.
            confirm: {
              title: { type: 'plain_text', text: `Reject ${p.step}?`.slice(0, 100) },
              text: { type: 'mrkdwn', text: e(`The run ${workflowId} stops here and stays fenced.`) },
              confirm: { type: 'plain_text', text: 'Reject' },
              deny: { type: 'plain_text', text: 'Cancel' },
              style: 'danger',
            },
          },
        ],
      },
    ],
  };
}

/**
 * The message as it is after a press: the original blocks with the outcome
 * as the last context block (replacing an earlier outcome), and without the
 * buttons once nothing is left to decide there.
 */
export function withOutcome(original: Block[], outcome: string, keepButtons: boolean): Block[] {
  const kept = original.filter(
    (b) => b.block_id !== SLACK_IDS.outcomeBlock && (keepButtons || b.block_id !== SLACK_IDS.actionsBlock),
  );
  return [
    ...kept,
    {
      type: 'context',
      block_id: SLACK_IDS.outcomeBlock,
      elements: [{ type: 'mrkdwn', text: escapeMrkdwn(outcome).slice(0, 3000) }],
    },
  ];
}

/**
 * POSTs the message to an incoming webhook. Slack answers 200 "ok", or an
 * error code in the body (invalid_blocks, no_service, channel_not_found...),
 * which is no secret and goes into the error; the URL never does.
 */
export async function postToSlack(url: string, env: string, message: SlackMessage): Promise<number> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new Error(`the Slack webhook in $${env} did not answer: ${(err as Error).name}`);
  }
  if (!res.ok) {
    const body = (await res.text().catch(() => '')).replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
    throw new Error(`the Slack webhook in $${env} answered HTTP ${res.status}${body ? ` ${body}` : ''}`);
  }
  return res.status;
}
