// `npm run bench` (after the archive bench), or `npm run bench:recovery`: how
// long recoverToPointInTime takes on this machine, written into the
// "Recovery" section of BENCHMARKS.md (between the recovery-bench markers).
//
// One dataset: a PostgreSQL 15 primary with pgbench data, a base backup taken
// by takeBaseBackup, then WAL from a pgbench load, archived by `lifeboat
// archive-push` into a file:// repository and copied object by object into a
// MinIO of its own, so both repository kinds restore the same bytes. The
// workflow runs on a Temporal dev server and an in-process worker of this
// bench; every approval is given as soon as it is asked for. Beside it, the
// local-copy limit: `cp -a` of the backed-up data directory and replay with
// `restore_command = cp` from a directory of plain segments; and the same
// replay with `lifeboat archive-get` but no workflow. Environment:
//   BENCH_SCALE   pgbench scale (default 22: a base backup of about 350 MiB)
//   BENCH_WAL_MB  MiB of WAL to generate after the backup (default 400)
//   BENCH_ONLY    `recovery` runs only this bench; any other value skips it
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client } from 'pg';
import { BASE_ARCHIVE } from '../src/backup/base-backup';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import { startTemporalDevServer } from '../src/dev/temporal-server';
import type { Evidence, StepId } from '../src/recovery/contract';
import { decideUpdate, statusQuery } from '../src/recovery/messages';
import { openRepository } from '../src/repository';
import { keys, walFileOfKey } from '../src/repository/layout';
import type { Repository } from '../src/repository/types';
import { writeRecoveryConf, writeSignalFile } from '../src/restore/recovery-conf';
import { lifeboatCommand } from '../src/tools';
import { decodeWal } from '../src/wal/compress';
import { parseLsn, walFileKind } from '../src/wal/names';
import { startWorkers } from '../src/worker';
import { PG_BIN, startPrimary } from '../test/harness/postgres';
import { freePort, waitFor } from '../test/harness/ports';
import { asPostgres, makeDataset, MiB, pgDir, row, secondsSince, span, startMinio, stopPostgres, writeBenchRunbook, writeBenchSection, type Dataset } from './common';

const SCALE = Math.max(1, Number(process.env.BENCH_SCALE ?? 22));
const WAL_MB = Math.max(16, Number(process.env.BENCH_WAL_MB ?? 400));
const SKIP = process.env.BENCH_ONLY !== undefined && process.env.BENCH_ONLY !== 'recovery';
/** Both runbooks name this cluster, so the file:// and s3:// repositories hold the same keys. */
const CLUSTER = 'bench';
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) => process.stderr.write(`[recovery bench] ${line}\n`);






/** Copies every object of the cluster, with its recorded sha256, from one repository to another. */
async function copyCluster(from: Repository, to: Repository): Promise<number> {
  const objects = await from.list(keys.clusterPrefix(CLUSTER));
  for (const o of objects) {
    const got = await from.getStream(o.key);
    if (!got?.info.sha256) throw new Error(`cannot copy ${o.key}: missing, or no recorded sha256`);
    await to.put(o.key, got.stream, { sha256: got.info.sha256, ifAbsent: true });
  }
  return objects.length;
}

/** Starts recoverToPointInTime, approves each approval as soon as it is asked for, and returns the evidence. */
async function recover(client: TemporalClient, taskQueue: string, runbook: string, target: string): Promise<Evidence> {
  const wf = await client.workflow.start('recoverToPointInTime', {
    taskQueue,
    workflowId: `bench-${runbook}-${Date.now().toString(36)}`,
    args: [{ runbook, target: { time: target }, incident: 'BENCH', reason: 'recovery benchmark' }],
  });
  let settled = false;
  const result = wf.result().finally(() => (settled = true));
  result.catch(() => undefined); // awaited below; only the polling loop must not leave it unhandled
  const approved = new Set<StepId>();
  while (!settled) {
    const st = await wf.query(statusQuery).catch(() => undefined);
    const failed = st?.steps.find((s) => s.state === 'failed');
    if (failed) {
      await wf.terminate('recovery bench: a step failed').catch(() => undefined);
      throw new Error(`${runbook}: ${failed.id} failed: ${failed.error?.type} ${failed.error?.message}\n${failed.error?.hints.join('\n')}`);
    }
    const p = st?.pending;
    if (p?.kind === 'approval' && !approved.has(p.step)) {
      approved.add(p.step);
      await wf.executeUpdate(decideUpdate, { args: [{ step: p.step, decision: 'approve', by: 'bench' }] });
    }
    await sleep(100);
  }
  return (await result) as Evidence;
}


/**
 * The floor under any restore: the backed-up data directory copied with
 * `cp -a` and replayed with `restore_command = cp` from plain segments on
 * local disk; the directory and segments are prepared from the same
 * repository objects first, untimed. Then the same replay with Lifeboat's
 * archive-get, to tell its cost from the workflow's. Runs before the
 * workflow does: a promoted copy archives a new timeline into the cluster.
 */
async function localRuns(work: string, fileRepo: Repository, fileUrl: string, ds: Dataset) {
  const local = pgDir(path.join(work, 'local'));
  const staged = pgDir(path.join(local, 'backup'));
  const walDir = pgDir(path.join(local, 'wal'));
  const archive = path.join(work, 'repo', keys.backupFile(CLUSTER, ds.meta.backupId, BASE_ARCHIVE));
  const extractSeconds = asPostgres('sh', ['-c', 'zstd -dcq "$1" | tar -xf - -C "$2"', 'extract', archive, staged]);
  const verifySeconds = asPostgres(`${PG_BIN}/pg_verifybackup`, ['-q', staged]);
  const t = process.hrtime.bigint();
  for (const o of await fileRepo.list(keys.walPrefix(CLUSTER))) {
    const name = walFileOfKey(CLUSTER, o.key);
    if (!name || walFileKind(name) !== 'segment' || name < ds.meta.startWal) continue;
    const plain = await decodeWal(name, (await fileRepo.get(o.key))!.body);
    if (createHash('sha256').update(plain).digest('hex') !== o.sha256) throw new Error(`${o.key} does not match its sha256`);
    writeFileSync(path.join(walDir, name), plain);
  }
  execFileSync('chown', ['-R', 'postgres:postgres', walDir]);
  const decodeSeconds = secondsSince(t);
  const cp = await replayCopy(local, 'cp', staged, ds, `cp ${walDir}/%f %p`);
  const get = await replayCopy(local, 'get', staged, ds, `${lifeboatCommand()} archive-get %f %p --repo ${fileUrl} --cluster ${CLUSTER}`);
  return { copySeconds: cp.copySeconds, cpReplaySeconds: cp.replaySeconds, getReplaySeconds: get.replaySeconds, walBytes: cp.walBytes, extractSeconds, verifySeconds, decodeSeconds };
}

/** `cp -a` of the staged backup, then replay to the target with `restoreCommand` until paused; the copy is stopped after. */
async function replayCopy(local: string, label: string, staged: string, ds: Dataset, restoreCommand: string) {
  const dataDir = path.join(local, `data-${label}`);
  const copySeconds = asPostgres('cp', ['-a', staged, dataDir]);
  const port = await freePort();
  // The settings Lifeboat's replay-wal writes, but for restore_command.
  await writeRecoveryConf(dataDir, { port, listenAddress: '127.0.0.1', socketDir: local, restoreCommand, target: { time: ds.target }, workflowId: `the recovery bench (${label})` }, 'postgres');
  await writeSignalFile(dataDir, 'recovery', 'postgres');
  const logFile = path.join(local, `postgres-${label}.log`);
  const t = process.hrtime.bigint();
  asPostgres(`${PG_BIN}/pg_ctl`, ['-D', dataDir, '-l', logFile, '-W', 'start']);
  try {
    const lsn = await waitFor(`the ${label} copy to pause at the target`, async () => {
      if (secondsSince(t) > 10 && !existsSync(path.join(dataDir, 'postmaster.pid'))) {
        throw new Error(`the ${label} copy stopped; its log ${logFile} ends:\n${readFileSync(logFile, 'utf8').split('\n').slice(-8).join('\n')}`);
      }
      const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const r = (await c.query<{ s: string; l: string }>(`select pg_get_wal_replay_pause_state() as s, pg_last_wal_replay_lsn()::text as l`)).rows[0]!;
        return r.s === 'paused' ? r.l : undefined;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, { timeoutMs: 3_600_000, intervalMs: 100 });
    return { copySeconds, replaySeconds: secondsSince(t), walBytes: Number(parseLsn(lsn) - parseLsn(ds.meta.startLsn)) };
  } finally {
    await stopPostgres(dataDir);
    // Its own copy, made above: provably ours. Frees the disk for the next one
    // (a prefetcher still exiting may race it; the bench's directory goes at the end anyway).
    try {
      rmSync(dataDir, { recursive: true, force: true });
    } catch {
      /* removed with the bench's directory */
    }
  }
}

/** RTO and its phases to the millisecond, from the evidence's timestamps (the evidence itself rounds to seconds). */
function phasesOf(e: Evidence) {
  const step = (id: string) => e.steps.find((s) => s.id === id);
  const d = (id: string) => span(step(id)?.startedAt, step(id)?.finishedAt) ?? 0;
  const rto = span(e.startedAt, e.promotedAt) ?? NaN;
  const restore = d('restore-base-backup');
  const replay = d('replay-wal');
  return { restore, replay, rest: rto - restore - replay, rto, approvals: d('approve-fence') + d('approve-promote') };
}

async function main(): Promise<void> {
  if (SKIP) {
    progress(`skipped (BENCH_ONLY=${process.env.BENCH_ONLY})`);
    return;
  }
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
    const pg = await startPrimary({ archive: { repo: fileUrl, cluster: CLUSTER }, conf: ['max_wal_size = 1GB', 'checkpoint_timeout = 5min'] });
    cleanups.push(() => pg.stop());
    const host = `bench${process.pid}`;
    const kinds = [
      { kind: 'file://', runbook: 'bench-file', url: fileUrl, endpointEnv: undefined },
      { kind: 's3://', runbook: 'bench-s3', url: s3Url, endpointEnv: 'S3_ENDPOINT' },
    ];
    for (const k of kinds) {
      const stateDir = pgDir(path.join(work, `state-${k.runbook}`));
      restored.push(path.join(stateDir, 'recovery'));
      writeBenchRunbook(runbooksDir, CLUSTER, { name: k.runbook, pgPort: pg.port, pgUser: 'postgres', database: 'postgres', repoUrl: k.url, endpointEnv: k.endpointEnv, host, stateDir, restorePort: await freePort(), drillPort: await freePort() });
    }

    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    const loadAtStart = os.loadavg().map((l) => l.toFixed(1)).join(' ');
    const ds = await makeDataset(pg, work, 'bench-file', { scale: SCALE, walMb: WAL_MB, cluster: CLUSTER, progress });
    const fileRepo = await openRepository(fileUrl);
    const s3Repo = await openRepository(s3Url, { endpointEnv: 'S3_ENDPOINT' });
    const copied = await copyCluster(fileRepo, s3Repo);
    progress(`dataset ready: target ${ds.target}, ${copied} objects copied into MinIO; local-copy limit`);
    const lim = await localRuns(work, fileRepo, fileUrl, ds);

    const temporal = await startTemporalDevServer({ port: await freePort(), logFile: path.join(work, 'temporal.log') });
    cleanups.push(temporal.stop);
    const taskQueue = `bench-recovery-${process.pid}`;
    const workers = await startWorkers({ address: temporal.address, namespace: 'default', host, taskQueue });
    cleanups.push(workers.shutdown);
    const connection = await Connection.connect({ address: temporal.address });
    cleanups.push(() => connection.close());
    const client = new TemporalClient({ connection });

    const evidence: Evidence[] = [];
    for (const [i, k] of kinds.entries()) {
      progress(`recovering from ${k.kind}`);
      evidence.push(await recover(client, taskQueue, k.runbook, ds.target));
      // The promoted copy is ours; stop it so the next run has the cores to itself.
      await stopPostgres(restored[i]!);
    }

    const m = ds.meta;
    log(`Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; load average at start ${loadAtStart}.`);
    log(`Dataset: pgbench scale ${SCALE} (database ${(ds.dbBytes / MiB).toFixed(0)} MiB); base backup ${m.backupId} of ${(m.sizeBytes / MiB).toFixed(0)} MiB (${(m.storedBytes / MiB).toFixed(0)} MiB stored); ` +
      `then ${(ds.walBytes / MiB).toFixed(0)} MiB of WAL from the backup's start (${ds.walSegments} segments, ${(ds.walStoredBytes / MiB).toFixed(0)} MiB stored) by the wide TPC-B load of bench/archive.ts (4 clients); target time ${ds.target}, followed by 2 s more load.`);
    log(`${ds.notes.join(' ')} The s3:// repository holds a copy of the file:// one's objects (same keys, same checksums), made after archiving: both runs restore the same bytes.`);
    log();
    log('| kind | restore s | replay s | rest s | RTO s | base MiB | WAL MiB | replay MiB/s |');
    log('|---|---|---|---|---|---|---|---|');
    for (const [i, e] of evidence.entries()) {
      const p = phasesOf(e);
      log(row([`recoverToPointInTime, ${kinds[i]!.kind}`, p.restore, p.replay, p.rest, p.rto, (e.baseBackupBytes ?? 0) / MiB, (e.walBytesReplayed ?? 0) / MiB, (e.walBytesReplayed ?? 0) / MiB / p.replay]));
    }
    log(row(['local-copy limit (`cp -a`, `restore_command = cp`)', lim.copySeconds, lim.cpReplaySeconds, '—', lim.copySeconds + lim.cpReplaySeconds, m.sizeBytes / MiB, lim.walBytes / MiB, lim.walBytes / MiB / lim.cpReplaySeconds]));
    log(row(['replay alone with `lifeboat archive-get` from file://, no workflow', '—', lim.getReplaySeconds, '—', '—', '—', lim.walBytes / MiB, lim.walBytes / MiB / lim.getReplaySeconds]));
    log();
    log('RTO: from the workflow\'s start to the promotion; restore and replay are the restore-base-backup and replay-wal steps; rest is everything else before the promotion, ' +
      'approvals included (given by the bench within about 0.1 s of being asked). Seconds from the evidence\'s timestamps; the evidence records the same in whole seconds:');
    log();
    for (const [i, e] of evidence.entries()) {
      const ph = e.rtoPhases ?? {};
      log(`- ${kinds[i]!.kind}: rtoObservedSeconds ${e.rtoObservedSeconds ?? '—'}, rtoPhases restore ${ph.restore ?? '—'}, replay ${ph.replay ?? '—'}, rest ${ph.rest ?? '—'}; approvals waited ${phasesOf(e).approvals.toFixed(1)} s; ${e.walSegmentsReplayed ?? '—'} segments replayed.`);
    }
    log();
    log('### Every step (wall time, s)');
    log();
    log(`| step | ${kinds.map((k) => k.kind).join(' | ')} |`);
    log(`|---|${kinds.map(() => '---').join('|')}|`);
    for (const s of evidence[0]!.steps) {
      const times = evidence.map((e) => {
        const x = e.steps.find((y) => y.id === s.id);
        return x?.state === 'done' ? span(x.startedAt, x.finishedAt) : undefined;
      });
      log(row([`${s.id}${s.id === 'promote' ? ' (the RTO ends inside it, at the promotion)' : ''}`, ...times]));
    }
    log();
    log('### The restore and the WAL, taken apart (local disk, not part of any row above)');
    log();
    log(`- \`zstd -dc base.tar.zst | tar -x\` as postgres: ${lim.extractSeconds.toFixed(1)} s (${(m.sizeBytes / MiB / lim.extractSeconds).toFixed(0)} MiB/s of data directory).`);
    log(`- \`pg_verifybackup\` of the extracted directory: ${lim.verifySeconds.toFixed(1)} s.`);
    log(`- Decoding and checking the ${ds.walSegments} stored segments in one Node process: ${lim.decodeSeconds.toFixed(1)} s (${(ds.walSegments * 16 / lim.decodeSeconds).toFixed(0)} MiB/s).`);
    log();
    log(`Load average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}.`);
    written = true;
  } finally {
    for (const dir of restored) await stopPostgres(dir);
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => progress(`cleanup: ${String(err)}`));
    // The bench's own temporary directory: provably ours.
    rmSync(work, { recursive: true, force: true });
  }
  if (written) writeBenchSection('recovery-bench', 'Recovery', out.join('\n'));
}


main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`recovery bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
