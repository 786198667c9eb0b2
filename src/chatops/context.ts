// What every route of the chat-ops server works with (server.ts builds it
// once from ChatopsOptions), and the checks and replies the routes share:
// the rate limit, the Slack deadline, posting to a response_url, the texts
// of refusals.
import type { Client, Connection } from '@temporalio/client';
import type { TemporalTarget } from '../client/temporal-config';
import type { DecideUpdate } from '../recovery/contract';
import type { Refusal } from './actions';
import { jsonError, type Reply } from './http';
import { StateUnavailable, type SharedState } from './shared-state';
import type { UserTable } from './users';

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

/** The routes; anything else is 404. */
export const ROUTES = {
  health: '/healthz',
  slack: '/slack/commands',
  interactions: '/slack/interactions',
  decide: '/v1/decide',
  status: '/v1/status',
} as const;

/** ChatopsOptions with their defaults applied, and the Temporal client. */
export interface Chatops {
  connection: Connection;
  client: Client;
  secret: string;
  users: UserTable;
  state: SharedState;
  ratePerMinute: number;
  nowSeconds: () => number;
  log: (line: string) => void;
  defaultCommand: string;
  replyWithinMs: number;
  responseUrlPrefix: string;
  /** The run's checklist in the Temporal UI, when the UI's address is known. */
  link(workflowId: string, runId: string): string | undefined;
}

/** A 429 (or 503 when the shared store does not answer) when the chat user is over the rate; else undefined. */
export async function limited(ctx: Chatops, chatUser: string): Promise<Reply | undefined> {
  let wait: number;
  try {
    wait = await ctx.state.take(chatUser, ctx.nowSeconds());
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
      `${chatUser} sent more than ${ctx.ratePerMinute} requests a minute; try again in ${wait} s`,
    ),
    headers: { 'Retry-After': String(wait) },
  };
}

/** What `work` gives if it comes within the time Slack waits, else 'late' (the work goes on). */
export async function withinReplyTime<T>(ctx: Chatops, work: Promise<T>): Promise<T | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ctx.replyWithinMs)));
  const first = await Promise.race([work, late]);
  clearTimeout(timer);
  return first;
}

/** POSTs a JSON body to a Slack response_url. */
export function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

/** POSTs to a response_url under slackResponseUrlPrefix (never anywhere else); says what became of it. */
export async function postResponse(ctx: Chatops, url: string, body: unknown): Promise<string> {
  if (!url.startsWith(ctx.responseUrlPrefix)) return 'not-updated:response_url-outside-prefix';
  try {
    const res = await postJson(url, body);
    return res.ok ? `updated:${res.status}` : `not-updated:HTTP-${res.status}`;
  } catch (err) {
    return `not-updated:${(err as Error).name}`;
  }
}

export function toUpdate(
  cmd: { step: DecideUpdate['step']; decision: DecideUpdate['decision']; text?: string },
  approver: string,
): DecideUpdate {
  return { step: cmd.step, decision: cmd.decision, by: approver, ...(cmd.text ? { comment: cmd.text } : {}) };
}

export function guardDownText(err: StateUnavailable): string {
  return `refused: Lifeboat cannot check this request against replays and the rate limit (${err.message}), so nothing was done rather than risk taking it twice; try again in a minute, or tell whoever runs lifeboat chatops`;
}

export function unmappedText(chatUser: string, name?: string | null): string {
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

export function outcomeOf(r: Refusal): string {
  return OUTCOMES[r.code];
}
