// What the pgBackRest end-to-end and engine tests share (issue 18): a
// PostgreSQL 15 primary archiving into a pgBackRest stanza (./pgbackrest.ts:
// a posix repository; with `s3`, ./pgbackrest-s3.ts: S3 on a MinIO over TLS),
// a runbook on it with `engine: { kind: pgbackrest, stanza, configPath }` in
// runbook, state and repository directories of its own (Lifeboat's own
// repository holds only the audit log and the evidence), the engine, the
// `lifeboat` binary with that runbook directory (and a Temporal namespace of
// the test's own), the runbook's role with exactly what `lifeboat grants`
// prints, the demo orders, a segment moved aside in the posix repository
// (never deleted), a schedule triggered without the wall clock, and a copy
// restored by the engine started by hand. Everything started goes on the
// test's cleanups, stopped in reverse order.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client as TemporalClient, Connection, type WorkflowHandle } from '@temporalio/client';
import { Client } from 'pg';
import { DEMO_SCHEMA_SQL, DEMO_SEED_SQL, demoRunbookYaml } from '../../src/dev/demo-runbook';
import { PgBackRestEngine } from '../../src/engine/pgbackrest/engine';
import { grantsSql } from '../../src/privileges/grants';
import type { RecoveryStatus, StepId, StepRecord, Target } from '../../src/recovery/contract';
import { decideUpdate, statusQuery } from '../../src/recovery/messages';
import { loadRunbook } from '../../src/runbook/load';
import type { Runbook } from '../../src/runbook/schema';
import { requireTool } from '../../src/tools';
import { runCleanups, type Cleanups } from './cleanups';
import { cliRunner, startCliWorker, type CliResult, type CliWorker } from './cli';
import { queryAt, waitForStep } from './faults-cluster';
import type { TlsMinio } from './minio-tls';
import { startPgBackRestPrimary, type PgBackRestStanza } from './pgbackrest';
import { startPgBackRestS3Primary } from './pgbackrest-s3';
import { asPostgres, PG_BIN, postgresTempDir, type Primary } from './postgres';
import { freePort, waitFor } from './ports';
import { temporalAddress } from './services';

const exec = promisify(execFile);

export interface PgBackRestRunbookOptions {
  /** The runbook's name (and its file's, in runbooksDir). */
  name: string;
  /** The stanza's name (startPgBackRestPrimary's default otherwise). */
  stanza?: string;
  /** The stanza's repository on S3 in this MinIO over TLS instead of a posix directory. */
  s3?: TlsMinio;
  /** cluster.primary.user: postgres unless given (a role made by grantRunbookRole). */
  pgUser?: string;
  /** restore.host, drill.host and backup.host (the worker's queue): the runbook's name and the test's pid unless given. */
  host?: string;
  /** A Temporal namespace (createNamespace) for the `lifeboat` binary: TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE. */
  namespace?: string;
  /** More settings in the engine block, e.g. `delta: true`. */
  engine?: string;
  /** The primary's WAL segment size in MiB (initdb --wal-segsize) and first WAL segment (pg_resetwal -l); a posix stanza only. */
  wal?: { segSizeMb?: number; start?: string };
  /** Changes the runbook's YAML before the engine line is added. */
  edit?: (yaml: string) => string;
}

export interface PgBackRestRunbook {
  /** The stanza and its primary. */
  s: PgBackRestStanza;
  name: string;
  host: string;
  runbooksDir: string;
  stateDir: string;
  /** Lifeboat's own repository (file://): the audit log and the evidence. */
  repoDir: string;
  /** The runbook's YAML before its engine line (demoRunbookYaml, after `edit`). */
  yaml: string;
  /** `engine: { kind: pgbackrest, stanza, configPath }` and a newline: the runbook's last line. */
  engineLine: string;
  /** The runbook's file. */
  file: string;
  /** The engine on the stanza, as the worker opens it (pgBackRest as the postgres OS user). */
  engine: PgBackRestEngine;
  /** The runbook as Lifeboat loads it by name (LIFEBOAT_RUNBOOKS_DIR is runbooksDir from the start). */
  load(): Promise<Runbook>;
  /** Writes another runbook on the same stanza, with a state directory of its own; loads it. */
  another(opts: Omit<PgBackRestRunbookOptions, 'stanza' | 's3' | 'namespace'>): Promise<Runbook>;
  /** The environment of the `lifeboat` binary and its worker. */
  env(): NodeJS.ProcessEnv;
  /** The `lifeboat` binary with env(). */
  lifeboat(...args: string[]): Promise<CliResult>;
  /** `lifeboat worker --host <host>` with env(), stopped by the cleanups. */
  startWorker(): Promise<CliWorker>;
}

/** `engine: { kind: pgbackrest, stanza, configPath[, more] }` and a newline. */
export function pgBackRestEngineLine(s: Pick<PgBackRestStanza, 'stanza' | 'config'>, more?: string): string {
  return `engine: { kind: pgbackrest, stanza: ${s.stanza}, configPath: ${s.config}${more ? `, ${more}` : ''} }\n`;
}

/**
 * A pgBackRest stanza on a fresh primary and a runbook on it (see the
 * header). Sets process.env.LIFEBOAT_RUNBOOKS_DIR to the runbook directory,
 * for the activities and workers a test runs in its own process.
 */
export async function startPgBackRestRunbook(
  cleanups: Cleanups,
  opts: PgBackRestRunbookOptions,
): Promise<PgBackRestRunbook> {
  const runbooksDir = postgresTempDir('runbooks');
  cleanups.push(() => rmSync(runbooksDir, { recursive: true, force: true }));
  process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
  const s = opts.s3
    ? await startPgBackRestS3Primary(opts.s3, opts.stanza)
    : await startPgBackRestPrimary(opts.stanza, { walSegSizeMb: opts.wal?.segSizeMb, walStart: opts.wal?.start });
  cleanups.push(() => s.stop());
  const host = opts.host ?? `${opts.name}${process.pid}`;

  const write = async (o: Omit<PgBackRestRunbookOptions, 'stanza' | 's3' | 'namespace'>) => {
    const stateDir = postgresTempDir(`state-${o.name}`);
    const repoDir = postgresTempDir(`repo-${o.name}`);
    cleanups.push(() => {
      for (const d of [stateDir, repoDir]) rmSync(d, { recursive: true, force: true });
    });
    const demo = demoRunbookYaml({
      name: o.name,
      pgPort: s.primary.port,
      pgUser: o.pgUser ?? 'postgres',
      database: 'postgres',
      repoUrl: `file://${repoDir}`,
      host: o.host ?? host,
      stateDir,
      restorePort: await freePort(),
      drillPort: await freePort(),
    });
    const yaml = o.edit ? o.edit(demo) : demo;
    const engineLine = pgBackRestEngineLine(s, o.engine);
    const file = path.join(runbooksDir, `${o.name}.yaml`);
    writeFileSync(file, `${yaml}${engineLine}`);
    return { stateDir, repoDir, yaml, engineLine, file };
  };

  const own = await write(opts);
  const engine = new PgBackRestEngine(s.setting, { osUser: 'postgres' });
  const env = (): NodeJS.ProcessEnv => ({
    ...process.env,
    LIFEBOAT_RUNBOOKS_DIR: runbooksDir,
    ...(opts.namespace ? { TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: opts.namespace } : {}),
  });
  const load = async (name: string) => {
    const runbook = await loadRunbook(name);
    // A copy a case left running (paused after a refusal, promoted after a scenario).
    cleanups.push(() => stopCopy(runbook.restore.dataDir));
    return runbook;
  };
  return {
    s,
    name: opts.name,
    host,
    runbooksDir,
    ...own,
    engine,
    load: () => load(opts.name),
    another: async (o) => {
      await write(o);
      return load(o.name);
    },
    env,
    lifeboat: cliRunner(env),
    async startWorker() {
      const worker = await startCliWorker(host, env());
      cleanups.push(() => worker.stop());
      return worker;
    },
  };
}

/** A Temporal namespace of the test's own on the dev server, once usable, and a client in it. */
export async function createNamespace(
  cleanups: Cleanups,
  label: string,
): Promise<{ namespace: string; connection: Connection; client: TemporalClient }> {
  const namespace = `lifeboat-${label}-${process.pid}`;
  const address = temporalAddress();
  await exec(requireTool('temporal'), [
    'operator',
    'namespace',
    'create',
    '--address',
    address,
    '--namespace',
    namespace,
  ]);
  const connection = await Connection.connect({ address });
  cleanups.push(() => connection.close());
  // A new namespace reaches every part of the server after a moment.
  await waitFor(
    'the namespace to be usable',
    () =>
      connection.workflowService.describeNamespace({ namespace }).then(
        () => true,
        () => undefined,
      ),
    { timeoutMs: 60_000 },
  );
  return { namespace, connection, client: new TemporalClient({ connection, namespace }) };
}

/** A recoverToPointInTime run on the runbook, and its approvals. */
export interface RecoveryRun {
  wf: WorkflowHandle;
  /** Held until `step` is in `state` (a failed step ends the wait with its error). */
  waitStep(step: string, state: string): Promise<RecoveryStatus>;
  /** The decide update approving `step`, as `by`. */
  approve(step: StepId, by: string): Promise<void>;
}

/**
 * recoverToPointInTime on the dev Temporal server's default namespace, with
 * workers of this process on a task queue of the test's own (the runbook's
 * host queue is the host's: r.host).
 */
export async function startRecovery(
  cleanups: Cleanups,
  r: Pick<PgBackRestRunbook, 'name' | 'host'>,
  args: { target: Target; incident: string; reason: string },
): Promise<RecoveryRun> {
  // Loaded here: the engine tests that import this file need no Temporal worker.
  const { startWorkers } = await import('../../src/worker');
  const taskQueue = `${r.name}-${process.pid}`;
  const workers = await startWorkers({ address: temporalAddress(), namespace: 'default', host: r.host, taskQueue });
  cleanups.push(() => workers.shutdown());
  const connection = await Connection.connect({ address: temporalAddress() });
  cleanups.push(() => connection.close());
  const wf = await new TemporalClient({ connection }).workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `recover-${r.name}-${process.pid}`,
    args: [{ runbook: r.name, ...args }],
  });
  return {
    wf,
    waitStep: (step, state) => waitForStep(wf, step, state),
    approve: async (step, by) => {
      await wf.executeUpdate(decideUpdate, { args: [{ step, decision: 'approve', by }] });
    },
  };
}

/**
 * The runbook's role (cluster.primary.user) with exactly what `lifeboat
 * grants` prints, made as the superuser; refuses a role that is a superuser.
 * Before the backup: a restored copy has its backup's grants.
 */
export async function grantRunbookRole(primary: Primary, runbook: Runbook): Promise<void> {
  await primary.query(grantsSql(runbook));
  const role = runbook.cluster.primary.user;
  const [row] = await primary.query<{ superuser: boolean }>(
    'select rolsuper as superuser from pg_roles where rolname = $1',
    [role],
  );
  if (!row) throw new Error(`lifeboat grants made no role ${role}`);
  if (row.superuser) throw new Error(`role ${role} is a superuser: the test needs the grants alone`);
}

/** A row of the demo's orders as the recovery tests compare them, and the query that reads them all. */
export type Order = { id: number; customer: string; status: string };
export const ORDERS = 'select id, customer, status from orders order by id';

/** The demo's orders (DEMO_SCHEMA_SQL, DEMO_SEED_SQL) and `app`, the application's role: no superuser, every right on them. */
export async function seedOrders(primary: Primary): Promise<void> {
  await primary.query(DEMO_SCHEMA_SQL);
  await primary.query(DEMO_SEED_SQL);
  await primary.query(
    'create role app login; grant all on all tables in schema public to app; grant all on all sequences in schema public to app',
  );
}

/**
 * A session of `app` (seedOrders) on the primary, ended by the cleanups. The
 * fence ends it, which is no error here: its 'error' event is taken.
 */
export async function appSession(cleanups: Cleanups, primary: Primary): Promise<Client> {
  const app = new Client({ ...primary.connection, user: 'app' });
  app.on('error', () => undefined);
  await app.connect();
  cleanups.push(() => app.end().catch(() => undefined));
  return app;
}

/** A session on the runbook's restored copy (restore.address and port) as `user`, ended by the cleanups. */
export async function restoredSession(cleanups: Cleanups, runbook: Runbook, user: string): Promise<Client> {
  const c = new Client({ host: runbook.restore.address, port: runbook.restore.port, user, database: 'postgres' });
  await c.connect();
  cleanups.push(() => c.end().catch(() => undefined));
  return c;
}

/** The rows `sql` reads on the runbook's restored copy as `user` (a session of its own, ended before returning). */
export async function rowsOnCopy<T extends Record<string, unknown>>(
  runbook: Runbook,
  sql: string,
  user: string,
): Promise<T[]> {
  const session: Cleanups = [];
  try {
    const c = await restoredSession(session, runbook, user);
    return (await c.query<T>(sql)).rows;
  } finally {
    await runCleanups(session);
  }
}

/** How many times replay-wal ran (a retarget to an earlier point runs it again). */
export const replayRuns = (st: RecoveryStatus) => st.steps.find((x) => x.id === 'replay-wal')?.runs ?? 0;

/**
 * Held until approve-promote is asked again after replay-wal ran more than
 * `before` times (the pause reached after a retarget, not the one before); a
 * failed step ends the wait with its error.
 */
export async function pausedAgain(run: RecoveryRun, before: number): Promise<RecoveryStatus> {
  const st = await waitFor(
    'the retargeted copy to pause again',
    async (): Promise<{ failed: StepRecord } | { s: RecoveryStatus } | undefined> => {
      const s = await run.wf.query(statusQuery);
      const failed = s.steps.find((x) => x.state === 'failed');
      if (failed) return { failed };
      const promote = s.steps.find((x) => x.id === 'approve-promote')?.state;
      return replayRuns(s) > before && promote === 'awaiting-approval' ? { s } : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 250 },
  );
  if ('failed' in st)
    throw new Error(`${st.failed.id} failed after the retarget: ${st.failed.error?.type} ${st.failed.error?.message}`);
  return st.s;
}

/** A segment's file moved out of the posix repository's archive, into `<root>/<aside>`; back() puts it where it was. */
export interface SegmentAside {
  /** The file's name in the repository (`<segment>-<checksum>.<ext>`). */
  stored: string;
  /** The directory it was in. */
  dir: string;
  /** Where it is now. */
  aside: string;
  back(): void;
}

export function moveSegmentAside(s: PgBackRestStanza, segment: string, aside = 'aside'): SegmentAside {
  const dir = path.join(s.repoPath, 'archive', s.stanza, '15-1', segment.slice(0, 16));
  const found = readdirSync(dir).filter((f) => f.startsWith(`${segment}-`));
  if (found.length !== 1) throw new Error(`${dir} holds ${found.length} files of segment ${segment}, not one`);
  const stored = found[0]!;
  const asideDir = path.join(s.root, aside);
  mkdirSync(asideDir, { recursive: true });
  renameSync(path.join(dir, stored), path.join(asideDir, stored));
  return {
    stored,
    dir,
    aside: path.join(asideDir, stored),
    back: () => renameSync(path.join(asideDir, stored), path.join(dir, stored)),
  };
}

/**
 * `lifeboat schedules trigger <runbook> <kind>` on a schedule that exists,
 * held until the schedule has started the run (its action count rose, not a
 * time); the started workflow's id.
 */
export async function triggerSchedule(
  client: TemporalClient,
  lifeboat: (...args: string[]) => Promise<CliResult>,
  schedule: { id: string; runbook: string; kind: string },
): Promise<string> {
  const handle = client.schedule.getHandle(schedule.id);
  const before = (await handle.describe()).info.numActionsTaken;
  const r = await lifeboat('schedules', 'trigger', schedule.runbook, schedule.kind);
  if (r.code !== 0) throw new Error(`lifeboat schedules trigger exited ${r.code}: ${r.stderr}`);
  const d = await waitFor(
    `${schedule.id} to start a run`,
    async () => {
      const x = await handle.describe();
      return x.info.numActionsTaken > before ? x : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return d.info.recentActions[d.info.recentActions.length - 1]!.action.workflow.workflowId;
}

/** A copy the engine restored into `dataDir`, started by hand (pg_ctl as postgres); queries as the superuser. */
export interface StartedCopy {
  query<T extends Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Held until replay paused at the target (pg_is_wal_replay_paused), not for a time. */
  paused(): Promise<void>;
  stop(): Promise<void>;
}

export async function startCopy(
  cleanups: Cleanups,
  dataDir: string,
  port: number,
  logFile: string,
): Promise<StartedCopy> {
  cleanups.push(() => stopCopy(dataDir));
  await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-w', '-t', '120', 'start']);
  const query = <T extends Record<string, unknown>>(sql: string) =>
    queryAt<T>({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' }, sql);
  return {
    query,
    paused: async () => {
      await waitFor(
        'replay to pause at the target',
        async () => ((await query<{ p: boolean }>('select pg_is_wal_replay_paused() as p'))[0]!.p ? true : undefined),
        { timeoutMs: 120_000, intervalMs: 200 },
      );
    },
    stop: () => asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, 'stop', '-m', 'fast', '-w']).then(() => undefined),
  };
}

/** Stops a postmaster still running in `dataDir` (immediate); nothing when none is. */
export async function stopCopy(dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, 'postmaster.pid')))
    await asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, 'stop', '-m', 'immediate', '-w']).catch(() => undefined);
}
