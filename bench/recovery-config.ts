// The recovery bench's settings (its environment, described in recovery.ts),
// its rows, what one row's run measures, and what every row is handed.
import type { Client as TemporalClient } from '@temporalio/client';
import type { Target } from '../src/recovery/contract';
import type { Dataset } from './common';
import type { CpuMeter } from './cpu';
import type { PgBackRest } from './pgbackrest';
import { median } from './restore-log';

export const SCALE = Math.max(1, Number(process.env.BENCH_SCALE ?? 50));
export const WAL_MB = Math.max(16, Number(process.env.BENCH_WAL_MB ?? 1024));
export const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
export const BY_TIME = process.env.BENCH_TARGET === 'time';
/** The target every row restores to. */
export const targetOf = (ds: Dataset): Extract<Target, { time: string } | { name: string }> =>
  BY_TIME ? { time: ds.target } : { name: ds.targetName };
export const SKIP = process.env.BENCH_ONLY !== undefined && process.env.BENCH_ONLY !== 'recovery';
/** Both runbooks name this cluster, so the file:// and s3:// repositories hold the same keys. */
export const CLUSTER = 'bench';
/** The variable holding the encrypted rows' key (a fresh one per run, in this process's environment). */
export const KEY_ENV = 'LIFEBOAT_BENCH_REPO_KEY';

/** What the bench writes into BENCHMARKS.md, also printed as it goes. */
export const out: string[] = [];
export const log = (line = '') => {
  out.push(line);
  process.stdout.write(`${line}\n`);
};
export const progress = (line: string) => process.stderr.write(`[recovery bench] ${line}\n`);

/** One restore to the paused copy. */
export interface Run {
  files: number;
  replay: number;
  total: number;
  cpu: number;
  /** restore_command calls that served a file, and those that found none (ms each, from the copy's log). */
  served: number[];
  missed: number[];
  /** The copy's startup process at the pause (cpu.ts startupProcessTimes): s on a CPU, s waiting for one, s waiting for disk. */
  startup?: { cpu: number; runqueue: number; io: number };
  /** CPU-s by kind of process (CpuMeter.breakdown), the largest first. */
  cpuBy?: Array<[string, number]>;
  /** The near row: MiB replayed (from redo's start to the pause), and from the standby's position to the pause. */
  replayedMiB?: number;
  behindMiB?: number;
}

export const ALL_ROWS = [
  'limit',
  'pgbackrest',
  'pgbackrest-delta',
  'file',
  'file-enc',
  's3',
  's3-enc',
  'two',
  'near',
  'warm',
  'engine-delta',
  'engine',
] as const;
export type RowId = (typeof ALL_ROWS)[number];
/** The rows run by recoverToPointInTime, each on a runbook of its own (bench-<kind>). */
export type LifeboatKind = 'file' | 'file-enc' | 's3' | 's3-enc' | 'two' | 'warm' | 'engine-delta' | 'engine';
export const LIFEBOAT_KINDS: readonly LifeboatKind[] = [
  'file',
  'file-enc',
  's3',
  's3-enc',
  'two',
  'warm',
  'engine-delta',
  'engine',
];
/** BENCH_ROWS, in the order of ALL_ROWS (rows of one round take turns in that order). */
export const ROWS: readonly RowId[] = (() => {
  const asked = process.env.BENCH_ROWS?.split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (!asked) return ALL_ROWS;
  const unknown = asked.filter((x) => !(ALL_ROWS as readonly string[]).includes(x));
  if (unknown.length > 0)
    throw new Error(`BENCH_ROWS: unknown row ${unknown.join(', ')} (rows: ${ALL_ROWS.join(', ')})`);
  if (asked.includes('pgbackrest-delta') && !asked.includes('pgbackrest'))
    throw new Error(
      "BENCH_ROWS: pgbackrest-delta restores over the pgbackrest row's copy of the same round: add pgbackrest",
    );
  return ALL_ROWS.filter((x) => asked.includes(x));
})();

export interface Bench {
  work: string;
  sockets: string;
  ds: Dataset;
  meter: () => CpuMeter;
  ready: string;
  walDir: string;
  pgbr: PgBackRest;
  client: TemporalClient;
  taskQueue: string;
  kinds: Record<LifeboatKind, { runbook: string; restoreDir: string; restorePort: number }>;
}

export function medianRun(runs: Run[]): Run {
  const m = (f: (r: Run) => number) => median(runs.map(f))!;
  return {
    files: m((r) => r.files),
    replay: m((r) => r.replay),
    total: m((r) => r.total),
    cpu: m((r) => r.cpu),
    served: runs.flatMap((r) => r.served),
    missed: runs.flatMap((r) => r.missed),
  };
}
