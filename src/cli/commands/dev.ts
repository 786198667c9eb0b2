// `lifeboat dev` (what `npm start` runs): the embedded stack for trying
// Lifeboat on one machine. A Temporal dev server with its Web UI, a sandbox
// primary with a small demo schema archiving to a file:// repository under
// the project, a worker polling both queues, a first base backup; then it
// prints where to look and what to try, and runs until Ctrl-C.
import { accessSync, constants, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { LifeboatError } from '../../errors';
import { lifeboatCommand, projectRoot } from '../../tools';
import { startTemporalDevServer } from '../../dev/temporal-server';
import { demoRunbookYaml, DEMO_SCHEMA_SQL, DEMO_SEED_SQL } from '../../dev/demo-runbook';
import {
  asOsUser,
  chownToOsUser,
  initSandboxPrimary,
  startSandboxPrimary,
  stopSandboxPrimary,
  type SandboxPg,
} from '../../dev/sandbox-pg';
import { intOption } from '../context';
import { TASK_QUEUE } from '../../runbook/schema';
import type { RunningWorkers } from '../../worker';

const HOST = 'sandbox';

interface DevOptions {
  stateDir: string;
  uiPort: string;
  temporalPort: string;
  pgPort: string;
}

function say(line: string): void {
  process.stderr.write(`[lifeboat dev] ${line}\n`);
}

export async function run(opts: DevOptions): Promise<number> {
  const uiPort = intOption(opts.uiPort, '--ui-port');
  const temporalPort = intOption(opts.temporalPort, '--temporal-port');
  const pgPort = intOption(opts.pgPort, '--pg-port');
  const state = path.resolve(opts.stateDir);
  mkdirSync(state, { recursive: true });
  mkdirSync(path.join(state, 'runbooks'), { recursive: true });
  // archive_command runs as the postgres OS user and writes the repository:
  // the sandbox directories belong to that user.
  for (const d of ['pg', 'repo', 'scratch']) {
    mkdirSync(path.join(state, d), { recursive: true });
    chownToOsUser(path.join(state, d), 'postgres');
  }
  try {
    await asOsUser('postgres', 'test', ['-w', path.join(state, 'repo')]);
    accessSync(path.join(projectRoot(), 'bin', 'lifeboat'), constants.R_OK);
  } catch (err) {
    throw new LifeboatError('TOOL_FAILED', `the postgres OS user cannot reach ${state}`, {
      hints: ['PostgreSQL runs archive_command as postgres: the project folder must be readable (and .lifeboat/ writable) by it', 'or pass --state-dir /tmp/lifeboat-dev'],
      cause: err,
    });
  }

  say(`starting the Temporal dev server (frontend 127.0.0.1:${temporalPort}, UI http://127.0.0.1:${uiPort})`);
  const temporal = await startTemporalDevServer({
    port: temporalPort,
    uiPort,
    dbFilename: path.join(state, 'temporal.db'),
    logFile: path.join(state, 'temporal.log'),
  });
  const address = temporal.address;

  const pg: SandboxPg = {
    dataDir: path.join(state, 'pg', 'data'),
    port: pgPort,
    socketDir: path.join(state, 'pg'),
    logFile: path.join(state, 'pg', 'postgres.log'),
    pgBin: '/usr/lib/postgresql/15/bin',
    osUser: 'postgres',
  };
  const repoUrl = `file://${path.join(state, 'repo')}`;
  const fresh = !existsSync(path.join(pg.dataDir, 'PG_VERSION'));
  let pgStarted = false;
  let workers: RunningWorkers | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      if (workers) await workers.shutdown().catch(() => undefined);
      if (pgStarted) await stopSandboxPrimary(pg);
      await temporal.stop();
    })());
  // Ctrl-C while starting up must not leave the dev server or the sandbox
  // primary running; once up, runUntilSignal takes the signals over.
  const onEarlySignal = () => {
    say('interrupted during start-up: stopping what was started');
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onEarlySignal);
  process.once('SIGTERM', onEarlySignal);
  try {
    if (fresh) say(`creating the sandbox primary in ${pg.dataDir}`);
    await initSandboxPrimary(pg, {
      archiveCommand: `${lifeboatCommand()} archive-push %p --repo ${repoUrl} --cluster demo`,
      conf: ['archive_timeout = 60'],
    });
    await startSandboxPrimary(pg);
    pgStarted = true;
    if (fresh) await seedDemo(pgPort);
    const runbookFile = path.join(state, 'runbooks', 'demo.yaml');
    writeFileSync(
      runbookFile,
      demoRunbookYaml({ pgPort, repoUrl, host: HOST, stateDir: state, restorePort: pgPort + 1, drillPort: pgPort + 2 }),
    );
    process.env.LIFEBOAT_RUNBOOKS_DIR = path.dirname(runbookFile);

    const { startWorkers } = await import('../../worker');
    workers = await startWorkers({ address, namespace: 'default', host: HOST });
    say(`worker polling ${TASK_QUEUE} and lifeboat-host-${HOST}`);

    const { Client, Connection } = await import('@temporalio/client');
    const client = new Client({ connection: await Connection.connect({ address }), namespace: 'default' });
    const { openRepository } = await import('../../repository');
    const repo = await openRepository(repoUrl);
    const hasBackup = (await repo.list('demo/base/')).some((o) => o.key.endsWith('/backup.json'));
    if (!hasBackup) {
      say('taking the first base backup (workflow baseBackup)...');
      const meta = await client.workflow.execute('baseBackup', {
        taskQueue: TASK_QUEUE,
        workflowId: `backup-demo-first`,
        args: [{ runbook: 'demo' }],
      });
      say(`base backup ${(meta as { backupId: string }).backupId} verified and stored`);
    }
    await client.connection.close();
    printWelcome({ uiPort, address, state, pgPort });
    process.off('SIGINT', onEarlySignal);
    process.off('SIGTERM', onEarlySignal);
    await workers.runUntilSignal();
    say('stopping');
    return 0;
  } finally {
    await stopAll();
  }
}

async function seedDemo(port: number): Promise<void> {
  const admin = new PgClient({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    // The sandbox's Lifeboat role: a superuser only because this is a toy on
    // loopback; production runbooks use a role with REPLICATION and pg_monitor.
    await admin.query(`create role lifeboat login superuser replication`);
    await admin.query(`create role app login`);
    await admin.query(`create database appdb owner app`);
  } finally {
    await admin.end();
  }
  const app = new PgClient({ host: '127.0.0.1', port, user: 'app', database: 'appdb' });
  await app.connect();
  try {
    await app.query(DEMO_SCHEMA_SQL);
    await app.query(DEMO_SEED_SQL);
  } finally {
    await app.end();
  }
}

function printWelcome(p: { uiPort: number; address: string; state: string; pgPort: number }): void {
  const cli = `node ${path.relative(process.cwd(), path.join(projectRoot(), 'bin', 'lifeboat')) || 'bin/lifeboat'}`;
  const env = `LIFEBOAT_RUNBOOKS_DIR=${path.join(p.state, 'runbooks')} TEMPORAL_ADDRESS=${p.address}`;
  process.stdout.write(`
Lifeboat sandbox is up.

  Temporal Web UI     http://127.0.0.1:${p.uiPort}   (workflows, task queue "lifeboat")
  Temporal frontend   ${p.address}
  Sandbox primary     postgresql://app@127.0.0.1:${p.pgPort}/appdb   (tables orders, system_gate, outbox)
  Repository          file://${path.join(p.state, 'repo')}   (cluster "demo")
  Runbook             ${path.join(p.state, 'runbooks', 'demo.yaml')}

Try, in another terminal:
  export ${env}
  ${cli} backups --runbook demo          # the catalog
  ${cli} check --runbook demo            # archiver health and WAL chain
  ${cli} backup --runbook demo           # another verified base backup, watch it in the UI
  ${cli} expire --runbook demo --dry-run # what retention would remove
  psql -h 127.0.0.1 -p ${p.pgPort} -U app appdb -c "select status, count(*) from orders group by 1"

Ctrl-C stops everything; the sandbox in ${p.state} is kept for next time.
`);
}
