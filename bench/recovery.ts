// `npm run bench` (after the archive bench), or `npm run bench:recovery`:
// Lifeboat's restore to a paused copy beside pgBackRest's and the local-copy
// limit, on the same data from the same moment, written into the "Recovery"
// section of BENCHMARKS.md (between the recovery-bench markers).
//
// One dataset: a PostgreSQL 15 primary with pgbench data, whose
// archive_command pushes every segment to Lifeboat's file:// repository and
// then to a pgBackRest stanza (`lifeboat archive-push ... && pgbackrest
// archive-push %p`), so both hold the same WAL; Lifeboat's base backup, then
// pgBackRest's full backup right after it, then the WAL load; at the end a
// restore point (the target) with the rows it must show, and a little more
// load. Lifeboat's repository is copied object by object into a MinIO of its
// own, so s3:// restores the same bytes. Each round (interleaved) restores to
// the restore point and waits for the pause:
//   - the local-copy limit: `cp -a` of a ready data directory (the backup
//     restored once, untimed, by Lifeboat's own restore) and replay with
//     `restore_command = cp` from plain segments on local disk;
//   - pgBackRest: `pgbackrest restore --type=name --target-action=pause` and
//     the restore_command it writes (asynchronous archive-get);
//   - Lifeboat: recoverToPointInTime from file:// and from s3://, every
//     approval given as soon as asked, up to the paused copy (approve-promote);
//     the last round promotes, for the RTO and the steps;
//   - Lifeboat on the pgBackRest engine (engine: pgbackrest, the same stanza):
//     recoverToPointInTime restoring pgBackRest's full backup through
//     pgbackrest restore, replaying through its restore_command; last in each
//     round, since its promotion archives a new timeline into the stanza;
//   - Lifeboat, warm standby: the same recovery of a third runbook whose
//     standby (bench/warm.ts) holds the whole load back, in a copy of the
//     file:// repository; it is taken over and replays the load (a new
//     standby is built, untimed, before each round's row).
// Every copy is checked to hold exactly the rows at the target. Environment:
//   BENCH_SCALE   pgbench scale (default 50: a base backup of about 790 MiB); another
//                 scale writes its own section ("Recovery at pgbench scale N")
//   BENCH_WAL_MB  MiB of WAL to generate after the backup (default 1024)
//   BENCH_ROUNDS  interleaved rounds (default 3); the table shows medians
//   BENCH_TARGET  `name` (default: the restore point) or `time` (the moment it
//                 was made, read just before it with nothing writing: the same rows)
//   BENCH_ONLY    `recovery` runs only this bench; any other value skips it
//   BENCH_WARM_DELAY  the standby's delay (default 6h: longer than the bench)
//   BENCH_ROWS    rows to run, comma-separated (default all: limit, pgbackrest,
//                 file, file-enc, s3, s3-enc, two, near, warm, engine); e.g. a quick
//                 check of the encryption and two-repository rows:
//                 BENCH_ROWS=file,file-enc,s3,s3-enc,two BENCH_SCALE=2
//                 BENCH_WAL_MB=48 BENCH_ROUNDS=1 BENCH_DRY=1
//   BENCH_DRY=1   a trial run: BENCHMARKS.md is left alone (the tables are on stdout)
// The file-enc and s3-enc rows restore the same objects sealed with
// client-side encryption (repository.encryption; copied through
// src/repository/encrypted.ts into repositories of their own); the two row
// restores with `repositories:` file:// first and s3:// second (policy all,
// each its own copy), as a recovery does: from the first, restore_command
// with the second as its --fallback-repo.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { restoreBaseBackup } from '../activities/restore';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import { startTemporalDevServer } from '../src/dev/temporal-server';
import type { Evidence, RecoveryStatus, StepId, Target } from '../src/recovery/contract';
import { decideUpdate, statusQuery } from '../src/recovery/messages';
import { openRepository } from '../src/repository';
import { keys, walFileOfKey } from '../src/repository/layout';
import type { Repository } from '../src/repository/types';
import { writeRecoveryConf, writeSignalFile } from '../src/restore/recovery-conf';
import { lifeboatCommand } from '../src/tools';
import { decodeWal } from '../src/wal/compress';
import { parseLsn, walFileKind } from '../src/wal/names';
import { startWorkers } from '../src/worker';
import { PG_BIN, startPrimary } from '../src/dev/scratch-primary';
import { freePort, waitFor } from '../src/dev/ports';
import {
  asPostgres,
  FINGERPRINT_SQL,
  makeDataset,
  MiB,
  pgDir,
  row,
  secondsSince,
  span,
  startMinio,
  stopPostgres,
  writeBenchRunbook,
  writeBenchSection,
  type Dataset,
} from './common';
import { CpuMeter, enableDelayAccounting, pidsWithCmdline, startupProcessTimes } from './cpu';
import {
  pgBackRestConfigPath,
  pgBackRestRestore,
  pgBackRestVersion,
  setUpPgBackRest,
  STANZA,
  type PgBackRest,
} from './pgbackrest';
import { median, restoreCalls } from './restore-log';
import {
  addStandby,
  ensureStandby,
  NEAR_HOLD_SECONDS,
  nearDelay,
  setStandbyDelay,
  WARM_DELAY,
  WARM_RUNBOOK,
} from './warm';

const SCALE = Math.max(1, Number(process.env.BENCH_SCALE ?? 50));
const WAL_MB = Math.max(16, Number(process.env.BENCH_WAL_MB ?? 1024));
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
const BY_TIME = process.env.BENCH_TARGET === 'time';
/** The target every row restores to. */
const targetOf = (ds: Dataset): Extract<Target, { time: string } | { name: string }> =>
  BY_TIME ? { time: ds.target } : { name: ds.targetName };
const SKIP = process.env.BENCH_ONLY !== undefined && process.env.BENCH_ONLY !== 'recovery';
/** Both runbooks name this cluster, so the file:// and s3:// repositories hold the same keys. */
const CLUSTER = 'bench';
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) => process.stderr.write(`[recovery bench] ${line}\n`);

/** One restore to the paused copy. */
interface Run {
  files: number;
  replay: number;
  total: number;
  cpu: number;
  /** restore_command calls that served a file, and those that found none (ms each, from the copy's log). */
  served: number[];
  missed: number[];
  /** The copy's startup process at the pause (cpu.ts startupProcessTimes): s on a CPU, s waiting for one, s waiting for disk. */
  startup?: { cpu: number; runqueue: number; io: number };
  /** CPU-s by kind of process (CpuMeter.breakdown), the largest first. */
  cpuBy?: Array<[string, number]>;
  /** The near row: MiB replayed (from redo's start to the pause), and from the standby's position to the pause. */
  replayedMiB?: number;
  behindMiB?: number;
}

const ALL_ROWS = ['limit', 'pgbackrest', 'file', 'file-enc', 's3', 's3-enc', 'two', 'near', 'warm', 'engine'] as const;
type RowId = (typeof ALL_ROWS)[number];
type LifeboatKind = 'file' | 'file-enc' | 's3' | 's3-enc' | 'two' | 'warm' | 'engine';
const LIFEBOAT_KINDS: readonly LifeboatKind[] = ['file', 'file-enc', 's3', 's3-enc', 'two', 'warm', 'engine'];
/** BENCH_ROWS, in the order of ALL_ROWS (rows of one round take turns in that order). */
const ROWS: readonly RowId[] = (() => {
  const asked = process.env.BENCH_ROWS?.split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (!asked) return ALL_ROWS;
  const unknown = asked.filter((x) => !(ALL_ROWS as readonly string[]).includes(x));
  if (unknown.length > 0)
    throw new Error(`BENCH_ROWS: unknown row ${unknown.join(', ')} (rows: ${ALL_ROWS.join(', ')})`);
  return ALL_ROWS.filter((x) => asked.includes(x));
})();
/** The variable holding the encrypted rows' key (a fresh one per run, in this process's environment). */
const KEY_ENV = 'LIFEBOAT_BENCH_REPO_KEY';

/** Copies every object of the cluster, with its recorded sha256 and restore point count, from one repository to another. */
async function copyCluster(from: Repository, to: Repository): Promise<number> {
  const objects = await from.list(keys.clusterPrefix(CLUSTER));
  for (const o of objects) {
    const got = await from.getStream(o.key);
    if (!got?.info.sha256) throw new Error(`cannot copy ${o.key}: missing, or no recorded sha256`);
    const { restorePoints } = got.info;
    await to.put(o.key, got.stream, {
      sha256: got.info.sha256,
      ifAbsent: true,
      ...(restorePoints !== undefined ? { restorePoints } : {}),
    });
  }
  return objects.length;
}

/** Queries the paused copy on `port`: it must be paused and hold exactly the rows at the target. */
async function checkCopy(label: string, port: number, ds: Dataset): Promise<void> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await c.connect();
  try {
    const state = (await c.query<{ s: string }>('select pg_get_wal_replay_pause_state() as s')).rows[0]!.s;
    const got = (await c.query<Record<string, string>>(FINGERPRINT_SQL)).rows[0]!;
    if (state !== 'paused' || JSON.stringify(got) !== JSON.stringify(ds.fingerprint)) {
      throw new Error(
        `${label}: the copy is ${state} with ${JSON.stringify(got)}; at the target the primary had ${JSON.stringify(ds.fingerprint)}`,
      );
    }
  } finally {
    await c.end();
  }
}

/** Waits until the copy on `port` says replay is paused (checked every 50 ms). */
async function waitPaused(label: string, port: number, dataDir: string, logFile: string): Promise<void> {
  const t = process.hrtime.bigint();
  await waitFor(
    `the ${label} copy to pause at the target`,
    async () => {
      if (secondsSince(t) > 10 && !existsSync(path.join(dataDir, 'postmaster.pid'))) {
        throw new Error(
          `the ${label} copy stopped; its log ${logFile} ends:\n${readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n')}`,
        );
      }
      const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      c.on('error', () => undefined);
      try {
        await c.connect();
        return (await c.query<{ s: string }>(`select pg_get_wal_replay_pause_state() as s`)).rows[0]!.s === 'paused'
          ? true
          : undefined;
      } finally {
        await c.end().catch(() => undefined);
      }
    },
    { timeoutMs: 3_600_000, intervalMs: 50 },
  );
}

interface Bench {
  work: string;
  sockets: string;
  ds: Dataset;
  meter: () => CpuMeter;
  ready: string;
  walDir: string;
  pgbr: PgBackRest;
  client: TemporalClient;
  taskQueue: string;
  kinds: Record<LifeboatKind, { runbook: string; restoreDir: string; restorePort: number }>;
}

/** Starts a copy prepared in `dataDir`, waits for the pause, checks it, reads its log, stops it and removes it. */
async function replayPrepared(
  b: Bench,
  label: string,
  dataDir: string,
  port: number,
  logFile: string,
  t0: bigint,
  meter: CpuMeter,
  files: number,
): Promise<Run> {
  asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-W', 'start']);
  try {
    await waitPaused(label, port, dataDir, logFile);
    const total = secondsSince(t0);
    const cpu = meter.stop();
    await checkCopy(label, port, b.ds);
    const calls = restoreCalls(logFile);
    return { files, replay: total - files, total, cpu, ...calls };
  } finally {
    await stopPostgres(dataDir);
    // Made by this round: provably ours.
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function limitRun(b: Bench, round: number): Promise<Run> {
  const dataDir = path.join(b.work, 'runs', `limit-${round}`);
  const port = await freePort();
  const meter = b.meter();
  meter.start();
  const t0 = process.hrtime.bigint();
  const files = asPostgres('cp', ['-a', b.ready, dataDir]);
  // The settings Lifeboat's replay-wal writes, but for restore_command.
  await writeRecoveryConf(
    dataDir,
    {
      port,
      listenAddress: '127.0.0.1',
      socketDir: b.sockets,
      restoreCommand: `cp ${b.walDir}/%f %p`,
      target: targetOf(b.ds),
      workflowId: 'the recovery bench (limit)',
    },
    'postgres',
  );
  await writeSignalFile(dataDir, 'recovery', 'postgres');
  return replayPrepared(b, 'limit', dataDir, port, path.join(b.work, 'runs', `limit-${round}.log`), t0, meter, files);
}

async function pgBackRestRun(b: Bench, round: number): Promise<Run> {
  const dataDir = path.join(b.work, 'runs', `pgbackrest-${round}`);
  const port = await freePort();
  const meter = b.meter();
  meter.start();
  const t0 = process.hrtime.bigint();
  const files = pgBackRestRestore(b.pgbr, dataDir, targetOf(b.ds), [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${b.sockets}'`,
  ]);
  return replayPrepared(
    b,
    'pgBackRest',
    dataDir,
    port,
    path.join(b.work, 'runs', `pgbackrest-${round}.log`),
    t0,
    meter,
    files,
  );
}

/**
 * recoverToPointInTime to the restore point, each approval given as soon as
 * it is asked for, up to the paused copy (approve-promote asked). Then it
 * promotes (`promote`: the evidence is returned) or is terminated and its
 * copy stopped and removed, so that the next round restores afresh.
 */
async function lifeboatRun(
  b: Bench,
  id: LifeboatKind | 'near',
  promote: boolean,
): Promise<Run & { evidence?: Evidence }> {
  // The near row is the warm runbook with a standby built closer to the target.
  const kind: LifeboatKind = id === 'near' ? 'warm' : id;
  const k = b.kinds[kind];
  const meter = b.meter();
  meter.start();
  const wf = await b.client.workflow.start('recoverToPointInTime', {
    taskQueue: b.taskQueue,
    workflowId: `bench-${k.runbook}-${Date.now().toString(36)}`,
    args: [{ runbook: k.runbook, target: targetOf(b.ds), incident: 'BENCH', reason: 'recovery benchmark' }],
  });
  const approved = new Set<StepId>();
  let st: RecoveryStatus | undefined;
  let cpu = 0;
  let startup: Run['startup'];
  let cpuBy: Array<[string, number]> = [];
  for (;;) {
    st = await wf.query(statusQuery).catch(() => undefined);
    const failed = st?.steps.find((s) => s.state === 'failed');
    if (failed) {
      meter.stop();
      await wf.terminate('recovery bench: a step failed').catch(() => undefined);
      throw new Error(
        `${k.runbook}: ${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`,
      );
    }
    const p = st?.pending;
    if (p?.kind === 'approval' && p.step === 'approve-promote') {
      cpu = meter.stop();
      startup = startupProcessTimes(k.restoreDir);
      cpuBy = meter.breakdown();
      break;
    }
    if (p?.kind === 'approval' && !approved.has(p.step)) {
      approved.add(p.step);
      await wf.executeUpdate(decideUpdate, { args: [{ step: p.step, decision: 'approve', by: 'bench' }] });
    }
    await sleep(50);
  }
  const step = (id: string) => st!.steps.find((s) => s.id === id);
  const files = span(step('restore-base-backup')?.startedAt, step('restore-base-backup')?.finishedAt) ?? NaN;
  const replay = span(step('replay-wal')?.startedAt, step('replay-wal')?.finishedAt) ?? NaN;
  const total = span(st!.startedAt, step('replay-wal')?.finishedAt) ?? NaN;
  await checkCopy(`Lifeboat ${kind}`, k.restorePort, b.ds);
  const marker = JSON.parse(readFileSync(path.join(k.restoreDir, '.lifeboat-restore.json'), 'utf8')) as {
    logFile: string;
    result?: { standby?: unknown };
  };
  const source = step('restore-base-backup')?.summary ?? '';
  if (kind === 'warm' && (!source.startsWith('standby: ') || !marker.result?.standby)) {
    await wf.terminate('recovery bench: the standby was not used').catch(() => undefined);
    throw new Error(
      `${k.runbook}: restore-base-backup restored a backup instead of taking the standby over (${source}); the warm row measures nothing`,
    );
  }
  const calls = restoreCalls(marker.logFile);
  const run: Run = { files, replay, total, cpu, ...calls, ...(startup ? { startup } : {}), cpuBy };
  // What the take-over copy really replayed: from where its start began redo
  // (the standby's last restartpoint, at a checkpoint of the primary, which
  // may be well before the standby's position) to the pause.
  const redo = [...readFileSync(marker.logFile, 'utf8').matchAll(/redo starts at ([0-9A-F]+\/[0-9A-F]+)/g)].at(-1)?.[1];
  const from = (marker.result?.standby as { replayLsn?: string } | undefined)?.replayLsn;
  if (id === 'near' && redo && from && st!.replay?.lsn) {
    run.replayedMiB = Number(parseLsn(st!.replay.lsn) - parseLsn(redo)) / MiB;
    run.behindMiB = Number(parseLsn(st!.replay.lsn) - parseLsn(from)) / MiB;
  }
  if (promote) {
    let settled = false;
    const result = wf.result().finally(() => (settled = true));
    result.catch(() => undefined); // awaited below
    await wf.executeUpdate(decideUpdate, { args: [{ step: 'approve-promote', decision: 'approve', by: 'bench' }] });
    approved.add('approve-promote');
    while (!settled) {
      const s = await wf.query(statusQuery).catch(() => undefined);
      const failed = s?.steps.find((x) => x.state === 'failed');
      if (failed)
        throw new Error(
          `${k.runbook}: ${failed.id} failed after the pause: ${failed.error?.type} ${failed.error?.message}`,
        );
      if (s?.pending?.kind === 'approval' && !approved.has(s.pending.step)) {
        approved.add(s.pending.step);
        await wf.executeUpdate(decideUpdate, { args: [{ step: s.pending.step, decision: 'approve', by: 'bench' }] });
      }
      await sleep(100);
    }
    const evidence = (await result) as Evidence;
    await stopPostgres(k.restoreDir);
    if (kind === 'warm' && evidence.restoreSource?.kind !== 'standby')
      throw new Error(
        `${k.runbook}: the evidence says the copy came from ${JSON.stringify(evidence.restoreSource)}, not the standby`,
      );
    return { ...run, evidence };
  }
  await wf.terminate('recovery bench: measured up to the paused copy');
  await clearRestoreSite(k.restoreDir);
  return run;
}

/** Stops and removes a Lifeboat restore directory and what Lifeboat put beside it (moved-aside copies, claim, log): all inside the bench's state directory. */
async function clearRestoreSite(dataDir: string): Promise<void> {
  const parent = path.dirname(dataDir);
  for (const n of readdirSync(parent).filter(
    (x) => x === path.basename(dataDir) || x.startsWith(`${path.basename(dataDir)}.`),
  )) {
    const p = path.join(parent, n);
    if (existsSync(path.join(p, 'postmaster.pid'))) await stopPostgres(p);
    rmSync(p, { recursive: true, force: true });
  }
}

/**
 * The limit's inputs, untimed: the backup restored once by Lifeboat's own
 * restore (whatever the stored format, verified as it always is) and moved
 * to a ready directory, and every archived segment decoded and checked into a
 * directory of plain files.
 */
async function prepareLimit(
  work: string,
  fileRepo: Repository,
  ds: Dataset,
  restoreDir: string,
): Promise<{ ready: string; walDir: string; prepSeconds: number }> {
  const t = process.hrtime.bigint();
  const local = pgDir(path.join(work, 'limit'));
  await new MockActivityEnvironment().run(restoreBaseBackup, {
    runbook: 'bench-file',
    backupId: ds.meta.backupId,
    mode: 'side-by-side' as const,
    workflowId: 'bench-limit-prep',
    runId: 'bench-limit-prep',
  });
  const ready = path.join(local, 'ready');
  renameSync(restoreDir, ready);
  rmSync(path.join(ready, '.lifeboat-restore.json'), { force: true });
  await clearRestoreSite(restoreDir);
  const walDir = pgDir(path.join(local, 'wal'));
  for (const o of await fileRepo.list(keys.walPrefix(CLUSTER))) {
    const name = walFileOfKey(CLUSTER, o.key);
    if (!name || walFileKind(name) !== 'segment' || name < ds.meta.startWal) continue;
    const plain = await decodeWal(name, (await fileRepo.get(o.key))!.body);
    if (createHash('sha256').update(plain).digest('hex') !== o.sha256)
      throw new Error(`${o.key} does not match its sha256`);
    writeFileSync(path.join(walDir, name), plain);
  }
  execFileSync('chown', ['-R', 'postgres:postgres', walDir]);
  return { ready, walDir, prepSeconds: secondsSince(t) };
}

function medianRun(runs: Run[]): Run {
  const m = (f: (r: Run) => number) => median(runs.map(f))!;
  return {
    files: m((r) => r.files),
    replay: m((r) => r.replay),
    total: m((r) => r.total),
    cpu: m((r) => r.cpu),
    served: runs.flatMap((r) => r.served),
    missed: runs.flatMap((r) => r.missed),
  };
}

async function main(): Promise<void> {
  if (SKIP) {
    progress(`skipped (BENCH_ONLY=${process.env.BENCH_ONLY})`);
    return;
  }
  const started = process.hrtime.bigint();
  const work = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-recovery-'));
  chownToOsUser(work, 'postgres');
  const cleanups: Array<() => Promise<unknown>> = [];
  const restored: string[] = [];
  let written = false;
  try {
    const minio = await startMinio(work, 'bench');
    cleanups.push(minio.stop);
    // The worker in this process reads the runbooks and the S3 settings from its environment.
    Object.assign(process.env, minio.env);
    process.env.LIFEBOAT_LOG_LEVEL ??= 'WARN';
    const runbooksDir = pgDir(path.join(work, 'runbooks'));
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const fileUrl = `file://${pgDir(path.join(work, 'repo'))}`;
    const s3Url = 's3://bench/recovery';
    // The warm row's own copy: the file row's last round promotes a timeline 2 into the file:// repository.
    const warmUrl = `file://${pgDir(path.join(work, 'repo-warm'))}`;
    // The encrypted rows' and the two-repository row's own copies of the same objects.
    process.env[KEY_ENV] = randomBytes(32).toString('base64');
    const encryption = { keyId: 'bench', keyEnv: KEY_ENV };
    const encYaml = `encryption: { keyId: ${encryption.keyId}, keyEnv: ${KEY_ENV} }`;
    const fileEncUrl = `file://${pgDir(path.join(work, 'repo-enc'))}`;
    const s3EncUrl = 's3://bench/recovery-enc';
    const twoFileUrl = `file://${pgDir(path.join(work, 'repo-two'))}`;
    const twoS3Url = 's3://bench/recovery-two';
    // The engine row's backups and WAL are the stanza's; this repository only receives its evidence.
    const engineUrl = `file://${pgDir(path.join(work, 'repo-engine'))}`;
    const repositoriesYaml: Partial<Record<LifeboatKind, string>> = {
      'file-enc': `repository: { url: "${fileEncUrl}", ${encYaml} }`,
      's3-enc': `repository: { url: "${s3EncUrl}", endpointEnv: S3_ENDPOINT, ${encYaml} }`,
      two: `repositories:\n  - { name: local, url: "${twoFileUrl}" }\n  - { name: minio, url: "${twoS3Url}", endpointEnv: S3_ENDPOINT }\nrepositoryPolicy: all`,
    };
    pgDir(path.join(work, 'runs'));
    const sockets = pgDir(path.join(work, 'sock'));
    // Both archivers in one archive_command: the same segments reach both repositories.
    // debug3: restore_command's "executing restore command" line (restore-log.ts), inherited by every restored copy.
    const pg = await startPrimary({
      archive: { repo: fileUrl, cluster: CLUSTER },
      conf: [
        'max_wal_size = 1GB',
        'checkpoint_timeout = 5min',
        `archive_command = '${lifeboatCommand()} archive-push %p --repo ${fileUrl} --cluster ${CLUSTER} && pgbackrest --config=${pgBackRestConfigPath(work)} --stanza=${STANZA} archive-push %p'`,
        `log_line_prefix = '%m [%p] '`,
        'log_min_messages = debug3',
      ],
    });
    cleanups.push(() => pg.stop());
    const pgbr = setUpPgBackRest(work, { dataDir: pg.dataDir, port: pg.port, socketDir: pg.root });
    pgbr.run(['stanza-create']);
    const host = `bench${process.pid}`;
    const kinds = {} as Bench['kinds'];
    const kindRepos: Array<readonly [LifeboatKind, string, string | undefined]> = [
      ['file', fileUrl, undefined],
      ['file-enc', fileEncUrl, undefined],
      ['s3', s3Url, 'S3_ENDPOINT'],
      ['s3-enc', s3EncUrl, 'S3_ENDPOINT'],
      ['two', twoFileUrl, undefined],
      ['warm', warmUrl, undefined],
      ['engine', engineUrl, undefined],
    ];
    for (const [kind, url, endpointEnv] of kindRepos) {
      const stateDir = pgDir(path.join(work, `state-${kind}`));
      const restorePort = await freePort();
      kinds[kind] = { runbook: `bench-${kind}`, restoreDir: path.join(stateDir, 'recovery'), restorePort };
      restored.push(kinds[kind].restoreDir);
      writeBenchRunbook(
        runbooksDir,
        CLUSTER,
        {
          name: `bench-${kind}`,
          pgPort: pg.port,
          pgUser: 'postgres',
          database: 'postgres',
          repoUrl: url,
          ...(endpointEnv ? { endpointEnv } : {}),
          host,
          stateDir,
          restorePort,
          drillPort: await freePort(),
        },
        repositoriesYaml[kind],
      );
      if (kind === 'warm') restored.push(addStandby(runbooksDir, { host, stateDir, port: await freePort() }));
      if (kind === 'engine')
        appendFileSync(
          path.join(runbooksDir, 'bench-engine.yaml'),
          `engine: { kind: pgbackrest, stanza: ${STANZA}, configPath: ${pgBackRestConfigPath(work)} }\n`,
        );
    }

    const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    const loadAtStart = os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    let pgbrBackupSeconds = 0;
    const standbyBuilds: number[] = [];
    const ds = await makeDataset(pg, work, 'bench-file', {
      scale: SCALE,
      walMb: WAL_MB,
      cluster: CLUSTER,
      progress,
      afterBackup: () => {
        pgbrBackupSeconds = pgbr.run(['--type=full', 'backup']);
        progress(`pgBackRest full backup: ${pgbrBackupSeconds.toFixed(1)} s`);
      },
    });
    const fileRepo = await openRepository(fileUrl);
    const s3Repo = await openRepository(s3Url, { endpointEnv: 'S3_ENDPOINT' });
    const copied = await copyCluster(fileRepo, s3Repo);
    await copyCluster(fileRepo, await openRepository(warmUrl));
    // Sealed as archive-push and the base backup would have sealed them: the same compressed bytes, the same recorded sha256.
    await copyCluster(fileRepo, await openRepository(fileEncUrl, { encryption }));
    await copyCluster(fileRepo, await openRepository(s3EncUrl, { endpointEnv: 'S3_ENDPOINT', encryption }));
    await copyCluster(fileRepo, await openRepository(twoFileUrl));
    await copyCluster(fileRepo, await openRepository(twoS3Url, { endpointEnv: 'S3_ENDPOINT' }));
    progress(
      `dataset ready: target ${ds.targetName} (${ds.target}), ${copied} objects copied into MinIO, the warm row's, the encrypted rows' and the two-repository row's repositories; preparing the limit`,
    );

    if (!enableDelayAccounting())
      progress("kernel.task_delayacct is off (not root?): the startup process's disk wait reads 0");
    const temporal = await startTemporalDevServer({ port: await freePort(), logFile: path.join(work, 'temporal.log') });
    cleanups.push(temporal.stop);
    const taskQueue = `bench-recovery-${process.pid}`;
    const workers = await startWorkers({ address: temporal.address, namespace: 'default', host, taskQueue });
    cleanups.push(workers.shutdown);
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });

    const prep = ROWS.includes('limit')
      ? await prepareLimit(work, fileRepo, ds, kinds.file.restoreDir)
      : { ready: '', walDir: '', prepSeconds: 0 };
    const primaryPid = Number(readFileSync(path.join(pg.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const services = [minio.pid, ...pidsWithCmdline(`--port ${temporal.address.split(':')[1]}`)];
    const b: Bench = {
      work,
      sockets,
      ds,
      meter: () => new CpuMeter(work, services, [primaryPid]),
      ready: prep.ready,
      walDir: prep.walDir,
      pgbr,
      client,
      taskQueue,
      kinds,
    };

    const runs = Object.fromEntries(ALL_ROWS.map((id) => [id, [] as Run[]])) as Record<RowId, Run[]>;
    const nearDelays: string[] = [];
    const evidence: Partial<Record<LifeboatKind, Evidence>> = {};
    let standbyBefore = '';
    for (let round = 1; round <= ROUNDS; round++) {
      const last = round === ROUNDS;
      for (const id of ROWS) {
        progress(`round ${round}/${ROUNDS}: ${id}`);
        if (id === 'limit') runs.limit.push(await limitRun(b, round));
        else if (id === 'pgbackrest') runs.pgbackrest.push(await pgBackRestRun(b, round));
        else {
          if (id === 'warm' || id === 'near') {
            // Untimed: the standby the last row took over is gone; build the
            // next one, for the near row with a delay that puts it just
            // before the target.
            const delay = id === 'near' ? nearDelay(ds.target) : WARM_DELAY;
            if (id === 'near') nearDelays.push(delay);
            setStandbyDelay(runbooksDir, delay);
            const s = await ensureStandby(progress);
            if (s.action === 'built') standbyBuilds.push(s.seconds);
            standbyBefore = s.line;
          }
          // The near row never promotes: its copy is measured to the pause.
          const r = await lifeboatRun(b, id, last && id !== 'near');
          if (r.evidence && id !== 'near') evidence[id] = r.evidence;
          runs[id].push(r);
        }
        const r = runs[id].at(-1)!;
        progress(
          `  files ${r.files.toFixed(1)} s, replay ${r.replay.toFixed(1)} s, total ${r.total.toFixed(1)} s, ${r.cpu.toFixed(1)} CPU-s, restore_command median ${median(r.served)?.toFixed(0) ?? '—'} ms, sum ${(r.served.reduce((a, x) => a + x, 0) / 1000).toFixed(1)} s, max ${Math.max(0, ...r.served)} ms${r.startup ? `; startup process ${r.startup.cpu.toFixed(1)} s on CPU, ${r.startup.runqueue.toFixed(1)} s waiting for one, ${r.startup.io.toFixed(1)} s for disk` : ''}`,
        );
        if (r.cpuBy?.length)
          progress(
            `  CPU-s by process: ${r.cpuBy
              .slice(0, 8)
              .map(([k, v]) => `${k} ${v.toFixed(1)}`)
              .join(', ')}`,
          );
      }
    }
    const med = Object.fromEntries(ROWS.map((id) => [id, medianRun(runs[id])])) as Partial<Record<RowId, Run>>;
    const m = ds.meta;
    const label: Record<RowId, string> = {
      limit: 'local-copy limit (`cp -a`, `restore_command = cp`)',
      pgbackrest: `${pgBackRestVersion()} (lz4, process-max 2, async archive-get)`,
      file: 'Lifeboat, file://',
      'file-enc': 'Lifeboat, file://, client-side encryption (AES-256-GCM)',
      s3: 'Lifeboat, s3:// (MinIO)',
      's3-enc': 'Lifeboat, s3:// (MinIO), client-side encryption (AES-256-GCM)',
      two: 'Lifeboat, two repositories: file:// first, s3:// second (policy all)',
      near: `Lifeboat, warm standby about ${NEAR_HOLD_SECONDS} s of load behind the target (delay set per round): files = the take-over`,
      warm: `Lifeboat, warm standby (file://, delay ${WARM_DELAY}): files = the take-over`,
      engine: `Lifeboat, pgBackRest engine (${pgBackRestVersion()}, the same stanza): full restore`,
    };
    log(
      `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpuModel}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; load average at start ${loadAtStart}.`,
    );
    log(
      `Dataset: pgbench scale ${SCALE} (database ${(ds.dbBytes / MiB).toFixed(0)} MiB); Lifeboat's base backup ${m.backupId} of ${(m.sizeBytes / MiB).toFixed(0)} MiB (${(m.storedBytes / MiB).toFixed(0)} MiB stored), pgBackRest's full backup right after it (${pgbrBackupSeconds.toFixed(1)} s); ` +
        `then ${(ds.walBytes / MiB).toFixed(0)} MiB of WAL from the backup's start (${ds.walSegments} segments, ${(ds.walStoredBytes / MiB).toFixed(0)} MiB stored by Lifeboat) by the wide TPC-B load of bench/common.ts (4 clients); ` +
        `target: ${BY_TIME ? `the time ${ds.target} (restore point \`${ds.targetName}\` made right after it)` : `restore point \`${ds.targetName}\` (${ds.target})`}, followed by 2 s more load. ${ROUNDS} interleaved round${ROUNDS > 1 ? 's' : ''}; medians.`,
    );
    log(
      `${ds.notes.join(' ')} Every copy held exactly the rows at the target (pgbench_history count, sums of pgbench_accounts and pgbench_branches, read on the primary at the restore point).`,
    );
    log();
    log(
      '| to the paused copy | files s | replay s | total s | CPU-s | ÷ limit | ÷ pgBackRest | restore_command median ms (calls) |',
    );
    log('|---|---|---|---|---|---|---|---|');
    const ratio = (x: number, of: Run | undefined) => (of ? (x / of.total).toFixed(2) : '—');
    for (const id of ROWS) {
      const r = med[id]!;
      const calls = `${median(r.served)?.toFixed(0) ?? '—'} (${r.served.length / ROUNDS}${r.missed.length > 0 ? `; ${r.missed.length / ROUNDS} misses, median ${median(r.missed)!.toFixed(0)}` : ''})`;
      log(
        row([
          label[id],
          r.files,
          r.replay,
          r.total,
          r.cpu,
          ratio(r.total, med.limit),
          ratio(r.total, med.pgbackrest),
          calls,
        ]),
      );
    }
    log();
    if (ROWS.includes('warm')) {
      log(
        `The warm row: runbook \`${WARM_RUNBOOK}\`, on the same cluster in a file:// repository of its own (the same objects, copied: the file row's promotion adds a timeline to its repository), declares a standby with delay ${WARM_DELAY}, longer than the whole bench, so recovery_min_apply_delay holds back the first commit of the load: ` +
          `the standby stops just past the backup's consistency point and the recovery replays all ${(ds.walBytes / MiB).toFixed(0)} MiB of the load, the most a standby replays for a target inside its delay (bench/warm.ts). ` +
          `Its files column is the take-over (pause the standby, find the target after its position, stop it, rename its directory into restore.dataDir), which does not grow with the database; its replay depends on the WAL after the standby's position only. ` +
          `Each round built its standby from the backup, untimed, before its row (a take-over consumes it; ${standbyBuilds.map((x) => x.toFixed(1)).join(', ')} s until settled: holding a commit for its delay, prefetch spool filled). ` +
          `Every warm round was checked to have taken the standby over (the step's summary and the restored copy's marker; the last round's evidence, restoreSource). Before the last round: ${standbyBefore}.`,
      );
      log();
    }
    if (ROWS.includes('engine')) {
      log(
        "The engine row: runbook `bench-engine` names the bench's pgBackRest stanza (`engine: { kind: pgbackrest, stanza, configPath }`); recoverToPointInTime restores pgBackRest's full backup with `pgbackrest restore` into an empty directory and replays through the restore_command pgBackRest writes, with Lifeboat's steps (gates, approvals, checks) around it, so it compares with the pgBackRest row (the same restore by hand) and with the file row (Lifeboat's own engine). " +
          "No delta row: Lifeboat passes --delta (engine.delta: true) only over the same recovery's own earlier, unpromoted copy (a restore again after a retarget, src/restore/data-dir.ts); every round here restores into an empty directory, where --delta copies every file, so such a row would measure the full restore again. The retarget path is not measured yet.",
      );
      log();
    }
    if (ROWS.includes('near')) {
      log(
        `The near row: the same runbook, its standby built before each round's row with a delay of the target's age plus ${NEAR_HOLD_SECONDS} s plus a 15 s margin for the build (${nearDelays.join(', ')}), ` +
          `so that it stands a few seconds of load before the target, as a standby with a 1 h delay stands 50 min before a target 10 min back. ` +
          `It stood ${runs.near.map((r) => (r.behindMiB === undefined ? '?' : r.behindMiB.toFixed(0))).join(', ')} MiB before the target, and replayed ${runs.near.map((r) => (r.replayedMiB === undefined ? '?' : r.replayedMiB.toFixed(0))).join(', ')} MiB: ` +
          "a take-over restarts the standby with the target, and PostgreSQL's redo starts again at its last restartpoint, which can only be at a checkpoint of the primary (here, with max_wal_size 1GB and checkpoint_timeout 5min, none came after the backup's during the 1 min load, so redo starts at the backup's start: the near row replays as much as the warm one; in production a primary checkpoints every checkpoint_timeout). " +
          'What it replays depends on the WAL since that checkpoint, never on the size of the database.',
      );
    }
    log(
      'Totals per round (s): ' +
        ROWS.map((id) => `${id} ${runs[id].map((r) => r.total.toFixed(1)).join(', ')}`).join('; ') +
        '.',
    );
    log();
    log("### The last round, promoted (RTO: the workflow's start to the promotion)");
    log();
    const kindsDone = LIFEBOAT_KINDS.filter((k) => evidence[k]);
    const kindName = (k: LifeboatKind) =>
      ({
        file: 'file://',
        'file-enc': 'file://, encrypted',
        s3: 's3://',
        's3-enc': 's3://, encrypted',
        two: 'file:// + s3://',
        warm: 'warm standby',
        engine: 'pgBackRest engine',
      })[k];
    for (const k of kindsDone) {
      const e = evidence[k]!;
      log(
        `- ${kindName(k)}: RTO ${(span(e.startedAt, e.promotedAt) ?? NaN).toFixed(1)} s (rtoObservedSeconds ${e.rtoObservedSeconds ?? '—'}); ${e.walSegmentsReplayed ?? '—'} segments, ${((e.walBytesReplayed ?? 0) / MiB).toFixed(0)} MiB replayed.${e.restoreSource ? ` Source: ${e.restoreSource.kind} (${e.restoreSource.why}).` : ''}` +
          (k === 'two'
            ? ` Repositories: ${e.repositories ? JSON.stringify(e.repositories) : 'the first served the base backup and every WAL file'}.`
            : ''),
      );
    }
    log();
    log(`| step (wall time, s) | ${kindsDone.map(kindName).join(' | ')} |`);
    log(`|---|${kindsDone.map(() => '---').join('|')}|`);
    for (const s of evidence[kindsDone[0]!]?.steps ?? []) {
      const times = kindsDone.map((k) => {
        const x = evidence[k]!.steps.find((y) => y.id === s.id);
        return x?.state === 'done' ? span(x.startedAt, x.finishedAt) : undefined;
      });
      log(row([`${s.id}${s.id === 'promote' ? ' (the RTO ends inside it)' : ''}`, ...times]));
    }
    log();
    const pairs = (
      [
        ['file-enc', 'file'],
        ['s3-enc', 's3'],
        ['two', 'file'],
      ] as const
    ).filter(([a, b]) => med[a] && med[b]);
    if (pairs.length > 0) {
      log('### Encryption on and off, one repository and two (same dataset, same run)');
      log();
      log(
        '| row | against | to the paused copy s | against s | Δ s | Δ % | RTO s (last round, promoted) | against RTO s |',
      );
      log('|---|---|---|---|---|---|---|---|');
      const rto = (k: LifeboatKind) => {
        const e = evidence[k];
        return e ? span(e.startedAt, e.promotedAt) : undefined;
      };
      for (const [a, b] of pairs) {
        const ta = med[a]!.total;
        const tb = med[b]!.total;
        log(
          row([kindName(a), kindName(b), ta, tb, ta - tb, `${(((ta - tb) / tb) * 100).toFixed(1)} %`, rto(a), rto(b)]),
        );
      }
      log();
      log(
        'The encrypted rows restore the same objects as the plain ones, sealed (AES-256-GCM in 1 MiB chunks, src/repository/encryption-format.ts): ' +
          "the base backup is streamed and opened through the worker (an encrypted file:// repository hands restore's tar no file descriptor), " +
          'and restore_command and its prefetcher decrypt each segment before verifying it. The two-repository row restores from the first repository, ' +
          'restore_command naming the second as its --fallback-repo (asked only for a file the first cannot serve; none here).',
      );
      log();
    }
    const probed = ROWS.filter((id) => runs[id].some((r) => r.startup));
    if (probed.length > 0) {
      log("### Where replay's time went (medians over the rounds)");
      log();
      log(
        '| row | replay s | replay on a CPU s | waiting for a CPU s | waiting for disk s | in restore_command s | prefetcher CPU-s | bench and worker CPU-s |',
      );
      log('|---|---|---|---|---|---|---|---|');
      for (const id of probed) {
        const rs = runs[id];
        const m = (f: (r: Run) => number | undefined) => median(rs.map(f).filter((x): x is number => x !== undefined));
        const by = (r: Run, k: string) => r.cpuBy?.find(([l]) => l.startsWith(k))?.[1] ?? 0;
        log(
          row([
            label[id],
            m((r) => r.replay),
            m((r) => r.startup?.cpu),
            m((r) => r.startup?.runqueue),
            m((r) => r.startup?.io),
            m((r) => r.served.reduce((a, x) => a + x, 0) / 1000),
            m((r) => by(r, 'lifeboat archive-prefetch')),
            m((r) => by(r, 'bench and worker')),
          ]),
        );
      }
      log();
      log(
        'Read from /proc while each copy waited at its target: the startup process (replay itself) from /proc/<pid>/schedstat (time on a CPU, time ready but waiting for one) and delayacct_blkio_ticks; ' +
          "restore_command from the copy's log (the sum of its calls); the prefetcher's and the bench process's CPU from the row's CpuMeter (the bench process runs the worker's activities and polls the run's status every 50 ms).",
      );
      log();
    }
    if (ROWS.includes('limit'))
      log(
        `Preparing the limit (untimed): restoring the backup once with Lifeboat's restore and decoding ${ds.walSegments} segments, ${prep.prepSeconds.toFixed(1)} s.`,
      );
    log(
      `Whole bench ${(secondsSince(started) / 60).toFixed(1)} min. Load average at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}.`,
    );
    written = true;
  } finally {
    for (const dir of restored) await clearRestoreSite(dir).catch(() => undefined);
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => progress(`cleanup: ${String(err)}`));
    // The bench's own temporary directory: provably ours.
    rmSync(work, { recursive: true, force: true });
  }
  // The default size has the Recovery section; another size gets its own, so both stand side by side.
  if (written) {
    if (SCALE === 50) writeBenchSection('recovery-bench', 'Recovery', out.join('\n'));
    else writeBenchSection(`recovery-bench-scale-${SCALE}`, `Recovery at pgbench scale ${SCALE}`, out.join('\n'));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`recovery bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
