// The step machinery of recoverToPointInTime (and repairFromPointInTime), in
// one place that every step goes through: step state and timestamps,
// approvals with quorum and escalation, failed steps waiting for
// retry/skip/abort, the status and the current-details checklist the
// Temporal UI shows. Beside it: the signals, the `decide` update and the
// `status` query (handlers.ts, judged by rules.ts's `refusal`), and the audit
// trail's queue (audit-queue.ts).
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  STEP_IDS,
  STEP_TITLES,
  type AuditLine,
  type DecisionRecord,
  type IgnoredMessage,
  type PendingDecision,
  type RecoveryStatus,
  type StepId,
  type StepRecord,
  type Target,
} from '../../src/recovery/contract';
import { AWAITING_ATTRIBUTE, RUNBOOK_ATTRIBUTE, SEARCH_ATTRIBUTES_PATCH } from '../../src/recovery/search-attributes';
import { isRetryable, type ErrorCode } from '../../src/errors';
import type { Runbook } from '../../src/runbook/schema';
import { AuditQueue } from './audit-queue';
import { renderChecklist } from './checklist';
import { installMessageHandlers } from './handlers';
import { stepForSummaries } from '../summaries';
import {
  howToApprove,
  howToResolve,
  operatorsInFailure,
  operatorsOf,
  policyOf,
  stepError,
  type FenceState,
  type Incoming,
  type Policy,
} from './rules';

/** Thrown by a failed replay-wal when an operator moves the target; the workflow restores again. */
export class Retargeted extends Error {
  constructor() {
    super('retargeted after replay-wal failed');
    this.name = 'Retargeted';
  }
}

/** Thrown inside the workflow when an operator aborts; caught at the top. */
export class RunAborted extends Error {
  constructor(
    readonly step: StepId,
    readonly by: string,
    readonly reason: string,
    readonly kind: 'aborted' | 'rejected',
  ) {
    super(`${kind} at ${step} by ${by}: ${reason}`);
    this.name = 'RunAborted';
  }
}

const now = () => new Date().toISOString();

/**
 * Failures that end the run at once instead of parking the step for a
 * decision: they come before anything is touched, and no retry can succeed
 * while their cause lasts (another recovery of the runbook holds it).
 */
const RUN_ENDING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['RECOVERY_ALREADY_RUNNING']);

/**
 * The patch under which any non-retryable failure of `preflight` ends the run
 * at once (BACKUP_NOT_FOUND, RUNBOOK_NOT_FOUND, WAL_GAP, DISK_FULL...):
 * preflight touches nothing, and what it found stays true however often it
 * is retried, so a run parked there only waited for someone to abort it.
 * A retryable failure (REPOSITORY_UNREACHABLE, PG_UNREACHABLE) still waits
 * for retry or abort. Runs recorded before the patch parked every failure.
 */
export const PREFLIGHT_ENDS_RUN_PATCH = 'preflight-failure-ends-run';
/** Runs from before it wait for approvals without the timer that shows the wait in the UI (showWait). */
const APPROVAL_WAIT_TIMER_PATCH = 'approval-wait-timer';
/**
 * The patch under which a step that starts waiting for a person announces
 * it (the Slack message with the buttons). Asked only when the runbook has
 * notify.slack, so runs without it record the same history as before.
 */
export const ANNOUNCE_APPROVAL_PATCH = 'announce-approval-slack';

/** The hint every run that ends in preflight carries: what an operator most needs to know at that moment. */
export const NOTHING_TOUCHED_HINT =
  'the run ended in preflight: nothing was touched (no gate, no traffic, no data directory); fix the cause above and start the recovery again';

export class RecoveryMachine {
  readonly steps = new Map<StepId, StepRecord>();
  readonly decisions: DecisionRecord[] = [];
  readonly ignored: IgnoredMessage[] = [];
  readonly startedAt = now();
  runbook?: Runbook;
  pending?: PendingDecision;
  phase: RecoveryStatus['phase'] = 'running';
  /** The runbook's operators, from a preflight that failed before the runbook reached the workflow. */
  operatorsWithoutRunbook?: string[];
  /** Names of invariants that failed on the paused copy: approving promotion then needs an override. */
  failedInvariants: string[] = [];
  invariantOverride?: { by: string; reason: string };
  retargetRequest?: { by: string; target: Target; comment?: string };
  abortRequest?: { step: StepId; by: string; reason: string };
  rejection?: { step: StepId; by: string; reason: string };
  /** What the run has found out so far (cluster, backup, replay position, RPO, invariants, outcome): merged into status. */
  findings: Partial<RecoveryStatus> = {};

  approvedBy = new Set<string>();
  /** Set by the workflow: tells the channel that a step waits for a person (never throws). */
  announce?: (pending: PendingDecision) => Promise<void>;
  currentStep?: StepId;
  private currentScope?: CancellationScope;
  resolution?: 'retry' | 'skip';
  private readonly auditTrail = new AuditQueue();
  /** Whether this run keeps the search attributes (runs started before them replay without). */
  private searchAttributes?: boolean;
  private awaitingShown = '';

  private readonly workflow: RecoveryStatus['workflow'];
  private readonly stepIds: readonly StepId[];

  /**
   * `opts` serves repairFromPointInTime (DESIGN.md §4.3), which runs its own
   * steps through the same machinery; a recovery passes none.
   */
  constructor(
    private base: Pick<RecoveryStatus, 'runbook' | 'target' | 'mode' | 'dryRun' | 'incident' | 'reason'>,
    opts: {
      workflow?: RecoveryStatus['workflow'];
      steps?: readonly StepId[];
      titles?: Partial<Record<StepId, string>>;
    } = {},
  ) {
    this.workflow = opts.workflow ?? 'recoverToPointInTime';
    this.stepIds = opts.steps ?? STEP_IDS;
    for (const id of this.stepIds)
      this.steps.set(id, { id, title: opts.titles?.[id] ?? STEP_TITLES[id], state: 'pending', runs: 0 });
  }

  get target(): Target {
    return this.base.target;
  }

  set target(t: Target) {
    this.base = { ...this.base, target: t };
  }

  get mode(): RecoveryStatus['mode'] {
    return this.base.mode;
  }

  set mode(m: RecoveryStatus['mode']) {
    this.base = { ...this.base, mode: m };
  }

  // ------------------------------------------------------------ handlers

  /** The signals, the `decide` update and the `status` query (handlers.ts). */
  installHandlers(): void {
    installMessageHandlers(this);
  }

  /**
   * Acts on a decision that passed `refusal`: recorded in decisions and the
   * audit trail, then applied to the step it names.
   */
  accept(m: Incoming, via: 'signal' | 'update'): void {
    const at = now();
    const step = m.name === 'retarget' ? (this.pending?.step ?? 'approve-promote') : m.step;
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
    this.decisions.push(record);
    this.audit({ at, event: 'decision', decision: record });
    const rec = this.steps.get(step)!;
    switch (m.name) {
      case 'approve': {
        this.approvedBy.add(m.by);
        if (m.override && step === 'approve-promote') this.invariantOverride = { by: m.by, reason: m.comment ?? '' };
        if (this.pending) this.pending = { ...this.pending, approvedBy: [...this.approvedBy] };
        if (this.approvedBy.size >= policyOf(this.runbook, step).min)
          this.finish(rec, 'done', `approved by ${[...this.approvedBy].join(', ')}`);
        break;
      }
      case 'reject':
        this.rejection = { step, by: m.by, reason: m.comment ?? '(no reason given)' };
        break;
      case 'retarget':
        this.retargetRequest = { by: m.by, target: m.target, ...(m.comment ? { comment: m.comment } : {}) };
        break;
      case 'retry':
      case 'skip':
        this.resolution = m.name;
        if (m.name === 'skip') rec.skipped = { by: m.by, reason: m.comment ?? '' };
        break;
      case 'abort':
        this.abortRequest = { step, by: m.by, reason: m.comment ?? '' };
        this.currentScope?.cancel();
        break;
    }
    this.publish();
  }

  /** A message not acted on: listed in status.ignored and the audit trail, and logged. */
  ignore(via: 'signal' | 'update', name: string, raw: unknown, why: string): void {
    const p = (raw ?? {}) as { by?: unknown; step?: unknown };
    const item: IgnoredMessage = {
      at: now(),
      via,
      name,
      why,
      ...(typeof p.by === 'string' ? { by: p.by.slice(0, 100) } : {}),
      ...(typeof p.step === 'string' ? { step: p.step.slice(0, 100) } : {}),
    };
    this.ignored.push(item);
    this.audit({ at: item.at, event: 'ignored', ignored: item });
    log.warn('message ignored', { ...item });
    this.publish();
  }

  // ------------------------------------------------------------ steps

  /**
   * Runs one step: state, timestamps, and on failure a wait for an operator.
   * Returns the body's result, or undefined when the operator skipped it.
   */
  async step<T>(id: StepId, body: () => Promise<T>, summarize?: (r: T) => string): Promise<T | undefined> {
    const rec = this.steps.get(id)!;
    this.currentStep = id;
    stepForSummaries(id);
    for (;;) {
      this.checkAbort(id);
      rec.state = 'running';
      rec.startedAt ??= now();
      delete rec.finishedAt;
      delete rec.error;
      rec.runs += 1;
      this.publish();
      try {
        const scope = new CancellationScope();
        this.currentScope = scope;
        const result = await scope.run(body);
        this.currentScope = undefined;
        this.finish(rec, 'done', summarize?.(result));
        return result;
      } catch (err) {
        this.currentScope = undefined;
        this.checkAbort(id);
        if (isCancellation(err)) throw err;
        rec.state = 'failed';
        rec.error = stepError(err);
        if (!this.runbook) this.operatorsWithoutRunbook ??= operatorsInFailure(err);
        log.warn('step failed', { step: id, type: rec.error.type, message: rec.error.message });
        // RUN_ENDING_CODES first: their recorded histories never asked the patch.
        const endsRun =
          RUN_ENDING_CODES.has(rec.error.type) ||
          (id === 'preflight' && !isRetryable(rec.error.type) && patched(PREFLIGHT_ENDS_RUN_PATCH));
        if (endsRun) {
          if (
            id === 'preflight' &&
            !RUN_ENDING_CODES.has(rec.error.type) &&
            !rec.error.hints.some((h) => h.startsWith('nothing was'))
          ) {
            rec.error = { ...rec.error, hints: [...rec.error.hints, NOTHING_TOUCHED_HINT] };
          }
          rec.finishedAt = now();
          this.end('failed');
          throw ApplicationFailure.create({
            type: rec.error.type,
            message: [rec.error.message, ...rec.error.hints.map((h) => `HINT: ${h}`)].join('\n'),
            nonRetryable: true,
          });
        }
        this.pending = {
          step: id,
          kind: 'failed',
          since: now(),
          approvers: operatorsOf(this.runbook, this.operatorsWithoutRunbook),
          min: 1,
          approvedBy: [],
          how: howToResolve(workflowInfo().workflowId, id, this.runbook, this.fenceState()),
        };
        this.publish();
        await condition(
          () =>
            this.resolution !== undefined ||
            this.abortRequest !== undefined ||
            (id === 'replay-wal' && this.retargetRequest !== undefined),
        );
        this.pending = undefined;
        this.checkAbort(id);
        if (this.retargetRequest && this.resolution === undefined) {
          rec.state = 'pending';
          this.publish();
          throw new Retargeted();
        }
        const resolution = this.resolution;
        this.resolution = undefined;
        if (resolution === 'skip') {
          this.finish(rec, 'skipped', `skipped by ${rec.skipped?.by}: ${rec.skipped?.reason}`);
          return undefined;
        }
        // retry: go round again.
      }
    }
  }

  /** Marks a step as not run, with why (not configured, dry run...). */
  notApplicable(id: StepId, reason: string): void {
    const rec = this.steps.get(id)!;
    rec.skipped = { by: 'lifeboat', reason };
    this.finish(rec, 'skipped', reason);
  }

  /** Puts a step back to pending so it runs again (after a retarget). */
  reopen(id: StepId): void {
    const rec = this.steps.get(id)!;
    rec.state = 'pending';
    delete rec.finishedAt;
    delete rec.summary;
    delete rec.error;
  }

  /**
   * Waits for an approval step's quorum. Returns 'approved', or 'retarget'
   * (approve-promote only); rejection and abort end the run.
   */
  async approval(
    id: StepId,
    notify: (pending: PendingDecision, waitedSeconds: number) => Promise<void>,
  ): Promise<'approved' | 'retarget'> {
    const rec = this.steps.get(id)!;
    this.currentStep = id;
    stepForSummaries(id);
    this.checkAbort(id);
    const policy = policyOf(this.runbook, id);
    this.approvedBy = new Set();
    rec.state = 'awaiting-approval';
    rec.startedAt ??= now();
    rec.runs += 1;
    this.pending = {
      step: id,
      kind: 'approval',
      since: now(),
      approvers: policy.approvers,
      min: policy.min,
      approvedBy: [],
      how: howToApprove(workflowInfo().workflowId, id, this.failedInvariants.length > 0),
    };
    this.publish();
    const decided = () =>
      rec.state !== 'awaiting-approval' || !!this.rejection || !!this.abortRequest || !!this.retargetRequest;
    // A timer whose summary says what the wait is for: the UI draws it on the
    // run's first page (timeline, Events with Metadata), where nothing else
    // says that a person is awaited.
    const shown = patched(APPROVAL_WAIT_TIMER_PATCH) ? this.showWait(id, policy, decided) : undefined;
    // Alongside the wait and never waited for: a decision taken while Slack
    // is slow or down (the activity's retries) does not hold the run up.
    if (this.announce && this.runbook?.notify?.slack && patched(ANNOUNCE_APPROVAL_PATCH))
      void this.announce(this.pending);
    let waited = 0;
    for (;;) {
      if (policy.escalateAfterSeconds === undefined) {
        await condition(decided);
        break;
      }
      if (await condition(decided, policy.escalateAfterSeconds * 1000)) break;
      // Escalation notifies again; it never approves.
      waited += policy.escalateAfterSeconds;
      await notify(this.pending, waited);
    }
    await shown;
    this.pending = undefined;
    this.checkAbort(id);
    if (this.rejection) {
      this.finish(rec, 'failed', `rejected by ${this.rejection.by}: ${this.rejection.reason}`);
      throw new RunAborted(id, this.rejection.by, this.rejection.reason, 'rejected');
    }
    if (this.retargetRequest) {
      rec.state = 'pending';
      this.publish();
      return 'retarget';
    }
    return 'approved';
  }

  /**
   * Keeps one timer running while an approval waits, its summary naming the
   * step, the approvals so far and who may give the rest; a new one replaces
   * it when an approval arrives. The timers never fire in practice (a year)
   * and are cancelled once the step is decided.
   */
  private async showWait(id: StepId, policy: Policy, decided: () => boolean): Promise<void> {
    for (;;) {
      const seen = this.approvedBy.size;
      const scope = new CancellationScope();
      const timer = scope
        .run(() => sleep('365 days', { summary: waitSummary(id, policy, [...this.approvedBy]) }))
        .catch((err: unknown) => {
          if (!isCancellation(err)) throw err;
        });
      await condition(() => decided() || this.approvedBy.size !== seen);
      scope.cancel();
      await timer;
      if (decided()) return;
    }
  }

  private checkAbort(id: StepId): void {
    if (!this.abortRequest) return;
    const rec = this.steps.get(id)!;
    rec.state = 'failed';
    rec.error = {
      type: 'RECOVERY_ABORTED',
      message: `aborted by ${this.abortRequest.by}: ${this.abortRequest.reason}`,
      hints: [],
    };
    rec.finishedAt = now();
    this.pending = undefined;
    this.publish();
    throw new RunAborted(this.abortRequest.step, this.abortRequest.by, this.abortRequest.reason, 'aborted');
  }

  /**
   * What an abort would leave behind, for the words of its hint: `fenced`
   * once any gate was set off on the primary, `untouched` while nothing has
   * been changed anywhere (preflight, capture-forensics, the approval of the
   * fence), `unfenced` when the run went on without fencing (dry run, no gates).
   */
  fenceState(): FenceState {
    const ran = (ids: readonly StepId[]) => ids.some((id) => (this.steps.get(id)?.runs ?? 0) > 0);
    if (ran(['disable-writers', 'disable-background-jobs', 'pause-outbox'])) return 'fenced';
    if (ran(['restore-base-backup', 'replay-wal', 'promote'])) return 'unfenced';
    return 'untouched';
  }

  takeRetarget(): { by: string; target: Target; comment?: string } | undefined {
    const r = this.retargetRequest;
    this.retargetRequest = undefined;
    return r;
  }

  private finish(rec: StepRecord, state: 'done' | 'skipped' | 'failed', summary?: string): void {
    rec.state = state;
    rec.finishedAt = now();
    if (summary !== undefined) rec.summary = summary;
    this.publish();
  }

  // ------------------------------------------------------------ operator view

  /**
   * What a reader needs first comes first (`temporal workflow query --name
   * status` prints it in this order): the phase, the decision waited for,
   * the refused messages; the 18 step records and the decisions last.
   */
  status(): RecoveryStatus {
    return {
      workflow: this.workflow,
      phase: this.phase === 'running' && this.pending ? 'waiting' : this.phase,
      ...(this.pending ? { pending: this.pending } : {}),
      ignored: [...this.ignored],
      ...this.base,
      startedAt: this.startedAt,
      asOf: now(),
      ...this.findings,
      steps: this.stepIds.map((id) => ({ ...this.steps.get(id)! })),
      decisions: [...this.decisions],
    };
  }

  publish(): void {
    setCurrentDetails(renderChecklist(this.status(), workflowInfo().workflowId));
    this.publishSearchAttributes();
  }

  /**
   * LifeboatRunbook once, LifeboatAwaiting whenever the decision waited for
   * changes (src/recovery/search-attributes.ts): what `lifeboat pending` and
   * the UI's workflow list filter on. Only on change, since each upsert is a
   * command in the history. The first call decides the patch, before the
   * run's first command, so it is the same point in every replay.
   */
  private publishSearchAttributes(): void {
    if (this.searchAttributes === undefined) {
      this.searchAttributes = patched(SEARCH_ATTRIBUTES_PATCH);
      if (this.searchAttributes) upsertSearchAttributes([{ key: RUNBOOK_ATTRIBUTE, value: this.base.runbook }]);
    }
    if (!this.searchAttributes) return;
    const awaiting = this.pending && this.phase === 'running' ? [this.pending.step] : [];
    const key = awaiting.join(',');
    if (key === this.awaitingShown) return;
    this.awaitingShown = key;
    upsertSearchAttributes([{ key: AWAITING_ATTRIBUTE, value: awaiting }]);
  }

  end(phase: 'finished' | 'aborted' | 'rejected' | 'failed'): void {
    this.phase = phase;
    this.currentStep = undefined;
    this.publish();
  }

  // ------------------------------------------------------------ audit

  audit(line: AuditLine): void {
    this.auditTrail.push(line);
  }

  /** Writes audit lines one at a time, in order, for as long as the run lives (audit-queue.ts). */
  auditLoop(append: (seq: number, line: AuditLine) => Promise<void>): Promise<void> {
    return this.auditTrail.drain(append);
  }

  /** Lets the audit loop drain and stop. */
  closeAudit(): void {
    this.auditTrail.close();
  }
}

/** "approve-promote: waiting for approval, 1 of 2 (alice); may approve: alice, bob, carol": the summary of an approval's wait timer. */
export function waitSummary(id: StepId, policy: Policy, approvedBy: string[]): string {
  const who = policy.approvers.length ? policy.approvers.join(', ') : 'any named approver';
  return `${id}: waiting for approval, ${approvedBy.length} of ${policy.min}${approvedBy.length ? ` (${approvedBy.join(', ')})` : ''}; may approve: ${who}`;
}
