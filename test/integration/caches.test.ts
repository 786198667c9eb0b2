// invalidate-caches against real things: a real redis-server (with a
// password, so we can see it never leaks), a real HTTP server standing in for
// a purge endpoint, and real command hooks. The activity runs in Temporal's
// MockActivityEnvironment and reads a runbook from a temporary directory.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createClient } from 'redis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { invalidateCaches } from '../../activities/caches';
import type { CacheProgress } from '../../src/caches';
import { runHook } from '../../src/endpoints/run-hook';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import type { CacheResult } from '../../src/recovery/contract';
import { waitFor } from '../harness/ports';
import { startRedis, type TestRedis } from '../harness/redis';
import { runCleanups } from '../harness/cleanups';

const PASSWORD = 'hunter2-redis-pw';
const TOKEN = 'tok-5ecret-purge';
const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-caches-'));
const runbooksDir = path.join(root, 'runbooks');
const cleanups: Array<() => unknown> = [];

let redis: TestRedis;
let redisClient: ReturnType<typeof createClient>;
let httpPort: number;
const requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders }> = [];

/** A runbook named `name` with this caches section (YAML list items). */
function writeRunbook(name: string, caches: string): string {
  const yaml = demoRunbookYaml({
    name,
    pgPort: 5432,
    repoUrl: `file://${root}/repo`,
    host: 'cachetest',
    stateDir: path.join(root, 'state'),
    restorePort: 5433,
    drillPort: 5434,
  });
  writeFileSync(path.join(runbooksDir, `${name}.yaml`), `${yaml}caches:\n${caches}`);
  return name;
}

async function run(runbook: string, beats: CacheProgress[] = []): Promise<CacheResult[]> {
  const env = new MockActivityEnvironment();
  env.on('heartbeat', (d: CacheProgress) => beats.push(d));
  return env.run<[{ runbook: string }], CacheResult[], typeof invalidateCaches>(invalidateCaches, { runbook });
}

async function seed(prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const batch: Record<string, string> = {};
    for (let j = i; j < Math.min(count, i + 500); j++) batch[`${prefix}${j}`] = `v${j}`;
    await redisClient.mSet(batch);
  }
}

beforeAll(async () => {
  mkdirSync(runbooksDir);
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;

  redis = await startRedis({ password: PASSWORD });
  cleanups.push(() => redis.stop());
  redisClient = createClient({ url: redis.url });
  redisClient.on('error', () => undefined);
  await redisClient.connect();
  cleanups.push(() => redisClient.close());
  process.env.LB_TEST_REDIS_URL = redis.url;
  process.env.LB_TEST_REDIS_BAD_URL = `redis://:wrong-pass-123@127.0.0.1:${redis.port}`;

  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    const status = req.url?.startsWith('/fail') ? 503 : 200;
    res.writeHead(status, { 'content-type': 'text/plain' });
    // Echoes the token, as some endpoints do: it must not reach the message.
    res.end(`token ${TOKEN}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  httpPort = (server.address() as AddressInfo).port;
  process.env.LB_TEST_PURGE_URL = `http://127.0.0.1:${httpPort}/purge?token=${TOKEN}`;
  process.env.LB_TEST_PURGE_AUTH_URL = `http://purger:${TOKEN}@127.0.0.1:${httpPort}/purge-all`;
  process.env.LB_TEST_PURGE_FAIL_URL = `http://127.0.0.1:${httpPort}/fail?token=${TOKEN}`;
  delete process.env.LB_TEST_UNSET_URL;
});

afterAll(async () => {
  await runCleanups(cleanups);
  rmSync(root, { recursive: true, force: true });
});

beforeEach(async () => {
  requests.length = 0;
  await redisClient.flushAll();
});

describe('redis', () => {
  it('deletes every key matching the patterns, page by page, and leaves the other keys', async () => {
    await seed('orders:', 2500);
    await seed('carts:', 700);
    await seed('sessions:', 1500);
    // A key that is not valid UTF-8 must not escape the pattern.
    await redisClient.set(Buffer.from([0x6f, 0x72, 0x64, 0x65, 0x72, 0x73, 0x3a, 0xff]), 'binary');
    const beats: CacheProgress[] = [];

    const results = await run(
      writeRunbook('redis-only', '  - redis: { urlEnv: LB_TEST_REDIS_URL, patterns: ["orders:*", "carts:*"] }\n'),
      beats,
    );

    expect(results).toEqual([{ kind: 'redis', target: 'redis $LB_TEST_REDIS_URL orders:* carts:*', deleted: 3201 }]);
    expect(await redisClient.dbSize()).toBe(1500);
    expect(await redisClient.exists('sessions:0')).toBe(1);
    // One heartbeat per SCAN page. A SCAN with COUNT 1000 examines about
    // 1000 keys, so each pattern takes several pages over 4701 keys; progress
    // is reported between them, and the last heartbeat says the total.
    const pages = beats.filter((b) => b.deleted !== undefined);
    expect(pages.length).toBeGreaterThanOrEqual(6);
    expect(pages.some((b) => b.deleted! > 0 && b.deleted! < 3201)).toBe(true);
    expect(pages.at(-1)).toEqual({
      entry: 1,
      entries: 1,
      target: 'redis $LB_TEST_REDIS_URL orders:* carts:*',
      deleted: 3201,
    });
    expect(JSON.stringify([results, beats])).not.toContain(PASSWORD);
  });

  it('fails with a wrong password naming the variable and the host, never the URL or the password', async () => {
    const name = writeRunbook(
      'redis-bad-password',
      '  - redis: { urlEnv: LB_TEST_REDIS_BAD_URL, patterns: ["orders:*"] }\n',
    );
    const failure = await run(name).catch((e: unknown) => e);
    expect(failure).toMatchObject({
      type: 'CACHE_INVALIDATION_FAILED',
      nonRetryable: false,
      message: [
        `Redis at $LB_TEST_REDIS_BAD_URL (127.0.0.1:${redis.port}): cannot connect: WRONGPASS invalid username-password pair or user is disabled.`,
        'HINT: check the user and password in LB_TEST_REDIS_BAD_URL on this worker, and that the user may SCAN and UNLINK',
        'HINT: deleting again is safe: retry the step',
      ].join('\n'),
    });
    expect(JSON.stringify(failure)).not.toContain('wrong-pass-123');
  });
});

describe('http', () => {
  it('sends the runbook method to the purge endpoint and reports the status, never the token', async () => {
    const name = writeRunbook(
      'http-purge',
      [
        '  - http: { urlEnv: LB_TEST_PURGE_URL, method: PURGE }',
        '  - http: { urlEnv: LB_TEST_PURGE_AUTH_URL }',
        '',
      ].join('\n'),
    );

    const results = await run(name);

    expect(results).toEqual([
      { kind: 'http', target: 'http PURGE $LB_TEST_PURGE_URL', status: 200 },
      { kind: 'http', target: 'http POST $LB_TEST_PURGE_AUTH_URL', status: 200 },
    ]);
    expect(requests.map((r) => [r.method, r.url, r.headers['user-agent'], r.headers.authorization])).toEqual([
      ['PURGE', `/purge?token=${TOKEN}`, 'lifeboat', undefined],
      // Credentials in the URL travel as Basic auth (fetch refuses them in the URL).
      ['POST', '/purge-all', 'lifeboat', `Basic ${Buffer.from(`purger:${TOKEN}`).toString('base64')}`],
    ]);
    expect(JSON.stringify(results)).not.toContain(TOKEN);
  });

  it('fails with CACHE_INVALIDATION_FAILED, retryable, when the endpoint answers 503, naming the variable and the status', async () => {
    const name = writeRunbook('http-fail', '  - http: { urlEnv: LB_TEST_PURGE_FAIL_URL }\n');
    const failure = await run(name).catch((e: unknown) => e);
    expect(failure).toMatchObject({
      type: 'CACHE_INVALIDATION_FAILED',
      nonRetryable: false,
      message: [
        `cache purge POST $LB_TEST_PURGE_FAIL_URL (127.0.0.1:${httpPort}) answered 503 Service Unavailable, expected 2xx`,
        "HINT: check the purge endpoint's own logs (Lifeboat shows neither the URL nor the response body: they may hold credentials)",
        'HINT: purging again is safe: retry the step',
      ].join('\n'),
    });
    expect(requests.map((r) => r.method)).toEqual(['POST']);
    expect(JSON.stringify(failure)).not.toContain(TOKEN);
  });
});

describe('command', () => {
  it('runs the hook without a shell', async () => {
    const marker = path.join(root, 'hook ran');
    const name = writeRunbook('command-ok', `  - command: { argv: ["/usr/bin/touch", "${marker}"] }\n`);

    expect(await run(name)).toEqual([{ kind: 'command', target: `command /usr/bin/touch "${marker}"` }]);
    expect(existsSync(marker)).toBe(true);
  });

  it('fails with the last lines the hook wrote when it exits non-zero', async () => {
    const script = 'echo connecting >&2; echo purge-cdn: 403 Forbidden >&2; exit 3';
    const name = writeRunbook('command-fail', `  - command: { argv: ["/bin/sh", "-c", "${script}"] }\n`);
    await expect(run(name)).rejects.toMatchObject({
      type: 'CACHE_INVALIDATION_FAILED',
      nonRetryable: false,
      message: [
        `cache hook /bin/sh -c "${script}" failed (exit 3):`,
        '  connecting',
        '  purge-cdn: 403 Forbidden',
        'HINT: run it by hand on this worker to see why; it must exit 0 once the cache is purged',
        'HINT: then retry the step',
      ].join('\n'),
    });
  });
});

describe('hook time limits', () => {
  it('stops a hook that does not finish in time, with the children it started', async () => {
    const pidFile = path.join(root, 'grandchild.pid');
    // The background sleep keeps the hook's stdout open: waiting for the pipes
    // alone would never return.
    const argv = ['/bin/sh', '-c', `sleep 60 & echo $! > ${pidFile}; echo still purging >&2; wait`];

    const failure = await runHook(argv, {
      what: 'cache hook slow-purge',
      code: 'CACHE_INVALIDATION_FAILED',
      timeoutMs: 1000,
    }).catch((e: unknown) => e);

    expect(failure).toMatchObject({
      code: 'CACHE_INVALIDATION_FAILED',
      message: 'cache hook slow-purge did not finish within 1 s and was stopped:\n  still purging',
    });
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    await waitFor('the background sleep to be gone', async () => {
      try {
        process.kill(grandchild, 0);
        return undefined;
      } catch {
        return true;
      }
    });
  });

  it('stops a running hook when the activity is cancelled', async () => {
    const started = path.join(root, 'cancel-started');
    const name = writeRunbook(
      'command-cancel',
      `  - command: { argv: ["/bin/sh", "-c", "touch ${started}; sleep 60"] }\n`,
    );
    const env = new MockActivityEnvironment();
    const running = env.run(invalidateCaches, { runbook: name });
    await waitFor('the hook to start', async () => (existsSync(started) ? true : undefined));

    env.cancel();

    await expect(running).rejects.toBeInstanceOf(CancelledFailure);
  });
});

describe('several caches', () => {
  it('invalidates them in runbook order', async () => {
    await seed('orders:', 1200);
    const marker = path.join(root, 'in-order');
    const name = writeRunbook(
      'all-kinds',
      [
        `  - command: { argv: ["/usr/bin/touch", "${marker}"] }`,
        '  - redis: { urlEnv: LB_TEST_REDIS_URL, patterns: ["orders:*"] }',
        '  - http: { urlEnv: LB_TEST_PURGE_URL, method: DELETE }',
        '',
      ].join('\n'),
    );

    expect(await run(name)).toEqual([
      { kind: 'command', target: `command /usr/bin/touch ${marker}` },
      { kind: 'redis', target: 'redis $LB_TEST_REDIS_URL orders:*', deleted: 1200 },
      { kind: 'http', target: 'http DELETE $LB_TEST_PURGE_URL', status: 200 },
    ]);
    expect(existsSync(marker)).toBe(true);
  });

  it('tries every cache when one fails, then fails listing what failed and what was invalidated', async () => {
    await seed('orders:', 10);
    const marker = path.join(root, 'after-failure');
    const name = writeRunbook(
      'one-fails',
      [
        '  - redis: { urlEnv: LB_TEST_REDIS_URL, patterns: ["orders:*"] }',
        '  - http: { urlEnv: LB_TEST_PURGE_FAIL_URL }',
        `  - command: { argv: ["/usr/bin/touch", "${marker}"] }`,
        '',
      ].join('\n'),
    );

    await expect(run(name)).rejects.toMatchObject({
      type: 'CACHE_INVALIDATION_FAILED',
      nonRetryable: false,
      message: [
        '1 of 3 caches of runbook one-fails could not be invalidated:',
        `  cache 2 (http POST $LB_TEST_PURGE_FAIL_URL): cache purge POST $LB_TEST_PURGE_FAIL_URL (127.0.0.1:${httpPort}) answered 503 Service Unavailable, expected 2xx`,
        `invalidated: redis $LB_TEST_REDIS_URL orders:* (10 keys deleted); command /usr/bin/touch ${marker}`,
        "HINT: check the purge endpoint's own logs (Lifeboat shows neither the URL nor the response body: they may hold credentials)",
        'HINT: purging again is safe: retry the step',
      ].join('\n'),
    });
    expect(await redisClient.dbSize()).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('fails at once with SECRET_MISSING, not retryable, when a variable is unset, before touching any cache', async () => {
    await seed('orders:', 10);
    const marker = path.join(root, 'never');
    const name = writeRunbook(
      'secret-missing',
      [
        `  - command: { argv: ["/usr/bin/touch", "${marker}"] }`,
        '  - redis: { urlEnv: LB_TEST_REDIS_URL, patterns: ["orders:*"] }',
        '  - http: { urlEnv: LB_TEST_UNSET_URL }',
        '',
      ].join('\n'),
    );

    await expect(run(name)).rejects.toMatchObject({
      type: 'SECRET_MISSING',
      nonRetryable: true,
      message: [
        'environment variable LB_TEST_UNSET_URL is not set in this process',
        'HINT: runbook secret-missing reads the URL of the cache purge endpoint from LB_TEST_UNSET_URL (http:// or https://...)',
        'HINT: set it in the environment of the worker (never in the runbook)',
      ].join('\n'),
    });
    expect(existsSync(marker)).toBe(false);
    expect(await redisClient.dbSize()).toBe(10);
  });
});
