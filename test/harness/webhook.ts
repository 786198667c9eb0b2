// A real webhook receiver for tests: an HTTP server on 127.0.0.1 that records
// every JSON POST (what src/notify/webhook.ts sends), and can be told to
// answer the next N requests with an error so retries and "a notifier that
// fails does not fail the run" can be proven against a real socket.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './ports';

export interface ReceivedPost {
  /** Request path and query, e.g. "/hook?token=x". */
  path: string;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body; undefined when the body was not JSON (see `raw`). */
  body: Record<string, unknown> | undefined;
  raw: string;
  /** The status this server answered with. */
  status: number;
  at: Date;
}

export interface TestWebhook {
  /** http://127.0.0.1:<port>/hook: put it in the variable the runbook's notify.webhookUrlEnv names. */
  url: string;
  port: number;
  /** Every POST received, answered or failed, in arrival order. */
  received: ReceivedPost[];
  /** Only the POSTs answered 2xx, i.e. delivered notifications. */
  delivered(): ReceivedPost[];
  /** Answer the next `n` POSTs with `status` (default 500) instead of 204. */
  failNext(n: number, status?: number): void;
  /** Waits until a delivered POST matches (by default: any); returns it. */
  waitFor(match?: (p: ReceivedPost) => boolean, timeoutMs?: number): Promise<ReceivedPost>;
  close(): Promise<void>;
}

export async function startTestWebhook(): Promise<TestWebhook> {
  const received: ReceivedPost[] = [];
  let failures: { left: number; status: number } = { left: 0, status: 500 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> | undefined;
      try {
        const parsed: unknown = JSON.parse(raw);
        body = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      let status = req.method === 'POST' ? 204 : 405;
      if (req.method === 'POST' && failures.left > 0) {
        failures = { ...failures, left: failures.left - 1 };
        status = failures.status;
      }
      received.push({ path: req.url ?? '/', headers: req.headers, body, raw, status, at: new Date() });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const delivered = () => received.filter((p) => p.status >= 200 && p.status < 300);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    received,
    delivered,
    failNext(n, status = 500) {
      failures = { left: n, status };
    },
    waitFor(match = () => true, timeoutMs = 60_000) {
      return waitFor('a webhook POST', async () => delivered().find(match), { timeoutMs, intervalMs: 50 });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
