// Preflight's probes of cache and traffic endpoints (src/caches, src/traffic
// check()), against real Redis and pgbouncer and a real HTTP listener: what
// answers passes, what would fail invalidate-caches or resume-traffic is
// refused with ENDPOINT_UNREACHABLE naming the entry, never a secret; and no
// probe purges, deletes, pauses or reloads anything.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRunbookCaches } from '../../src/caches';
import { demoRunbookYaml } from '../../src/dev/demo-runbook';
import { isLifeboatError } from '../../src/errors';
import { loadRunbook } from '../../src/runbook/load';
import { checkRunbookTraffic } from '../../src/traffic';
import { startPgbouncer, type TestPgbouncer } from '../harness/pgbouncer';
import { freePort } from '../harness/ports';
import { startPrimary, type Primary } from '../harness/postgres';
import { startRedis, type TestRedis } from '../harness/redis';
import { runCleanups } from '../harness/cleanups';

const PASSWORD = 'pw-never-shown-1234';
const TOKEN = 'purge-token-5ecret';
const root = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-probes-'));
const runbooksDir = path.join(root, 'runbooks');
const cleanups: Array<() => unknown> = [];
let redis: TestRedis;
let pg: Primary;
let pgbouncer: TestPgbouncer;
let http: Server;
let httpPort: number;
const methods: string[] = [];
const THEN = 'start the recovery again';

beforeAll(async () => {
  mkdirSync(runbooksDir, { recursive: true });
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  redis = await startRedis({ password: PASSWORD });
  cleanups.push(() => redis.stop());
  process.env.PROBE_REDIS_URL = redis.url;
  process.env.PROBE_REDIS_BADPW_URL = `redis://:wrong-${PASSWORD}@127.0.0.1:${redis.port}`;
  process.env.PROBE_REDIS_DOWN_URL = `redis://:${PASSWORD}@127.0.0.1:${await freePort()}`;
  // A purge route that refuses HEAD, as many do: it still answers.
  http = createServer((req, res) => {
    methods.push(req.method ?? '');
    res.writeHead(req.method === 'HEAD' ? 405 : 200).end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpPort = (http.address() as AddressInfo).port;
  cleanups.push(() => new Promise((r) => http.close(r)));
  process.env.PROBE_HTTP_URL = `http://purger:${TOKEN}@127.0.0.1:${httpPort}/purge?token=${TOKEN}`;
  process.env.PROBE_HTTP_DOWN_URL = `http://127.0.0.1:${await freePort()}/purge?token=${TOKEN}`;
  pg = await startPrimary();
  cleanups.push(() => pg.stop());
  pgbouncer = await startPgbouncer({ database: 'appdb', host: '127.0.0.1', port: pg.port });
  cleanups.push(() => pgbouncer.stop());
  process.env.PROBE_PGBOUNCER_URL = pgbouncer.adminUrl;
}, 120_000);
afterAll(async () => {
  await runCleanups(cleanups);
  // The test's own directory.
  rmSync(root, { recursive: true, force: true });
});

/** A runbook named `name` with these extra sections (YAML). */
async function runbook(name: string, extra: string) {
  const yaml = demoRunbookYaml({
    name,
    pgPort: pg.port,
    repoUrl: `file://${root}/repo`,
    host: 'probes',
    stateDir: path.join(root, 'state'),
    restorePort: 5433,
    drillPort: 5434,
  });
  writeFileSync(path.join(runbooksDir, `${name}.yaml`), `${yaml}${extra}`);
  return loadRunbook(name);
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isLifeboatError(err)) throw new Error(`expected a refusal, got ${String(err)}`);
  return { code: err.code, message: err.message };
}

describe('cache endpoints', () => {
  it('pass when Redis answers PING, the purge route answers HEAD with any status and the hook is executable, purging nothing', async () => {
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    cleanups.push(() => (client.isOpen ? client.quit() : undefined));
    await client.set('orders:1', 'kept');
    const rb = await runbook(
      'healthy',
      'caches:\n  - redis: { urlEnv: PROBE_REDIS_URL, patterns: ["orders:*"] }\n  - http: { urlEnv: PROBE_HTTP_URL, method: PURGE }\n  - command: { argv: ["true", --all] }\n',
    );
    methods.length = 0;
    expect((await checkRunbookCaches(rb, { then: THEN })).answered).toEqual([
      `Redis at $PROBE_REDIS_URL (127.0.0.1:${redis.port}): PONG`,
      `http $PROBE_HTTP_URL (127.0.0.1:${httpPort}): answered HEAD with 405`,
      expect.stringMatching(/^command true --all: \/.*\/true is executable$/),
    ]);
    expect(methods).toEqual(['HEAD']);
    expect(await client.get('orders:1')).toBe('kept');
  });

  it('refuse, naming each entry that would fail and no secret: wrong password, Redis down, purge endpoint down, a missing program, a file that is not executable', async () => {
    const notExec = path.join(root, 'purge.sh');
    writeFileSync(notExec, '#!/bin/sh\nexit 0\n');
    chmodSync(notExec, 0o644);
    const rb = await runbook(
      'broken',
      [
        'caches:',
        '  - redis: { urlEnv: PROBE_REDIS_BADPW_URL, patterns: ["orders:*"] }',
        '  - redis: { urlEnv: PROBE_REDIS_DOWN_URL, patterns: ["orders:*"] }',
        '  - http: { urlEnv: PROBE_HTTP_DOWN_URL }',
        '  - command: { argv: [lifeboat-no-such-purger] }',
        `  - command: { argv: [${notExec}] }`,
        '',
      ].join('\n'),
    );
    const r = await refusal(checkRunbookCaches(rb, { then: THEN }));
    console.log(r.message);
    expect(r.code).toBe('ENDPOINT_UNREACHABLE');
    const lines = r.message.split('\n');
    expect(lines[0]).toBe('5 of 5 caches of runbook broken would fail invalidate-caches:');
    expect(lines[1]).toMatch(
      new RegExp(
        `^  cache 1: Redis at \\$PROBE_REDIS_BADPW_URL \\(127\\.0\\.0\\.1:${redis.port}\\) does not answer PING: WRONGPASS`,
      ),
    );
    expect(lines[2]).toMatch(
      /^ {2}cache 2: Redis at \$PROBE_REDIS_DOWN_URL \(127\.0\.0\.1:\d+\) does not answer PING: .*ECONNREFUSED/,
    );
    expect(lines[3]).toMatch(
      /^ {2}cache 3: cache purge endpoint \$PROBE_HTTP_DOWN_URL \(127\.0\.0\.1:\d+\) does not answer: fetch failed: .*ECONNREFUSED/,
    );
    expect(lines[4]).toMatch(
      /^ {2}cache 4: cache hook lifeboat-no-such-purger cannot run: lifeboat-no-such-purger is not an executable file on this worker's PATH \(/,
    );
    expect(lines[5]).toBe(
      `  cache 5: cache hook ${notExec} cannot run: ${notExec} is not executable by this worker's user`,
    );
    expect(r.message).toContain(
      'HINT: check the user and password in PROBE_REDIS_BADPW_URL on the workers of the lifeboat queue, and that the user may PING, SCAN and UNLINK',
    );
    expect(r.message).toContain("HINT: bring it up or fix the runbook's caches list, then start the recovery again");
    expect(r.message).not.toContain(PASSWORD);
    expect(r.message).not.toContain(TOKEN);
  });

  it('refuse unset variables all at once with SECRET_MISSING, naming each', async () => {
    const rb = await runbook(
      'unset',
      'caches:\n  - redis: { urlEnv: PROBE_UNSET_A, patterns: ["x:*"] }\n  - http: { urlEnv: PROBE_UNSET_B }\n',
    );
    const r = await refusal(checkRunbookCaches(rb, { then: THEN }));
    expect(r.code).toBe('SECRET_MISSING');
    expect(r.message.split('\n').slice(0, 2)).toEqual([
      'environment variable PROBE_UNSET_A is not set in this process',
      'environment variable PROBE_UNSET_B is not set in this process',
    ]);
    expect(r.message).toContain('HINT: once it is set on every worker of the lifeboat queue, start the recovery again');
  });
});

describe('preflight: warn', () => {
  it('turns an endpoint that does not answer into a warning, and the run goes on; a bad value is a runbook error naming the field', async () => {
    const rb = await runbook(
      'warned',
      'caches:\n  - redis: { urlEnv: PROBE_REDIS_URL, patterns: ["orders:*"] }\n  - redis: { urlEnv: PROBE_REDIS_DOWN_URL, patterns: ["orders:*"], preflight: warn }\n',
    );
    const r = await checkRunbookCaches(rb, { then: THEN });
    expect(r.answered).toEqual([`Redis at $PROBE_REDIS_URL (127.0.0.1:${redis.port}): PONG`]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(
      /^cache 2 \(preflight: warn\) does not answer now, invalidate-caches will need it: Redis at \$PROBE_REDIS_DOWN_URL \(127\.0\.0\.1:\d+\) does not answer PING: .*ECONNREFUSED/,
    );
    expect(r.warnings[0]).not.toContain(PASSWORD);
    const bouncer = await runbook(
      'bouncer-warn',
      `traffic:\n  pgbouncer: { adminUrlEnv: PROBE_PGBOUNCER_URL, database: nosuch, databasesFile: ${pgbouncer.databasesFile}, preflight: warn }\n`,
    );
    const t = await checkRunbookTraffic(bouncer, THEN);
    expect(t.answered).toEqual([]);
    expect(t.warnings).toEqual([
      `traffic (preflight: warn) does not answer now, resume-traffic will need it: the pgbouncer databases file ${pgbouncer.databasesFile} has no line for database nosuch`,
    ]);
    const bad = await refusal(
      runbook(
        'badmode',
        'caches:\n  - redis: { urlEnv: PROBE_REDIS_URL, patterns: ["orders:*"], preflight: ignore }\n',
      ),
    );
    expect(bad.code).toBe('RUNBOOK_INVALID');
    expect(bad.message).toContain(
      'caches[0].redis.preflight: expected refuse (the default: no recovery starts while this endpoint does not answer) or warn (preflight notes it and the run goes on; the step itself still needs it)',
    );
  });
});

describe('traffic endpoint', () => {
  it('passes when pgbouncer answers SHOW VERSION and lists the database, its databases file holding the line; nothing paused or reloaded', async () => {
    const before = readFileSync(pgbouncer.databasesFile, 'utf8');
    const rb = await runbook(
      'bouncer',
      `traffic:\n  pgbouncer: { adminUrlEnv: PROBE_PGBOUNCER_URL, database: appdb, databasesFile: ${pgbouncer.databasesFile} }\n`,
    );
    const {
      answered: [answer],
    } = await checkRunbookTraffic(rb, THEN);
    expect(answer).toMatch(
      new RegExp(
        `^pgbouncer at \\$PROBE_PGBOUNCER_URL \\(127\\.0\\.0\\.1:${pgbouncer.port}\\): PgBouncer \\S+.*; appdb at 127\\.0\\.0\\.1:${pg.port}/appdb; line 1 of ${pgbouncer.databasesFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );
    const db = (await pgbouncer.admin('SHOW DATABASES')).find((r) => r.name === 'appdb')!;
    expect(Number(db.paused)).toBe(0);
    expect(readFileSync(pgbouncer.databasesFile, 'utf8')).toBe(before);
  });

  it('refuses a database pgbouncer does not list, and a hook program that is missing', async () => {
    writeFileSync(
      path.join(root, 'other.ini'),
      `appdb = host=127.0.0.1 port=${pg.port} dbname=appdb\nnosuch = host=127.0.0.1 port=${pg.port} dbname=nosuch\n`,
    );
    const rb = await runbook(
      'nodb',
      `traffic:\n  pgbouncer: { adminUrlEnv: PROBE_PGBOUNCER_URL, database: nosuch, databasesFile: ${path.join(root, 'other.ini')} }\n`,
    );
    const r = await refusal(checkRunbookTraffic(rb, THEN));
    expect(r.code).toBe('ENDPOINT_UNREACHABLE');
    expect(r.message.split('\n')[0]).toBe(
      `traffic of runbook nodb: pgbouncer at $PROBE_PGBOUNCER_URL (127.0.0.1:${pgbouncer.port}) has no database nosuch`,
    );
    const hook = await runbook(
      'hook',
      'traffic:\n  command: { argv: [/usr/local/bin/lifeboat-no-such-switch, --to-restored] }\n',
    );
    const h = await refusal(checkRunbookTraffic(hook, THEN));
    expect(h.message.split('\n')[0]).toBe(
      'traffic of runbook hook: traffic hook /usr/local/bin/lifeboat-no-such-switch --to-restored cannot run: /usr/local/bin/lifeboat-no-such-switch does not exist on this host',
    );
  });
});
