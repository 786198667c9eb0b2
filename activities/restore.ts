// Activities of recoverToPointInTime that own the restored data directory
// and its postmaster (shared/DESIGN.md §4.1 steps 7, 8 and the promotion of
// 11). They run on the restore host's queue (`lifeboat-host-<host>`): they
// need its disk and its processes. restoreDrill calls the same activities with
// `instance: 'drill'` on the drill host's queue (src/restore/site.ts). The work lives in src/restore/; here are
// heartbeats, cancellation and the failure types.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type {
  ReplayInput,
  ReplayResult,
  RestoreInput,
  RestoreInstanceKind,
  RestoreProgress,
  RestoreResult,
  RestoreSiteCheck,
  RestoreSiteInput,
} from '../src/recovery/contract';
import type { Claim } from '../src/restore/claim';
import { checkRestoreRoom as checkRoom } from '../src/restore/room';
import { checkSiteFree } from '../src/restore/site-check';
import { loadRunbook } from '../src/runbook/load';
import { runbookWithRepository } from '../src/repository/multi';
import { promoteRestored as promote, stopRestored as stop } from '../src/restore/instance';
import { replayWal as replay } from '../src/restore/replay';
import { restoreBaseBackup as restore } from '../src/restore/restore';
import { restoreWithEngine } from '../src/restore/engine-restore';
import { engineSetting } from '../src/runbook/engine';
import { replayText, restoreText } from '../src/recovery/progress-text';
import { heartbeat, lifeboatActivity } from './failure';

/**
 * lifeboatActivity, plus cancellation: Temporal reports a cancellation only
 * for the CancelledFailure it gave us, not for the AbortError of a sleep or
 * pipeline it interrupted.
 */
async function hostActivity<T>(body: (ctx: Context) => Promise<T>): Promise<T> {
  const ctx = Context.current();
  try {
    return await lifeboatActivity(() => body(ctx));
  } catch (err) {
    if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
    throw err;
  }
}

/**
 * Fetches and extracts the base backup into restore.dataDir (drill.dataDir
 * for a drill); heartbeats RestoreProgress while downloading. Run twice: the
 * directory is claimed (`<dataDir>.lifeboat-claim`, naming the workflow, run
 * and process) before anything is read or written, and a claim whose process
 * died is taken over; a second attempt finds its own run's interrupted
 * extraction (marker `extracting`, never started) and extracts again, since
 * the repository reproduces it byte for byte. Anything else is moved aside,
 * never deleted, and another run's claim is refused.
 */
export async function restoreBaseBackup(input: RestoreInput): Promise<RestoreResult> {
  return hostActivity(async (ctx) => {
    const runbook = runbookWithRepository(await loadRunbook(input.runbook), input.repository);
    let last = { phase: '', at: 0 };
    // Another engine's backup (engine: pgbackrest): its own restore inside the same claim and marker (src/restore/engine-restore.ts).
    return (engineSetting(runbook).kind === 'lifeboat' ? restore : restoreWithEngine)(runbook, input, {
      signal: ctx.cancellationSignal,
      holderRunning: (claim) => holderRunning(ctx, claim),
      onProgress: (p: RestoreProgress) => {
        // Every downloaded chunk reports; a heartbeat a second is plenty.
        if (p.phase === last.phase && Date.now() - last.at < 1000) return;
        last = { phase: p.phase, at: Date.now() };
        heartbeat({ ...p, text: restoreText(p) });
      },
    });
  });
}

/**
 * Whether the workflow run named by a handed-over claim (a drill's, kept
 * until its teardown) is still running, asked of Temporal. Undefined when it
 * cannot be told (no client, Temporal unreachable): the claim then holds.
 */
async function holderRunning(ctx: Context, claim: Claim): Promise<boolean | undefined> {
  let client;
  try {
    client = ctx.client;
  } catch {
    return undefined; // a test's MockActivityEnvironment without a client
  }
  try {
    const d = await client.workflow.getHandle(claim.workflowId, claim.runId).describe();
    return d.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    return undefined;
  }
}

/**
 * Can the restore use its site? The directory and port of restore (or
 * drill) free or this run's (DATA_DIR_NOT_EMPTY, PORT_IN_USE: a stranger's
 * files, a previous copy still running, another server on the port), then
 * free space on the volume against the backup plus the WAL replay keeps on
 * disk (DISK_FULL naming the kept moved-aside copies). Only reads, so it
 * runs in preflight, before anything is fenced, and is safe to repeat.
 */
export async function checkRestoreSite(input: RestoreSiteInput): Promise<RestoreSiteCheck> {
  // lifeboatActivity heartbeats while pg_ctl status and du run.
  return hostActivity(async (ctx) => {
    const runbook = await loadRunbook(input.runbook);
    // Only a run that says who it is can be told its own copy from someone's
    // data: without workflowId (histories recorded before), room only.
    const site = input.workflowId
      ? await checkSiteFree(runbook, input, { holderRunning: (claim) => holderRunning(ctx, claim) })
      : undefined;
    return { ...(await checkRoom(runbook, input)), ...(site ? { site } : {}) };
  });
}

/**
 * Starts recovery on the restored copy and waits until it pauses at the
 * target; heartbeats ReplayProgress. Cancelled, it stops waiting and leaves
 * PostgreSQL replaying: the next call waits for it again. Run twice: the
 * postmaster outlives a dead worker (pg_ctl detaches it), and a second
 * attempt finds it running with the same target and only waits; a stopped
 * copy restarts from its last restartpoint. It never promotes.
 */
export async function replayWal(input: ReplayInput): Promise<ReplayResult> {
  return hostActivity(async (ctx) => {
    const runbook = runbookWithRepository(await loadRunbook(input.runbook), input.repository);
    return replay(runbook, input, {
      signal: ctx.cancellationSignal,
      onProgress: (p) => heartbeat({ ...p, text: replayText(p) }),
    });
  });
}

/**
 * Promotes the paused copy. Run twice: the marker and pg_is_in_recovery()
 * show a promotion that already happened (a dead attempt's pg_ctl promote still
 * completes on the server), and a repeated call reports it instead of
 * promoting again.
 */
export async function promoteRestored(input: {
  runbook: string;
  workflowId: string;
  runId: string;
  instance?: RestoreInstanceKind;
}): Promise<{ promotedAt: string; timeline: number; lsn: string }> {
  return lifeboatActivity(async () => promote(await loadRunbook(input.runbook), input));
}

/** Stops the restored postmaster and keeps its directory (the end of a dry run). Run twice: stopping a stopped copy is a no-op. */
export async function stopRestored(input: {
  runbook: string;
  workflowId: string;
  instance?: RestoreInstanceKind;
}): Promise<{ stopped: boolean; dataDir: string }> {
  return lifeboatActivity(async () => stop(await loadRunbook(input.runbook), input));
}
