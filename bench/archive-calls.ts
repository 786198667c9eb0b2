// The archive bench's per-call tables: the codecs on pgbench WAL, one
// lifeboat call per segment (a new process each, as PostgreSQL runs it), and
// start-up costs (markers, history files). Skipped with BENCH_ONLY=drain.
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { waitFor } from '../src/dev/ports';
import { projectRoot } from '../src/tools';
import { decodeWal, zstdCompress } from '../src/wal/compress';
import { row } from './common';

export const SEG_MB = 16;
const LIFEBOAT = path.join(projectRoot(), 'bin', 'lifeboat');

export function ms(start: bigint): number {
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

export interface CallsInput {
  work: string;
  /** The segments measured against (names), copied into segDir. */
  ready: string[];
  segDir: string;
  /** MinIO's settings for the s3:// calls. */
  env: Record<string, string>;
  /** --repo and --cluster arguments for a cluster in the file:// and in the s3:// repository. */
  file: (cluster: string) => string[];
  s3: (cluster: string) => string[];
  log: (line?: string) => void;
}

export async function measureCalls({ work, ready, segDir, env, file, s3, log }: CallsInput): Promise<void> {
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
    ready.map((n) => timed(LIFEBOAT, ['archive-push', `pg_wal/${n}`, ...s3('lat'), '--no-ahead'], { cwd: sDir, env })),
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
      ready.map((n) => timed(LIFEBOAT, ['archive-get', n, 'RECOVERYXLOG', ...args, ...spool], { cwd: dir, env: e })),
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
      ready.slice(1, 11).every((n) => existsSync(path.join(mDir, 'pg_wal', '.lifeboat-pushed', n))) ? true : undefined,
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
