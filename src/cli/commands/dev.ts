// `lifeboat dev` (what `npm start` runs): the embedded stack for trying
// Lifeboat on one machine. A Temporal dev server with its Web UI; a sandbox
// primary holding the demo application (orders, system_gate, an outbox),
// archiving to a file:// repository; the application's Redis cache and the
// pgbouncer it connects through; a worker polling both queues; a first base
// backup. Then it prints where to look and what to try (`lifeboat
// dev-incident` plays the bad UPDATE to recover from), and runs until Ctrl-C,
// which stops everything it started, in reverse order, also when start-up
// fails half-way.
//
// Everything lives in the state directory and the next start reuses it: the
// primary keeps its data, so setting up the demo must be idempotent, and a
// copy promoted by an earlier recovery is started again rather than touched.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { LifeboatError, errorMessage } from '../../errors';
import { lifeboatCommand } from '../../tools';
import { startTemporalDevServer } from '../../dev/temporal-server';
import { demoRunbookYaml, DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../dev/demo-runbook';
import {
  chownToOsUser,
  initSandboxPrimary,
  pgCtl,
  startSandboxPrimary,
  stopSandboxPrimary,
  type SandboxPg,
} from '../../dev/sandbox-pg';
import { cacheOrders, startSandboxRedis } from '../../dev/sandbox-redis';
import { startSandboxPgbouncer } from '../../dev/sandbox-pgbouncer';
import { devCommand, requireReachable } from '../../dev/reach';
import {
  DEMO_DATABASE,
  cliPath,
  clearSandboxState,
  drillDataDir,
  isLifeboatProcess,
  promotedCopy,
  readSandboxState,
  restoreDataDir,
  stateDirFlag,
  writeSandboxState,
  type SandboxState,
} from '../../dev/sandbox-state';
import type { RestoreMarker } from '../../restore/marker';
import { readDatabaseLine } from '../../traffic/databases-file';
import { intOption } from '../context';
import { TASK_QUEUE } from '../../runbook/schema';
import type { RunningWorkers } from '../../worker';

const HOST = 'sandbox';
const OS_USER = 'postgres';
const APPROVERS = ['alice', 'bob'];
/** Variables the demo runbook names; this process sets them for its in-process worker. */
export const REDIS_URL_ENV = 'LIFEBOAT_DEMO_REDIS_URL';
export const PGBOUNCER_ADMIN_ENV = 'LIFEBOAT_DEMO_PGBOUNCER_ADMIN';

interface DevOptions {
  stateDir: string;
  uiPort: string;
  temporalPort: string;
  pgPort: string;
  redisPort: string;
  pgbouncerPort: string;
}

type Stopper = [what: string, stop: () => Promise<void>];

function say(line: string): void {
  process.stderr.write(`[lifeboat dev] ${line}\n`);
}

const isRunning = (pg: SandboxPg) =>
  pgCtl(pg, 'status').then(
    () => true,
    () => false,
  );

/**
 * `npm start 2>&1 | tee log`: Ctrl-C ends tee as well, and every later write
 * to the broken pipe fails with EPIPE. Unhandled, that stream error would end
 * this process before it stopped the servers it started; what it would have
 * said is lost anyway, so EPIPE is ignored and anything else still thrown.
 */
function survivePipeBreak(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

export async function run(opts: DevOptions): Promise<number> {
  const uiPort = intOption(opts.uiPort, '--ui-port');
  const temporalPort = intOption(opts.temporalPort, '--temporal-port');
  const pgPort = intOption(opts.pgPort, '--pg-port');
  const redisPort = intOption(opts.redisPort, '--redis-port');
  const pgbouncerPort = intOption(opts.pgbouncerPort, '--pgbouncer-port');
  const state = path.resolve(opts.stateDir);
  survivePipeBreak();
  refuseSecondDev(state);
  await prepareStateDir(state);
  const pg: SandboxPg = {
    dataDir: path.join(state, 'pg', 'data'),
    port: pgPort,
    socketDir: path.join(state, 'pg'),
    logFile: path.join(state, 'pg', 'postgres.log'),
    pgBin: '/usr/lib/postgresql/15/bin',
    osUser: OS_USER,
  };
  checkPrimaryPort(pg, state);

  say(`starting the Temporal dev server (frontend 127.0.0.1:${temporalPort}, UI http://127.0.0.1:${uiPort})`);
  const temporal = await startTemporalDevServer({
    port: temporalPort,
    uiPort,
    dbFilename: path.join(state, 'temporal.db'),
    logFile: path.join(state, 'temporal.log'),
  });
  const address = temporal.address;
  const stops: Stopper[] = [['the Temporal dev server', () => temporal.stop()]];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const [what, stop] of [...stops].reverse()) {
        await stop().catch((err: unknown) => say(`stopping ${what} failed: ${errorMessage(err)}`));
      }
      clearSandboxState(state);
    })());
  // Ctrl-C while starting up must not leave anything running; once up,
  // runUntilSignal takes the signals over.
  const onEarlySignal = () => {
    say('interrupted during start-up: stopping what was started');
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onEarlySignal);
  process.once('SIGTERM', onEarlySignal);
  try {
    const runbooksDir = path.join(state, 'runbooks');
    const sandbox: SandboxState = {
      pid: process.pid,
      ready: false,
      startedAt: new Date().toISOString(),
      uiPort,
      temporalAddress: address,
      pgPort,
      redisPort,
      pgbouncerPort,
      restorePort: pgPort + 1,
      runbooksDir,
    };
    writeSandboxState(state, sandbox);

    const repoUrl = `file://${path.join(state, 'repo')}`;
    if (!existsSync(path.join(pg.dataDir, 'PG_VERSION'))) say(`creating the sandbox primary in ${pg.dataDir}`);
    await initSandboxPrimary(pg, {
      archiveCommand: `${lifeboatCommand()} archive-push %p --repo ${repoUrl} --cluster demo`,
      conf: ['archive_timeout = 60'],
    });
    if (await isRunning(pg))
      say('the sandbox primary was already running (left by a lifeboat dev that did not stop): using it');
    else await startSandboxPrimary(pg);
    stops.push(['the sandbox primary', () => stopSandboxPrimary(pg)]);
    // Recoveries and drills of the demo runbook start PostgreSQL in the state
    // directory through the in-process worker: ours to stop with the rest.
    stops.push(['the restored copies', () => stopRestoredCopies(pg, state)]);
    await ensureDemo(pgPort);
    const promoted = await startPromotedCopy(pg, state);

    const redis = await startSandboxRedis({ dir: ownDir(state, 'redis', false), port: redisPort, say });
    stops.push(['redis-server', redis.stop]);
    const pgbouncer = await startSandboxPgbouncer({
      dir: ownDir(state, 'pgbouncer', true),
      port: pgbouncerPort,
      database: DEMO_DATABASE,
      upstream: { host: '127.0.0.1', port: pgPort },
      users: ['postgres', 'app'],
      osUser: OS_USER,
      say,
    });
    stops.push(['pgbouncer', pgbouncer.stop]);
    const upstream = (await readDatabaseLine(pgbouncer.databasesFile, DEMO_DATABASE)).current;
    const cached = await fillCache(redis.url, pgbouncerPort);
    process.env[REDIS_URL_ENV] = redis.url;
    process.env[PGBOUNCER_ADMIN_ENV] = pgbouncer.adminUrl;

    const runbookFile = path.join(runbooksDir, 'demo.yaml');
    writeFileSync(
      runbookFile,
      demoRunbookYaml({
        pgPort,
        repoUrl,
        host: HOST,
        stateDir: state,
        restorePort: pgPort + 1,
        drillPort: pgPort + 2,
        redisUrlEnv: REDIS_URL_ENV,
        pgbouncer: { adminUrlEnv: PGBOUNCER_ADMIN_ENV, databasesFile: pgbouncer.databasesFile },
        approvers: APPROVERS,
      }),
    );
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;

    const { startWorkers } = await import('../../worker');
    const workers: RunningWorkers = await startWorkers({ address, namespace: 'default', host: HOST });
    stops.push(['the worker', () => workers.shutdown()]);
    say(`worker polling ${TASK_QUEUE} and lifeboat-host-${HOST}`);
    await firstBaseBackup(address, repoUrl);

    writeSandboxState(state, { ...sandbox, ready: true });
    printWelcome({
      sandbox,
      state,
      upstream: `${upstream.host ?? '?'}:${upstream.port ?? '?'}`,
      cached,
      promoted,
    });
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
    await workers.runUntilSignal();
    say('stopping');
    return 0;
  } finally {
    await stopAll();
  }
}

/** Two `lifeboat dev` on one state directory would start one primary twice and stop each other's servers. */
function refuseSecondDev(state: string): void {
  const other = readSandboxState(state);
  if (other && other.pid !== process.pid && isLifeboatProcess(other.pid)) {
    throw new LifeboatError('INPUT_INVALID', `lifeboat dev is already running for ${state} (pid ${other.pid})`, {
      hints: [
        'use that one (its terminal shows what to try), or stop it with Ctrl-C first',
        `or start a second sandbox in a directory of its own: ${devCommand()} --state-dir /tmp/lifeboat-dev-2`,
      ],
    });
  }
}

async function prepareStateDir(state: string): Promise<void> {
  mkdirSync(path.join(state, 'runbooks'), { recursive: true });
  // archive_command runs as the postgres OS user and writes the repository:
  // the sandbox directories belong to that user.
  for (const d of ['pg', 'repo', 'scratch']) ownDir(state, d, true);
  // The project's bin/lifeboat, dist/ and node, and the repository: each
  // refusal names the directory that stops postgres (a 0700 home) and what to do.
  await requireReachable(OS_USER, state);
}

/** <state>/<name>, created; given to the postgres OS user when a server running as that user writes in it. */
function ownDir(state: string, name: string, forOsUser: boolean): string {
  const dir = path.join(state, name);
  mkdirSync(dir, { recursive: true });
  if (forOsUser) chownToOsUser(dir, OS_USER);
  return dir;
}

/**
 * initdb wrote the port into postgresql.conf when the sandbox was created,
 * and a restart keeps it: another --pg-port would have Lifeboat look for the
 * primary where it is not (and name the wrong restore port in the runbook).
 */
function checkPrimaryPort(pg: SandboxPg, state: string): void {
  let conf: string;
  try {
    conf = readFileSync(path.join(pg.dataDir, 'postgresql.conf'), 'utf8');
  } catch {
    return; // a new sandbox
  }
  const ports = [...conf.matchAll(/^\s*port\s*=\s*(\d+)/gm)].map((m) => Number(m[1]));
  const existing = ports[ports.length - 1];
  if (existing !== undefined && existing !== pg.port) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `the sandbox primary in ${pg.dataDir} was created on port ${existing}, not --pg-port ${pg.port}`,
      {
        hints: [
          `use this sandbox: ${devCommand()}${stateDirFlag(state)} --pg-port ${existing}`,
          `or start a new sandbox on port ${pg.port} in a directory of its own: ${devCommand()} --state-dir /tmp/lifeboat-dev-2 --pg-port ${pg.port} (this one, in ${state}, is kept)`,
        ],
      },
    );
  }
}

/**
 * Roles, database, tables and rows, each only when missing: the primary
 * persists across starts, and after a recovery fenced it, role app is
 * read-only there, so nothing may be written that already exists.
 */
async function ensureDemo(port: number): Promise<void> {
  const admin = new PgClient({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    const has = async (sql: string, name: string) => (await admin.query(sql, [name])).rows.length > 0;
    // The sandbox's Lifeboat role: a superuser only because this is a toy on
    // loopback; production runbooks use a role with REPLICATION and pg_monitor.
    if (!(await has('select 1 from pg_roles where rolname = $1', 'lifeboat')))
      await admin.query('create role lifeboat login superuser replication');
    // The application's role: owns the demo tables; the writer gate fences it.
    if (!(await has('select 1 from pg_roles where rolname = $1', 'app'))) await admin.query('create role app login');
    if (!(await has('select 1 from pg_database where datname = $1', DEMO_DATABASE)))
      await admin.query(`create database ${DEMO_DATABASE} owner app`);
  } finally {
    await admin.end();
  }
  const app = new PgClient({ host: '127.0.0.1', port, user: 'app', database: DEMO_DATABASE });
  await app.connect();
  try {
    const { rows } = await app.query<{ missing: boolean }>(
      `select to_regclass('orders') is null or to_regclass('system_gate') is null or to_regclass('outbox') is null as missing`,
    );
    if (rows[0]?.missing) {
      say('creating the demo tables orders, system_gate and outbox');
      await app.query(DEMO_SCHEMA_SQL);
    }
    const empty = (await app.query('select 1 from orders limit 1')).rows.length === 0;
    if (empty) await app.query(DEMO_SEED_SQL);
  } finally {
    await app.end();
  }
}

/**
 * A copy an earlier recovery promoted is the application's primary now
 * (pgbouncer was pointed at it): it is started again, never moved or
 * deleted. Returns it, and whether it runs.
 */
async function startPromotedCopy(pg: SandboxPg, state: string): Promise<PromotedNote | undefined> {
  const copy = await promotedCopy(state);
  if (!copy) return undefined;
  const instance: SandboxPg = {
    ...pg,
    dataDir: copy.dataDir,
    logFile: copy.marker.logFile ?? path.join(copy.dataDir, 'lifeboat-postgres.log'),
  };
  const found = `a copy promoted by an earlier recovery (workflow ${copy.marker.workflowId}) is in ${copy.dataDir}`;
  try {
    if (await isRunning(instance)) say(`${found}, running`);
    else {
      say(`${found}: starting it again`);
      await startSandboxPrimary(instance);
    }
    return { marker: copy.marker, dataDir: copy.dataDir, running: true };
  } catch (err) {
    say(`could not start it: ${errorMessage(err)} (see ${instance.logFile})`);
    return { marker: copy.marker, dataDir: copy.dataDir, running: false };
  }
}

interface PromotedNote {
  marker: RestoreMarker;
  dataDir: string;
  running: boolean;
}

async function stopRestoredCopies(pg: SandboxPg, state: string): Promise<void> {
  for (const dataDir of [restoreDataDir(state), drillDataDir(state)]) {
    const instance: SandboxPg = { ...pg, dataDir };
    if (!(await isRunning(instance))) continue;
    say(`stopping the PostgreSQL in ${dataDir}`);
    await stopSandboxPrimary(instance);
  }
}

/** The application reads its first orders through pgbouncer and caches them; a cache that cannot be filled is not fatal. */
async function fillCache(redisUrl: string, pgbouncerPort: number): Promise<number | undefined> {
  const app = new PgClient({ host: '127.0.0.1', port: pgbouncerPort, user: 'app', database: DEMO_DATABASE });
  try {
    await app.connect();
    return await cacheOrders(redisUrl, app);
  } catch (err) {
    say(`the Redis cache was not filled: reading orders through pgbouncer failed: ${errorMessage(err)}`);
    return undefined;
  } finally {
    await app.end().catch(() => undefined);
  }
}

async function firstBaseBackup(address: string, repoUrl: string): Promise<void> {
  const { Client, Connection } = await import('@temporalio/client');
  const client = new Client({ connection: await Connection.connect({ address }), namespace: 'default' });
  try {
    const { openRepository } = await import('../../repository');
    const repo = await openRepository(repoUrl);
    if ((await repo.list('demo/base/')).some((o) => o.key.endsWith('/backup.json'))) return;
    say('taking the first base backup (workflow baseBackup)...');
    const meta = await client.workflow.execute('baseBackup', {
      taskQueue: TASK_QUEUE,
      workflowId: `backup-demo-first`,
      args: [{ runbook: 'demo' }],
    });
    say(`base backup ${(meta as { backupId: string }).backupId} verified and stored`);
  } finally {
    await client.connection.close();
  }
}

function printWelcome(p: {
  sandbox: SandboxState;
  state: string;
  upstream: string;
  cached: number | undefined;
  promoted: PromotedNote | undefined;
}): void {
  const { sandbox: s, state, promoted } = p;
  const cli = cliPath();
  const ui = `http://127.0.0.1:${s.uiPort}`;
  const env = `LIFEBOAT_RUNBOOKS_DIR=${s.runbooksDir} TEMPORAL_ADDRESS=${s.temporalAddress} LIFEBOAT_UI_URL=${ui}`;
  const behind =
    p.upstream === `127.0.0.1:${s.pgPort}`
      ? 'the sandbox primary'
      : p.upstream === `127.0.0.1:${s.restorePort}`
        ? 'the promoted copy'
        : 'see its databases file';
  const note = promoted
    ? `
Note: ${promoted.dataDir} holds the copy that recovery ${promoted.marker.workflowId}
promoted at ${promoted.marker.promotedAt ?? promoted.marker.at}, on port ${s.restorePort} (${promoted.running ? 'running' : 'NOT running: see above'}). Lifeboat leaves it in place.
The sandbox primary is the old primary that recovery fenced. To play the incident again,
stop (Ctrl-C), move the sandbox away (mv ${state} ${state}.old) and start again.
`
    : '';
  process.stdout.write(`
Lifeboat sandbox is up.

  Temporal Web UI     ${ui}   (workflows, task queue "${TASK_QUEUE}")
  Temporal frontend   ${s.temporalAddress}
  Sandbox primary     postgresql://app@127.0.0.1:${s.pgPort}/${DEMO_DATABASE}   (tables orders, system_gate, outbox)
  pgbouncer           postgresql://app@127.0.0.1:${s.pgbouncerPort}/${DEMO_DATABASE}   (the application's address; now ${p.upstream}, ${behind})
  Redis cache         redis://127.0.0.1:${s.redisPort}   (${p.cached ?? 0} keys orders:<id>)
  Repository          file://${path.join(state, 'repo')}   (cluster "demo")
  Runbook             ${path.join(s.runbooksDir, 'demo.yaml')}   (approvers ${APPROVERS.join(' and ')})
${note}
Play the incident (a bad UPDATE cancels every pending order), then recover from the Temporal UI:
  ${cli} dev-incident${stateDirFlag(state)}       # prints the target time and every step

Also try, in another terminal:
  export ${env}
  ${cli} backups --runbook demo          # the catalog
  ${cli} check --runbook demo            # archiver health and WAL chain
  ${cli} backup --runbook demo           # another verified base backup, watch it in the UI
  ${cli} expire --runbook demo --dry-run # what retention would remove
  psql -h 127.0.0.1 -p ${s.pgbouncerPort} -U app ${DEMO_DATABASE} -c "select status, count(*) from orders group by 1"

Ctrl-C stops everything; the sandbox in ${state} is kept for next time.
`);
}
