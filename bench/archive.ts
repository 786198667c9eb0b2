// `npm run bench`: how fast the WAL archive is on this machine, written into
// the "Archive" section of BENCHMARKS.md (between the bench markers; the
// prose around them is kept).
//
// Real services only: a MinIO of its own on a free loopback port, and a
// PostgreSQL 15 primary whose WAL comes from pgbench. Every lifeboat call is
// a fresh process, as PostgreSQL runs it. Environment:
//   BENCH_SEGMENTS  segments per drain run and per latency series (default 32)
//   BENCH_ONLY=drain  only the archiver drain and live runs; BENCHMARKS.md is left alone
import { execFileSync } from 'node:child_process';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  existsSync,
  copyFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { startPrimary, type Primary } from '../src/dev/scratch-primary';
import { waitFor } from '../src/dev/ports';
import { pgbench, startMinio, WIDE_TPCB } from './common';
import { pgBackRestVersion, setUpPgBackRest } from './pgbackrest';
import { lifeboatCommand, projectRoot } from '../src/tools';
import { decodeWal, zstdCompress } from '../src/wal/compress';

const SEGMENTS = Math.max(12, Number(process.env.BENCH_SEGMENTS ?? 32));
const SEG_MB = 16;
const DRAIN_ONLY = process.env.BENCH_ONLY === 'drain';
const LIFEBOAT = path.join(projectRoot(), 'bin', 'lifeboat');
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function stats(xs: number[]): { mean: number; p50: number; p95: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return {
    mean: xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length),
    p50: at(0.5),
    p95: at(0.95),
    max: s[s.length - 1] ?? 0,
  };
}

/** Runs a command as a new process and returns its wall time in ms; throws on a non-zero exit. */
function timed(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const t = process.hrtime.bigint();
  execFileSync(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return ms(t);
}

function row(cells: (string | number)[]): string {
  return `| ${cells.map((c) => (typeof c === 'number' ? c.toFixed(c >= 100 ? 0 : 1) : c)).join(' | ')} |`;
}

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
      // Codecs, in this process, one segment at a time.
      log('### Compression of pgbench WAL (one core, per segment)');
      log();
      log('| codec | stored size | compress MiB/s | decompress MiB/s |');
      log('|---|---|---|---|');
      const bufs = ready.map((n) => readFileSync(path.join(segDir, n)));
      const seg = ready[0]!;
      const codecs: [string, (b: Buffer) => Promise<Buffer>, (b: Buffer) => Promise<Buffer>][] = [
        ['zstd 1', (b) => zstdCompress(b, 1), (b) => decodeWal(seg, b)],
        ['zstd 3', (b) => zstdCompress(b, 3), (b) => decodeWal(seg, b)],
        ['gzip 1', async (b) => gzipSync(b, { level: 1 }), async (b) => gunzipSync(b)],
      ];
      for (const [name, enc, dec] of codecs) {
        await dec(await enc(bufs[0]!)); // load and warm up before timing
        // Best of three passes over all segments: other processes share the cores.
        let best = { size: 0, tc: Infinity, td: Infinity };
        for (let pass = 0; pass < 3; pass++) {
          let size = 0;
          let tc = 0;
          let td = 0;
          for (const b of bufs) {
            let t = process.hrtime.bigint();
            const c = await enc(b);
            tc += ms(t);
            t = process.hrtime.bigint();
            await dec(c);
            td += ms(t);
            size += c.length;
          }
          best = { size, tc: Math.min(best.tc, tc), td: Math.min(best.td, td) };
        }
        const mib = bufs.length * SEG_MB;
        log(
          row([
            name,
            `${((100 * best.size) / (mib * 2 ** 20)).toFixed(1)} %`,
            mib / (best.tc / 1000),
            mib / (best.td / 1000),
          ]),
        );
      }
      log();

      // One process per segment, no read-ahead: PostgreSQL's view of one call.
      log('### One call per segment (a new process each, sequential)');
      log();
      log('| command | mean ms | p50 ms | p95 ms | MiB/s |');
      log('|---|---|---|---|---|');
      const report = (name: string, xs: number[]) => {
        const s = stats(xs);
        log(row([name, s.mean, s.p50, s.p95, SEG_MB / (s.mean / 1000)]));
      };
      const pushDir = (label: string) => {
        const wal = path.join(work, `data-${label}`, 'pg_wal');
        mkdirSync(path.join(wal, 'archive_status'), { recursive: true });
        for (const n of ready) linkSync(path.join(segDir, n), path.join(wal, n));
        return path.dirname(wal);
      };
      const cpDest = path.join(work, 'cp-archive');
      mkdirSync(cpDest);
      const cpDir = pushDir('cp');
      report(
        '`cp` (archive)',
        ready.map((n) => timed('cp', [`pg_wal/${n}`, path.join(cpDest, n)], { cwd: cpDir })),
      );
      const fDir = pushDir('file');
      report(
        'archive-push file://',
        ready.map((n) => timed(LIFEBOAT, ['archive-push', `pg_wal/${n}`, ...file('lat'), '--no-ahead'], { cwd: fDir })),
      );
      const sDir = pushDir('s3');
      report(
        'archive-push s3://',
        ready.map((n) =>
          timed(LIFEBOAT, ['archive-push', `pg_wal/${n}`, ...s3('lat'), '--no-ahead'], { cwd: sDir, env }),
        ),
      );
      const getDir = path.join(work, 'get');
      mkdirSync(getDir);
      report(
        '`cp` (restore)',
        ready.map((n) => timed('cp', [path.join(cpDest, n), 'RECOVERYXLOG'], { cwd: getDir })),
      );
      report(
        'archive-get file://',
        ready.map((n) =>
          timed(LIFEBOAT, ['archive-get', n, 'RECOVERYXLOG', ...file('lat'), '--prefetch', '0'], { cwd: getDir }),
        ),
      );
      report(
        'archive-get s3://',
        ready.map((n) =>
          timed(LIFEBOAT, ['archive-get', n, 'RECOVERYXLOG', ...s3('lat'), '--prefetch', '0'], { cwd: getDir, env }),
        ),
      );
      for (const [label, args, e] of [
        ['file://', file('lat'), {}],
        ['s3://', s3('lat'), env],
      ] as const) {
        const dir = path.join(work, `replay-${label.replace(/\W/g, '')}`);
        mkdirSync(dir);
        const spool = ['--prefetch', '8', '--spool-dir', path.join(dir, 'spool')];
        report(
          `archive-get ${label} with prefetch 8`,
          ready.map((n) =>
            timed(LIFEBOAT, ['archive-get', n, 'RECOVERYXLOG', ...args, ...spool], { cwd: dir, env: e }),
          ),
        );
      }
      log();
      log(
        'Prefetch rows: calls back to back, with no replay time between them, so the background downloads compete with the calls for the 2 cores.',
      );
      log();

      // Start-up cost alone.
      log('### Start-up (a new process each, mean of 10)');
      log();
      log('| what | mean ms | p95 ms |');
      log('|---|---|---|');
      const startup = (name: string, f: (i: number) => number) => {
        const xs = Array.from({ length: 10 }, (_, i) => f(i));
        const s = stats(xs);
        log(row([name, s.mean, s.p95]));
      };
      startup('`node -e 0`', () => timed(process.execPath, ['-e', '0']));
      startup('`lifeboat --version`', () => timed(LIFEBOAT, ['--version']));
      const histDir = pushDir('hist');
      for (let i = 0; i < 20; i++)
        writeFileSync(
          path.join(histDir, 'pg_wal', `${(i + 2).toString(16).toUpperCase().padStart(8, '0')}.history`),
          '1\t0/3000000\tno recovery target specified\n',
        );
      const hist = (i: number) => `pg_wal/${(i + 2).toString(16).toUpperCase().padStart(8, '0')}.history`;
      startup('archive-push of a fresh history file, file://', (i) =>
        timed(LIFEBOAT, ['archive-push', hist(i), ...file('cold'), '--no-ahead'], { cwd: histDir }),
      );
      startup('archive-push of a fresh history file, s3://', (i) =>
        timed(LIFEBOAT, ['archive-push', hist(i + 10), ...s3('cold'), '--no-ahead'], { cwd: histDir, env }),
      );
      // Markers: one call pushes 11 segments ahead, the next 10 calls are marker hits.
      const mDir = pushDir('marker');
      for (const n of ready.slice(0, 11)) writeFileSync(path.join(mDir, 'pg_wal', 'archive_status', `${n}.ready`), '');
      timed(LIFEBOAT, ['archive-push', `pg_wal/${ready[0]}`, ...s3('marker'), '--parallel', '10'], { cwd: mDir, env });
      // The read-ahead pusher works in the background: time the calls once it has marked all ten.
      await waitFor(
        'the read-ahead pusher to mark ten segments',
        async () =>
          ready.slice(1, 11).every((n) => existsSync(path.join(mDir, 'pg_wal', '.lifeboat-pushed', n)))
            ? true
            : undefined,
        { timeoutMs: 120_000 },
      );
      startup('archive-push of a segment already pushed ahead (marker, no network)', (i) =>
        timed(LIFEBOAT, ['archive-push', `pg_wal/${ready[i + 1]}`, ...s3('marker')], { cwd: mDir, env }),
      );
      startup('archive-push of a fresh segment, s3:// (for comparison)', (i) =>
        timed(LIFEBOAT, ['archive-push', `pg_wal/${ready[(i + 11) % ready.length]}`, ...s3('fresh'), '--no-ahead'], {
          cwd: mDir,
          env,
        }),
      );
      log();
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
  if (!DRAIN_ONLY) writeSection(out.join('\n'));
}

/** Replaces the measured part of the "Archive" section of BENCHMARKS.md, keeping the prose. */
function writeSection(body: string): void {
  const file = path.join(projectRoot(), 'BENCHMARKS.md');
  const begin = '<!-- archive-bench:begin -->';
  const end = '<!-- archive-bench:end -->';
  const block = `${begin}\n${body}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  if (text.includes(begin) && text.includes(end)) {
    text = text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length);
  } else {
    text = `${text.trimEnd()}\n\n## Archive\n\n${block}\n`;
  }
  writeFileSync(file, text);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
