// One recovery per runbook at a time (issue 10): the first thing a
// recoverToPointInTime run does, before preflight reads anything, is look
// for another run of the same runbook that started before it. It asks
// Temporal's visibility through the worker's own client, by the search
// attribute LifeboatRunbook that every run sets on its first workflow task
// (src/recovery/search-attributes.ts). The earliest-started run wins; every
// later one fails RECOVERY_ALREADY_RUNNING naming it, and the workflow ends
// at once (workflows/recovery/machine.ts). An operator who means to run two
// starts the second with `concurrent: true` (lifeboat recover --concurrent),
// and the workflow then never calls this.
//
// Visibility lags the runs themselves (the dev server writes it from a
// queue, a real cluster through Elasticsearch or SQL): a run is listed only
// once its LifeboatRunbook has been indexed, from the start event when
// `lifeboat recover` started it (it sets the attribute at start), else from
// the run's first workflow task (the Temporal UI's start form). This waits
// until its own run is listed, which narrows the gap, but nothing orders the
// indexing of two runs in general. Residual window: two runs started so close
// together that, when the later one lists, the earlier one is not indexed
// yet (on the dev server, milliseconds to about a second; wider for UI starts,
// whose attribute waits for a worker) both proceed. Closing it for
// good needs a claim with a compare-and-set (a workflow id derived from the
// runbook with a conflict policy, or a row in a table), which the public
// contract of workflow ids does not allow here. Runs recorded before this
// check (no LifeboatRunbook) are not seen at all.
//
// Run twice: it only reads visibility; a second run reads again.
import { Context } from '@temporalio/activity';
import { LifeboatError } from '../src/errors';
import { RUNBOOK_ATTRIBUTE } from '../src/recovery/search-attributes';
import { lifeboatActivity } from './failure';

/** How long to wait for this run to appear in visibility before deciding on what is listed. */
const OWN_LISTING_WAIT_MS = 15_000;

export interface OtherRecoveryCheck {
  /** What was checked, in words (goes into the preflight summary notes). */
  checked: string;
  /** Later runs of the runbook that were seen (they refuse themselves). */
  later: string[];
}

interface Listed {
  workflowId: string;
  runId: string;
  startTime: Date;
}

/** Fails RECOVERY_ALREADY_RUNNING when a recoverToPointInTime of this runbook started before this one is running. */
export async function checkNoOtherRecovery(input: { runbook: string }): Promise<OtherRecoveryCheck> {
  return lifeboatActivity(async () => {
    const ctx = Context.current();
    const self = ctx.info.workflowExecution;
    const workflowType = ctx.info.workflowType;
    // Standalone activities (no workflow) have neither: nothing to compare with.
    if (!self || !workflowType)
      throw new LifeboatError('INPUT_INVALID', 'checkNoOtherRecovery runs inside a recoverToPointInTime workflow only');
    const client = ctx.client;
    const me = await client.workflow.getHandle(self.workflowId, self.runId).describe();
    const query = [
      `WorkflowType = '${quote(workflowType)}'`,
      `ExecutionStatus = 'Running'`,
      `${RUNBOOK_ATTRIBUTE.name} = '${quote(input.runbook)}'`,
      // Deployments that share a namespace (staging, production) use their own task queue.
      `TaskQueue = '${quote(me.taskQueue)}'`,
    ].join(' AND ');
    const deadline = Date.now() + OWN_LISTING_WAIT_MS;
    let runs: Listed[];
    let ownListed: boolean;
    for (;;) {
      runs = [];
      for await (const w of client.workflow.list({ query }))
        runs.push({ workflowId: w.workflowId, runId: w.runId, startTime: w.startTime });
      ownListed = runs.some((r) => r.runId === self.runId);
      if (ownListed || Date.now() > deadline) break;
      await ctx.sleep(250);
    }
    const mine: Listed = { workflowId: self.workflowId, runId: self.runId, startTime: me.startTime };
    const others = runs.filter((r) => r.runId !== self.runId).sort(byStart);
    const earlier = others.filter((r) => byStart(r, mine) < 0);
    const first = earlier[0];
    if (first) {
      throw new LifeboatError(
        'RECOVERY_ALREADY_RUNNING',
        `another recovery of runbook ${input.runbook} is running: workflow ${first.workflowId} (run ${first.runId}), started ${first.startTime.toISOString()}; this one (${self.workflowId}) stopped before touching anything`,
        {
          hints: [
            `follow that one: lifeboat status ${first.workflowId} --watch`,
            `to recover with this one instead, end that one first (lifeboat abort ${first.workflowId} <step> --as <you> --reason "...") and start this again`,
            'if both must run (two targets side by side, each on its own restore host), start this one with lifeboat recover --concurrent (input "concurrent": true)',
          ],
          details: {
            running: first.workflowId,
            runningRunId: first.runId,
            ...(earlier.length > 1 ? { alsoRunning: earlier.slice(1).map((r) => r.workflowId) } : {}),
          },
        },
      );
    }
    const later = others.map((r) => r.workflowId);
    return {
      checked: ownListed
        ? `no earlier recovery of ${input.runbook} is running${later.length > 0 ? ` (later ones are refused: ${later.join(', ')})` : ''}`
        : `this run was not yet listed by Temporal's visibility after ${OWN_LISTING_WAIT_MS / 1000} s; no earlier recovery of ${input.runbook} was listed`,
      later,
    };
  });
}

/** Earliest start first; the same start time is ordered by workflow id, then run id, the same way for every run. */
function byStart(a: Listed, b: Listed): number {
  const t = a.startTime.getTime() - b.startTime.getTime();
  if (t !== 0) return t;
  if (a.workflowId !== b.workflowId) return a.workflowId < b.workflowId ? -1 : 1;
  return a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0;
}

/** A value inside single quotes of a visibility query. */
function quote(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}
