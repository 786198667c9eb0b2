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
// restore point (the target) with the rows it must show, a little more load
// and a later restore point (engine-delta's first target). Lifeboat's repository is copied object by object into a MinIO of its
// own, so s3:// restores the same bytes. Each round (interleaved) restores to
// the restore point and waits for the pause:
//   - the local-copy limit: `cp -a` of a ready data directory (the backup
//     restored once, untimed, by Lifeboat's own restore) and replay with
//     `restore_command = cp` from plain segments on local disk;
//   - pgBackRest: `pgbackrest restore --type=name --target-action=pause` and
//     the restore_command it writes (asynchronous archive-get);
//   - pgBackRest, delta: `pgbackrest restore --delta` to the same target over
//     the pgBackRest row's copy of the round, paused there and then stopped
//     (pg_ctl stop -m fast): an in-place restore again where most files
//     already match; timed from the stop;
//   - Lifeboat: recoverToPointInTime from file:// and from s3://, every
//     approval given as soon as asked, up to the paused copy (approve-promote);
//     the last round promotes, for the RTO and the steps;
//   - Lifeboat on the pgBackRest engine (engine: pgbackrest, the same stanza):
//     recoverToPointInTime restoring pgBackRest's full backup through
//     pgbackrest restore, replaying through its restore_command; last in each
//     round, since its promotion archives a new timeline into the stanza;
//   - Lifeboat on the pgBackRest engine with engine.delta: true: a recovery
//     paused at a later restore point (untimed) is retargeted to the target,
//     restores again with --delta over its own unpromoted copy (the retarget
//     path, src/restore/delta.ts) and replays; timed from the retarget to
//     the copy paused again; never promoted, so it runs before the engine row;
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
//                 pgbackrest-delta, file, file-enc, s3, s3-enc, two, near, warm,
//                 engine-delta, engine; pgbackrest-delta needs pgbackrest); e.g. a
//                 quick check of the encryption and two-repository rows:
//                 BENCH_ROWS=file,file-enc,s3,s3-enc,two BENCH_SCALE=2
//                 BENCH_WAL_MB=48 BENCH_ROUNDS=1 BENCH_DRY=1
//   BENCH_DRY=1   a trial run: BENCHMARKS.md is left alone (the tables are on stdout)
// The file-enc and s3-enc rows restore the same objects sealed with
// client-side encryption (repository.encryption; copied through
// src/repository/encrypted.ts into repositories of their own); the two row
// restores with `repositories:` file:// first and s3:// second (policy all,
// each its own copy), as a recovery does: from the first, restore_command
// with the second as its --fallback-repo.
// The parts: recovery-config.ts (this environment, the rows), recovery-setup.ts
// (services, dataset, runbooks), recovery-rows.ts (the rows by hand and the
// checks of every copy), recovery-workflow-rows.ts (the rows run by
// recoverToPointInTime), recovery-tables.ts (what goes into BENCHMARKS.md).
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import type { Evidence } from '../src/recovery/contract';
import { stopPostgres, writeBenchSection } from './common';
import {
  ALL_ROWS,
  out,
  progress,
  ROUNDS,
  ROWS,
  SCALE,
  SKIP,
  type LifeboatKind,
  type RowId,
  type Run,
} from './recovery-config';
import { clearRestoreSite, limitRun, pgBackRestDeltaRun, pgBackRestRun, type PausedCopy } from './recovery-rows';
import { setUpBench } from './recovery-setup';
import { report } from './recovery-tables';
import { engineDeltaRun, lifeboatRun } from './recovery-workflow-rows';
import { median } from './restore-log';
import { ensureStandby, nearDelay, setStandbyDelay, WARM_DELAY } from './warm';

/** One row's progress line (and its CPU by process), on stderr. */
function progressOf(r: Run): void {
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
  /** The pgbackrest row's copy, paused, until the pgbackrest-delta row takes it. */
  let paused: PausedCopy | undefined;
  let written = false;
  try {
    const setup = await setUpBench(work, cleanups, restored);
    const { b, runbooksDir } = setup;
    const ds = b.ds;
    const runs = Object.fromEntries(ALL_ROWS.map((id) => [id, [] as Run[]])) as Record<RowId, Run[]>;
    const nearDelays: string[] = [];
    const standbyBuilds: number[] = [];
    const evidence: Partial<Record<LifeboatKind, Evidence>> = {};
    let standbyBefore = '';
    for (let round = 1; round <= ROUNDS; round++) {
      const last = round === ROUNDS;
      for (const id of ROWS) {
        progress(`round ${round}/${ROUNDS}: ${id}`);
        if (id === 'limit') runs.limit.push(await limitRun(b, round));
        else if (id === 'pgbackrest') {
          const r = await pgBackRestRun(b, round, ROWS.includes('pgbackrest-delta'));
          paused = r.copy;
          runs.pgbackrest.push(r);
        } else if (id === 'pgbackrest-delta') {
          const copy = paused!;
          paused = undefined;
          runs['pgbackrest-delta'].push(await pgBackRestDeltaRun(b, round, copy));
        } else if (id === 'engine-delta') runs['engine-delta'].push(await engineDeltaRun(b));
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
        progressOf(runs[id].at(-1)!);
      }
    }
    report({ ds, setup, runs, evidence, nearDelays, standbyBuilds, standbyBefore, started });
    written = true;
  } finally {
    if (paused) await stopPostgres(paused.dataDir);
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
