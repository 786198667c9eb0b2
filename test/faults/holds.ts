// Holds for fault tests that are not the store's (./s3-hold.ts): an HTTP
// purge endpoint that does not answer, and a session keeping locks open.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, type ClientConfig } from 'pg';

/** An HTTP purge endpoint that, while held, answers nothing. */
export async function startPurgeEndpoint(): Promise<{
  url: string;
  hold(): void;
  hits(): number;
  release(): void;
  stop(): Promise<void>;
}> {
  let held = false;
  let hits = 0;
  let waiting: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    if (!held) return void res.end('purged');
    hits++;
    waiting.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/purge`,
    hold() {
      held = true;
      hits = 0;
    },
    hits: () => hits,
    release() {
      held = false;
      for (const res of waiting) res.end('purged');
      waiting = [];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A session that keeps a transaction (and its locks) open until release. */
export async function lockHolder(config: ClientConfig, statements: string[]): Promise<() => Promise<void>> {
  const client = new Client(config);
  await client.connect();
  await client.query('begin');
  for (const sql of statements) await client.query(sql);
  return async () => {
    await client.query('commit');
    await client.end();
  };
}

export async function queryOne<T>(config: ClientConfig, sql: string, params: unknown[] = []): Promise<T | undefined> {
  const client = new Client({ ...config, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    const { rows } = await client.query(sql, params);
    return rows[0] as T | undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}
