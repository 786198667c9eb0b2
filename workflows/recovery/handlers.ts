// The messages of a runbook workflow (DESIGN.md §4.2): the signals, the
// `decide` update and the `status` query, installed on its RecoveryMachine.
// Each message is parsed, then judged by one rule set (`refusal`, rules.ts):
// the update throws its refusal back to the caller, a refused signal is
// ignored and listed in status (a signal cannot answer). Accepted ones go to
// the machine (RecoveryMachine.accept).
import { ApplicationFailure, setHandler } from '@temporalio/workflow';
import {
  ApproveSignal,
  DecideUpdate,
  RejectSignal,
  RetargetSignal,
  StepSignal,
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
import { describeIssues, refusal, toIncoming, type Incoming } from './rules';

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

export function installMessageHandlers(run: RecoveryMachine): void {
  const signal = (name: Incoming['name'], parse: (raw: unknown) => Incoming | string) => (raw: unknown) => {
    const parsed = parse(raw);
    if (typeof parsed === 'string') return run.ignore('signal', name, raw, parsed);
    const why = refusal(run, parsed);
    if (why) return run.ignore('signal', name, raw, why);
    run.accept(parsed, 'signal');
  };
  const stepMsg = (name: 'retry' | 'skip' | 'abort') => (raw: unknown) => {
    const r = StepSignal.safeParse(raw);
    return r.success
      ? { name, step: r.data.step, by: r.data.by, comment: r.data.reason }
      : describeIssues(r.error.issues, name, run.pending);
  };
  setHandler(
    approveSignal,
    signal('approve', (raw) => {
      const r = ApproveSignal.safeParse(raw);
      return r.success ? { name: 'approve', ...r.data } : describeIssues(r.error.issues, 'approve', run.pending);
    }),
    {
      description:
        'Approve the step awaiting approval. {"step": "approve-promote", "by": "alice", "comment": "rows checked"}; after a failed invariant add "override": true and the reason in comment.',
    },
  );
  setHandler(
    rejectSignal,
    signal('reject', (raw) => {
      const r = RejectSignal.safeParse(raw);
      return r.success
        ? { name: 'reject', step: r.data.step, by: r.data.by, comment: r.data.reason }
        : describeIssues(r.error.issues, 'reject', run.pending);
    }),
    {
      description:
        'Reject the step awaiting approval; the run stops there, fenced. {"step": "approve-promote", "by": "alice", "reason": "..."}',
    },
  );
  setHandler(
    retargetSignal,
    signal('retarget', (raw) => {
      const r = RetargetSignal.safeParse(raw);
      return r.success ? { name: 'retarget', ...r.data } : describeIssues(r.error.issues, 'retarget');
    }),
    {
      description:
        'At approve-promote: move the target. A later one continues the replay, an earlier one restores again. {"by": "alice", "target": {"time": "2026-06-04T14:31:00Z"}}',
    },
  );
  setHandler(retrySignal, signal('retry', stepMsg('retry')), {
    description: 'Run a failed step again. {"step": "disable-writers", "by": "alice"}',
  });
  setHandler(skipSignal, signal('skip', stepMsg('skip')), {
    description:
      'Skip a failed step the runbook marks skippable, with a reason. {"step": "disable-writers", "by": "alice", "reason": "primary is gone"}',
  });
  setHandler(abortSignal, signal('abort', stepMsg('abort')), {
    description:
      'Stop the run at the current step, with a reason. Writers stay fenced. {"step": "replay-wal", "by": "alice", "reason": "..."}',
  });
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
        run.ignore('update', decisionName(raw), raw, why);
        throw refused(why, 'INPUT_INVALID');
      }
      const msg = toIncoming(r.data);
      const why = refusal(run, msg);
      if (why) {
        run.ignore('update', decisionName(raw), raw, why);
        throw refused(why, 'DECISION_REFUSED');
      }
      run.accept(msg, 'update');
      return { ...run.steps.get(r.data.step)! };
    },
    {
      description:
        'Decide a step and get an answer: {"step": "approve-promote", "decision": "approve"|"reject"|"retry"|"skip"|"abort", "by": "alice", "comment": "..."}. Refused with a reason for a wrong step, a non-approver or a repeated decision.',
    },
  );
  setHandler(statusQuery, () => run.status(), {
    description:
      'Where the recovery stands: steps with state and timing, decisions, the pending approval, replay progress.',
  });
}
