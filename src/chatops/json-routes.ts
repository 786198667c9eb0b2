// The JSON API of the chat-ops server, once a request passed the signature
// and replay checks (server.ts): POST /v1/decide sends the `decide` update
// as the approver the chat user is mapped to, POST /v1/status reads a run.
// Refusals keep their HTTP status (400, 403, 404, 409, 422, 429, 503).
import { acceptedText, decide, readStatus, type Refusal } from './actions';
import { checkDecision, DecideBody, StatusBody } from './commands';
import { limited, outcomeOf, toUpdate, unmappedText, type Chatops } from './context';
import { issues, jsonError, parseJson, type LogFields, type Reply } from './http';

export async function jsonDecide(ctx: Chatops, body: Buffer, fields: LogFields): Promise<Reply> {
  const raw = parseJson(body);
  if (raw === undefined) return jsonError(400, 'malformed', 'the body is not JSON');
  const b = DecideBody.safeParse(raw);
  if (!b.success) return jsonError(400, 'malformed', issues(b.error.issues));
  Object.assign(fields, {
    chatUser: b.data.user,
    decision: b.data.decision,
    step: b.data.step,
    workflowId: b.data.workflowId,
  });
  const text = [b.data.reason?.trim(), b.data.comment?.trim()].filter(Boolean).join(' -- ');
  const checked = checkDecision({ ...b.data, text }, 'decision');
  if (!checked.ok) return jsonError(400, 'malformed', checked.message);
  const approver = await gate(ctx, b.data.user, fields);
  if (typeof approver !== 'string') return approver;
  const result = await decide(ctx.client, b.data.workflowId, toUpdate(checked.value, approver));
  if ('refused' in result) return refusedJson(result.refused);
  const a = result.accepted;
  const ui = ctx.link(a.workflowId, a.runId);
  return {
    status: 200,
    outcome: 'accepted',
    body: {
      accepted: true,
      workflowId: a.workflowId,
      step: a.step,
      decision: a.decision,
      by: a.by,
      state: a.record.state,
      record: a.record,
      ...(a.pending ? { pending: a.pending } : {}),
      ...(ui ? { ui } : {}),
      message: acceptedText(a, b.data.user, ui),
    },
  };
}

export async function jsonStatus(ctx: Chatops, body: Buffer, fields: LogFields): Promise<Reply> {
  const raw = parseJson(body);
  if (raw === undefined) return jsonError(400, 'malformed', 'the body is not JSON');
  const b = StatusBody.safeParse(raw);
  if (!b.success) return jsonError(400, 'malformed', issues(b.error.issues));
  Object.assign(fields, { chatUser: b.data.user, workflowId: b.data.workflowId });
  const approver = await gate(ctx, b.data.user, fields);
  if (typeof approver !== 'string') return approver;
  const look = await readStatus(ctx.client, b.data.workflowId);
  if ('refused' in look) return refusedJson(look.refused);
  const ui = ctx.link(b.data.workflowId, look.runId);
  return {
    status: 200,
    outcome: 'status',
    body: { workflowId: b.data.workflowId, running: look.running, status: look.status, ...(ui ? { ui } : {}) },
  };
}

/** The rate limit, then the chat user's approver name (403 when unmapped): the name, or the refusal. */
async function gate(ctx: Chatops, user: string, fields: LogFields): Promise<string | Reply> {
  const tooMany = await limited(ctx, user);
  if (tooMany) return tooMany;
  const approver = ctx.users.get(user);
  if (!approver) return jsonError(403, 'unmapped-user', unmappedText(user));
  fields.approver = approver;
  return approver;
}

function refusedJson(r: Refusal): Reply {
  return {
    status: r.status,
    outcome: outcomeOf(r),
    body: { accepted: false, error: outcomeOf(r), message: r.message },
  };
}
