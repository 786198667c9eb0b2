// `npm start` end to end, through the built binary only. `lifeboat dev` on
// free ports in a temporary state directory brings up its own Temporal dev
// server, the sandbox primary, Redis and pgbouncer; `lifeboat dev-incident`
// plays the bad UPDATE and prints the recovery input; `lifeboat recover`,
// `approve` as alice and bob, and `status` carry the recovery to its end on
// the dev process's own worker; through pgbouncer the pending orders are
// back. Ctrl-C stops everything `lifeboat dev` started, the promoted copy
// included; a second start reuses the sandbox, starts that copy again and
// says so, and dev-incident refuses to play the incident once more.
// The dev worker polls the `lifeboat` queue of its OWN dev server, so it
// takes no work from other test files, nor they from it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { createClient } from 'redis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { instructions, type IncidentReport } from '../../src/cli/commands/dev-incident';
import type { StatusSnapshot } from '../../src/cli/status-view';
import { RecoveryInput } from '../../src/recovery/contract';
import { freePort } from '../harness/ports';
import { postgresTempDir } from '../harness/postgres';

const exec = promisify(execFile);
const CLI = path.resolve(__dirname, '../../bin/lifeboat');
const state = postgresTempDir('dev-demo');
const ports = { ui: 0, temporal: 0, pg: 0, redis: 0, pgbouncer: 0 };
let dev: { child: ChildProcess; out: string; err: string; exited: Promise<number | null> } | undefined;

/** What an operator's shell has: the tools directory and the like, but no runbook or Temporal settings of another run. */
function baseEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LIFEBOAT_RUNBOOKS_DIR;
  delete env.TEMPORAL_ADDRESS;
  return env;
}
const cliEnv = () => ({
  ...baseEnv(),
  LIFEBOAT_RUNBOOKS_DIR: path.join(state, 'runbooks'),
  TEMPORAL_ADDRESS: `127.0.0.1:${ports.temporal}`,
});

async function lifeboat(args: string[], env = baseEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(CLI, args, { env, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Polls until probe returns a value; unlike the harness's waitFor, an error ends the wait at once. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}

async function startDev(): Promise<NonNullable<typeof dev>> {
  const args = ['dev', '--state-dir', state, '--ui-port', String(ports.ui), '--temporal-port', String(ports.temporal)];
  args.push(
    '--pg-port',
    String(ports.pg),
    '--redis-port',
    String(ports.redis),
    '--pgbouncer-port',
    String(ports.pgbouncer),
  );
  const child = spawn(CLI, args, { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { child, out: '', err: '', exited: new Promise<number | null>((resolve) => child.once('exit', resolve)) };
  dev = p;
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  await until(
    'lifeboat dev to be up',
    async () => {
      if (child.exitCode !== null) throw new Error(`lifeboat dev exited with ${child.exitCode}:\n${p.err}`);
      return p.out.includes('Lifeboat sandbox is up.') ? true : undefined;
    },
    240_000,
  );
  return p;
}

/**
 * Ctrl-C, as the operator gives it; resolves with the exit code. With
 * `brokenPipe`, its output pipes are closed first, as when Ctrl-C also ends
 * the `tee` of `npm start 2>&1 | tee log`: every write after that fails with EPIPE.
 */
async function stopDev(opts: { brokenPipe?: boolean } = {}): Promise<number | null> {
  const p = dev;
  if (!p) return null;
  if (opts.brokenPipe) {
    p.child.stdout!.destroy();
    p.child.stderr!.destroy();
  }
  p.child.kill('SIGINT');
  const code = await p.exited;
  dev = undefined;
  return code;
}

/** Command lines of every process that names the state directory (the Temporal server's --db-filename, postgres -D, the redis and pgbouncer configs). */
function processesInState(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes(state)) found.push(cmd);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Nothing left: archive-push's read-ahead pusher exits by itself a few seconds after the primary stops, the servers never do. */
async function expectNothingLeft(): Promise<void> {
  await until(
    'the processes lifeboat dev started to be gone',
    async () => (processesInState().length === 0 ? true : undefined),
    30_000,
  ).catch(() => undefined);
  expect(processesInState()).toEqual([]);
}

async function throughPgbouncer<T>(sql: string): Promise<T[]> {
  const app = new Client({ host: '127.0.0.1', port: ports.pgbouncer, user: 'app', database: 'appdb' });
  await app.connect();
  try {
    return (await app.query(sql)).rows as T[];
  } finally {
    await app.end();
  }
}

/** The application's cache: its orders:* keys, and what orders:3 (a pending order of the seed) holds. */
async function cache(): Promise<{ keys: number; order3: unknown }> {
  const redis = createClient({ url: `redis://127.0.0.1:${ports.redis}` });
  await redis.connect();
  try {
    const order3 = await redis.get('orders:3');
    return { keys: (await redis.keys('orders:*')).length, order3: order3 === null ? null : JSON.parse(order3) };
  } finally {
    redis.destroy();
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const ORDER_COUNTS = `select count(*) filter (where status = 'pending') as pending, count(*) filter (where status = 'canceled') as canceled, inet_server_port() as port from orders`;

beforeAll(async () => {
  for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
});

afterAll(async () => {
  if (dev) {
    dev.child.kill('SIGINT');
    await Promise.race([dev.exited, sleep(60_000)]);
    dev.child.kill('SIGKILL');
  }
  // After a failure: stop what may be left, then remove the temporary directory (ours).
  for (const dataDir of ['pg/data', 'recovery']) {
    await exec('runuser', [
      '-u',
      'postgres',
      '--',
      '/usr/lib/postgresql/15/bin/pg_ctl',
      '-D',
      path.join(state, dataDir),
      'stop',
      '-m',
      'immediate',
      '-w',
    ]).catch(() => undefined);
  }
  rmSync(state, { recursive: true, force: true });
}, 120_000);

it('dev-incident says how to start the sandbox when lifeboat dev is not running', async () => {
  const r = await lifeboat(['dev-incident', '--state-dir', state]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toBe(
    [
      `lifeboat: the Lifeboat sandbox in ${state} is not running: no lifeboat dev has it open (no sandbox.json)`,
      `HINT: start it first, in another terminal: npm start -- --state-dir ${state} (or bin/lifeboat dev --state-dir ${state}), and wait for "Lifeboat sandbox is up."`,
      'HINT: --state-dir must name the directory lifeboat dev uses (default .lifeboat/dev, relative to where it was started; with npm start: npm start -- --state-dir <dir>)',
      '',
    ].join('\n'),
  );
});

it('plays the bad UPDATE on the sandbox, recovers it through the CLI with alice and bob, and stops everything on Ctrl-C', async () => {
  const started = await startDev();
  expect(started.out).toContain(
    `  pgbouncer           postgresql://app@127.0.0.1:${ports.pgbouncer}/appdb   (the application's address; now 127.0.0.1:${ports.pg}, the sandbox primary)\n`,
  );
  expect(started.out).toContain(`  Redis cache         redis://127.0.0.1:${ports.redis}   (100 keys orders:<id>)\n`);
  expect(started.out).toContain(
    `  bin/lifeboat dev-incident --state-dir ${state}       # prints the target time and every step\n`,
  );
  const [before] = await throughPgbouncer<{ pending: string; canceled: string; port: number }>(ORDER_COUNTS);
  expect(before).toEqual({ pending: '166', canceled: '0', port: ports.pg });
  expect(await cache()).toEqual({
    keys: 100,
    order3: { id: '3', customer: 'customer-3', status: 'pending', amount: '3.50' },
  });

  const incident = await lifeboat(['dev-incident', '--state-dir', state, '--json']);
  expect(incident.code, incident.stderr).toBe(0);
  const report = JSON.parse(incident.stdout) as IncidentReport;
  expect(report.rowsHit).toBe(166);
  expect(report.target).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  expect(RecoveryInput.safeParse(report.input).success).toBe(true);
  expect(report.input).toEqual({
    runbook: 'demo',
    target: { time: report.target },
    incident: 'DEMO-1',
    reason: 'bad UPDATE on orders',
  });
  expect(report.workflowId).toBe(`recover-demo-${report.target.replace(/[-:]/g, '')}`);
  expect(incident.stderr).toContain(
    `safe target time (the primary's clock): ${report.target}; the incident follows in a second\n`,
  );
  expect(incident.stderr).toContain("UPDATE orders SET status = 'canceled' WHERE status = 'pending': 166 rows\n");
  expect(await throughPgbouncer(ORDER_COUNTS)).toEqual([{ pending: '0', canceled: '166', port: ports.pg }]);
  // The application cached what it read after the incident.
  expect(await cache()).toEqual({
    keys: 100,
    order3: { id: '3', customer: 'customer-3', status: 'canceled', amount: '3.50' },
  });

  const recover = await lifeboat(
    [
      'recover',
      '--runbook',
      'demo',
      '--to-time',
      report.target,
      '--incident',
      'DEMO-1',
      '--reason',
      'bad UPDATE on orders',
      '--workflow-id',
      report.workflowId,
      '--json',
    ],
    cliEnv(),
  );
  expect(recover.code, recover.stderr).toBe(0);
  expect((JSON.parse(recover.stdout) as { input: unknown }).input).toEqual({ ...report.input, dryRun: false });

  const approvers: Record<string, string[]> = {
    'approve-fence': ['alice'],
    'approve-promote': ['alice', 'bob'],
    'approve-resume': ['alice'],
  };
  const given: string[] = [];
  const last = await until(
    'the recovery to end',
    async () => {
      const r = await lifeboat(['status', report.workflowId, '--json'], cliEnv());
      const snap = JSON.parse(r.stdout) as StatusSnapshot;
      const failed = snap.status?.steps.find((s) => s.state === 'failed');
      if (failed) throw new Error(`${failed.id} failed: ${failed.error?.message}\n${failed.error?.hints.join('\n')}`);
      if (snap.closed) return snap;
      const pending = snap.status?.pending;
      const who =
        pending?.kind === 'approval'
          ? approvers[pending.step]?.find((a) => !pending.approvedBy.includes(a))
          : undefined;
      if (pending && who) {
        const a = await lifeboat(['approve', report.workflowId, pending.step, '--as', who], cliEnv());
        expect(a.code, a.stderr).toBe(0);
        given.push(`${pending.step}:${who}`);
      }
      return undefined;
    },
    300_000,
  );
  expect(given).toEqual([
    'approve-fence:alice',
    'approve-promote:alice',
    'approve-promote:bob',
    'approve-resume:alice',
  ]);
  expect(last.closed?.status).toBe('COMPLETED');
  expect(last.result?.validationStatus).toBe('passed');
  const summary = (id: string) => last.status?.steps.find((s) => s.id === id)?.summary;
  expect(summary('invalidate-caches')).toBe('redis $LIFEBOAT_DEMO_REDIS_URL orders:*: 100 deleted');
  expect(summary('resume-traffic')).toBe(`pgbouncer now points at 127.0.0.1:${ports.pg + 1}/appdb; writers on`);

  // The application's view: the orders as they were, from the promoted copy, and a cold cache.
  expect(await throughPgbouncer(ORDER_COUNTS)).toEqual([{ pending: '166', canceled: '0', port: ports.pg + 1 }]);
  expect(await cache()).toEqual({ keys: 0, order3: null });

  expect(await stopDev()).toBe(0);
  await expectNothingLeft();
  expect(started.err).toContain(`[lifeboat dev] stopping the PostgreSQL in ${path.join(state, 'recovery')}\n`);
  expect((await lifeboat(['dev-incident', '--state-dir', state])).stderr).toMatch(
    /is not running: no lifeboat dev has it open/,
  );
}, 600_000);

it('starts again on a recovered sandbox: the promoted copy runs again, pgbouncer still points at it, the incident is not played twice, and Ctrl-C through a broken pipe stops everything', async () => {
  const again = await startDev();
  const copy = esc(path.join(state, 'recovery'));
  const dir = esc(state);
  expect(again.err).toMatch(
    new RegExp(
      `\\[lifeboat dev\\] a copy promoted by an earlier recovery \\(workflow recover-demo-\\d{8}T\\d{6}Z\\) is in ${copy}: starting it again\\n`,
    ),
  );
  expect(again.out).toContain(`(the application's address; now 127.0.0.1:${ports.pg + 1}, the promoted copy)`);
  expect(again.out).toMatch(
    new RegExp(
      `\\nNote: ${copy} holds the copy that recovery recover-demo-\\d{8}T\\d{6}Z\\n` +
        `promoted at [-0-9T:.]+Z, on port ${ports.pg + 1} \\(running\\)\\. Lifeboat leaves it in place\\.\\n` +
        'The sandbox primary is the old primary that recovery fenced\\. To play the incident again,\\n' +
        `stop \\(Ctrl-C\\), move the sandbox away \\(mv ${dir} ${dir}\\.old\\) and start again\\.\\n`,
    ),
  );
  expect(await throughPgbouncer(ORDER_COUNTS)).toEqual([{ pending: '166', canceled: '0', port: ports.pg + 1 }]);

  const refused = await lifeboat(['dev-incident', '--state-dir', state]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(
    new RegExp(
      `^lifeboat: the sandbox in ${dir} has been recovered already: ${copy} holds the copy workflow recover-demo-\\d{8}T\\d{6}Z promoted\\n` +
        'HINT: pgbouncer sends the application to that copy, and a second recovery would refuse to restore over it\\n' +
        `HINT: to play the incident again, start over: stop lifeboat dev \\(Ctrl-C\\), mv ${dir} ${dir}\\.old, then start lifeboat dev again\\n$`,
    ),
  );
  expect(await throughPgbouncer(ORDER_COUNTS)).toEqual([{ pending: '166', canceled: '0', port: ports.pg + 1 }]);

  // Ctrl-C of `npm start 2>&1 | tee log`: the pipe is gone before dev says "stopping"; it still stops everything.
  expect(await stopDev({ brokenPipe: true })).toBe(0);
  await expectNothingLeft();
}, 400_000);

it('prints the recovery from the Temporal UI and from the CLI, with the target, the input and the approvals', () => {
  const report: IncidentReport = {
    target: '2026-06-04T14:31:59Z',
    rowsHit: 166,
    input: {
      runbook: 'demo',
      target: { time: '2026-06-04T14:31:59Z' },
      incident: 'DEMO-1',
      reason: 'bad UPDATE on orders',
    },
    workflowId: 'recover-demo-20260604T143159Z',
  };
  const sandbox = {
    pid: 1,
    ready: true,
    startedAt: '2026-06-04T14:00:00Z',
    uiPort: 8233,
    temporalAddress: '127.0.0.1:7233',
    pgPort: 55432,
    redisPort: 56379,
    pgbouncerPort: 56432,
    restorePort: 55433,
    runbooksDir: '/srv/lifeboat/.lifeboat/dev/runbooks',
  };
  expect(instructions(report, sandbox, 'bin/lifeboat')).toBe(`
The incident: 166 pending orders canceled by
  UPDATE orders SET status = 'canceled' WHERE status = 'pending'
run through pgbouncer (127.0.0.1:56432) as app. The WAL holding it is archived.

Safe target, one second before it (the primary's clock):
  2026-06-04T14:31:59Z

Recover from the Temporal UI, http://127.0.0.1:8233
  1. Workflows, Start Workflow, and fill in:
       Workflow ID     recover-demo-20260604T143159Z   (any id not used yet)
       Task Queue      lifeboat
       Workflow Type   recoverToPointInTime
       Input (JSON)    {"runbook":"demo","target":{"time":"2026-06-04T14:31:59Z"},"incident":"DEMO-1","reason":"bad UPDATE on orders"}
  2. Open the run (Workflows, then its id) and its "User Metadata" tab: under "Current Details"
     the checklist says what the run waits for, who may decide and how. The page does not
     refresh itself: press R (or reload) for the latest. With the exports below,
     bin/lifeboat status recover-demo-20260604T143159Z prints a link straight to that tab.
  3. At each approval: More Actions, Send an Update, pick decide, and send this input
     (approvers: alice and bob); the UI shows the answer, accepted or why not:
       approve-fence     {"step":"approve-fence","decision":"approve","by":"alice"}
       approve-promote   {"step":"approve-promote","decision":"approve","by":"alice"}
                         then {"step":"approve-promote","decision":"approve","by":"bob"}   (two approvers)
       approve-resume    {"step":"approve-resume","decision":"approve","by":"alice"}

Or from the CLI, in another terminal:
  export LIFEBOAT_RUNBOOKS_DIR=/srv/lifeboat/.lifeboat/dev/runbooks TEMPORAL_ADDRESS=127.0.0.1:7233 LIFEBOAT_UI_URL=http://127.0.0.1:8233
  bin/lifeboat recover --runbook demo --to-time 2026-06-04T14:31:59Z --incident DEMO-1 --reason "bad UPDATE on orders" --workflow-id recover-demo-20260604T143159Z --follow
  bin/lifeboat approve recover-demo-20260604T143159Z approve-fence --as alice
  bin/lifeboat approve recover-demo-20260604T143159Z approve-promote --as alice
  bin/lifeboat approve recover-demo-20260604T143159Z approve-promote --as bob
  bin/lifeboat approve recover-demo-20260604T143159Z approve-resume --as alice

Check through pgbouncer, the application's address:
  psql -h 127.0.0.1 -p 56432 -U app appdb -c "select status, count(*) from orders group by 1"
Now the 166 orders show as canceled; after the recovery they are pending again, served by
the promoted copy on port 55433, where pgbouncer then points.
`);
});
