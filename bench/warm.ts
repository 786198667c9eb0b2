// The recovery bench's warm-path row (issue 13): a third runbook on the same
// cluster, `bench-warm`, declares a standby (src/standby/), and its recovery
// takes that standby over instead of restoring a backup. Its file://
// repository is a copy of the file row's (the same objects): the file row's
// last round promotes its copy, which archives a timeline 2 there.
//
// The standby's delay (BENCH_WARM_DELAY, default 6h) is longer than the whole
// bench, so recovery_min_apply_delay holds back the first commit of the WAL
// load: the standby stops just past the backup's consistency point, and a
// recovery to the target has to replay everything the load wrote. That is the
// most a standby ever replays for a target inside its delay (with a 1h delay,
// an incident noticed just under an hour after the target); replay depends on
// the WAL after the standby's position, never on the database's size.
//
// A take-over consumes the standby (its directory becomes the recovery's
// copy), so each round builds one from the backup, untimed, before its warm
// row. Built after the load or while it runs, it stops at the same place:
// PostgreSQL applies no delay before consistency (xlogrecovery.c
// recoveryApplyDelay: "no delay is applied on a database not yet
// consistent"), and holds the load's first commit after it.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadRunbook } from '../src/runbook/load';
import { buildStandby } from '../src/standby/build';
import { readStandbyStatus, standbyLine } from '../src/standby/status';
import { waitFor } from '../src/dev/ports';
import { secondsSince } from './common';

export const WARM_DELAY = process.env.BENCH_WARM_DELAY ?? '6h';
/**
 * The near row (issue 13's "target 10 minutes back" with a longer delay):
 * seconds of the load the standby is to hold back behind the target. Its
 * delay is set per round, before the standby is built, to the target's age
 * plus this plus a margin for the build, so that it has applied the load up
 * to about this many seconds before the target when it is taken over. What
 * it then replays is measured (MiB from its position to the target).
 */
export const NEAR_HOLD_SECONDS = Math.max(1, Number(process.env.BENCH_WARM_HOLD_S ?? 10));
/** What the build and settling take, added to the near row's delay (its hold shrinks by the time they really took). */
const NEAR_BUILD_MARGIN_SECONDS = 15;

/** Sets the bench-warm runbook's standby delay (a take-over consumes the standby; the next build uses it). */
export function setStandbyDelay(runbooksDir: string, delay: string): void {
  const file = path.join(runbooksDir, `${WARM_RUNBOOK}.yaml`);
  writeFileSync(file, readFileSync(file, 'utf8').replace(/delay: [^ ,}]+/, `delay: ${delay}`));
}

/** The near row's delay for a standby built now: the target's age, the hold and the margin, in whole seconds. */
export function nearDelay(targetTime: string): string {
  const age = (Date.now() - Date.parse(targetTime)) / 1000;
  return `${Math.ceil(age + NEAR_HOLD_SECONDS + NEAR_BUILD_MARGIN_SECONDS)}s`;
}
export const WARM_RUNBOOK = 'bench-warm';
/** Segments archive-get's prefetcher keeps spooled ahead of replay (its default --prefetch). */
const PREFETCH = 8;

/** Adds the standby section to the written bench-warm runbook (its dataDir beside the runbook's restore directory). */
export function addStandby(runbooksDir: string, s: { host: string; stateDir: string; port: number }): string {
  const file = path.join(runbooksDir, `${WARM_RUNBOOK}.yaml`);
  const dataDir = path.join(s.stateDir, 'standby');
  writeFileSync(
    file,
    `${readFileSync(file, 'utf8').trimEnd()}\nstandby: { host: ${s.host}, dataDir: ${dataDir}, port: ${s.port}, delay: ${WARM_DELAY} }\n`,
  );
  return dataDir;
}

/**
 * Builds the standby (or keeps the one there), untimed, and waits until it is
 * settled: replaying, holding a commit back for its delay (or at the archive's
 * end), and its prefetcher's spool filled (or the prefetcher gone), so that none of the build's work runs
 * inside a timed row. Returns the build's seconds and the status line.
 */
export async function ensureStandby(
  progress: (line: string) => void,
): Promise<{ seconds: number; action: string; line: string; replayLsn?: string }> {
  const t = process.hrtime.bigint();
  const runbook = await loadRunbook(WARM_RUNBOOK);
  const built = await buildStandby(runbook);
  const spool = path.join(runbook.standby!.dataDir, 'pg_wal', '.lifeboat-prefetch');
  const spooled = () => {
    try {
      const names = readdirSync(spool);
      return {
        segments: names.filter((n) => /^[0-9A-F]{24}$/.test(n)).length,
        follower: names.includes('prefetcher.pid'),
      };
    } catch {
      return { segments: 0, follower: false };
    }
  };
  const status = await waitFor(
    "the standby to hold a commit back (recovery_min_apply_delay) or reach the archive's end, its spool filled",
    async () => {
      const s = await readStandbyStatus(runbook);
      if (s.fellOff) throw new Error(`the bench's standby fell off: ${standbyLine(s)}`);
      const sp = spooled();
      // Held for its delay, or at the archive's end (the first build, before the load: no commit to hold yet).
      const still = s.waitingForDelay || s.segmentsBehind === 0;
      return s.healthy && still && (sp.segments >= Math.min(PREFETCH, s.segmentsBehind ?? 0) || !sp.follower)
        ? s
        : undefined;
    },
    { timeoutMs: 1_800_000, intervalMs: 200 },
  );
  const seconds = secondsSince(t);
  const line = standbyLine(status);
  progress(`standby ${built.action} in ${seconds.toFixed(1)} s: ${line}`);
  return { seconds, action: built.action, line, ...(status.replayLsn ? { replayLsn: status.replayLsn } : {}) };
}
