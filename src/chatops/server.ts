// `lifeboat chatops`: the HTTP endpoint chat bots call (DESIGN.md §1, §4.2).
// It lives in src/chatops/:
//   server.ts    routes, the order of checks, replies and the request log
//   context.ts   the options with their defaults, and what the routes share
//                (rate limit, the Slack deadline, response_url, refusal texts)
//   slack-routes.ts  /slack/commands and /slack/interactions
//   json-routes.ts   /v1/decide and /v1/status
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
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { connectionOptions } from '../client/temporal-config';
import { errorMessage } from '../errors';
import { verifySignature } from './auth';
import { guardDownText, postResponse, ROUTES, type Chatops, type ChatopsOptions } from './context';
import {
  HEALTH_TIMEOUT_MS,
  header,
  jsonError,
  logFields,
  MAX_BODY_BYTES,
  methodNotAllowed,
  readBody,
  send,
  slack,
  type LogFields,
  type Reply,
} from './http';
import { parseInteraction } from './interactions';
import { jsonDecide, jsonStatus } from './json-routes';
import { memoryState, StateUnavailable } from './shared-state';
import { slackCommand, slackInteraction } from './slack-routes';
import { runPage, UI_URL_ENV } from '../cli/ui-link';

export { ROUTES, type ChatopsOptions } from './context';

export interface ChatopsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startChatopsServer(opts: ChatopsOptions): Promise<ChatopsServer> {
  const ctx = chatops(opts);
  const server = createServer((req, res) => serve(ctx, req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    close: () => close(ctx, server),
  };
}

/** The options with their defaults, and a Temporal client that connects on first use. */
function chatops(opts: ChatopsOptions): Chatops {
  const connection = Connection.lazy(connectionOptions(opts.temporal));
  const uiBase = (opts.uiUrl ?? process.env[UI_URL_ENV])?.trim().replace(/\/+$/, '') || undefined;
  return {
    connection,
    client: new Client({ connection, namespace: opts.temporal.namespace }),
    users: opts.users,
    secret: opts.secret,
    state: opts.state ?? memoryState(opts.ratePerMinute ?? 20),
    ratePerMinute: opts.ratePerMinute ?? 20,
    nowSeconds: opts.nowSeconds ?? (() => Math.floor(Date.now() / 1000)),
    log: opts.log ?? ((line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`)),
    defaultCommand: opts.command ?? '/lifeboat',
    replyWithinMs: opts.slackReplyWithinMs ?? 2500,
    responseUrlPrefix: opts.slackResponseUrlPrefix ?? 'https://hooks.slack.com/',
    link: (workflowId, runId) => (uiBase ? runPage(uiBase, opts.temporal.namespace, workflowId, runId) : undefined),
  };
}

/** One request: routed, answered, and logged in one line with its outcome and duration. */
function serve(ctx: Chatops, req: IncomingMessage, res: ServerResponse): void {
  const started = Date.now();
  const fields: LogFields = {};
  const path = new URL(req.url ?? '/', 'http://chatops').pathname;
  route(ctx, req, path, fields)
    .catch((err: unknown): Reply => {
      // The message of our own code and of Temporal's client names no secret;
      // it goes to the log, the caller gets no internals.
      ctx.log(`chatops internal error on ${req.method} ${path}: ${errorMessage(err).split('\n')[0]}`);
      return jsonError(500, 'internal', 'internal error; the chatops log has the details');
    })
    .then((reply) => {
      send(res, reply);
      ctx.log(
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
}

/** The checks every signed route shares, in their order, then the route itself. */
async function route(ctx: Chatops, req: IncomingMessage, path: string, fields: LogFields): Promise<Reply> {
  if (path === ROUTES.health) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed('GET');
    return health(ctx);
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
  const now = ctx.nowSeconds();
  const bad = verifySignature(ctx.secret, { timestamp, signature: header(req, 'x-slack-signature') }, body, now);
  if (bad) return jsonError(401, bad.why, bad.message);
  try {
    if (!(await ctx.state.firstUse(header(req, 'x-slack-signature')!, timestamp!, now))) {
      return jsonError(
        409,
        'replayed',
        'this signed request was already received: a request is taken once (send a new one, with a new timestamp)',
      );
    }
  } catch (err) {
    if (err instanceof StateUnavailable) return guardDown(ctx, path, body, err);
    throw err;
  }
  if (path === ROUTES.slack) return slackCommand(ctx, body, fields);
  if (path === ROUTES.interactions) return slackInteraction(ctx, body, fields);
  return path === ROUTES.decide ? jsonDecide(ctx, body, fields) : jsonStatus(ctx, body, fields);
}

async function health(ctx: Chatops): Promise<Reply> {
  let temporal = false;
  try {
    await ctx.client.withDeadline(Date.now() + HEALTH_TIMEOUT_MS, () =>
      ctx.connection.workflowService.getSystemInfo({}),
    );
    temporal = true;
  } catch {
    // Reported, not raised: the probe asks whether this process serves.
  }
  return { status: 200, outcome: temporal ? 'healthy' : 'temporal-unreachable', body: { ok: true, temporal } };
}

/** The shared store is down: refused, and said so where the sender reads it. */
async function guardDown(ctx: Chatops, path: string, body: Buffer, err: StateUnavailable): Promise<Reply> {
  const text = guardDownText(err);
  if (path === ROUTES.slack) return slack('guard-unavailable', 'ephemeral', text);
  if (path === ROUTES.interactions) {
    const parsed = parseInteraction(body.toString('utf8'));
    if (parsed.ok)
      await postResponse(ctx, parsed.press.responseUrl, { response_type: 'ephemeral', replace_original: false, text });
    return { status: 200, outcome: 'guard-unavailable', body: {} };
  }
  return { ...jsonError(503, 'guard-unavailable', text), headers: { 'Retry-After': '10' } };
}

async function close(ctx: Chatops, server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await ctx.connection.close();
  await ctx.state.close();
}
