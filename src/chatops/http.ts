// The HTTP plumbing of `lifeboat chatops` (server.ts): the reply shape and
// its sending, the request log's fields, body reading and parsing.
import type { IncomingMessage, ServerResponse } from 'node:http';

export const LOG_FIELDS = ['chatUser', 'approver', 'decision', 'step', 'workflowId', 'message'] as const;
export const MAX_BODY_BYTES = 64 * 1024;
export const HEALTH_TIMEOUT_MS = 2000;

export interface Reply {
  status: number;
  outcome: string;
  body: unknown;
  headers?: Record<string, string>;
}

/** What the log line may say about a request: never its body, comment or signature. */
export interface LogFields {
  chatUser?: string;
  approver?: string;
  decision?: string;
  step?: string;
  workflowId?: string;
  /** What became of the Slack message after a button press: updated:200, not-updated:... */
  message?: string;
}

export function logFields(fields: LogFields): string[] {
  return LOG_FIELDS.filter((k) => fields[k] !== undefined).map((k) => `${k}=${safe(fields[k]!)}`);
}

export function slack(outcome: string, responseType: 'ephemeral' | 'in_channel', text: string): Reply {
  return { status: 200, outcome, body: { response_type: responseType, text } };
}

export function jsonError(status: number, outcome: string, message: string): Reply {
  return { status, outcome, body: { error: outcome, message } };
}

export function methodNotAllowed(allow: string): Reply {
  return { ...jsonError(405, 'method-not-allowed', `use ${allow}`), headers: { Allow: allow } };
}

export function send(res: ServerResponse, reply: Reply): void {
  const text = `${JSON.stringify(reply.body)}\n`;
  res.writeHead(reply.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Lifeboat-Outcome': reply.outcome,
    ...reply.headers,
  });
  res.end(text);
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The raw body, or undefined when it is over the limit. */
export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export function issues(list: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return list.map((i) => `${i.path.map(String).join('.') || '(body)'}: ${i.message}`).join('; ');
}

/** Log values come from the request: one token, printable, bounded, so a line stays one line. */
export function safe(v: string): string {
  return v.replace(/[^\x21-\x7e]/g, '?').slice(0, 120);
}
