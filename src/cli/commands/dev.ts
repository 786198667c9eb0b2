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
// Beside this file: dev-sandbox.ts (the state directory and the PostgreSQL
// instances in it), dev-demo-data.ts (the demo's tables, cache and first
// backup), dev-welcome.ts (what it prints once up).
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../../errors';
import { lifeboatCommand } from '../../tools';
import { startTemporalDevServer } from '../../dev/temporal-server';
import { demoRunbookYaml } from '../../dev/demo-runbook';
import { initSandboxPrimary, startSandboxPrimary, stopSandboxPrimary, type SandboxPg } from '../../dev/sandbox-pg';
import { startSandboxRedis } from '../../dev/sandbox-redis';
import { startSandboxPgbouncer } from '../../dev/sandbox-pgbouncer';
import { DEMO_DATABASE, clearSandboxState, writeSandboxState, type SandboxState } from '../../dev/sandbox-state';
import { readDatabaseLine } from '../../traffic/databases-file';
import { intOption } from '../context';
import { TASK_QUEUE } from '../../runbook/schema';
import type { RunningWorkers } from '../../worker';
import { APPROVERS, ensureDemo, fillCache, firstBaseBackup } from './dev-demo-data';
import {
  OS_USER,
  checkPrimaryPort,
  isRunning,
  ownDir,
  prepareStateDir,
  refuseSecondDev,
  say,
  startPromotedCopy,
  stopRestoredCopies,
} from './dev-sandbox';
import { printWelcome } from './dev-welcome';

const HOST = 'sandbox';
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
