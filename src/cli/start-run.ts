// Starting a runbook workflow from the CLI (`lifeboat recover`, `lifeboat
// repair`): the run tagged with its runbook from the start event on, a
// second start with the same id refused with how to follow the first, and
// what was started printed with its link in the UI (or why there is none).
import * as os from 'node:os';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { LifeboatError } from '../errors';
import { RUNBOOK_ATTRIBUTE } from '../recovery/search-attributes';
import { TASK_QUEUE } from '../runbook/schema';
import { printJson } from './run';
import { runPage, temporalUiBase } from './ui-link';

export interface RunToStart<I> {
  workflowType: string;
  runbook: string;
  workflowId: string;
  input: I;
  staticSummary: string;
  staticDetails: string;
}

/**
 * Starts the run on the shared task queue. LifeboatRunbook is set from the
 * start event on, not only from the run's first workflow task: a second
 * recovery started right after this one then finds it listed sooner
 * (activities/one-recovery.ts). A namespace no worker has prepared yet
 * (ensureSearchAttributes) refuses the attribute: the run then sets it itself.
 */
export async function startRun<I>(
  client: Client,
  namespace: string,
  run: RunToStart<I>,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const options = {
    taskQueue: TASK_QUEUE,
    workflowId: run.workflowId,
    args: [run.input] as [I],
    staticSummary: run.staticSummary,
    staticDetails: run.staticDetails,
  };
  return client.workflow
    .start(run.workflowType, { ...options, typedSearchAttributes: [{ key: RUNBOOK_ATTRIBUTE, value: run.runbook }] })
    .catch((err: unknown) => {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError) && String(err).includes(RUNBOOK_ATTRIBUTE.name))
        return client.workflow.start(run.workflowType, options);
      throw err;
    })
    .catch((err: unknown) => {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      throw new LifeboatError(
        'INPUT_INVALID',
        `a workflow with id ${run.workflowId} is already running in namespace ${namespace}`,
        {
          hints: [`follow it: lifeboat status ${run.workflowId} --watch`, 'or pass another --workflow-id'],
          cause: err,
        },
      );
    });
}

/**
 * Prints what was started: JSON (one document per line with --follow, like
 * status --watch --json), or `lines(ui)` for people, `ui` being the run's page
 * in the Temporal UI or why there is no link. Returns the UI's base address,
 * which --follow passes on to the watch.
 */
export async function printStarted<I>(
  opts: { json?: boolean; follow?: boolean; uiUrl?: string },
  where: { address: string; namespace: string },
  handle: WorkflowHandleWithFirstExecutionRunId,
  input: I,
  lines: (ui: string | { hint: string } | undefined) => string[],
): Promise<{ uiBase?: string }> {
  const uiBase = await temporalUiBase(where.address, process.env, opts.uiUrl);
  const ui =
    uiBase.base !== undefined
      ? runPage(uiBase.base, where.namespace, handle.workflowId, handle.firstExecutionRunId)
      : undefined;
  const started = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, input, ...(ui ? { ui } : {}) };
  if (opts.json) {
    if (opts.follow) process.stdout.write(`${JSON.stringify(started)}\n`);
    else printJson(started);
  } else {
    process.stdout.write(
      `${lines(ui ?? (uiBase.base === undefined ? { hint: uiBase.hint } : undefined)).join('\n')}\n`,
    );
  }
  return uiBase.base !== undefined ? { uiBase: uiBase.base } : {};
}

/** Who started the run, for the static details (the audit trail starts here). */
export function startedBy(): string | undefined {
  try {
    return `${os.userInfo().username}@${os.hostname()}`;
  } catch {
    return undefined; // no passwd entry in some containers
  }
}
