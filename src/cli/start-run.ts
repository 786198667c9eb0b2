// Starting a runbook workflow from the CLI (`lifeboat recover`, `lifeboat
// repair`): the run tagged with its runbook from the start event on, a
// second start with the same id refused with how to follow the first, what
// was started printed with its link in the UI (or why there is none), and
// with --follow the run watched like `status --watch` until it closes.
import * as os from 'node:os';
import type { z } from 'zod';
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { connectClient, timestampedId } from '../client/temporal';
import { LifeboatError } from '../errors';
import { RUNBOOK_ATTRIBUTE } from '../recovery/search-attributes';
import { TASK_QUEUE } from '../runbook/schema';
import { watchRun } from './commands/status';
import { temporalTarget, type TemporalOptions } from './context';
import { printJson } from './run';
import { succeeded } from './status-view';
import { checklistLines, runPage, temporalUiBase } from './ui-link';

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

/**
 * A run's input checked by the schema the workflow checks, so a bad input
 * never starts a run: INPUT_INVALID naming each wrong field by its flag.
 */
export function parseRunInput<S extends z.ZodType>(
  command: string,
  schema: S,
  flagOf: Record<string, string>,
  raw: Record<string, unknown>,
): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const key = String(i.path[0] ?? '');
    return `${flagOf[key] ?? key}: ${i.message}`;
  });
  throw new LifeboatError('INPUT_INVALID', `${command}: ${lines.join('; ')}`);
}

/** A kind of run the CLI starts (a recovery, a repair): its workflow, and how a person and the Temporal UI read one. */
export interface RunKind<I> {
  workflowType: string;
  /** The workflow id's prefix when --workflow-id is not given: <prefix>-<runbook>-<time>. */
  idPrefix: string;
  /** One line: markdown for the UI's list of runs (staticSummary), or plain text for the terminal. */
  summary(input: I, markdown: boolean): string;
  /** The input as a table for the run's page in the UI (staticDetails). */
  details(input: I, startedBy: string | undefined): string;
  /** The host whose worker must also poll its host queue: the one that restores, or the drill site's. */
  host: 'restore' | 'drill';
  /** What to do next besides watching it. */
  next?(input: I, workflowId: string): string[];
}

/**
 * Connects to Temporal, starts the run (as --workflow-id, else a new id)
 * and prints it (printStarted; for a person startedLines); with --follow, watches it every `intervalSeconds`
 * until it closes. 0 when started (or, followed, when it ended well), 1 when not.
 */
export async function startAndFollow<I>(
  opts: TemporalOptions & { json?: boolean; follow?: boolean; workflowId?: string },
  kind: RunKind<I>,
  runbook: string,
  input: I,
  intervalSeconds: number,
): Promise<number> {
  const workflowId = opts.workflowId?.trim() || timestampedId(`${kind.idPrefix}-${runbook}`);
  const run = { runbook, workflowId, input };
  const temporal = await temporalTarget(opts);
  const { address, namespace } = temporal;
  const client = await connectClient(temporal);
  try {
    const handle = await startRun(client, namespace, {
      ...run,
      workflowType: kind.workflowType,
      staticSummary: kind.summary(run.input, true),
      staticDetails: kind.details(run.input, startedBy()),
    });
    const uiBase = await printStarted(opts, { address, namespace }, handle, run.input, (ui) =>
      startedLines(kind, run, ui),
    );
    if (!opts.follow) return 0;
    const last = await watchRun(
      { client, handle, workflowId: run.workflowId, namespace, address, ...uiBase },
      { intervalSeconds, json: opts.json === true },
    );
    return succeeded(last) ? 0 : 1;
  } finally {
    await client.connection.close();
  }
}

/** What was started, for a person; `ui`: the run's checklist in the UI, or why there is no link and how to get one. */
export function startedLines<I>(
  kind: RunKind<I>,
  run: { workflowId: string; input: I },
  ui: string | { hint: string } | undefined,
): string[] {
  return [
    `started ${kind.workflowType} ${run.workflowId}`,
    `  ${kind.summary(run.input, false)}`,
    `  on task queue ${TASK_QUEUE}: a worker must poll it (lifeboat worker), and the ${kind.host} host's worker its host queue`,
    'next:',
    `  lifeboat status ${run.workflowId} --watch`,
    ...(kind.next?.(run.input, run.workflowId) ?? []),
    ...(typeof ui === 'string' ? checklistLines(ui).map((l) => `  ${l}`) : ui ? [`  (${ui.hint})`] : []),
  ];
}

/** Who started the run, for the static details (the audit trail starts here). */
export function startedBy(): string | undefined {
  try {
    return `${os.userInfo().username}@${os.hostname()}`;
  } catch {
    return undefined; // no passwd entry in some containers
  }
}
