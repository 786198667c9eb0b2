// A press of Approve or Reject on the approval message (src/notify/slack.ts),
// as Slack delivers it to the app's interactivity Request URL
// (https://api.slack.com/interactivity/handling): a POST, form-encoded,
// whose `payload` field is JSON of type `block_actions` with the user
// (`user.id`), the button (`actions[0].action_id`, `.value`), the message
// as it is (`message.blocks`) and a `response_url` through which the
// message is replaced (`replace_original: true`, up to 5 times in 30 min).
// server.ts has checked the signature and the replay guard by then.
//
// The outcome goes into the message itself, seen by the whole channel:
// "approved by alice", "rejected by bob", or who was refused and why. The
// buttons stay while the step still waits (a stranger's press or a first
// of two approvals changes nothing for the others) and go once there is
// nothing left to decide there.
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import { STEP_IDS, type DecideUpdate } from '../recovery/contract';
import { SLACK_IDS, withOutcome, whoMayDecide, type Block, type ButtonValue } from '../notify/slack';
import { decide, type Refusal } from './actions';

/** What server.ts needs to know of the payload before deciding anything. */
export interface Press {
  userId: string;
  userName?: string;
  decision: 'approve' | 'reject';
  workflowId: string;
  step: DecideUpdate['step'];
  responseUrl: string;
  blocks: Block[];
}

export type ParsedPayload = { ok: true; press: Press } | { ok: false; ignored: boolean; message: string };

const Payload = z.object({
  type: z.string(),
  user: z.object({ id: z.string().min(1), username: z.string().optional(), name: z.string().optional() }),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).min(1),
  response_url: z.string().min(1),
  message: z.object({ blocks: z.array(z.record(z.string(), z.unknown())).optional() }).optional(),
});

const Value = z.object({ workflowId: z.string().trim().min(1), step: z.enum(STEP_IDS) });

/**
 * Reads the form body. Anything that is not a press of our buttons
 * (another payload type, another app's action) is `ignored`: Slack gets
 * its 200 and nothing is done.
 */
export function parseInteraction(body: string): ParsedPayload {
  const raw = new URLSearchParams(body).get('payload');
  if (!raw)
    return {
      ok: false,
      ignored: false,
      message: 'an interaction has a payload field holding JSON (application/x-www-form-urlencoded, as Slack sends it)',
    };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, ignored: false, message: 'the payload field is not JSON' };
  }
  if ((json as { type?: unknown } | null)?.type !== 'block_actions')
    return { ok: false, ignored: true, message: 'not a block_actions payload' };
  const p = Payload.safeParse(json);
  if (!p.success)
    return {
      ok: false,
      ignored: false,
      message: `block_actions payload: ${p.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  const action = p.data.actions[0]!;
  const decision =
    action.action_id === SLACK_IDS.approve ? 'approve' : action.action_id === SLACK_IDS.reject ? 'reject' : undefined;
  if (!decision) return { ok: false, ignored: true, message: `action ${action.action_id} is not Lifeboat's` };
  let value: ButtonValue | undefined;
  try {
    const v = Value.safeParse(JSON.parse(action.value ?? ''));
    value = v.success ? v.data : undefined;
  } catch {
    value = undefined;
  }
  if (!value)
    return { ok: false, ignored: false, message: `the ${decision} button's value is not {"workflowId", "step"}` };
  const name = p.data.user.username ?? p.data.user.name;
  return {
    ok: true,
    press: {
      userId: p.data.user.id,
      ...(name ? { userName: name } : {}),
      decision,
      workflowId: value.workflowId,
      step: value.step as DecideUpdate['step'],
      responseUrl: p.data.response_url,
      blocks: (p.data.message?.blocks ?? []) as Block[],
    },
  };
}

/** The reason a Reject press records (the button asks none; the slash command takes one). */
export const REJECT_BUTTON_REASON = 'Reject pressed on the Slack approval message';

export interface PressOutcome {
  /** The word of the log line and X-Lifeboat-Outcome. */
  outcome: string;
  /** One line for the message: who did what, or who was refused and why. */
  text: string;
  /** Whether the buttons stay: the step still waits for someone. */
  keepButtons: boolean;
}

/** Sends the press as the `decide` update with `by` = the mapped approver, and words its outcome. */
export async function decidePress(
  client: Client,
  press: Press,
  approver: string,
  chatUser: string,
  outcomeOf: (r: Refusal) => string,
): Promise<PressOutcome> {
  const update: DecideUpdate = {
    step: press.step,
    decision: press.decision,
    by: approver,
    ...(press.decision === 'reject' ? { comment: REJECT_BUTTON_REASON } : {}),
  };
  const result = await decide(client, press.workflowId, update);
  const who = `${approver} (${chatUser})`;
  if ('refused' in result) {
    const r = result.refused;
    // The step waits still for a stranger's refused press or an outage; not for a run that moved on.
    const keepButtons = r.code === 'NOT_AN_APPROVER' || r.code === 'REFUSED' || r.code === 'TEMPORAL_UNAVAILABLE';
    return { outcome: outcomeOf(r), text: `${press.decision} by ${who} refused: ${r.message}`, keepButtons };
  }
  const a = result.accepted;
  if (a.decision === 'reject')
    return { outcome: 'accepted', text: `Rejected by ${who}: the run stops at ${a.step}, fenced`, keepButtons: false };
  if (a.record.state === 'awaiting-approval' && a.pending?.step === a.step) {
    return {
      outcome: 'accepted',
      text: `Approved by ${who}; ${a.step} still needs ${whoMayDecide(a.pending)} (approved so far: ${a.pending.approvedBy.join(', ')})`,
      keepButtons: true,
    };
  }
  return {
    outcome: 'accepted',
    text: `Approved by ${who}: ${a.step} is now ${a.record.state}${a.record.summary ? ` (${a.record.summary})` : ''}`,
    keepButtons: false,
  };
}

/** The body POSTed to response_url: the message replaced, the outcome added. */
export function replacement(press: Press, o: Pick<PressOutcome, 'text' | 'keepButtons'>): Record<string, unknown> {
  return { replace_original: true, text: o.text, blocks: withOutcome(press.blocks, o.text, o.keepButtons) };
}
