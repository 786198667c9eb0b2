// The rules for what an operator's message may do in recoverToPointInTime:
// one rule set for signals (a refused signal is ignored and listed in status)
// and for the decide update (a refusal is its answer), and the words that
// tell an operator how to give a decision.
import { ApplicationFailure } from '@temporalio/workflow';
import type {
  DecideUpdate,
  DecisionKind,
  PendingDecision,
  RecoveryStatus,
  StepError,
  StepId,
  StepRecord,
  Target,
} from '../../src/recovery/contract';
import { isErrorCode } from '../../src/errors';
import { operatorsOf } from '../../src/recovery/operators';
import type { Runbook } from '../../src/runbook/schema';

export { operatorsOf };

export type Incoming =
  | {
      name: 'approve';
      step: StepId;
      by: string;
      comment?: string;
      override?: boolean;
      include?: Array<'changedSince' | 'candidate'>;
    }
  | { name: 'reject'; step: StepId; by: string; comment?: string }
  | { name: 'retry' | 'skip' | 'abort'; step: StepId; by: string; comment?: string }
  | { name: 'retarget'; by: string; target: Target; comment?: string };

export interface Policy {
  approvers: string[];
  min: number;
  escalateAfterSeconds?: number;
}

/** What the rules read of a run. */
export interface RunView {
  readonly phase: RecoveryStatus['phase'];
  readonly steps: ReadonlyMap<StepId, StepRecord>;
  readonly pending?: PendingDecision;
  readonly currentStep?: StepId;
  readonly resolution?: 'retry' | 'skip';
  readonly abortRequest?: { by: string };
  readonly retargetRequest?: { by: string };
  readonly approvedBy: ReadonlySet<string>;
  readonly failedInvariants: readonly string[];
  readonly runbook?: Runbook;
  /** Who may decide when the runbook never reached the workflow (a preflight that failed after loading it says). */
  readonly operatorsWithoutRunbook?: readonly string[];
}

/** Why a message must not be acted on, or undefined when it may. */
export function refusal(run: RunView, m: Incoming): string | undefined {
  if (m.name === 'retarget') {
    if (!run.steps.has('approve-promote'))
      return 'retarget is not taken by a repair: start a new repair with the other target (this one can be aborted)';
    // At approve-promote, or when replay-wal failed (typically a target past
    // the end of the archive): both ways the paused or stopped copy is ours.
    const p = run.pending;
    const at =
      p &&
      ((p.kind === 'approval' && p.step === 'approve-promote') || (p.kind === 'failed' && p.step === 'replay-wal'));
    if (!at) {
      const now = p
        ? `${p.step} is ${p.kind === 'approval' ? 'awaiting approval' : 'failed'}`
        : 'nothing is waiting for a decision';
      return `retarget is taken while approve-promote awaits approval or after replay-wal failed; now ${now}`;
    }
    if (run.retargetRequest) return `a retarget by ${run.retargetRequest.by} is already being carried out`;
    return notAllowed(m.by, policyOf(run.runbook, 'approve-promote').approvers, 'retarget this run');
  }
  const step = m.step;
  const rec = run.steps.get(step);
  // A step of the other workflow (approve-repair sent to a recovery, approve-promote to a repair).
  if (!rec) return `${step} is not a step of this run; its steps are ${[...run.steps.keys()].join(', ')}`;
  if (run.phase === 'finished' || run.phase === 'aborted' || run.phase === 'rejected' || run.phase === 'failed')
    return `the run has ended (${run.phase}): nothing to decide`;
  if (m.name === 'abort') {
    if (run.abortRequest) return `an abort by ${run.abortRequest.by} is already being carried out`;
    if (run.currentStep !== m.step) {
      const current = run.currentStep ? ` (current: ${run.currentStep}, ${run.steps.get(run.currentStep)!.state})` : '';
      return `${m.step} is not the current step${current}: name the current step to abort`;
    }
    if (!m.comment?.trim()) return 'abort needs a reason';
    return notAllowed(m.by, operatorsOf(run.runbook, run.operatorsWithoutRunbook), 'abort this run');
  }
  if (m.name === 'retry' || m.name === 'skip') {
    if (rec.state !== 'failed' || run.pending?.step !== step) {
      const resolved = m.name === 'retry' ? 'retried' : 'skipped';
      return `${step} has not failed (it is ${rec.state}): only a failed step can be ${resolved}`;
    }
    if (run.resolution) return `a ${run.resolution} of ${step} is already being carried out`;
    if (m.name === 'skip') {
      const skippable = run.runbook?.skippable ?? [];
      if (!(skippable as readonly string[]).includes(step))
        return (
          `STEP_NOT_SKIPPABLE: ${step} cannot be skipped: ` +
          `the runbook's skippable steps are ${skippable.join(', ') || '(none)'}; retry or abort instead`
        );
      if (!m.comment?.trim()) return 'skip needs a reason (it goes into the evidence)';
    }
    return notAllowed(m.by, operatorsOf(run.runbook, run.operatorsWithoutRunbook), `${m.name} ${step}`);
  }
  // approve, reject: only the step awaiting approval, only its approvers.
  if (rec.state !== 'awaiting-approval' || run.pending?.step !== step) {
    const waiting =
      run.pending?.kind === 'approval'
        ? ` (awaiting approval: ${run.pending.step})`
        : ' (no step is awaiting approval)';
    return `${step} is not awaiting approval: it is ${rec.state}${waiting}`;
  }
  const policy = policyOf(run.runbook, step);
  const denied = notAllowed(m.by, policy.approvers, `decide ${step}`);
  if (denied) return denied;
  if (m.name === 'approve') {
    if (m.include?.length && step !== 'approve-repair') return `include is taken by approve-repair only, not ${step}`;
    if (run.approvedBy.has(m.by))
      return (
        `${m.by} has already approved ${step}: ` +
        `${policy.min} distinct approvers are needed, ${run.approvedBy.size} so far`
      );
    if (step === 'approve-promote' && run.failedInvariants.length > 0 && !(m.override && m.comment?.trim()))
      return (
        `invariants failed on the paused copy (${run.failedInvariants.join(', ')}): ` +
        'approving promotion needs "override": true and the reason in comment ' +
        '(lifeboat approve ... --override --comment "<why>")'
      );
  }
  return undefined;
}

function notAllowed(by: string, allowed: string[], what: string): string | undefined {
  if (allowed.length === 0 || allowed.includes(by)) return undefined;
  return `NOT_AN_APPROVER: ${by} may not ${what}; allowed: ${allowed.join(', ')}`;
}

/**
 * The approval policy of a step; approve-resume without its own falls back to
 * one of approve-promote's approvers, approve-repair to approve-promote's
 * whole policy (a repair writes to production as a promotion replaces it).
 */
export function policyOf(runbook: Runbook | undefined, step: StepId): Policy {
  const approvals = runbook?.approvals ?? {};
  if (step === 'approve-repair' && !approvals['approve-repair'] && approvals['approve-promote'])
    return policyOf(runbook, 'approve-promote');
  const own = (approvals as Record<string, unknown>)[step] as Runbook['approvals']['approve-fence'];
  const p = own || (step === 'approve-resume' ? approvals['approve-promote'] : undefined);
  if (!p) return { approvers: [], min: 1 };
  return {
    approvers: p.approvers,
    min: own ? p.min : 1,
    ...(own && p.escalateAfter ? { escalateAfterSeconds: p.escalateAfter } : {}),
  };
}

/** Where the UI (2.42) keeps the dialog that sends the decide update, which answers (a signal does not). */
const UI_UPDATE = 'More Actions › Send an Update › decide';

export function howToApprove(id: string, step: StepId, invariantsFailed: boolean): string[] {
  const over = step === 'approve-promote' && invariantsFailed;
  const extra = over ? ', "override": true, "comment": "<why promote despite failed invariants>"' : '';
  return [
    `Temporal UI: ${UI_UPDATE}, with {"step": "${step}", "decision": "approve", "by": "<you>"${extra}} ` +
      '(it answers: accepted, or why not; "decision": "reject" with a "comment" to stop the run)',
    `Temporal UI, for bots that only signal: send signal approve with {"step": "${step}", "by": "<you>"${extra}} ` +
      '(no answer: a refused one is listed under ignored)',
    `CLI: lifeboat approve ${id} ${step} --as <you>${over ? ' --override --comment "<why>"' : ''}`,
    ...(step === 'approve-promote'
      ? [`to move the target instead: lifeboat retarget ${id} --to-time <iso> --as <you>`]
      : []),
    ...(step === 'approve-repair'
      ? [
          'conflicts (changedSince) are left alone unless an approver includes them: ' +
            'add "include": ["changedSince"] (CLI: --include changedSince)',
        ]
      : []),
  ];
}

/** What the run has changed so far, for the words of an abort hint (RecoveryMachine.fenceState). */
export type FenceState = 'untouched' | 'unfenced' | 'fenced';

const AFTER_ABORT: Record<FenceState, string> = {
  untouched: 'nothing has been touched yet',
  unfenced: 'this run set no gate',
  fenced: 'writers stay fenced',
};

export function howToResolve(id: string, step: StepId, runbook: Runbook | undefined, fence: FenceState): string[] {
  const skippable = (runbook?.skippable as readonly string[] | undefined)?.includes(step);
  const orSkip = skippable ? ' or "skip"' : '';
  return [
    `retry: lifeboat retry ${id} ${step} --as <you> (or signal retry {"step": "${step}", "by": "<you>"})`,
    ...(skippable ? [`skip: lifeboat skip ${id} ${step} --as <you> --reason "<why>"`] : []),
    ...(step === 'replay-wal'
      ? [`retarget: lifeboat retarget ${id} --to-latest|--to-time <iso> --as <you> (restores again to the new target)`]
      : []),
    `abort: lifeboat abort ${id} ${step} --as <you> --reason "<why>" (${AFTER_ABORT[fence]})`,
    `Temporal UI: ${UI_UPDATE}, with {"step": "${step}", "decision": "retry", "by": "<you>"} ` +
      `(it answers: accepted, or why not; "decision": "abort"${orSkip} with a "comment" saying why)`,
  ];
}

export function toIncoming(d: DecideUpdate): Incoming {
  if (d.decision === 'approve')
    return {
      name: 'approve',
      step: d.step,
      by: d.by,
      ...(d.comment ? { comment: d.comment } : {}),
      ...(d.override ? { override: true } : {}),
      ...(d.include?.length ? { include: d.include } : {}),
    };
  return {
    name: d.decision as Exclude<DecisionKind, 'approve'>,
    step: d.step,
    by: d.by,
    ...(d.comment ? { comment: d.comment } : {}),
  };
}

/** The messages an operator sends, each with an example input (the step is the one waiting, when there is one). */
export type MessageName = Incoming['name'] | 'decide';

export function exampleInput(name: MessageName, pending?: Pick<PendingDecision, 'step' | 'kind'>): string {
  // The waiting step when the message could act on it, else a typical one.
  const fits =
    pending &&
    (name === 'approve' || name === 'reject'
      ? pending.kind === 'approval'
      : name === 'retry' || name === 'skip'
        ? pending.kind === 'failed'
        : true);
  const s = (fallback: StepId) => `"step": "${fits ? pending.step : fallback}"`;
  switch (name) {
    case 'approve':
      return `{${s('approve-fence')}, "by": "alice"}`;
    case 'reject':
      return `{${s('approve-promote')}, "by": "alice", "reason": "the rows look wrong"}`;
    case 'retarget':
      return '{"by": "alice", "target": {"time": "2026-06-04T14:31:00Z"}}';
    case 'retry':
      return `{${s('replay-wal')}, "by": "alice"}`;
    case 'skip':
    case 'abort':
      return `{${s('replay-wal')}, "by": "alice", "reason": "why, for the evidence"}`;
    case 'decide':
      return `{${s('approve-fence')}, "decision": "approve", "by": "alice"}`;
  }
}

/**
 * A malformed message in words an operator can act on: what the input must
 * look like, with an example, rather than zod's "(payload): Invalid input:
 * expected object, received string" (what the Temporal UI's signal dialog
 * produces when the input is not JSON, or is a bare string).
 */
export function describeIssues(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>,
  name: MessageName,
  pending?: Pick<PendingDecision, 'step' | 'kind'>,
): string {
  const kind = name === 'decide' ? "the update's" : `signal ${name}'s`;
  const example = exampleInput(name, pending);
  const root = issues.find((i) => i.path.length === 0);
  if (root) {
    const got = /received (\w+)/.exec(root.message)?.[1];
    const what =
      got === undefined ? '' : got === 'undefined' ? 'no input' : `${/^[aeiou]/.test(got) ? 'an' : 'a'} ${got}`;
    return `${kind} input must be a JSON object such as ${example}${what ? ` (got ${what})` : ''}`;
  }
  const fields = issues.map((i) => `${i.path.map(String).join('.')}: ${i.message.replace(/^Invalid input: /, '')}`);
  return `${fields.join('; ')} (${kind} input is a JSON object such as ${example})`;
}

/**
 * The runbook's operators a failed preflight attached to its failure (details
 * `{ operators: [...] }`, activities/recovery.ts), so that a run whose
 * preflight failed after loading the runbook is not open to anyone's retry or abort.
 */
export function operatorsInFailure(err: unknown): string[] | undefined {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure)) e = e.cause;
  if (!(e instanceof ApplicationFailure)) return undefined;
  for (const d of e.details ?? []) {
    const ops = (d as { operators?: unknown } | null)?.operators;
    if (Array.isArray(ops) && ops.every((o) => typeof o === 'string')) return ops as string[];
  }
  return undefined;
}

/** What an operator needs from a failure: its type, its message, its hints. */
export function stepError(err: unknown): StepError {
  let e: unknown = err;
  // ActivityFailure wraps the ApplicationFailure the activity threw.
  while (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure)) e = e.cause;
  const type = e instanceof ApplicationFailure && isErrorCode(e.type) ? e.type : 'UNEXPECTED';
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split('\n');
  return {
    type,
    message: lines.filter((l) => !l.startsWith('HINT: ')).join('\n'),
    hints: lines.filter((l) => l.startsWith('HINT: ')).map((l) => l.slice(6)),
  };
}
