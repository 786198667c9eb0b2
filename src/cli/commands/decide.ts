// `lifeboat approve|reject|retry|skip|abort <workflowId> <step> --as <who>`:
// an operator's decision on a recovery run (DESIGN.md §4.2). By default it is
// the `decide` update, so the operator hears back: the step's new state, or
// why the workflow refused (wrong step, not an approver, already decided).
// `--signal` sends the signal of the same name instead, as the Temporal UI
// does: no answer, and a refused signal only shows in `status`.
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import { LifeboatError, errorMessage } from '../../errors';
import { DecideUpdate, type DecisionKind, type StepId } from '../../recovery/contract';
import {
  abortSignal,
  approveSignal,
  decideUpdate,
  rejectSignal,
  retrySignal,
  skipSignal,
  type StepPayload,
} from '../../recovery/messages';
import type { TemporalOptions } from '../context';
import { printJson } from '../run';
import { stepLine } from '../status-view';
import { stepFromArgument, whoFromFlag } from '../target-options';
import { failureMessage } from '../../client/failure';
import { openRun, operatorError, type RecoveryRun } from './status';

type Options = TemporalOptions & {
  decision: DecisionKind;
  workflowId: string;
  step: string;
  as?: string;
  comment?: string;
  reason?: string;
  signal?: boolean;
  override?: boolean;
  /** approve-repair: classes restored besides the safe ones, comma-separated (changedSince, candidate). */
  include?: string;
  json?: boolean;
};

/** Decisions that change the outcome or drop a step: the audit log must say why. */
const NEEDS_REASON: ReadonlySet<DecisionKind> = new Set<DecisionKind>(['reject', 'skip', 'abort']);

/** The signals of the decisions other than approve: the same payload, with the text as the reason. */
const REASONED_SIGNALS: Record<Exclude<DecisionKind, 'approve'>, SignalDefinition<[StepPayload]>> = {
  reject: rejectSignal,
  retry: retrySignal,
  skip: skipSignal,
  abort: abortSignal,
};

// The update answers once the workflow has applied it; with no worker it
// would wait for as long as the RPC allows.
const UPDATE_TIMEOUT_MS = 60_000;

export async function run(opts: Options): Promise<number> {
  const { decision } = opts;
  const step = stepFromArgument(opts.step);
  const by = whoFromFlag(opts.as, decision);
  const reason = opts.reason?.trim();
  if (NEEDS_REASON.has(decision) && !reason) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `${decision} needs --reason <text>: why, in words the audit log and the evidence keep`,
      {
        hints: [`e.g. lifeboat ${decision} ${opts.workflowId} ${step} --as ${by} --reason "<why>"`],
      },
    );
  }
  // The update has one free-text field; the reason comes first when both are given.
  const text = [reason, opts.comment?.trim()].filter(Boolean).join(' -- ') || undefined;
  if (opts.override && decision !== 'approve') {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--override goes with approve only (it overrides failed invariants at approve-promote), not with ${decision}`,
    );
  }
  if (opts.override && !text) {
    throw new LifeboatError(
      'INPUT_INVALID',
      'approve --override needs --comment <text>: why promote although an invariant failed; the evidence keeps it',
      {
        hints: [`e.g. lifeboat approve ${opts.workflowId} ${step} --as ${by} --override --comment "<why>"`],
      },
    );
  }
  const include = opts.include
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (include?.length && (decision !== 'approve' || step !== 'approve-repair')) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `--include goes with approve approve-repair only (it adds conflicts or candidates to a repair), not with ${decision} ${step}`,
    );
  }
  const parsed = DecideUpdate.safeParse({
    step,
    decision,
    by,
    ...(text ? { comment: text } : {}),
    ...(opts.override ? { override: true } : {}),
    ...(include?.length ? { include } : {}),
  });
  if (!parsed.success) {
    throw new LifeboatError(
      'INPUT_INVALID',
      `${decision}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }

  const recovery = await openRun(opts, opts.workflowId);
  try {
    if (opts.signal) {
      return await sendSignal(recovery, parsed.data, opts.json === true).catch((err: unknown) => {
        throw operatorError(err, recovery);
      });
    }
    return await sendUpdate(recovery, parsed.data, opts.json === true);
  } finally {
    await recovery.client.connection.close();
  }
}

async function sendUpdate(recovery: RecoveryRun, update: DecideUpdate, json: boolean): Promise<number> {
  const { decision, step, by } = update;
  try {
    const record = await recovery.client.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () =>
      recovery.handle.executeUpdate(decideUpdate, { args: [update] }),
    );
    if (json) printJson({ accepted: true, decision, step, by, record });
    else
      process.stdout.write(
        `${decision} of ${step} by ${by}: accepted; ${step} is now ${record.state}\n${stepLine(record, undefined, new Date())}\n`,
      );
    return 0;
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw withHint(operatorError(err, recovery), recovery);
    // The workflow's validator refused: its message says why (not an approver, wrong step, ...).
    const refusal = failureMessage(err.cause ?? err);
    if (json) printJson({ accepted: false, decision, step, by, refusal });
    else
      process.stderr.write(`lifeboat: ${decision} of ${step} by ${by} refused by ${recovery.workflowId}: ${refusal}\n`);
    return 1;
  }
}

async function sendSignal(recovery: RecoveryRun, update: DecideUpdate, json: boolean): Promise<number> {
  const { handle, workflowId } = recovery;
  const { decision, step, by, comment, override, include } = update;
  const payload = { step, by } as { step: StepId; by: string };
  if (decision === 'approve') {
    await handle.signal(approveSignal, {
      ...payload,
      ...(comment ? { comment } : {}),
      ...(override ? { override: true } : {}),
      ...(include?.length ? { include } : {}),
    });
  } else {
    // The other four carry the one free-text field as their reason.
    await handle.signal(REASONED_SIGNALS[decision], { ...payload, ...(comment ? { reason: comment } : {}) });
  }
  if (json) printJson({ sent: true, signal: decision, step, by });
  else {
    process.stdout.write(
      `sent the ${decision} signal for ${step} by ${by} to ${workflowId}\n` +
        `  a signal gets no answer: lifeboat status ${workflowId} shows whether it was taken or ignored\n`,
    );
  }
  return 0;
}

function withHint(err: Error, recovery: RecoveryRun): Error {
  if (err instanceof LifeboatError || !/deadline/i.test(err.message)) return err;
  return new LifeboatError(
    'TOOL_FAILED',
    `${recovery.workflowId} did not answer within ${UPDATE_TIMEOUT_MS / 1000} s: ${errorMessage(err)}`,
    {
      hints: [
        'is a worker polling task queue lifeboat? (lifeboat worker)',
        `the decision may still be applied when a worker comes back: check lifeboat status ${recovery.workflowId}`,
      ],
      cause: err,
    },
  );
}
