// `npm run bench:encryption`: what client-side encryption (src/repository/
// encrypted.ts) costs archive-push and archive-get, on the same pgbench WAL
// segments with encryption off and on, into file:// and into a MinIO of its
// own; written into the "Encryption" section of BENCHMARKS.md (between the
// bench markers). Every lifeboat call is a fresh process, as PostgreSQL runs
// it. Environment:
//   BENCH_SEGMENTS  segments per series (default 32)
//   BENCH_DRY=1     a trial run: BENCHMARKS.md is left alone
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPrimary, type Primary } from '../test/harness/postgres';
import { openBuffer, sealBuffer } from '../src/repository/encryption-format';
import { KeyRing } from '../src/repository/keys';
import { projectRoot } from '../src/tools';
import { zstdCompress } from '../src/wal/compress';
import { pgbench, row, startMinio, WIDE_TPCB, writeBenchSection } from './common';

const SEGMENTS = Math.max(4, Number(process.env.BENCH_SEGMENTS ?? 32));
const SEG_MB = 16;
const LIFEBOAT = path.join(projectRoot(), 'bin', 'lifeboat');
const KEY_ENV = 'LIFEBOAT_BENCH_REPO_KEY';
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function timed(args: string[], cwd: string, env: Record<string, string>): number {
  const t = process.hrtime.bigint();
  execFileSync(LIFEBOAT, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return ms(t);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

/** Ready segments of pgbench WAL, copied out of pg_wal while archiving is off. */
async function pgbenchSegments(pg: Primary, work: string): Promise<{ dir: string; names: string[] }> {
  const script = path.join(work, 'wide-tpcb.sql');
  writeFileSync(script, WIDE_TPCB);
  pgbench(pg, ['-i', '-s', '10', '-q']);
  const status = path.join(pg.dataDir, 'pg_wal', 'archive_status');
  while (readdirSync(status).filter((n) => n.endsWith('.ready')).length < SEGMENTS + 2) {
    pgbench(pg, ['-n', '-c', '4', '-j', '2', '-T', '5', '-M', 'prepared', '-f', script]);
  }
  const names = readdirSync(status)
    .filter((n) => n.endsWith('.ready') && n.length === 24 + '.ready'.length)
    .map((n) => n.slice(0, 24))
    .sort()
    .slice(-SEGMENTS);
  const dir = path.join(work, 'segments');
  mkdirSync(dir);
  for (const n of names) copyFileSync(path.join(pg.dataDir, 'pg_wal', n), path.join(dir, n));
  return { dir, names };
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-enc-'));
  execFileSync('chown', ['postgres:postgres', work]);
  const minio = await startMinio(work, 'bench');
  let pg: Primary | undefined;
  process.env[KEY_ENV] = randomBytes(32).toString('base64');
  try {
    pg = await startPrimary({ archive: { repo: 's3://bench/unused', cluster: 'unused' }, conf: [`archive_command = ''`, 'max_wal_size = 1GB', 'wal_keep_size = 0'] });
    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    log(`Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; ` +
      `load average at start ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}.`);
    const seg = await pgbenchSegments(pg, work);
    log(`The same ${seg.names.length} pgbench segments of ${SEG_MB} MiB for every row; AES-256-GCM in 1 MiB chunks (src/repository/encryption-format.ts).`);
    log();

    // In this process, one core: the cipher alone, on what is stored (zstd 1 output).
    const ring = new KeyRing({ keyId: 'bench', keyEnv: KEY_ENV });
    const compressed = await Promise.all(seg.names.map(async (n) => zstdCompress(readFileSync(path.join(seg.dir, n)), 1)));
    const w = { url: 'file:///bench', key: 'bench/wal/x.zst' };
    openBuffer(sealBuffer(compressed[0]!, ring, w), ring, w); // warm up
    let best = { seal: Infinity, open: Infinity };
    for (let pass = 0; pass < 3; pass++) {
      let tSeal = 0;
      let tOpen = 0;
      for (const c of compressed) {
        let t = process.hrtime.bigint();
        const s = sealBuffer(c, ring, w);
        tSeal += ms(t);
        t = process.hrtime.bigint();
        openBuffer(s, ring, w);
        tOpen += ms(t);
      }
      best = { seal: Math.min(best.seal, tSeal), open: Math.min(best.open, tOpen) };
    }
    const storedMiB = compressed.reduce((n, c) => n + c.length, 0) / 2 ** 20;
    log('### The cipher alone (one core, in process, best of 3)');
    log();
    log('| | MiB/s of stored (compressed) WAL | ms per segment |');
    log('|---|---|---|');
    log(row(['seal (encrypt)', storedMiB / (best.seal / 1000), best.seal / compressed.length]));
    log(row(['open (decrypt, authenticate)', storedMiB / (best.open / 1000), best.open / compressed.length]));
    log();

    // One process per call, as PostgreSQL runs them: push every segment, then get it back.
    log('### archive-push and archive-get, one new process per segment (sequential, no read-ahead or prefetch)');
    log();
    log('| repository | encryption | push mean ms | push p50 ms | push MiB/s | get mean ms | get p50 ms | get MiB/s |');
    log('|---|---|---|---|---|---|---|---|');
    const fileRoot = path.join(work, 'repo');
    mkdirSync(fileRoot);
    for (const [kind, url, env] of [
      ['file://', `file://${fileRoot}`, {}],
      ['s3://', 's3://bench/archive', minio.env],
    ] as const) {
      for (const encrypted of [false, true]) {
        const cluster = `${kind === 'file://' ? 'f' : 's'}-${encrypted ? 'enc' : 'plain'}`;
        const target = ['--repo', url, '--cluster', cluster, ...(encrypted ? ['--encryption-key', `bench=${KEY_ENV}`] : [])];
        const data = path.join(work, `data-${cluster}`);
        mkdirSync(path.join(data, 'pg_wal', 'archive_status'), { recursive: true });
        for (const n of seg.names) linkSync(path.join(seg.dir, n), path.join(data, 'pg_wal', n));
        const push = seg.names.map((n) => timed(['archive-push', `pg_wal/${n}`, ...target, '--no-ahead'], data, env));
        const getDir = path.join(work, `get-${cluster}`);
        mkdirSync(getDir);
        const get = seg.names.map((n) => timed(['archive-get', n, path.join(getDir, n), ...target, '--prefetch', '0'], getDir, env));
        for (const n of seg.names) {
          if (!readFileSync(path.join(getDir, n)).equals(readFileSync(path.join(seg.dir, n)))) throw new Error(`${n} came back different (${cluster})`);
        }
        log(row([kind, encrypted ? 'on' : 'off', mean(push), median(push), SEG_MB / (mean(push) / 1000), mean(get), median(get), SEG_MB / (mean(get) / 1000)]));
      }
    }
    log();
    log('Each process pays Node\'s start-up and, for s3://, the AWS SDK\'s; the cipher adds its per-segment time above. ' +
      'PostgreSQL\'s archiver normally finds segments already pushed by the read-ahead pusher and replay finds them in the prefetch spool ' +
      '(plaintext, verified), so these per-call times are the worst case.');
    writeBenchSection('bench:encryption', 'Encryption', out.join('\n'));
  } finally {
    await pg?.stop();
    await minio.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
