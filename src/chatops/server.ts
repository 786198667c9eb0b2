// `lifeboat chatops`: the HTTP endpoint chat bots call (DESIGN.md §1, §4.2).
// It lives in src/chatops/:
//   server.ts    routes, the order of checks, replies and the request log
//   auth.ts      Slack's request signature, the timestamp window, the replay guard
//   users.ts     chat user -> approver name table (--users)
//   rate-limit.ts  a token bucket per chat user
//   shared-state.ts  where replay guard and rate limit live: this process, or Redis for replicas
//   interactions.ts  Approve / Reject pressed on the Slack approval message
//   http.ts      the reply shape, the request log's fields, reading the body
//   commands.ts  the slash-command words and the JSON bodies
//   actions.ts   status and the `decide` update against Temporal
//
// Every request but GET /healthz goes through the same checks, in this
// order, and the first that fails answers:
//   signature (401) -> timestamp (401) -> replay (409; 503 when the shared
//   store does not answer: fail closed) -> well-formed (400)
//   -> rate limit (429) -> mapped chat user (403) -> workflow: unknown (404),
//   ended or step not waiting (409), not an approver (403), validator (422)
// Slack shows the text of a 200 to the user and nothing useful for other
// codes, so /slack/commands answers the domain refusals (from "well-formed"
// on, except 429) with 200 and an ephemeral explanation; authentication
// failures are never 2xx on either endpoint. Every reply carries
// X-Lifeboat-Outcome with the one-word outcome the log line also has.
// A slash command whose answer takes longer than Slack waits (3 s) is
// answered "follows" and finished through its response_url. Replies about a
// run end with the link to its checklist in the Temporal UI when the UI's
// address is known (uiUrl, else LIFEBOAT_UI_URL).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { connectionOptions, type TemporalTarget } from '../client/temporal-config';
import { errorMessage } from '../errors';
import type { DecideUpdate } from '../recovery/contract';
import { acceptedText, decide, readStatus, refusalText, statusText, type Refusal } from './actions';
import { verifySignature } from './auth';
import { checkDecision, DecideBody, helpText, parseCommandText, StatusBody, type ChatCommand } from './commands';
import {
  HEALTH_TIMEOUT_MS,
  header,
  issues,
  jsonError,
  logFields,
  MAX_BODY_BYTES,
  methodNotAllowed,
  parseJson,
  readBody,
  send,
  slack,
  type LogFields,
  type Reply,
} from './http';
import { decidePress, parseInteraction, replacement, type Press } from './interactions';
import { memoryState, StateUnavailable, type SharedState } from './shared-state';
import type { UserTable } from './users';
import { runPage, UI_URL_ENV } from '../cli/ui-link';

export interface ChatopsOptions {
  /** Default 127.0.0.1: put a TLS-terminating proxy in front to expose it. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  secret: string;
  users: UserTable;
  /** Where Temporal is (src/client/temporal-config.ts resolveTemporal), or just an address and namespace (plaintext). */
  temporal: TemporalTarget;
  /** Requests per chat user per minute (default 20). */
  ratePerMinute?: number;
  /** Replay guard and rate limit (default: this process's memory; redisState() for two replicas or more). Closed with the server. */
  state?: SharedState;
  /** The slash command's name, shown in help and usage (default /lifeboat; Slack's `command` field wins). */
  command?: string;
  /** One line per request (default: stdout, with the time in front). */
  log?: (line: string) => void;
  /** Unix seconds (tests move the clock). */
  nowSeconds?: () => number;
  /** Slash commands slower than this are answered "follows" and finished through response_url (default 2500). */
  slackReplyWithinMs?: number;
  /** response_url values used for that (default https://hooks.slack.com/). */
  slackResponseUrlPrefix?: string;
  /** The Temporal UI's address, for links to a run's checklist (default: LIFEBOAT_UI_URL; no link when neither is set). */
  uiUrl?: string;
}

export interface ChatopsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The routes; anything else is 404. */
export const ROUTES = {
  health: '/healthz',
  slack: '/slack/commands',
  interactions: '/slack/interactions',
  decide: '/v1/decide',
  status: '/v1/status',
} as const;

export async function startChatopsServer(opts: ChatopsOptions): Promise<ChatopsServer> {
  const connection = Connection.lazy(connectionOptions(opts.temporal));
  const client = new Client({ connection, namespace: opts.temporal.namespace });
  const state = opts.state ?? memoryState(opts.ratePerMinute ?? 20);
  const nowSeconds = opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000));
  const log = opts.log ?? ((line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`));
  const defaultCommand = opts.command ?? '/lifeboat';
  const uiBase = (opts.uiUrl ?? process.env[UI_URL_ENV])?.trim().replace(/\/+$/, '') || undefined;
  const link = (workflowId: string, runId: string) =>
    uiBase ? runPage(uiBase, opts.temporal.namespace, workflowId, runId) : undefined;

  async function route(req: IncomingMessage, path: string, fields: LogFields): Promise<Reply> {
    if (path === ROUTES.health) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed('GET');
      return health();
    }
    const signed: string[] = [ROUTES.slack, ROUTES.interactions, ROUTES.decide, ROUTES.status];
    if (!signed.includes(path))
      return jsonError(404, 'not-found', `no such endpoint; POST ${signed.join(', ')} or GET ${ROUTES.health}`);
    if (req.method !== 'POST') return methodNotAllowed('POST');
    const body = await readBody(req);
    if (!body)
      return {
        ...jsonError(413, 'too-large', `the body is over ${MAX_BODY_BYTES} bytes`),
        headers: { Connection: 'close' },
      };
    const timestamp = header(req, 'x-slack-request-timestamp');
    const now = nowSeconds();
    const bad = verifySignature(opts.secret, { timestamp, signature: header(req, 'x-slack-signature') }, body, now);
    if (bad) return jsonError(401, bad.why, bad.message);
    try {
      if (!(await state.firstUse(header(req, 'x-slack-signature')!, timestamp!, now))) {
        return jsonError(
          409,
          'replayed',
          'this signed request was already received: a request is taken once (send a new one, with a new timestamp)',
        );
      }
    } catch (err) {
      if (err instanceof StateUnavailable) return guardDown(path, body, err);
      throw err;
    }
    if (path === ROUTES.slack) return slackCommand(body, fields);
    if (path === ROUTES.interactions) return slackInteraction(body, fields);
    return path === ROUTES.decide ? jsonDecide(body, fields) : jsonStatus(body, fields);
  }

  async function health(): Promise<Reply> {
    let temporal = false;
    try {
      await client.withDeadline(Date.now() + HEALTH_TIMEOUT_MS, () => connection.workflowService.getSystemInfo({}));
      temporal = true;
    } catch {
      // Reported, not raised: the probe asks whether this process serves.
    }
    return { status: 200, outcome: temporal ? 'healthy' : 'temporal-unreachable', body: { ok: true, temporal } };
  }

  async function limited(chatUser: string): Promise<Reply | undefined> {
    let wait: number;
    try {
      wait = await state.take(chatUser, nowSeconds());
    } catch (err) {
      if (err instanceof StateUnavailable)
        return { ...jsonError(503, 'guard-unavailable', guardDownText(err)), headers: { 'Retry-After': '10' } };
      throw err;
    }
    if (wait === 0) return undefined;
    return {
      ...jsonError(
        429,
        'rate-limited',
        `${chatUser} sent more than ${opts.ratePerMinute ?? 20} requests a minute; try again in ${wait} s`,
      ),
      headers: { 'Retry-After': String(wait) },
    };
  }

  // ---------------------------------------------------------------- Slack

  async function slackCommand(body: Buffer, fields: LogFields): Promise<Reply> {
    const form = new URLSearchParams(body.toString('utf8'));
    const userId = form.get('user_id');
    if (!userId)
      return jsonError(
        400,
        'malformed',
        'a slash command has a user_id field (application/x-www-form-urlencoded, as Slack sends it)',
      );
    const chatUser = (fields.chatUser = `slack:${userId}`);
    const tooMany = await limited(chatUser);
    if (tooMany)
      return tooMany.status === 503
        ? slack('guard-unavailable', 'ephemeral', (tooMany.body as { message: string }).message)
        : tooMany;
    const command = form.get('command') || defaultCommand;
    const approver = opts.users.get(chatUser);
    if (approver) fields.approver = approver;
    const parsed = parseCommandText(form.get('text') ?? '', command);
    if (!parsed.ok) return slack('malformed', 'ephemeral', parsed.message);
    const cmd = parsed.value;
    describe(fields, cmd);
    if (cmd.kind === 'help') return slack('help', 'ephemeral', helpText(command, chatUser, approver));
    if (!approver) return slack('unmapped-user', 'ephemeral', unmappedText(chatUser, form.get('user_name')));
    const what =
      cmd.kind === 'status' ? `status of ${cmd.workflowId}` : `${cmd.decision} of ${cmd.step} by ${approver}`;
    const work = cmd.kind === 'status' ? slackStatus(cmd.workflowId, command) : slackDecide(cmd, approver, chatUser);
    return withinSlackDeadline(work, form.get('response_url'), what, fields);
  }

  async function slackStatus(workflowId: string, command: string): Promise<Reply> {
    const look = await readStatus(client, workflowId);
    if ('refused' in look)
      return slack(outcomeOf(look.refused), 'ephemeral', refusalText(look.refused, `status of ${workflowId}`));
    return slack(
      'status',
      'ephemeral',
      statusText(workflowId, look.status, look.running, command, link(workflowId, look.runId)),
    );
  }

  async function slackDecide(
    cmd: ChatCommand & { kind: 'decide' },
    approver: string,
    chatUser: string,
  ): Promise<Reply> {
    const result = await decide(client, cmd.workflowId, toUpdate(cmd, approver));
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
      acceptedText(result.accepted, chatUser, link(cmd.workflowId, result.accepted.runId)),
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
    work: Promise<Reply>,
    responseUrl: string | null,
    what: string,
    fields: LogFields,
  ): Promise<Reply> {
    const prefix = opts.slackResponseUrlPrefix ?? 'https://hooks.slack.com/';
    if (!responseUrl?.startsWith(prefix)) return work;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>(
      (resolve) => (timer = setTimeout(() => resolve('late'), opts.slackReplyWithinMs ?? 2500)),
    );
    const first = await Promise.race([work, late]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    void work
      .catch((err: unknown): Reply =>
        slack('internal', 'ephemeral', `${what}: failed: ${errorMessage(err).split('\n')[0]}`),
      )
      .then(async (reply) => {
        const res = await fetch(responseUrl, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(reply.body),
          signal: AbortSignal.timeout(10_000),
        });
        return `${reply.outcome} delivered ${res.status}`;
      })
      .catch((err: unknown) => `not delivered: ${errorMessage(err).split('\n')[0]}`)
      .then((result) => log(['chatops follow-up', ROUTES.slack, result, ...logFields(fields)].join(' ')));
    return slack('deferred', 'ephemeral', `${what}: Temporal is slow to answer; the outcome follows here shortly`);
  }

  // ---------------------------------------------------------------- Slack buttons

  async function slackInteraction(body: Buffer, fields: LogFields): Promise<Reply> {
    const parsed = parseInteraction(body.toString('utf8'));
    // Another app's action or payload type: acknowledged, nothing done.
    if (!parsed.ok)
      return parsed.ignored
        ? { status: 200, outcome: 'ignored', body: {} }
        : jsonError(400, 'malformed', parsed.message);
    const press = parsed.press;
    const chatUser = (fields.chatUser = `slack:${press.userId}`);
    Object.assign(fields, { decision: press.decision, step: press.step, workflowId: press.workflowId });
    const tooMany = await limited(chatUser);
    if (tooMany) {
      // To the presser alone: the channel's message stays as it is.
      const text = `${press.decision} of ${press.step}: refused: ${(tooMany.body as { message: string }).message}`;
      return answerPress(
        press,
        Promise.resolve({
          outcome: tooMany.outcome,
          body: { response_type: 'ephemeral', replace_original: false, text },
        }),
        fields,
      );
    }
    const approver = opts.users.get(chatUser);
    if (approver) fields.approver = approver;
    const work = approver
      ? decidePress(client, press, approver, chatUser, outcomeOf)
      : Promise.resolve({
          outcome: 'unmapped-user',
          text: `${press.decision} refused: ${unmappedText(chatUser, press.userName)}`,
          keepButtons: true,
        });
    return answerPress(
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
    press: Press,
    work: Promise<{ outcome: string; body: unknown }>,
    fields: LogFields,
  ): Promise<Reply> {
    const done = work
      .then(async (r) => ({ outcome: r.outcome, message: await postResponse(press.responseUrl, r.body) }))
      .catch((err: unknown) => ({ outcome: 'internal', message: `not-updated:${errorMessage(err).split('\n')[0]}` }));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>(
      (resolve) => (timer = setTimeout(() => resolve('late'), opts.slackReplyWithinMs ?? 2500)),
    );
    const first = await Promise.race([done, late]);
    clearTimeout(timer);
    if (first === 'late') {
      void done.then((r) =>
        log(
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

  /** POSTs to a response_url under slackResponseUrlPrefix (never anywhere else); says what became of it. */
  async function postResponse(url: string, body: unknown): Promise<string> {
    if (!url.startsWith(opts.slackResponseUrlPrefix ?? 'https://hooks.slack.com/'))
      return 'not-updated:response_url-outside-prefix';
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      return res.ok ? `updated:${res.status}` : `not-updated:HTTP-${res.status}`;
    } catch (err) {
      return `not-updated:${(err as Error).name}`;
    }
  }

  /** The shared store is down: refused, and said so where the sender reads it. */
  async function guardDown(path: string, body: Buffer, err: StateUnavailable): Promise<Reply> {
    const text = guardDownText(err);
    if (path === ROUTES.slack) return slack('guard-unavailable', 'ephemeral', text);
    if (path === ROUTES.interactions) {
      const parsed = parseInteraction(body.toString('utf8'));
      if (parsed.ok)
        await postResponse(parsed.press.responseUrl, { response_type: 'ephemeral', replace_original: false, text });
      return { status: 200, outcome: 'guard-unavailable', body: {} };
    }
    return { ...jsonError(503, 'guard-unavailable', text), headers: { 'Retry-After': '10' } };
  }

  // ---------------------------------------------------------------- JSON

  async function jsonDecide(body: Buffer, fields: LogFields): Promise<Reply> {
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
    const tooMany = await limited(b.data.user);
    if (tooMany) return tooMany;
    const approver = opts.users.get(b.data.user);
    if (!approver) return jsonError(403, 'unmapped-user', unmappedText(b.data.user));
    fields.approver = approver;
    const result = await decide(client, b.data.workflowId, toUpdate(checked.value, approver));
    if ('refused' in result) return refusedJson(result.refused);
    const a = result.accepted;
    const ui = link(a.workflowId, a.runId);
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

  async function jsonStatus(body: Buffer, fields: LogFields): Promise<Reply> {
    const raw = parseJson(body);
    if (raw === undefined) return jsonError(400, 'malformed', 'the body is not JSON');
    const b = StatusBody.safeParse(raw);
    if (!b.success) return jsonError(400, 'malformed', issues(b.error.issues));
    Object.assign(fields, { chatUser: b.data.user, workflowId: b.data.workflowId });
    const tooMany = await limited(b.data.user);
    if (tooMany) return tooMany;
    const approver = opts.users.get(b.data.user);
    if (!approver) return jsonError(403, 'unmapped-user', unmappedText(b.data.user));
    fields.approver = approver;
    const look = await readStatus(client, b.data.workflowId);
    if ('refused' in look) return refusedJson(look.refused);
    const ui = link(b.data.workflowId, look.runId);
    return {
      status: 200,
      outcome: 'status',
      body: { workflowId: b.data.workflowId, running: look.running, status: look.status, ...(ui ? { ui } : {}) },
    };
  }

  // ---------------------------------------------------------------- the server

  const server: Server = createServer((req, res) => {
    const started = Date.now();
    const fields: LogFields = {};
    const path = new URL(req.url ?? '/', 'http://chatops').pathname;
    route(req, path, fields)
      .catch((err: unknown): Reply => {
        // The message of our own code and of Temporal's client names no secret;
        // it goes to the log, the caller gets no internals.
        log(`chatops internal error on ${req.method} ${path}: ${errorMessage(err).split('\n')[0]}`);
        return jsonError(500, 'internal', 'internal error; the chatops log has the details');
      })
      .then((reply) => {
        send(res, reply);
        log(
          [
            'chatops',
            req.method,
            path,
            reply.status,
            reply.outcome,
            ...logFields(fields),
            `${Date.now() - started}ms`,
          ].join(' '),
        );
      })
      .catch(() => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await connection.close();
      await state.close();
    },
  };
}

// ---------------------------------------------------------------- helpers

function toUpdate(
  cmd: { step: DecideUpdate['step']; decision: DecideUpdate['decision']; text?: string },
  approver: string,
): DecideUpdate {
  return { step: cmd.step, decision: cmd.decision, by: approver, ...(cmd.text ? { comment: cmd.text } : {}) };
}

function describe(fields: LogFields, cmd: ChatCommand): void {
  if (cmd.kind === 'help') return;
  fields.workflowId = cmd.workflowId;
  if (cmd.kind === 'decide') Object.assign(fields, { decision: cmd.decision, step: cmd.step });
  else fields.decision = 'status';
}

function guardDownText(err: StateUnavailable): string {
  return `refused: Lifeboat cannot check this request against replays and the rate limit (${err.message}), so nothing was done rather than risk taking it twice; try again in a minute, or tell whoever runs lifeboat chatops`;
}

function unmappedText(chatUser: string, name?: string | null): string {
  return `${chatUser}${name ? ` (${name})` : ''} is not in Lifeboat's chat users table, so it cannot act as an approver: ask whoever runs lifeboat chatops to map it to your approver name (--users)`;
}

const OUTCOMES: Record<Refusal['code'], string> = {
  UNKNOWN_WORKFLOW: 'unknown-workflow',
  RUN_ENDED: 'run-ended',
  NOT_WAITING: 'not-waiting',
  NOT_AN_APPROVER: 'not-an-approver',
  REFUSED: 'refused-by-workflow',
  TEMPORAL_UNAVAILABLE: 'temporal-unavailable',
};

function outcomeOf(r: Refusal): string {
  return OUTCOMES[r.code];
}

function refusedJson(r: Refusal): Reply {
  return {
    status: r.status,
    outcome: outcomeOf(r),
    body: { accepted: false, error: outcomeOf(r), message: r.message },
  };
}
