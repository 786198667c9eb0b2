// `npm run bench:encryption`: what client-side encryption (src/repository/
// encrypted.ts) costs archive-push and archive-get, on the same pgbench WAL
// segments with encryption off and on, into file:// and into a MinIO of its
// own, and what a second repository costs (a runbook with file:// then
// s3://, policy all, against one with file:// only); written into the
// "Encryption" section of BENCHMARKS.md (between the bench markers). Every
// lifeboat call is a fresh process, as PostgreSQL runs it, and the
// configurations take turns segment by segment. Environment:
//   BENCH_SEGMENTS  segments per series (default 32)
//   BENCH_DRY=1     a trial run: BENCHMARKS.md is left alone
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startPrimary, type Primary } from '../src/dev/scratch-primary';
import { openBuffer, sealBuffer } from '../src/repository/encryption-format';
import { KeyRing } from '../src/repository/keys';
import { projectRoot } from '../src/tools';
import { zstdCompress } from '../src/wal/compress';
import { demoRunbookYaml } from '../src/dev/demo-runbook';
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

interface Config {
  id: string;
  label: string;
  encrypted: boolean;
  /** The row its Δ columns are measured against. */
  against?: string;
  /** archive-push's repository options. */
  pushTarget: string[];
  /** archive-get's: for two repositories, restore_command's (--repo the first, --fallback-repo the second). */
  getTarget: string[];
  env: Record<string, string>;
  data: string;
  getDir: string;
}

/**
 * Every configuration of the per-call table: file:// and s3:// by URL with
 * encryption off and on, then by runbook: one repository (file://), and two
 * (file:// first, s3:// second, policy all) off and on.
 */
function benchConfigs(fileRoot: string, runbooksDir: string, s3env: Record<string, string>): Config[] {
  const work = path.dirname(fileRoot);
  const key = ['--encryption-key', `bench=${KEY_ENV}`];
  const s3Url = 's3://bench/archive';
  const byUrl = (
    id: string,
    label: string,
    url: string,
    encrypted: boolean,
    env: Record<string, string>,
    against?: string,
  ): Config => ({
    id,
    label,
    encrypted,
    ...(against ? { against } : {}),
    pushTarget: ['--repo', url, '--cluster', id, ...(encrypted ? key : [])],
    getTarget: ['--repo', url, '--cluster', id, ...(encrypted ? key : [])],
    env,
    data: path.join(work, `data-${id}`),
    getDir: path.join(work, `get-${id}`),
  });
  const byRunbook = (id: string, label: string, encrypted: boolean, two: boolean, against?: string): Config => {
    const enc = encrypted ? `, encryption: { keyId: bench, keyEnv: ${KEY_ENV} }` : '';
    const repos = two
      ? `repositories:\n  - { name: local, url: "file://${fileRoot}"${enc} }\n  - { name: minio, url: "${s3Url}", endpointEnv: S3_ENDPOINT${enc} }\nrepositoryPolicy: all\n`
      : `repository: { url: "file://${fileRoot}"${enc} }\n`;
    const yaml = demoRunbookYaml({
      name: id,
      pgPort: 5432,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl: 'file:///unused',
      host: 'bench',
      stateDir: path.join(work, `state-${id}`),
      restorePort: 5433,
      drillPort: 5434,
    })
      .replace('\ncluster:\n', `\ncluster:\n  name: ${id}\n`)
      .replace(/^repository: .*\n/m, repos);
    writeFileSync(path.join(runbooksDir, `${id}.yaml`), yaml);
    return {
      id,
      label,
      encrypted,
      ...(against ? { against } : {}),
      pushTarget: ['--runbook', id, '--runbooks-dir', runbooksDir],
      // As restore_command names them (src/repository/multi.ts fallbackRepoArgs): the first by URL, the second as its fallback.
      getTarget: [
        '--repo',
        `file://${fileRoot}`,
        '--cluster',
        id,
        ...(encrypted ? key : []),
        ...(two ? ['--fallback-repo', `${s3Url}#endpointEnv=S3_ENDPOINT`] : []),
      ],
      env: two ? s3env : {},
      data: path.join(work, `data-${id}`),
      getDir: path.join(work, `get-${id}`),
    };
  };
  return [
    byUrl('f-plain', 'file://', `file://${fileRoot}`, false, {}),
    byUrl('f-enc', 'file://', `file://${fileRoot}`, true, {}, 'f-plain'),
    byUrl('s-plain', 's3://', s3Url, false, s3env),
    byUrl('s-enc', 's3://', s3Url, true, s3env, 's-plain'),
    byRunbook('r1-plain', 'runbook: file://', false, false),
    byRunbook('r2-plain', 'runbook: file:// + s3:// (all)', false, true, 'r1-plain'),
    byRunbook('r2-enc', 'runbook: file:// + s3:// (all)', true, true, 'r2-plain'),
  ];
}

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
    pg = await startPrimary({
      archive: { repo: 's3://bench/unused', cluster: 'unused' },
      conf: [`archive_command = ''`, 'max_wal_size = 1GB', 'wal_keep_size = 0'],
    });
    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    log(
      `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; ` +
        `load average at start ${os
          .loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}.`,
    );
    const seg = await pgbenchSegments(pg, work);
    log(
      `The same ${seg.names.length} pgbench segments of ${SEG_MB} MiB for every row; AES-256-GCM in 1 MiB chunks (src/repository/encryption-format.ts).`,
    );
    log();

    // In this process, one core: the cipher alone, on what is stored (zstd 1 output).
    const ring = new KeyRing({ keyId: 'bench', keyEnv: KEY_ENV });
    const compressed = await Promise.all(
      seg.names.map(async (n) => zstdCompress(readFileSync(path.join(seg.dir, n)), 1)),
    );
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

    // One process per call, as PostgreSQL runs them: push every segment into
    // every configuration, then get every one back. Interleaved: segment by
    // segment, each configuration in turn (the order rotating), so that a
    // change of load during the run falls on every row alike; the Δ columns
    // are medians of per-segment differences against the row named (the same
    // segment, moments apart), which cancels most of what load remains.
    log(
      '### archive-push and archive-get, one new process per segment (sequential, interleaved, no read-ahead or prefetch)',
    );
    log();
    log(
      '| repositories | encryption | push mean ms | push p50 ms | push MiB/s | get mean ms | get p50 ms | get MiB/s | Δ push ms | Δ get ms | against |',
    );
    log('|---|---|---|---|---|---|---|---|---|---|---|');
    const fileRoot = path.join(work, 'repo');
    mkdirSync(fileRoot);
    const runbooksDir = path.join(work, 'runbooks');
    mkdirSync(runbooksDir);
    const configs = benchConfigs(fileRoot, runbooksDir, minio.env);
    for (const c of configs) {
      mkdirSync(path.join(c.data, 'pg_wal', 'archive_status'), { recursive: true });
      for (const n of seg.names) linkSync(path.join(seg.dir, n), path.join(c.data, 'pg_wal', n));
      mkdirSync(c.getDir);
    }
    const times = new Map(configs.map((c) => [c.id, { push: [] as number[], get: [] as number[] }]));
    for (const op of ['push', 'get'] as const) {
      seg.names.forEach((n, i) => {
        for (let j = 0; j < configs.length; j++) {
          const c = configs[(i + j) % configs.length]!;
          const t =
            op === 'push'
              ? timed(['archive-push', `pg_wal/${n}`, ...c.pushTarget, '--no-ahead'], c.data, c.env)
              : timed(['archive-get', n, path.join(c.getDir, n), ...c.getTarget, '--prefetch', '0'], c.getDir, c.env);
          times.get(c.id)![op].push(t);
        }
      });
    }
    for (const c of configs) {
      for (const n of seg.names) {
        if (!readFileSync(path.join(c.getDir, n)).equals(readFileSync(path.join(seg.dir, n))))
          throw new Error(`${n} came back different (${c.id})`);
      }
      const t = times.get(c.id)!;
      const base = c.against ? times.get(c.against) : undefined;
      const delta = (op: 'push' | 'get') => (base ? median(t[op].map((x, i) => x - base[op][i]!)) : undefined);
      const against = c.against ? configs.find((x) => x.id === c.against)!.label : '—';
      log(
        row([
          c.label,
          c.encrypted ? 'on' : 'off',
          mean(t.push),
          median(t.push),
          SEG_MB / (mean(t.push) / 1000),
          mean(t.get),
          median(t.get),
          SEG_MB / (mean(t.get) / 1000),
          delta('push'),
          delta('get'),
          against,
        ]),
      );
    }
    log();
    log(
      "Each process pays Node's start-up and, for s3://, the AWS SDK's; the cipher adds its per-segment time above. " +
        'The runbook rows load and check a runbook (as an archive_command naming one does); the two-repository rows (`repositories:` file:// then s3://, `repositoryPolicy: all`) ' +
        'push each segment to both (compressed once, uploaded twice) and get it from the first, as restore_command does with `--fallback-repo` for the second. ' +
        "PostgreSQL's archiver normally finds segments already pushed by the read-ahead pusher and replay finds them in the prefetch spool " +
        '(plaintext, verified), so these per-call times are the worst case.',
    );
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
