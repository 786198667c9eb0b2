// The step machinery of recoverToPointInTime (and repairFromPointInTime), in
// one place that every step goes through: step state and timestamps, failed
// steps waiting for retry/skip/abort, approvals, the status and the
// current-details checklist the Temporal UI shows. Beside it: the wait of an
// approval step for its quorum, with escalation (approval.ts), the signals,
// the `decide` update and the `status` query (handlers.ts, judged by
// rules.ts's `refusal`), and the audit trail's queue (audit-queue.ts).
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
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
import { awaitApproval, type Escalate } from './approval';
import { AuditQueue } from './audit-queue';
import { renderChecklist } from './checklist';
import { installMessageHandlers } from './handlers';
import { stepForSummaries } from '../summaries';
import { howToResolve, operatorsInFailure, operatorsOf, stepError, type FenceState } from './rules';
import { Retargeted, RunAborted } from './run-errors';

export { ANNOUNCE_APPROVAL_PATCH } from './approval';

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

/** The hint every run that ends in preflight carries: what an operator most needs to know at that moment. */
export const NOTHING_TOUCHED_HINT =
  'the run ended in preflight: nothing was touched (no gate, no traffic, no data directory); ' +
  'fix the cause above and start the recovery again';

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
  /** What the run has found out so far (cluster, backup, replay, RPO, invariants, outcome): merged into status. */
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
   * Waits for an approval step's quorum (approval.ts). Returns 'approved', or
   * 'retarget' (approve-promote only); rejection and abort end the run.
   */
  approval(id: StepId, notify: Escalate): Promise<'approved' | 'retarget'> {
    return awaitApproval(this, id, notify);
  }

  /** Stops the body of the step that runs now (an abort). */
  cancelStep(): void {
    this.currentScope?.cancel();
  }

  /** Ends the run at `id` when an operator asked to abort it. */
  checkAbort(id: StepId): void {
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

  finish(rec: StepRecord, state: 'done' | 'skipped' | 'failed', summary?: string): void {
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
