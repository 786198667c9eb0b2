// `npm run bench` (after the recovery bench), or `npm run bench:drill`: how
// long restoreDrill takes on this machine, by RTO phase, written into the
// "Drill" section of BENCHMARKS.md (between the drill-bench markers).
//
// The recovery bench's dataset (bench/common.ts makeDataset): a PostgreSQL 15
// primary with pgbench data, a base backup by takeBaseBackup, then WAL from a
// pgbench load archived by `lifeboat archive-push` into a file:// repository.
// The drills run on a Temporal dev server and an in-process worker of this
// bench (the drill host's queue and a shared queue of its own): (a) to a given
// target, the end of the load, so that all of the WAL is replayed; (b) with no
// target, so that the drill picks a random moment itself, as a scheduled one
// does. Environment:
//   BENCH_SCALE   pgbench scale (default 22: a base backup of about 350 MiB)
//   BENCH_WAL_MB  MiB of WAL to generate after the backup (default 400)
//   BENCH_ONLY    `drill` runs only this bench; any other value skips it
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Client as TemporalClient } from '@temporalio/client';
import { chownToOsUser } from '../src/dev/sandbox-pg';
import { RTO_PHASES, type DrillInput } from '../src/drill/contract';
import type { Evidence, Target } from '../src/recovery/contract';
import { startPrimary } from '../src/dev/scratch-primary';
import { freePort } from '../src/dev/ports';
import { startBenchTemporal } from './temporal';
import { makeDataset, MiB, pgDir, row, span, stopPostgres, writeBenchRunbook, writeBenchSection } from './common';

const SCALE = Math.max(1, Number(process.env.BENCH_SCALE ?? 22));
const WAL_MB = Math.max(16, Number(process.env.BENCH_WAL_MB ?? 400));
const SKIP = process.env.BENCH_ONLY !== undefined && process.env.BENCH_ONLY !== 'drill';
const CLUSTER = 'bench';
const RUNBOOK = 'bench-drill';
/** A second run of each kind only when the first was this quick (seconds of RTO). */
const QUICK_RTO = 60;
const out: string[] = [];
const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};
const progress = (line: string) => process.stderr.write(`[drill bench] ${line}\n`);
/** The 1-, 5- and 15-minute load averages, as /proc/loadavg has them. */
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Run {
  kind: string;
  evidence: Evidence;
  /** Phases in seconds to the millisecond, from the steps' timestamps (the evidence keeps tenths). */
  phases: Record<string, number>;
  rto: number;
}

/** Runs restoreDrill to its end; a failed drill fails the bench with the workflow's message. */
async function drill(client: TemporalClient, taskQueue: string, kind: string, target?: Target): Promise<Run> {
  const input: DrillInput = { runbook: RUNBOOK, ...(target ? { target } : {}) };
  const evidence = (await client.workflow.execute('restoreDrill', {
    taskQueue,
    workflowId: `bench-drill-${Date.now().toString(36)}`,
    args: [input],
  })) as Evidence;
  const step = (id: string) => evidence.steps.find((s) => s.id === id);
  const phases: Record<string, number> = {};
  for (const [phase, ids] of RTO_PHASES)
    phases[phase] = ids.reduce((n, id) => n + (span(step(id)?.startedAt, step(id)?.finishedAt) ?? 0), 0);
  const rto = span(evidence.startedAt, step('smoke-write')?.finishedAt) ?? NaN;
  progress(`${kind}: RTO ${rto.toFixed(1)} s, ${evidence.walSegmentsReplayed ?? '?'} segments replayed`);
  return { kind, evidence, phases, rto };
}

async function main(): Promise<void> {
  if (SKIP) {
    progress(`skipped (BENCH_ONLY=${process.env.BENCH_ONLY})`);
    return;
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'lifeboat-bench-drill-'));
  chownToOsUser(work, 'postgres');
  const cleanups: Array<() => Promise<unknown>> = [];
  const drillDir = path.join(work, 'state', 'drill');
  let written = false;
  try {
    process.env.LIFEBOAT_LOG_LEVEL ??= 'WARN';
    const runbooksDir = pgDir(path.join(work, 'runbooks'));
    // The worker in this process reads the runbooks from its environment.
    process.env.LIFEBOAT_RUNBOOKS_DIR = runbooksDir;
    const fileUrl = `file://${pgDir(path.join(work, 'repo'))}`;
    const pg = await startPrimary({
      archive: { repo: fileUrl, cluster: CLUSTER },
      conf: ['max_wal_size = 1GB', 'checkpoint_timeout = 5min'],
    });
    cleanups.push(() => pg.stop());
    const host = `bench${process.pid}`;
    const stateDir = pgDir(path.join(work, 'state'));
    writeBenchRunbook(runbooksDir, CLUSTER, {
      name: RUNBOOK,
      pgPort: pg.port,
      pgUser: 'postgres',
      database: 'postgres',
      repoUrl: fileUrl,
      host,
      stateDir,
      restorePort: await freePort(),
      drillPort: await freePort(),
    });

    const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
    const loadAtStart = loadavg();
    const ds = await makeDataset(pg, work, RUNBOOK, { scale: SCALE, walMb: WAL_MB, cluster: CLUSTER, progress });
    progress(`dataset ready: target ${ds.target}`);

    const taskQueue = `bench-drill-${process.pid}`;
    const { client } = await startBenchTemporal(work, host, taskQueue, cleanups);

    // The 1-minute load average every 5 s while the drills run.
    const loads: number[] = [];
    const sampler = setInterval(() => loads.push(Number(loadavg().split(' ')[0])), 5000);
    cleanups.push(() => Promise.resolve(clearInterval(sampler)));
    const loadBeforeDrills = loadavg();
    const runs: Run[] = [];
    const kinds: Array<[string, Target | undefined]> = [
      ['given target (end of the load)', { time: ds.target }],
      ['no target (random moment)', undefined],
    ];
    for (const [kind, target] of kinds) runs.push(await drill(client, taskQueue, kind, target));
    if (runs.every((r) => r.rto < QUICK_RTO))
      for (const [kind, target] of kinds) runs.push(await drill(client, taskQueue, kind, target));
    clearInterval(sampler);
    const loadAfterDrills = loadavg();

    const m = ds.meta;
    const phaseNames = RTO_PHASES.map(([p]) => p);
    log(
      `Measured ${new Date().toISOString()} on ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, PostgreSQL 15; ` +
        `load average (/proc/loadavg, 1/5/15 min) at start ${loadAtStart}, before the drills ${loadBeforeDrills}, after them ${loadAfterDrills}` +
        `${loads.length > 0 ? `; 1-minute figure during the drills ${Math.min(...loads).toFixed(1)} to ${Math.max(...loads).toFixed(1)}` : ''}.`,
    );
    log(
      `Dataset: pgbench scale ${SCALE} (database ${(ds.dbBytes / MiB).toFixed(0)} MiB); base backup ${m.backupId} of ${(m.sizeBytes / MiB).toFixed(0)} MiB (${(m.storedBytes / MiB).toFixed(0)} MiB stored); ` +
        `then ${(ds.walBytes / MiB).toFixed(0)} MiB of WAL from the backup's start (${ds.walSegments} segments, ${(ds.walStoredBytes / MiB).toFixed(0)} MiB stored in file://) by the wide TPC-B load of bench/archive.ts (4 clients); ` +
        `the given target ${ds.target} is the end of the load, followed by 2 s more load. ${ds.notes.join(' ')}`,
    );
    log();
    log(`| drill | ${phaseNames.join(' s | ')} s | RTO s | RPO s | segments | WAL MiB | base MiB | replay MiB/s |`);
    log(`|---|${phaseNames.map(() => '---').join('|')}|---|---|---|---|---|---|`);
    for (const r of runs) {
      const e = r.evidence;
      const walMiB = (e.walBytesReplayed ?? 0) / MiB;
      log(
        row([
          r.kind,
          ...phaseNames.map((p) => r.phases[p]),
          r.rto,
          e.rpoObservedSeconds,
          String(e.walSegmentsReplayed ?? '—'),
          walMiB,
          (e.baseBackupBytes ?? 0) / MiB,
          walMiB / r.phases.replay!,
        ]),
      );
    }
    log();
    log(
      "Seconds from the evidence's step timestamps, to the millisecond. RTO: from the drill's start to the smoke write read back; preflight includes pick-target. " +
        "RPO: the target minus the last commit replayed (the evidence's rpoObservedSeconds). The evidence records, in tenths:",
    );
    log();
    for (const r of runs) {
      const e = r.evidence;
      const ph = e.rtoPhases ?? {};
      log(
        `- ${r.kind}: target ${e.target && 'time' in e.target ? e.target.time : JSON.stringify(e.target)}, rtoObservedSeconds ${e.rtoObservedSeconds ?? '—'} (${phaseNames.map((p) => `${p} ${ph[p] ?? '—'}`).join(', ')}), ` +
          `rpoObservedSeconds ${e.rpoObservedSeconds ?? '—'}, ${e.validationStatus}; teardown ${span(e.steps.find((s) => s.id === 'teardown')?.startedAt, e.steps.find((s) => s.id === 'teardown')?.finishedAt)?.toFixed(1) ?? '—'} s after the RTO.`,
      );
    }
    written = true;
  } finally {
    // A drill that failed midway may have left its copy running: ours, in the bench's directory.
    await stopPostgres(drillDir);
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => progress(`cleanup: ${String(err)}`));
    // The bench's own temporary directory: provably ours.
    rmSync(work, { recursive: true, force: true });
  }
  if (written) writeBenchSection('drill-bench', 'Drill', out.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`drill bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
