// The recovery bench's rows by hand (no workflow): the local-copy limit,
// pgBackRest's restore, and pgBackRest's restore --delta over the pgBackRest
// row's paused copy; what every row's copy is checked against; and the
// limit's untimed preparation.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { Client } from 'pg';
import { restoreBaseBackup } from '../activities/restore';
import { freePort, waitFor } from '../src/dev/ports';
import { PG_BIN } from '../src/dev/scratch-primary';
import { keys, walFileOfKey } from '../src/repository/layout';
import type { Repository } from '../src/repository/types';
import { writeRecoveryConf, writeSignalFile } from '../src/restore/recovery-conf';
import { decodeWal } from '../src/wal/compress';
import { walFileKind } from '../src/wal/names';
import { asPostgres, FINGERPRINT_SQL, pgDir, secondsSince, stopPostgres, type Dataset } from './common';
import type { CpuMeter } from './cpu';
import { pgBackRestRestore } from './pgbackrest';
import { CLUSTER, targetOf, type Bench, type Run } from './recovery-config';
import { restoreCalls } from './restore-log';

/** Queries the paused copy on `port`: it must be paused and hold exactly the rows at the target. */
export async function checkCopy(label: string, port: number, ds: Dataset): Promise<void> {
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

/** A copy left paused at the target for the next row of the round (the pgbackrest row's, for pgbackrest-delta). */
export interface PausedCopy {
  dataDir: string;
  port: number;
}

/**
 * Starts a copy prepared in `dataDir`, waits for the pause, checks it and
 * reads its log; then stops it and removes it, unless `keep` (a checked copy
 * stays paused for the next row, which removes it).
 */
async function replayPrepared(
  b: Bench,
  label: string,
  copy: PausedCopy,
  logFile: string,
  t0: bigint,
  meter: CpuMeter,
  files: number,
  keep = false,
): Promise<Run> {
  const { dataDir, port } = copy;
  asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-W', 'start']);
  let kept = false;
  try {
    await waitPaused(label, port, dataDir, logFile);
    const total = secondsSince(t0);
    const cpu = meter.stop();
    await checkCopy(label, port, b.ds);
    const calls = restoreCalls(logFile);
    kept = keep;
    return { files, replay: total - files, total, cpu, ...calls };
  } finally {
    if (!kept) await removeCopy(dataDir);
  }
}

/** Stops a copy of a round and removes it. */
async function removeCopy(dataDir: string): Promise<void> {
  await stopPostgres(dataDir);
  // Made by this round: provably ours.
  rmSync(dataDir, { recursive: true, force: true });
}

export async function limitRun(b: Bench, round: number): Promise<Run> {
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
  return replayPrepared(
    b,
    'limit',
    { dataDir, port },
    path.join(b.work, 'runs', `limit-${round}.log`),
    t0,
    meter,
    files,
  );
}

/** `keep`: the copy stays paused at the target for the pgbackrest-delta row (returned as `copy`). */
export async function pgBackRestRun(b: Bench, round: number, keep: boolean): Promise<Run & { copy?: PausedCopy }> {
  const copy = { dataDir: path.join(b.work, 'runs', `pgbackrest-${round}`), port: await freePort() };
  const meter = b.meter();
  meter.start();
  const t0 = process.hrtime.bigint();
  const files = pgBackRestRestore(b.pgbr, copy.dataDir, targetOf(b.ds), copySettings(b, copy.port));
  const logFile = path.join(b.work, 'runs', `pgbackrest-${round}.log`);
  const run = await replayPrepared(b, 'pgBackRest', copy, logFile, t0, meter, files, keep);
  return keep ? { ...run, copy } : run;
}

/**
 * pgbackrest restore --delta over the pgbackrest row's copy of this round,
 * paused at the target: stopped as Lifeboat stops its own copy before a
 * delta restore (pg_ctl stop -m fast: the shutdown restartpoint writes what
 * replay changed), restored in place, where pgBackRest writes only the files
 * whose checksum differs from the backup's (and removes those the backup
 * lacks), and replayed to the target again. files = the stop and the restore.
 */
export async function pgBackRestDeltaRun(b: Bench, round: number, copy: PausedCopy): Promise<Run> {
  const meter = b.meter();
  meter.start();
  const t0 = process.hrtime.bigint();
  try {
    asPostgres(`${PG_BIN}/pg_ctl`, ['-D', copy.dataDir, 'stop', '-m', 'fast', '-w']);
    pgBackRestRestore(b.pgbr, copy.dataDir, targetOf(b.ds), copySettings(b, copy.port), { delta: true });
  } catch (err) {
    meter.stop();
    await removeCopy(copy.dataDir);
    throw err;
  }
  const files = secondsSince(t0);
  const logFile = path.join(b.work, 'runs', `pgbackrest-delta-${round}.log`);
  return replayPrepared(b, 'pgBackRest --delta', copy, logFile, t0, meter, files);
}

/** Where a copy restored by pgBackRest listens (after pgBackRest's own recovery settings). */
function copySettings(b: Bench, port: number): string[] {
  return [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${b.sockets}'`];
}

/** Stops and removes a Lifeboat restore directory and what Lifeboat put beside it (moved-aside copies, claim, log): all inside the bench's state directory. */
export async function clearRestoreSite(dataDir: string): Promise<void> {
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
export async function prepareLimit(
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
