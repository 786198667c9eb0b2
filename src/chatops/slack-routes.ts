// The two Slack routes of the chat-ops server, once a request passed the
// signature and replay checks (server.ts): POST /slack/commands, a slash
// command (status, a decision, help), and POST /slack/interactions, Approve
// or Reject pressed on the approval message. Slack shows the text of a 200
// and waits 3 s: refusals are 200 with an ephemeral text, and a slow answer
// is finished later through the request's response_url.
import { errorMessage } from '../errors';
import { acceptedText, decide, readStatus, refusalText, statusText } from './actions';
import { helpText, parseCommandText, type ChatCommand } from './commands';
import {
  limited,
  outcomeOf,
  postJson,
  postResponse,
  ROUTES,
  toUpdate,
  unmappedText,
  withinReplyTime,
  type Chatops,
} from './context';
import { jsonError, logFields, slack, type LogFields, type Reply } from './http';
import { decidePress, parseInteraction, replacement, type Press } from './interactions';

// ---------------------------------------------------------------- slash commands

export async function slackCommand(ctx: Chatops, body: Buffer, fields: LogFields): Promise<Reply> {
  const form = new URLSearchParams(body.toString('utf8'));
  const userId = form.get('user_id');
  if (!userId)
    return jsonError(
      400,
      'malformed',
      'a slash command has a user_id field (application/x-www-form-urlencoded, as Slack sends it)',
    );
  const chatUser = (fields.chatUser = `slack:${userId}`);
  const tooMany = await limited(ctx, chatUser);
  if (tooMany)
    return tooMany.status === 503
      ? slack('guard-unavailable', 'ephemeral', (tooMany.body as { message: string }).message)
      : tooMany;
  const command = form.get('command') || ctx.defaultCommand;
  const approver = ctx.users.get(chatUser);
  if (approver) fields.approver = approver;
  const parsed = parseCommandText(form.get('text') ?? '', command);
  if (!parsed.ok) return slack('malformed', 'ephemeral', parsed.message);
  const cmd = parsed.value;
  describe(fields, cmd);
  if (cmd.kind === 'help') return slack('help', 'ephemeral', helpText(command, chatUser, approver));
  if (!approver) return slack('unmapped-user', 'ephemeral', unmappedText(chatUser, form.get('user_name')));
  const what = cmd.kind === 'status' ? `status of ${cmd.workflowId}` : `${cmd.decision} of ${cmd.step} by ${approver}`;
  const work =
    cmd.kind === 'status' ? slackStatus(ctx, cmd.workflowId, command) : slackDecide(ctx, cmd, approver, chatUser);
  return withinSlackDeadline(ctx, work, form.get('response_url'), what, fields);
}

async function slackStatus(ctx: Chatops, workflowId: string, command: string): Promise<Reply> {
  const look = await readStatus(ctx.client, workflowId);
  if ('refused' in look)
    return slack(outcomeOf(look.refused), 'ephemeral', refusalText(look.refused, `status of ${workflowId}`));
  return slack(
    'status',
    'ephemeral',
    statusText(workflowId, look.status, look.running, command, ctx.link(workflowId, look.runId)),
  );
}

async function slackDecide(
  ctx: Chatops,
  cmd: ChatCommand & { kind: 'decide' },
  approver: string,
  chatUser: string,
): Promise<Reply> {
  const result = await decide(ctx.client, cmd.workflowId, toUpdate(cmd, approver));
  if ('refused' in result)
    return slack(
      outcomeOf(result.refused),
      'ephemeral',
      refusalText(result.refused, `${cmd.decision} of ${cmd.step} by ${approver}`),
    );
  // Accepted decisions are shown to the channel: the others on the incident see who decided.
  return slack(
    'accepted',
    'in_channel',
    acceptedText(result.accepted, chatUser, ctx.link(cmd.workflowId, result.accepted.runId)),
  );
}

/**
 * Slack gives a slash command 3 s to answer and then shows the user an
 * error, although the decision may still be taken. A slow answer (a busy
 * worker, Temporal far away) is therefore sent later to the command's
 * response_url, and the user is told at once that it follows. Only
 * response URLs under slackResponseUrlPrefix are used: the body is signed,
 * but this server must not become a way to POST anywhere.
 */
async function withinSlackDeadline(
  ctx: Chatops,
  work: Promise<Reply>,
  responseUrl: string | null,
  what: string,
  fields: LogFields,
): Promise<Reply> {
  if (!responseUrl?.startsWith(ctx.responseUrlPrefix)) return work;
  const first = await withinReplyTime(ctx, work);
  if (first !== 'late') return first;
  void work
    .catch((err: unknown): Reply =>
      slack('internal', 'ephemeral', `${what}: failed: ${errorMessage(err).split('\n')[0]}`),
    )
    .then(async (reply) => {
      const res = await postJson(responseUrl, reply.body);
      return `${reply.outcome} delivered ${res.status}`;
    })
    .catch((err: unknown) => `not delivered: ${errorMessage(err).split('\n')[0]}`)
    .then((result) => ctx.log(['chatops follow-up', ROUTES.slack, result, ...logFields(fields)].join(' ')));
  return slack('deferred', 'ephemeral', `${what}: Temporal is slow to answer; the outcome follows here shortly`);
}

function describe(fields: LogFields, cmd: ChatCommand): void {
  if (cmd.kind === 'help') return;
  fields.workflowId = cmd.workflowId;
  if (cmd.kind === 'decide') Object.assign(fields, { decision: cmd.decision, step: cmd.step });
  else fields.decision = 'status';
}

// ---------------------------------------------------------------- buttons

export async function slackInteraction(ctx: Chatops, body: Buffer, fields: LogFields): Promise<Reply> {
  const parsed = parseInteraction(body.toString('utf8'));
  // Another app's action or payload type: acknowledged, nothing done.
  if (!parsed.ok)
    return parsed.ignored ? { status: 200, outcome: 'ignored', body: {} } : jsonError(400, 'malformed', parsed.message);
  const press = parsed.press;
  const chatUser = (fields.chatUser = `slack:${press.userId}`);
  Object.assign(fields, { decision: press.decision, step: press.step, workflowId: press.workflowId });
  const tooMany = await limited(ctx, chatUser);
  if (tooMany) {
    // To the presser alone: the channel's message stays as it is.
    const text = `${press.decision} of ${press.step}: refused: ${(tooMany.body as { message: string }).message}`;
    return answerPress(
      ctx,
      press,
      Promise.resolve({
        outcome: tooMany.outcome,
        body: { response_type: 'ephemeral', replace_original: false, text },
      }),
      fields,
    );
  }
  const approver = ctx.users.get(chatUser);
  if (approver) fields.approver = approver;
  const work = approver
    ? decidePress(ctx.client, press, approver, chatUser, outcomeOf)
    : Promise.resolve({
        outcome: 'unmapped-user',
        text: `${press.decision} refused: ${unmappedText(chatUser, press.userName)}`,
        keepButtons: true,
      });
  return answerPress(
    ctx,
    press,
    work.then((o) => ({ outcome: o.outcome, body: replacement(press, o) })),
    fields,
  );
}

/**
 * Slack wants its 200 within 3 s and ignores the body: the message is
 * changed through response_url, in time or later. The reply's outcome is
 * the decision's when it came in time, else "deferred" and the log gets a
 * follow-up line.
 */
async function answerPress(
  ctx: Chatops,
  press: Press,
  work: Promise<{ outcome: string; body: unknown }>,
  fields: LogFields,
): Promise<Reply> {
  const done = work
    .then(async (r) => ({ outcome: r.outcome, message: await postResponse(ctx, press.responseUrl, r.body) }))
    .catch((err: unknown) => ({ outcome: 'internal', message: `not-updated:${errorMessage(err).split('\n')[0]}` }));
  const first = await withinReplyTime(ctx, done);
  if (first === 'late') {
    void done.then((r) =>
      ctx.log(
        ['chatops follow-up', ROUTES.interactions, r.outcome, ...logFields({ ...fields, message: r.message })].join(
          ' ',
        ),
      ),
    );
    return { status: 200, outcome: 'deferred', body: {} };
  }
  fields.message = first.message;
  return { status: 200, outcome: first.outcome, body: {} };
}
