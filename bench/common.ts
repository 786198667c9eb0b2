// What the benches share: a MinIO of their own, pgbench and a pgbench script
// that makes WAL fast enough to measure with, the recovery and drill benches'
// dataset (a base backup and archived WAL after it), and the writing of a
// section of BENCHMARKS.md between markers.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { takeBaseBackup } from '../src/backup/base-backup';
import { stopChild } from '../src/dev/child';
import { demoRunbookYaml, DEMO_SCHEMA_SQL, DEMO_SEED_SQL, type DemoRunbookParams } from '../src/dev/demo-runbook';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import { openRepository } from '../src/repository';
import { keys, walFileOfKey } from '../src/repository/layout';
import { loadRunbook } from '../src/runbook/load';
import { projectRoot } from '../src/tools';
import { walFileKind } from '../src/wal/names';
import { PG_BIN, switchAndWaitArchived, type Primary } from '../src/dev/scratch-primary';
import { freePort } from '../src/dev/ports';
import { minioHealthy, spawnMinio } from '../src/dev/minio';

export const MiB = 2 ** 20;
export const secondsSince = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;
/** Seconds between two ISO times, when both are known. */
export const span = (from?: string, to?: string) =>
  from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : undefined;
export const fmt = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(x >= 100 ? 0 : 1));
/** A markdown table row; numbers are formatted by fmt. */
export const row = (cells: (string | number | undefined)[]) =>
  `| ${cells.map((c) => (typeof c === 'string' ? c : fmt(c))).join(' | ')} |`;

/** Runs a command as the postgres OS user and returns its wall time in seconds. */
export function asPostgres(cmd: string, args: string[]): number {
  const t = process.hrtime.bigint();
  execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return secondsSince(t);
}

/** A directory under the bench's temporary root, owned by postgres. */
export function pgDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownToOsUser(dir, 'postgres');
  return dir;
}

/** Stops a PostgreSQL the bench started (immediate: its data is thrown away after). */
export async function stopPostgres(dataDir: string): Promise<void> {
  if (!existsSync(path.join(dataDir, 'postmaster.pid'))) return;
  try {
    asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, 'stop', '-m', 'immediate', '-w']);
  } catch {
    /* already down */
  }
}

/**
 * The demo runbook for a bench, naming `cluster` so that runbooks of one bench
 * share the repository's keys. `repositories`: YAML that takes the place of
 * the `repository:` line (a repository with encryption, or a `repositories:` list).
 */
export function writeBenchRunbook(
  runbooksDir: string,
  cluster: string,
  p: DemoRunbookParams,
  repositories?: string,
): void {
  let yaml = demoRunbookYaml(p).replace('\ncluster:\n', `\ncluster:\n  name: ${cluster}\n`);
  if (repositories) yaml = yaml.replace(/^repository: .*\n/m, `${repositories.trimEnd()}\n`);
  writeFileSync(path.join(runbooksDir, `${p.name}.yaml`), yaml);
}

/** A MinIO on a free loopback port under `root`, with one bucket; env holds what a client needs. */
export async function startMinio(
  root: string,
  bucket: string,
): Promise<{ env: Record<string, string>; stop: () => Promise<void>; pid: number }> {
  const port = await freePort();
  const user = 'lifeboat-bench';
  const secret = `bench-${Math.random().toString(36).slice(2)}`;
  const logFile = path.join(root, 'minio.log');
  const child = spawnMinio({
    dataDir: path.join(root, 'minio'),
    port,
    consolePort: await freePort(),
    logFile,
    user,
    password: secret,
  });
  const stop = () => stopChild(child);
  try {
    const endpoint = `http://127.0.0.1:${port}`;
    await minioHealthy(child, endpoint, logFile);
    const s3 = new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: user, secretAccessKey: secret },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
    return {
      env: { AWS_ACCESS_KEY_ID: user, AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: 'us-east-1', S3_ENDPOINT: endpoint },
      stop,
      pid: child.pid!,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function pgbench(pg: Primary, args: string[]): void {
  execFileSync(`${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', ...args, 'postgres'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

/**
 * TPC-B's tables and kinds of change, with more rows per transaction: plain
 * TPC-B makes WAL too slowly here (under 1 MiB/s on a busy 2-core machine)
 * to fill a backlog of hundreds of megabytes in reasonable time.
 */
export const WIDE_TPCB = `\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid BETWEEN :aid AND :aid + 200;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT :tid, :bid, :aid + g, :delta, CURRENT_TIMESTAMP FROM generate_series(1, 50) g;
END;
`;

export interface DatasetOptions {
  /** pgbench scale. */
  scale: number;
  /** MiB of WAL to generate after the base backup. */
  walMb: number;
  /** The cluster the runbook names (the repository's key prefix). */
  cluster: string;
  progress: (line: string) => void;
  /** Runs right after the base backup, before the load (another tool's backup of the same moment). */
  afterBackup?: () => Promise<void> | void;
}

/** The restore point made at the target moment, with nothing writing (so every tool can stop at the same record). */
export const TARGET_NAME = 'bench-target';
/** A restore point after the load that follows the target: where a recovery is before it is moved back to the target (the recovery bench's engine-delta row). */
export const LATER_NAME = 'bench-later';

/**
 * What a copy stopped at the target must hold: computed on the primary at
 * the target, with the load stopped, so it is exact.
 */
export const FINGERPRINT_SQL = `select (select count(*) from pgbench_history)::text as history,
  (select sum(abalance) from pgbench_accounts)::text as accounts,
  (select sum(bbalance) from pgbench_branches)::text as branches`;

const walSince = async (pg: Primary, lsn: string) =>
  Number((await pg.query<{ d: string }>(`select pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text as d`, [lsn]))[0]!.d);

/**
 * pgbench data, a base backup by takeBaseBackup, walMb of WAL after it from the
 * wide TPC-B load, a target time, a little more WAL and a later restore
 * point; all archived by the primary's archive_command into the runbook's
 * repository.
 */
export async function makeDataset(pg: Primary, work: string, runbookName: string, o: DatasetOptions) {
  const notes: string[] = [];
  await pg.query(DEMO_SCHEMA_SQL);
  await pg.query(DEMO_SEED_SQL);
  await pg.query(`create role app login; grant all on all tables in schema public to app`);
  let t = process.hrtime.bigint();
  pgbench(pg, ['-i', '-s', String(o.scale), '-q']);
  const dbBytes = Number((await pg.query<{ s: string }>(`select pg_database_size('postgres')::text as s`))[0]!.s);
  o.progress(`pgbench -i -s ${o.scale}: ${(dbBytes / MiB).toFixed(0)} MiB in ${secondsSince(t).toFixed(0)} s`);
  await switchAndWaitArchived(pg, 900_000);
  t = process.hrtime.bigint();
  const runbook = await loadRunbook(runbookName);
  const meta = await takeBaseBackup({ runbook, scratchDir: pgDir(path.join(work, 'scratch')) });
  notes.push(
    `takeBaseBackup took ${secondsSince(t).toFixed(1)} s (pg_basebackup, pg_verifybackup, tar and zstd -3, store).`,
  );
  o.progress(
    `backup ${meta.backupId}: ${(meta.sizeBytes / MiB).toFixed(0)} MiB, stored ${(meta.storedBytes / MiB).toFixed(0)} MiB`,
  );
  await o.afterBackup?.();

  const script = path.join(work, 'wide-tpcb.sql');
  writeFileSync(script, WIDE_TPCB);
  t = process.hrtime.bigint();
  while ((await walSince(pg, meta.endLsn)) < o.walMb * MiB)
    pgbench(pg, ['-n', '-c', '4', '-j', '2', '-T', '3', '-M', 'prepared', '-f', script]);
  const genSeconds = secondsSince(t);
  await switchAndWaitArchived(pg, 1_800_000);
  notes.push(
    `The load (archiving to file:// as it ran) took ${genSeconds.toFixed(0)} s, and the archive was complete ${(secondsSince(t) - genSeconds).toFixed(1)} s after it stopped.`,
  );
  // The target: a moment on the primary after all that WAL; then a little more WAL,
  // so that replay finds a commit past the target and stops there.
  const target = (
    await pg.query<{ t: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as t`,
    )
  )[0]!.t;
  // The rows at the target, and a restore point there (nothing writes between the two).
  const fingerprint = (await pg.query<Record<string, string>>(FINGERPRINT_SQL))[0]!;
  await pg.query(`select pg_create_restore_point($1)`, [TARGET_NAME]);
  await sleep(1100);
  pgbench(pg, ['-n', '-c', '2', '-T', '2', '-M', 'prepared', '-f', script]);
  await pg.query(`select pg_create_restore_point($1)`, [LATER_NAME]);
  await switchAndWaitArchived(pg, 600_000);
  const walBytes = await walSince(pg, meta.startLsn);
  const repo = await openRepository(runbook.repository.url, runbook.repository);
  const segments = (await repo.list(keys.walPrefix(o.cluster))).filter(
    (x) =>
      walFileKind(walFileOfKey(o.cluster, x.key) ?? '') === 'segment' &&
      (walFileOfKey(o.cluster, x.key) ?? '') >= meta.startWal,
  );
  return {
    meta,
    target,
    targetName: TARGET_NAME,
    laterName: LATER_NAME,
    fingerprint,
    dbBytes,
    walBytes,
    walStoredBytes: segments.reduce((n, x) => n + x.size, 0),
    walSegments: segments.length,
    notes,
  };
}
export type Dataset = Awaited<ReturnType<typeof makeDataset>>;

/**
 * Replaces the measured part of a section of BENCHMARKS.md (between
 * `<!-- <marker>:begin -->` and `<!-- <marker>:end -->`), keeping the prose;
 * without the markers, appends `## <title>` and the block at the end.
 * Not with BENCH_DRY=1 (the table is on stdout either way).
 */
export function writeBenchSection(marker: string, title: string, body: string): void {
  // BENCH_DRY=1: a trial run (small sizes) leaves BENCHMARKS.md as it is.
  if (process.env.BENCH_DRY === '1') return;
  const file = path.join(projectRoot(), 'BENCHMARKS.md');
  const begin = `<!-- ${marker}:begin -->`;
  const end = `<!-- ${marker}:end -->`;
  const block = `${begin}\n${body}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (text.includes(begin) && text.includes(end)) {
    text = text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length);
  } else {
    text = `${text.trimEnd()}\n\n## ${title}\n\n${block}\n`;
  }
  writeFileSync(file, text);
}
