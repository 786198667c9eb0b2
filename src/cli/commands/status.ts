// `lifeboat status <workflowId> [--watch]`: what a recovery run is doing.
// One look = the `status` query (steps, decisions, pending approval) plus the
// description of the run (heartbeats of the restore and replay activities,
// which the workflow itself only sees when they finish). A closed run whose
// query no longer answers (no worker) is shown from its result instead.
// Under it, when a Temporal UI is known (src/cli/ui-link.ts), the link to
// the run's checklist tab; without one, nothing (recover says how to get it).
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { failureMessage } from '../../client/failure';
import { connectClient } from '../../client/temporal';
import { LifeboatError, errorMessage } from '../../errors';
import type { Evidence } from '../../recovery/contract';
import { RECOVERY_WORKFLOW, REPAIR_WORKFLOW, statusQuery } from '../../recovery/messages';
import { intOption, temporalTarget, type TemporalOptions } from '../context';
import { printJson } from '../run';
import { renderStatus, succeeded, type LiveProgress, type StatusSnapshot } from '../status-view';
import { checklistLines, runPage, temporalUiBase } from '../ui-link';

/** A recovery run as the CLI reaches it. */
export interface RecoveryRun {
  client: Client;
  handle: WorkflowHandle;
  workflowId: string;
  namespace: string;
  address: string;
  /** The Temporal UI's address, when one is known: links to the run's checklist. */
  uiBase?: string;
}

/** A look at the run, with its run id and, when a UI is known, the link to its checklist tab. */
export type StatusLook = StatusSnapshot & { runId: string; ui?: string };

// A query waits for a worker to answer; without one it would wait for the
// whole RPC timeout, and a watch would seem frozen.
const QUERY_TIMEOUT_MS = 10_000;

type Options = TemporalOptions & { workflowId: string; watch?: boolean; json?: boolean; interval?: string };

export async function run(opts: Options): Promise<number> {
  const intervalSeconds = intOption(opts.interval ?? '2', '--interval');
  const recovery = await openRun(opts, opts.workflowId);
  try {
    const ui = await temporalUiBase(recovery.address, process.env, opts.uiUrl);
    if (ui.base !== undefined) recovery.uiBase = ui.base;
    if (opts.watch) return exitCode(await watchRun(recovery, { intervalSeconds, json: opts.json === true }));
    const snap = await fetchSnapshot(recovery);
    if (opts.json) printJson(snap);
    else process.stdout.write(`${renderLook(snap, useColor())}\n`);
    return exitCode(snap);
  } finally {
    await recovery.client.connection.close();
  }
}

export async function openRun(opts: TemporalOptions, workflowId: string): Promise<RecoveryRun> {
  const temporal = await temporalTarget(opts);
  const { address, namespace } = temporal;
  const client = await connectClient(temporal);
  return { client, handle: client.workflow.getHandle(workflowId), workflowId, namespace, address };
}

/** An open run reads 0; a closed one 0 only when it completed and its evidence passed. */
function exitCode(snap: StatusSnapshot): number {
  return !snap.closed || succeeded(snap) ? 0 : 1;
}

export async function fetchSnapshot(recovery: RecoveryRun): Promise<StatusLook> {
  const { handle, workflowId } = recovery;
  const description = await handle.describe().catch((err: unknown) => {
    throw operatorError(err, recovery);
  });
  // A repair runs on the recovery's machinery: the same status query, steps and decisions.
  if (description.type !== RECOVERY_WORKFLOW && description.type !== REPAIR_WORKFLOW) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `workflow ${workflowId} is a ${description.type} run, not ${RECOVERY_WORKFLOW} or ${REPAIR_WORKFLOW}`,
      {
        hints: [
          'lifeboat status reads recoveries and repairs started by lifeboat recover, lifeboat repair or the Temporal UI',
        ],
      },
    );
  }
  const snap: StatusLook = {
    workflowId,
    runId: description.runId,
    ...(recovery.uiBase !== undefined
      ? { ui: runPage(recovery.uiBase, recovery.namespace, workflowId, description.runId) }
      : {}),
    startedAt: description.startTime.toISOString(),
    progress: liveProgress(description.raw.pendingActivities ?? []),
  };
  const giveUp = new AbortController();
  const timer = setTimeout(() => giveUp.abort(), QUERY_TIMEOUT_MS);
  try {
    snap.status = await recovery.client.withAbortSignal(giveUp.signal, () => handle.query(statusQuery));
  } catch (err) {
    // The server's own words are in the cause ("Failed to query Workflow" alone says nothing).
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    snap.queryError = giveUp.signal.aborted
      ? `no answer within ${QUERY_TIMEOUT_MS / 1000} s`
      : `${errorMessage(err)}${cause}`;
  } finally {
    clearTimeout(timer);
  }
  if (description.status.name !== 'RUNNING') {
    snap.closed = {
      status: description.status.name,
      ...(description.closeTime ? { at: description.closeTime.toISOString() } : {}),
    };
    try {
      snap.result = (await handle.result()) as Evidence;
    } catch (err) {
      snap.failure = failureMessage(err);
    }
  }
  return snap;
}

/** Redraws until the run closes; returns the last look. */
export async function watchRun(
  recovery: RecoveryRun,
  opts: { intervalSeconds: number; json: boolean },
): Promise<StatusLook> {
  const tty = process.stdout.isTTY === true;
  let last = '';
  let lastError = '';
  let seen = false;
  for (;;) {
    let snap: StatusLook;
    try {
      snap = await fetchSnapshot(recovery);
      seen = true;
    } catch (err) {
      // A wrong id fails at once; a connection blip during a long watch must
      // not end the watch an operator is relying on.
      if (!seen) throw err;
      const line = `lifeboat: cannot read ${recovery.workflowId}: ${errorMessage(err)} (trying again every ${opts.intervalSeconds} s)`;
      if (line !== lastError) process.stderr.write(`${line}\n`);
      lastError = line;
      await sleep(opts.intervalSeconds * 1000);
      continue;
    }
    lastError = '';
    // Compared as data, not as text: the elapsed times in the text change every second.
    const key = JSON.stringify(snap);
    if (opts.json) {
      if (key !== last) process.stdout.write(`${key}\n`);
    } else if (tty) {
      // Redrawn in place every look: the elapsed times and bars move even when the data does not.
      const footer = snap.closed
        ? ''
        : `\n\n${paintDim(`watching every ${opts.intervalSeconds} s; Ctrl-C stops watching, not the recovery`)}`;
      process.stdout.write(`\x1b[H\x1b[2J${renderLook(snap, useColor())}${footer}\n`);
    } else if (key !== last) {
      process.stdout.write(`${renderLook(snap, false)}\n\n`);
    }
    last = key;
    if (snap.closed) return snap;
    await sleep(opts.intervalSeconds * 1000);
  }
}

/** Heartbeat details of the restore and replay activities (the first heartbeat argument, JSON). */
function liveProgress(
  pending: Array<{
    activityType?: { name?: string | null } | null;
    heartbeatDetails?: { payloads?: Array<{ data?: Uint8Array | null }> | null } | null;
  }>,
): LiveProgress {
  const progress: LiveProgress = {};
  for (const activity of pending) {
    const data = activity.heartbeatDetails?.payloads?.[0]?.data;
    if (!data) continue;
    let details: unknown;
    try {
      details = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      continue; // not ours or not JSON: show no bar rather than fail the look
    }
    if (activity.activityType?.name === 'restoreBaseBackup') progress.restore = details as LiveProgress['restore'];
    if (activity.activityType?.name === 'replayWal') progress.replay = details as LiveProgress['replay'];
  }
  return progress;
}

/** The status as text, then the link to the run's checklist tab when a UI is known. */
function renderLook(snap: StatusLook, color: boolean): string {
  const text = renderStatus(snap, { now: renderTime(snap), color });
  return snap.ui ? `${text}\n\n${checklistLines(snap.ui).join('\n  ')}` : text;
}

function renderTime(snap: StatusSnapshot): Date {
  return snap.closed?.at ? new Date(snap.closed.at) : new Date();
}

function paintDim(text: string): string {
  return useColor() ? `\x1b[2m${text}\x1b[0m` : text;
}

export function useColor(): boolean {
  return process.stdout.isTTY === true && !process.env.NO_COLOR;
}

/** What a Temporal error means for the operator who typed the workflow id. */
export function operatorError(err: unknown, recovery: RecoveryRun): Error {
  if (err instanceof WorkflowNotFoundError && /already completed/.test(err.message)) {
    // Temporal reports a signal or update to a closed run as "not found".
    return new Error(
      `workflow ${recovery.workflowId} has already ended; it takes no more decisions\nHINT: lifeboat status ${recovery.workflowId} shows how it ended`,
      { cause: err },
    );
  }
  if (err instanceof WorkflowNotFoundError) {
    return new LifeboatError(
      'INPUT_INVALID',
      `no workflow "${recovery.workflowId}" in namespace ${recovery.namespace} at ${recovery.address}`,
      {
        hints: [
          'lifeboat recover prints the id it started (recover-<runbook>-<time>)',
          `list recent recoveries: temporal workflow list --namespace ${recovery.namespace} --query "WorkflowType='${RECOVERY_WORKFLOW}'"`,
        ],
        cause: err,
      },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}
