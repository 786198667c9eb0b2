// `npm run bench`: how fast the WAL archive is on this machine, written into
// the "Archive" section of BENCHMARKS.md (between the bench markers; the
// prose around them is kept).
//
// Real services only: a MinIO of its own on a free loopback port, and a
// PostgreSQL 15 primary whose WAL comes from pgbench. Every lifeboat call is
// a fresh process, as PostgreSQL runs it. Environment:
//   BENCH_SEGMENTS  segments per drain run and per latency series (default 32)
//   BENCH_ONLY=drain  only the archiver drain and live runs; BENCHMARKS.md is left alone
//   BENCH_DRY=1     a trial run: BENCHMARKS.md is left alone (the tables are on stdout)
// The per-call tables (codecs, one call per segment, start-up) are archive-calls.ts.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '../src/dev/ports';
import { startPrimary, type Primary } from '../src/dev/scratch-primary';
import { lifeboatCommand } from '../src/tools';
import { measureCalls, ms, SEG_MB } from './archive-calls';
import { pgbench, row, startMinio, WIDE_TPCB, writeBenchSection } from './common';
import { pgBackRestVersion, setUpPgBackRest } from './pgbackrest';

const SEGMENTS = Math.max(12, Number(process.env.BENCH_SEGMENTS ?? 32));
const DRAIN_ONLY = process.env.BENCH_ONLY === 'drain';
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

function readyCount(pg: Primary): number {
  return readdirSync(path.join(pg.dataDir, 'pg_wal', 'archive_status')).filter((n) => n.endsWith('.ready')).length;
}

async function archivedCount(pg: Primary): Promise<number> {
  const [r] = await pg.query<{ n: string; f: string }>(
    'select archived_count as n, failed_count as f from pg_stat_archiver',
  );
  if (r!.f !== '0') throw new Error(`archive_command failed ${r!.f} times; see ${pg.logFile}`);
  return Number(r!.n);
}

async function setArchiveCommand(pg: Primary, command: string): Promise<void> {
  await pg.query(`alter system set archive_command = '${command.replace(/'/g, "''")}'`);
  await pg.query('select pg_reload_conf()');
}

let scriptFile = '';

function writeLoad(pg: Primary, seconds: number): void {
  pgbench(pg, ['-n', '-c', '4', '-j', '2', '-T', String(seconds), '-M', 'prepared', '-f', scriptFile]);
}

/** Accumulates at least `n` ready segments of pgbench WAL while archiving is paused. */
async function produceReadyWal(pg: Primary, n: number): Promise<void> {
  await setArchiveCommand(pg, '');
  while (readyCount(pg) < n) writeLoad(pg, 5);
}

/** Time for PostgreSQL's archiver to drain every ready segment through `command`. */
async function drain(pg: Primary, command: string): Promise<{ segments: number; seconds: number }> {
  const segments = readyCount(pg);
  const before = await archivedCount(pg);
  const t = process.hrtime.bigint();
  await setArchiveCommand(pg, command);
  await waitFor(
    'the archiver to drain',
    async () => ((await archivedCount(pg)) - before >= segments ? true : undefined),
    {
      timeoutMs: 1_800_000,
      intervalMs: 50,
    },
  );
  return { segments, seconds: ms(t) / 1000 };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-'));
  execFileSync('chown', ['postgres:postgres', work]);
  const minio = await startMinio(work, 'bench');
  const s3 = (cluster: string) => ['--repo', 's3://bench/archive', '--cluster', cluster];
  const fileRepo = path.join(work, 'repo');
  mkdirSync(fileRepo);
  execFileSync('chown', ['postgres:postgres', fileRepo]);
  const file = (cluster: string) => ['--repo', `file://${fileRepo}`, '--cluster', cluster];
  const env = minio.env;
  let pg: Primary | undefined;
  try {
    pg = await startPrimary({
      archive: { repo: 's3://bench/archive', cluster: 'unused', env },
      conf: [`archive_command = ''`, 'max_wal_size = 1GB', 'checkpoint_timeout = 5min', 'wal_keep_size = 0'],
    });
    scriptFile = path.join(work, 'wide-tpcb.sql');
    writeFileSync(scriptFile, WIDE_TPCB);
    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    log(
      `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ` +
        `Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; load average at start ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}.`,
    );
    log(
      `WAL: pgbench scale 10, 4 clients running TPC-B's updates and inserts 200 rows at a time (the script is in bench/archive.ts); ` +
        `${SEGMENTS} segments of ${SEG_MB} MiB per series.`,
    );
    log();

    // Real segments to measure against, copied out of pg_wal.
    pgbench(pg, ['-i', '-s', '10', '-q']);
    const t0 = process.hrtime.bigint();
    const lsn0 = (await pg.query<{ l: string }>('select pg_current_wal_lsn()::text as l'))[0]!.l;
    await produceReadyWal(pg, SEGMENTS + 4);
    const genBytes = Number(
      (await pg.query<{ d: string }>(`select pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsn0}')::text as d`))[0]!.d,
    );
    const genRate = genBytes / 2 ** 20 / (ms(t0) / 1000);
    const segDir = path.join(work, 'segments');
    mkdirSync(segDir);
    const ready = readdirSync(path.join(pg.dataDir, 'pg_wal', 'archive_status'))
      .filter((n) => n.endsWith('.ready'))
      .map((n) => n.slice(0, 24))
      .sort()
      .slice(-SEGMENTS);
    for (const n of ready) copyFileSync(path.join(pg.dataDir, 'pg_wal', n), path.join(segDir, n));
    log(`pgbench produced WAL at ${genRate.toFixed(1)} MiB/s on this machine (archiving paused).`);
    log();

    // BENCH_ONLY=drain measures the archiver drain and the live run only (quicker while tuning).
    if (!DRAIN_ONLY) {
      await measureCalls({ work, ready, segDir, env, file, s3, log });
    }

    // PostgreSQL's own archiver draining a backlog.
    log(`### PostgreSQL's archiver draining ${SEGMENTS}+ ready segments`);
    log();
    log('| archive_command | segments | seconds | segments/s | MiB/s |');
    log('|---|---|---|---|---|');
    const lb = lifeboatCommand();
    const cpArchive = path.join(work, 'pg-cp-archive');
    mkdirSync(cpArchive);
    execFileSync('chown', ['postgres:postgres', cpArchive]);
    const runs: [string, string][] = [
      ['`cp %p`', `cp %p ${cpArchive}/%f`],
      ['archive-push file:// --no-ahead', `${lb} archive-push %p ${file('drain-f1').join(' ')} --no-ahead`],
      ['archive-push file:// --parallel 4', `${lb} archive-push %p ${file('drain-f4').join(' ')} --parallel 4`],
      ['archive-push s3:// --no-ahead', `${lb} archive-push %p ${s3('drain-s1').join(' ')} --no-ahead`],
      ['archive-push s3:// --parallel 2', `${lb} archive-push %p ${s3('drain-s2').join(' ')} --parallel 2`],
      ['archive-push s3:// --parallel 3', `${lb} archive-push %p ${s3('drain-s3').join(' ')} --parallel 3`],
      ['archive-push s3:// --parallel 4', `${lb} archive-push %p ${s3('drain-s4').join(' ')} --parallel 4`],
      ['archive-push s3:// --parallel 8', `${lb} archive-push %p ${s3('drain-s8').join(' ')} --parallel 8`],
    ];
    // pgBackRest into a repository on local disk, beside file://: the same
    // backlog drained by the other tool (lz4; synchronous, then asynchronous
    // with process-max 2, the settings of the recovery bench's pgBackRest).
    const pgbr = setUpPgBackRest(work, { dataDir: pg.dataDir, port: pg.port, socketDir: pg.root });
    pgbr.run(['stanza-create']);
    runs.push(
      [`${pgBackRestVersion()} archive-push (lz4)`, pgbr.archivePush],
      [
        `${pgBackRestVersion()} archive-push (lz4, async, process-max 2)`,
        pgbr.archivePush.replace(' archive-push ', ' --archive-async --process-max=2 archive-push '),
      ],
    );
    for (const [name, command] of runs) {
      await produceReadyWal(pg, SEGMENTS);
      const r = await drain(pg, command);
      log(row([name, String(r.segments), r.seconds, r.segments / r.seconds, (r.segments * SEG_MB) / r.seconds]));
    }
    log();

    // Both at once: pgbench writing while the archiver pushes to MinIO.
    await setArchiveCommand(pg, `${lb} archive-push %p ${s3('live').join(' ')} --parallel 4`);
    await waitFor('the backlog to clear', async () => (readyCount(pg!) === 0 ? true : undefined), {
      timeoutMs: 600_000,
    });
    const lsnA = (await pg.query<{ l: string }>('select pg_current_wal_lsn()::text as l'))[0]!.l;
    const tA = process.hrtime.bigint();
    writeLoad(pg, 30);
    const writeSeconds = ms(tA) / 1000;
    const backlog = readyCount(pg);
    await pg.query('select pg_switch_wal()');
    await waitFor('the archiver to catch up', async () => (readyCount(pg!) === 0 ? true : undefined), {
      timeoutMs: 900_000,
      intervalMs: 50,
    });
    const total = ms(tA) / 1000;
    const liveBytes = Number(
      (await pg.query<{ d: string }>(`select pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsnA}')::text as d`))[0]!.d,
    );
    log('### pgbench and archiving to s3:// (--parallel 4) at the same time');
    log();
    log(
      `pgbench wrote ${(liveBytes / 2 ** 20).toFixed(0)} MiB of WAL in ${writeSeconds.toFixed(1)} s (${(liveBytes / 2 ** 20 / writeSeconds).toFixed(1)} MiB/s); ` +
        `${backlog} segments were waiting when it stopped; everything was archived ${(total - writeSeconds).toFixed(1)} s later.`,
    );
    log();
    log(
      `Load average at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}.`,
    );
  } finally {
    await pg?.stop().catch(() => undefined);
    await minio.stop();
    rmSync(work, { recursive: true, force: true });
  }
  if (!DRAIN_ONLY) writeBenchSection('archive-bench', 'Archive', out.join('\n'));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
