// The sandbox's Redis: the demo application's cache, keys `orders:<id>`
// holding an order as JSON, which the recovery's invalidate-caches step
// clears (the demo runbook's pattern is orders:*). redis-server on loopback,
// persistence off: a cache is refilled from the database, never restored, so
// every start begins empty and `lifeboat dev` fills it again.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Client as PgClient } from 'pg';
import { createClient } from 'redis';
import { startDaemon } from './daemon';

export const REDIS_SERVER = process.env.LIFEBOAT_REDIS_SERVER ?? '/usr/bin/redis-server';

/** How many orders the application keeps in its cache, the first by id. */
export const CACHED_ORDERS = 100;

export interface SandboxRedis {
  /** redis://127.0.0.1:<port> (no password: loopback, sandbox only). */
  url: string;
  stop(): Promise<void>;
}

/** A redis.conf value in double quotes, so a path with spaces stays one argument. */
function confValue(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export async function startSandboxRedis(opts: {
  dir: string;
  port: number;
  say(line: string): void;
}): Promise<SandboxRedis> {
  const conf = path.join(opts.dir, 'redis.conf');
  const pidFile = path.join(opts.dir, 'redis.pid');
  writeFileSync(
    conf,
    [
      'bind 127.0.0.1',
      `port ${opts.port}`,
      `dir ${confValue(opts.dir)}`,
      `pidfile ${confValue(pidFile)}`,
      'daemonize no',
      'save ""',
      'appendonly no',
      // redis-server replaces its command line with this title; keeping the
      // configuration file in it lets `ps`, and the leftover check, tell this
      // sandbox's server from any other.
      'proc-title-template "{title} {listen-addr} {config-file}"',
      '',
    ].join('\n'),
  );
  const url = `redis://127.0.0.1:${opts.port}`;
  const daemon = await startDaemon({
    name: 'redis-server',
    bin: REDIS_SERVER,
    args: [conf],
    logFile: path.join(opts.dir, 'redis.log'),
    pidFile,
    mark: conf,
    ready: () => ping(url),
    hints: [`is port ${opts.port} already in use? pass another --redis-port`],
    say: opts.say,
  });
  return { url, stop: daemon.stop };
}

async function openRedis(url: string) {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  // Without a listener an 'error' event would crash the process; the
  // awaited calls reject with the same error anyway.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function ping(url: string): Promise<boolean> {
  const client = await openRedis(url);
  try {
    return (await client.ping()) === 'PONG';
  } finally {
    client.destroy();
  }
}

/**
 * What the application does on a read: the first orders, as the database
 * has them now, written to the cache. Returns how many keys were set.
 */
export async function cacheOrders(url: string, db: PgClient): Promise<number> {
  const { rows } = await db.query<{ id: string; customer: string; status: string; amount: string }>(
    'select id, customer, status, amount from orders order by id limit $1',
    [CACHED_ORDERS],
  );
  if (rows.length === 0) return 0;
  const client = await openRedis(url);
  try {
    await client.mSet(rows.map((r): [string, string] => [`orders:${r.id}`, JSON.stringify(r)]));
  } finally {
    client.destroy();
  }
  return rows.length;
}
