// The Slack approval message and a button press, without Slack: the Block
// Kit message at escalation, mrkdwn escaping, the outcome line replacing an
// earlier one, the block_actions payloads chat-ops ignores or refuses, and
// the activity's post-once rule, exercised against a real HTTP receiver on
// loopback with Temporal's MockActivityEnvironment (a retried attempt sees
// the heartbeat details of the attempt before it).
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postApprovalToSlack } from '../../activities/notify';
import { parseInteraction } from '../../src/chatops/interactions';
import { approvalMessage, withOutcome, type Block } from '../../src/notify/slack';
import type { PendingDecision } from '../../src/recovery/contract';
import type { Runbook } from '../../src/runbook/schema';
import { startTestWebhook, type TestWebhook } from '../harness/webhook';

const pending: PendingDecision = {
  step: 'approve-promote',
  kind: 'approval',
  since: '2026-12-04T03:00:00.000Z',
  approvers: ['alice', 'bob <ops>', 'carol'],
  min: 2,
  approvedBy: ['alice'],
  how: ['lifeboat approve ...'],
};

describe('the approval message', () => {
  it('at escalation says how long the step has waited, escapes mrkdwn, and carries the run and step in both buttons', () => {
    const m = approvalMessage({ runbook: 'orders', workflowId: 'recover-orders-1', pending, waitedSeconds: 1800 });
    expect(m.text).toBe(
      'Lifeboat recover-orders-1: approve-promote has been waiting for 30 min for approval by 2 of alice, bob <ops>, carol',
    );
    expect(m.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Still waiting for approval: approve-promote' },
    });
    expect((m.blocks[1]!.text as { text: string }).text).toBe(
      [
        '*Run:* `recover-orders-1` (runbook orders)',
        '*Step:* `approve-promote`, waiting since 2026-12-04T03:00:00.000Z for 30 min',
        '*Who may decide:* 2 of alice, bob &lt;ops&gt;, carol',
        '*Approved so far:* alice',
      ].join('\n'),
    );
    const buttons = m.blocks.find((b) => b.type === 'actions')!.elements as Array<{
      action_id: string;
      value: string;
      confirm?: unknown;
    }>;
    expect(buttons.map((b) => [b.action_id, JSON.parse(b.value) as unknown, b.confirm !== undefined])).toEqual([
      ['lifeboat-approve', { workflowId: 'recover-orders-1', step: 'approve-promote' }, false],
      ['lifeboat-reject', { workflowId: 'recover-orders-1', step: 'approve-promote' }, true],
    ]);
  });

  it('after a press: one outcome line, replacing the earlier one; the buttons go when nothing is left to decide', () => {
    const original = approvalMessage({ runbook: 'orders', workflowId: 'w', pending }).blocks;
    const first = withOutcome(original, 'approve by carol refused: NOT_AN_APPROVER', true);
    expect(first.slice(0, -1)).toEqual(original);
    const second = withOutcome(first, 'Approved by bob & co', false);
    expect(second.map((b) => b.type)).toEqual(['header', 'section', 'context', 'context']);
    expect(second.at(-1)).toEqual({
      type: 'context',
      block_id: 'lifeboat-outcome',
      elements: [{ type: 'mrkdwn', text: 'Approved by bob &amp; co' }],
    });
  });
});

describe('a block_actions payload', () => {
  const form = (payload: unknown) => new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const press = (actionId: string, value: string) => ({
    type: 'block_actions',
    user: { id: 'U1', username: 'alice' },
    actions: [{ action_id: actionId, value, type: 'button' }],
    response_url: 'https://hooks.slack.com/actions/T/1/x',
    message: { blocks: [] as Block[] },
  });

  it('is read into the press: user, decision, run, step, response_url', () => {
    expect(parseInteraction(form(press('lifeboat-reject', '{"workflowId":"w1","step":"approve-fence"}')))).toEqual({
      ok: true,
      press: {
        userId: 'U1',
        userName: 'alice',
        decision: 'reject',
        workflowId: 'w1',
        step: 'approve-fence',
        responseUrl: 'https://hooks.slack.com/actions/T/1/x',
        blocks: [],
      },
    });
  });

  it("is ignored when it is another kind of payload or another app's button, and refused when it is not what Slack sends", () => {
    expect(parseInteraction(form({ type: 'view_submission' }))).toEqual({
      ok: false,
      ignored: true,
      message: 'not a block_actions payload',
    });
    expect(parseInteraction(form(press('other-app-button', '{}')))).toEqual({
      ok: false,
      ignored: true,
      message: "action other-app-button is not Lifeboat's",
    });
    expect(parseInteraction('text=approve')).toEqual({
      ok: false,
      ignored: false,
      message: 'an interaction has a payload field holding JSON (application/x-www-form-urlencoded, as Slack sends it)',
    });
    expect(parseInteraction('payload=%7Bnot-json')).toEqual({
      ok: false,
      ignored: false,
      message: 'the payload field is not JSON',
    });
    expect(parseInteraction(form(press('lifeboat-approve', '{"workflowId":"w1","step":"make-coffee"}')))).toEqual({
      ok: false,
      ignored: false,
      message: 'the approve button\'s value is not {"workflowId", "step"}',
    });
    expect(parseInteraction(form({ ...press('lifeboat-approve', '{}'), user: {} }))).toMatchObject({
      ok: false,
      ignored: false,
      message: expect.stringMatching(/^block_actions payload: user\.id: /),
    });
  });
});

describe('posting the approval message (activity)', () => {
  const ENV = 'LIFEBOAT_UNIT_SLACK_WEBHOOK';
  const runbook = { name: 'orders', notify: { slack: { webhookUrlEnv: ENV } } } as unknown as Runbook;
  let hook: TestWebhook;
  beforeAll(async () => {
    hook = await startTestWebhook();
    process.env[ENV] = `${hook.url}?token=webhook-secret-in-url`;
  });
  afterAll(async () => {
    delete process.env[ENV];
    await hook.close();
  });

  it('posts once per wait: an attempt retried after the post finds its key in the heartbeat details and posts nothing', async () => {
    const beats: unknown[] = [];
    const first = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    first.on('heartbeat', (d: unknown) => beats.push(d));
    const input = { runbook: 'orders', workflowId: 'recover-orders-7', pending };
    expect(await first.run(() => postApprovalToSlack(runbook, input))).toEqual({
      delivered: true,
      detail: `Slack message for approve-promote with Approve / Reject buttons posted to $${ENV} (HTTP 204)`,
    });
    expect(hook.delivered()).toHaveLength(1);
    const key = beats.at(-1);
    expect(key).toEqual({ slackPosted: 'recover-orders-7/approve-promote/2026-12-04T03:00:00.000Z/0' });

    const retried = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000, attempt: 2, heartbeatDetails: key });
    expect(await retried.run(() => postApprovalToSlack(runbook, input))).toEqual({
      delivered: true,
      detail: `Slack message for approve-promote already posted to $${ENV} by an earlier attempt`,
    });
    expect(hook.delivered()).toHaveLength(1);

    // The same wait escalated is another message.
    const escalation = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000, attempt: 1, heartbeatDetails: key });
    expect(await escalation.run(() => postApprovalToSlack(runbook, { ...input, waitedSeconds: 900 }))).toMatchObject({
      delivered: true,
    });
    expect(hook.delivered().map((p) => (p.body as { text: string }).text)).toEqual([
      'Lifeboat recover-orders-7: approve-promote has been waiting for approval by 2 of alice, bob <ops>, carol',
      'Lifeboat recover-orders-7: approve-promote has been waiting for 15 min for approval by 2 of alice, bob <ops>, carol',
    ]);
  });

  it("fails with Slack's answer and the variable's name, never the URL, so the activity is retried", async () => {
    hook.failNext(1, 400);
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 10_000 });
    const err = await env
      .run(() => postApprovalToSlack(runbook, { runbook: 'orders', workflowId: 'recover-orders-8', pending }))
      .catch((e: unknown) => e as Error);
    expect((err as Error).message).toBe(`the Slack webhook in $${ENV} answered HTTP 400`);
    expect((err as Error).message).not.toContain('webhook-secret-in-url');
  });

  it('says so, without failing, when the runbook has no notify.slack or the variable is not set on this worker', async () => {
    expect(
      await postApprovalToSlack({ name: 'plain' } as unknown as Runbook, {
        runbook: 'plain',
        workflowId: 'w',
        pending,
      }),
    ).toEqual({ delivered: false, detail: 'runbook plain has no notify.slack.webhookUrlEnv' });
    const unset = {
      name: 'orders',
      notify: { slack: { webhookUrlEnv: 'LIFEBOAT_UNSET_SLACK_WEBHOOK' } },
    } as unknown as Runbook;
    expect(await postApprovalToSlack(unset, { runbook: 'orders', workflowId: 'w', pending })).toEqual({
      delivered: false,
      detail: 'environment variable LIFEBOAT_UNSET_SLACK_WEBHOOK is not set on this worker: no Slack message',
    });
  });
});
