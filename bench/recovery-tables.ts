// The recovery bench's report: the tables and the prose written into
// BENCHMARKS.md ("Recovery"), from the runs of every round.
import * as os from 'node:os';
import type { Evidence } from '../src/recovery/contract';
import { MiB, row, secondsSince, span, type Dataset } from './common';
import { pgBackRestVersion } from './pgbackrest';
import {
  BY_TIME,
  LIFEBOAT_KINDS,
  log,
  medianRun,
  ROUNDS,
  ROWS,
  SCALE,
  type LifeboatKind,
  type RowId,
  type Run,
} from './recovery-config';
import type { Setup } from './recovery-setup';
import { median } from './restore-log';
import { NEAR_HOLD_SECONDS, WARM_DELAY, WARM_RUNBOOK } from './warm';

/** What the rounds measured, and what the report says about how. */
export interface Measured {
  ds: Dataset;
  setup: Setup;
  runs: Record<RowId, Run[]>;
  evidence: Partial<Record<LifeboatKind, Evidence>>;
  nearDelays: string[];
  standbyBuilds: number[];
  standbyBefore: string;
  /** When the bench started (process.hrtime.bigint()). */
  started: bigint;
}

/** Logs the section: the conditions, the table of rows, the last round's RTOs and steps, and the notes. */
export function report({
  ds,
  setup,
  runs,
  evidence,
  nearDelays,
  standbyBuilds,
  standbyBefore,
  started,
}: Measured): void {
  const { cpuModel, loadAtStart, pgbrBackupSeconds } = setup;
  const med = Object.fromEntries(ROWS.map((id) => [id, medianRun(runs[id])])) as Partial<Record<RowId, Run>>;
  const m = ds.meta;
  const label: Record<RowId, string> = {
    limit: 'local-copy limit (`cp -a`, `restore_command = cp`)',
    pgbackrest: `${pgBackRestVersion()} (lz4, process-max 2, async archive-get)`,
    'pgbackrest-delta': `${pgBackRestVersion()}, restore --delta over the row above's paused copy: files = the stop and the restore`,
    file: 'Lifeboat, file://',
    'file-enc': 'Lifeboat, file://, client-side encryption (AES-256-GCM)',
    s3: 'Lifeboat, s3:// (MinIO)',
    's3-enc': 'Lifeboat, s3:// (MinIO), client-side encryption (AES-256-GCM)',
    two: 'Lifeboat, two repositories: file:// first, s3:// second (policy all)',
    near: `Lifeboat, warm standby about ${NEAR_HOLD_SECONDS} s of load behind the target (delay set per round): files = the take-over`,
    warm: `Lifeboat, warm standby (file://, delay ${WARM_DELAY}): files = the take-over`,
    'engine-delta':
      'Lifeboat, pgBackRest engine, engine.delta: true: retargeted to the target, restore --delta over its own copy (from the retarget)',
    engine: `Lifeboat, pgBackRest engine (${pgBackRestVersion()}, the same stanza): full restore`,
  };
  log(
    `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpuModel}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, PostgreSQL 15, MinIO on 127.0.0.1; load average at start ${loadAtStart}.`,
  );
  log(
    `Dataset: pgbench scale ${SCALE} (database ${(ds.dbBytes / MiB).toFixed(0)} MiB); Lifeboat's base backup ${m.backupId} of ${(m.sizeBytes / MiB).toFixed(0)} MiB (${(m.storedBytes / MiB).toFixed(0)} MiB stored), pgBackRest's full backup right after it (${pgbrBackupSeconds.toFixed(1)} s); ` +
      `then ${(ds.walBytes / MiB).toFixed(0)} MiB of WAL from the backup's start (${ds.walSegments} segments, ${(ds.walStoredBytes / MiB).toFixed(0)} MiB stored by Lifeboat) by the wide TPC-B load of bench/common.ts (4 clients); ` +
      `target: ${BY_TIME ? `the time ${ds.target} (restore point \`${ds.targetName}\` made right after it)` : `restore point \`${ds.targetName}\` (${ds.target})`}, followed by 2 s more load and the restore point \`${ds.laterName}\`. ${ROUNDS} interleaved round${ROUNDS > 1 ? 's' : ''}; medians.`,
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
      "The engine row: runbook `bench-engine` names the bench's pgBackRest stanza (`engine: { kind: pgbackrest, stanza, configPath }`); recoverToPointInTime restores pgBackRest's full backup with `pgbackrest restore` into an empty directory and replays through the restore_command pgBackRest writes, with Lifeboat's steps (gates, approvals, checks) around it, so it compares with the pgBackRest row (the same restore by hand) and with the file row (Lifeboat's own engine).",
    );
    log();
  }
  if (ROWS.includes('pgbackrest-delta') || ROWS.includes('engine-delta')) {
    log(
      "The delta rows restore again in place, over a copy already paused, with `pgbackrest restore --delta`: pgBackRest checksums every file of the directory, writes only those that differ from the backup's and removes those the backup lacks, then replay starts again from the backup's start. " +
        "pgbackrest-delta, by hand: the pgbackrest row's copy of the same round, paused at the target, is stopped (pg_ctl stop -m fast, as Lifeboat stops its own; the shutdown restartpoint writes what replay changed), restored with --delta to the same target and replayed; its files column is the stop and the restore. " +
        `engine-delta, Lifeboat: runbook \`bench-engine-delta\` (the same stanza, \`engine.delta: true\`); the recovery goes first to the restore point \`${ds.laterName}\` (made after the load that follows the target; untimed), then is retargeted to the target, which replay cannot reach going forward, so restore-base-backup runs again: Lifeboat stops its paused copy and pgBackRest restores with --delta over it (its own, unpromoted copy: the only directory Lifeboat lets delta write over, src/restore/delta.ts), then replay-wal replays to the target. ` +
        "Timed from the retarget signal to the copy paused again (files: to the end of the second restore-base-backup, with the stop and preflight again; replay: the second replay-wal); checked to hold exactly the rows at the target, and, in pgBackRest's log, that its last restore ran with --delta into the run's directory. Neither delta row promotes.",
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
      'engine-delta': 'pgBackRest engine, delta',
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
      log(row([kindName(a), kindName(b), ta, tb, ta - tb, `${(((ta - tb) / tb) * 100).toFixed(1)} %`, rto(a), rto(b)]));
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
      `Preparing the limit (untimed): restoring the backup once with Lifeboat's restore and decoding ${ds.walSegments} segments, ${setup.prepSeconds.toFixed(1)} s.`,
    );
  log(
    `Whole bench ${(secondsSince(started) / 60).toFixed(1)} min. Load average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}.`,
  );
}
