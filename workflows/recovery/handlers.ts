// The messages of a runbook workflow (DESIGN.md §4.2): the signals, the
// `decide` update and the `status` query, installed on its RecoveryMachine.
// Each message is parsed, then judged by one rule set (`refusal`, rules.ts):
// the update throws its refusal back to the caller, a refused signal is
// ignored and listed in status (a signal cannot answer). Accepted ones are
// recorded and applied to the step they name (`accept`).
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import type { z } from 'zod';
import {
  ApproveSignal,
  DecideUpdate,
  RejectSignal,
  RetargetSignal,
  StepSignal,
  type DecisionRecord,
  type IgnoredMessage,
  type StepRecord,
} from '../../src/recovery/contract';
import {
  abortSignal,
  approveSignal,
  decideUpdate,
  rejectSignal,
  retargetSignal,
  retrySignal,
  skipSignal,
  statusQuery,
} from '../../src/recovery/messages';
import { isErrorCode, type ErrorCode } from '../../src/errors';
import type { RecoveryMachine } from './machine';
import { describeIssues, policyOf, refusal, toIncoming, type Incoming } from './rules';

type Via = 'signal' | 'update';

/**
 * A refused update's answer: typed by the catalogue (a refusal that starts
 * with a code, "NOT_AN_APPROVER: ...", keeps it) and never retryable, since
 * the same decision is refused the same way. The message is the refusal as
 * status.ignored shows it.
 */
function refused(why: string, fallback: ErrorCode): ApplicationFailure {
  const code = /^([A-Z_]+): /.exec(why)?.[1];
  return ApplicationFailure.create({ type: isErrorCode(code) ? code : fallback, message: why, nonRetryable: true });
}

/** How status.ignored names a refused update: "decide approve", or "decide" when the decision is unreadable. */
function decisionName(raw: unknown): string {
  const d = (raw as { decision?: unknown } | null)?.decision;
  return typeof d === 'string' ? `decide ${d.slice(0, 20)}` : 'decide';
}

/** What the Temporal UI shows of each message beside its input (Send a Signal, Send an Update, Query). */
const HELP = {
  approve:
    'Approve the step awaiting approval. {"step": "approve-promote", "by": "alice", "comment": "rows checked"}; ' +
    'after a failed invariant add "override": true and the reason in comment.',
  reject:
    'Reject the step awaiting approval; the run stops there, fenced. ' +
    '{"step": "approve-promote", "by": "alice", "reason": "..."}',
  retarget:
    'At approve-promote: move the target. A later one continues the replay, an earlier one restores again. ' +
    '{"by": "alice", "target": {"time": "2026-06-04T14:31:00Z"}}',
  retry: 'Run a failed step again. {"step": "disable-writers", "by": "alice"}',
  skip:
    'Skip a failed step the runbook marks skippable, with a reason. ' +
    '{"step": "disable-writers", "by": "alice", "reason": "primary is gone"}',
  abort:
    'Stop the run at the current step, with a reason. Writers stay fenced. ' +
    '{"step": "replay-wal", "by": "alice", "reason": "..."}',
  decide:
    'Decide a step and get an answer: ' +
    '{"step": "approve-promote", "decision": "approve"|"reject"|"retry"|"skip"|"abort", ' +
    '"by": "alice", "comment": "..."}. ' +
    'Refused with a reason for a wrong step, a non-approver or a repeated decision.',
  status: 'Where the recovery stands: steps with state and timing, decisions, the pending approval, replay progress.',
} as const;

export function installMessageHandlers(run: RecoveryMachine): void {
  /** A signal's input as a decision, or the words for what is wrong with it. */
  const parsing =
    <S extends z.ZodType>(name: Incoming['name'], schema: S, asIncoming: (data: z.output<S>) => Incoming) =>
    (raw: unknown): Incoming | string => {
      const r = schema.safeParse(raw);
      return r.success ? asIncoming(r.data) : describeIssues(r.error.issues, name, run.pending);
    };
  const signal = (name: Incoming['name'], parse: (raw: unknown) => Incoming | string) => (raw: unknown) => {
    const parsed = parse(raw);
    if (typeof parsed === 'string') return ignore(run, 'signal', name, raw, parsed);
    const why = refusal(run, parsed);
    if (why) return ignore(run, 'signal', name, raw, why);
    accept(run, parsed, 'signal');
  };
  const approve = parsing('approve', ApproveSignal, (d) => ({ name: 'approve', ...d }));
  const reject = parsing('reject', RejectSignal, (d) => ({
    name: 'reject',
    step: d.step,
    by: d.by,
    comment: d.reason,
  }));
  const retarget = parsing('retarget', RetargetSignal, (d) => ({ name: 'retarget', ...d }));
  const onStep = (name: 'retry' | 'skip' | 'abort') =>
    parsing(name, StepSignal, (d) => ({ name, step: d.step, by: d.by, comment: d.reason }));
  setHandler(approveSignal, signal('approve', approve), { description: HELP.approve });
  setHandler(rejectSignal, signal('reject', reject), { description: HELP.reject });
  setHandler(retargetSignal, signal('retarget', retarget), { description: HELP.retarget });
  setHandler(retrySignal, signal('retry', onStep('retry')), { description: HELP.retry });
  setHandler(skipSignal, signal('skip', onStep('skip')), { description: HELP.skip });
  setHandler(abortSignal, signal('abort', onStep('abort')), { description: HELP.abort });
  // Refusals are judged in the handler, not in a validator: a validator's
  // rejection leaves no trace in the history, and every refusal must be in
  // status.ignored and the audit log like a refused signal. A refused
  // update is still answered with a typed, non-retryable failure; the
  // accepted-then-failed update stays in the history as well.
  setHandler(
    decideUpdate,
    (raw: DecideUpdate): StepRecord => {
      const r = DecideUpdate.safeParse(raw);
      if (!r.success) {
        const why = `decide: ${describeIssues(r.error.issues, 'decide', run.pending)}`;
        ignore(run, 'update', decisionName(raw), raw, why);
        throw refused(why, 'INPUT_INVALID');
      }
      const msg = toIncoming(r.data);
      const why = refusal(run, msg);
      if (why) {
        ignore(run, 'update', decisionName(raw), raw, why);
        throw refused(why, 'DECISION_REFUSED');
      }
      accept(run, msg, 'update');
      return { ...run.steps.get(r.data.step)! };
    },
    { description: HELP.decide },
  );
  setHandler(statusQuery, () => run.status(), { description: HELP.status });
}

/**
 * Acts on a decision that passed `refusal`: recorded in decisions and the
 * audit trail, then applied to the step it names.
 */
function accept(run: RecoveryMachine, m: Incoming, via: Via): void {
  const at = new Date().toISOString();
  const step = m.name === 'retarget' ? (run.pending?.step ?? 'approve-promote') : m.step;
  const record: DecisionRecord = {
    step,
    by: m.by,
    at,
    decision: m.name,
    via,
    ...(m.comment ? { comment: m.comment } : {}),
    ...(m.name === 'approve' && m.override ? { override: true } : {}),
    ...(m.name === 'retarget' ? { target: m.target } : {}),
    ...(m.name === 'approve' && m.include?.length ? { include: [...new Set(m.include)] } : {}),
  };
  run.decisions.push(record);
  run.audit({ at, event: 'decision', decision: record });
  const rec = run.steps.get(step)!;
  switch (m.name) {
    case 'approve': {
      run.approvedBy.add(m.by);
      if (m.override && step === 'approve-promote') run.invariantOverride = { by: m.by, reason: m.comment ?? '' };
      if (run.pending) run.pending = { ...run.pending, approvedBy: [...run.approvedBy] };
      if (run.approvedBy.size >= policyOf(run.runbook, step).min)
        run.finish(rec, 'done', `approved by ${[...run.approvedBy].join(', ')}`);
      break;
    }
    case 'reject':
      run.rejection = { step, by: m.by, reason: m.comment ?? '(no reason given)' };
      break;
    case 'retarget':
      run.retargetRequest = { by: m.by, target: m.target, ...(m.comment ? { comment: m.comment } : {}) };
      break;
    case 'retry':
    case 'skip':
      run.resolution = m.name;
      if (m.name === 'skip') rec.skipped = { by: m.by, reason: m.comment ?? '' };
      break;
    case 'abort':
      run.abortRequest = { step, by: m.by, reason: m.comment ?? '' };
      run.cancelStep();
      break;
  }
  run.publish();
}

/** A message not acted on: listed in status.ignored and the audit trail, and logged. */
function ignore(run: RecoveryMachine, via: Via, name: string, raw: unknown, why: string): void {
  const p = (raw ?? {}) as { by?: unknown; step?: unknown };
  const item: IgnoredMessage = {
    at: new Date().toISOString(),
    via,
    name,
    why,
    ...(typeof p.by === 'string' ? { by: p.by.slice(0, 100) } : {}),
    ...(typeof p.step === 'string' ? { step: p.step.slice(0, 100) } : {}),
  };
  run.ignored.push(item);
  run.audit({ at: item.at, event: 'ignored', ignored: item });
  log.warn('message ignored', { ...item });
  run.publish();
}
