// The bookkeeping of one restore drill: each step's state and times, and
// what failed. No approvals, retries by hand or signals: a drill runs through
// or fails, and a failure is a finding written into the evidence.
//
// Step times are `new Date()` at the step's edges. In the workflow sandbox
// that is the start time of the workflow task, and every edge here sits in a
// new task (the one that sees the activity complete), so each is when
// Temporal recorded that edge: a measurement, repeated exactly on replay.
import { TimeoutFailure, isCancellation, log } from '@temporalio/workflow';
import { DRILL_STEP_IDS, type DrillStepId } from '../../src/drill/contract';
import type { Evidence, StepError, StepState } from '../../src/recovery/contract';
import { evidenceStep } from '../recovery/evidence';
import { stepError } from '../recovery/rules';
import { stepForSummaries } from '../summaries';

export interface DrillStep {
  id: DrillStepId;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  summary?: string;
  error?: StepError;
}

/** Thrown by DrillRun.step: the drill stops at this step (teardown and evidence still run). */
export class DrillStepFailed extends Error {
  constructor(
    readonly step: DrillStepId,
    readonly error: StepError,
  ) {
    super(`${step}: ${error.type}: ${error.message}`);
    this.name = 'DrillStepFailed';
  }
}

export class DrillRun {
  readonly steps = new Map<DrillStepId, DrillStep>(DRILL_STEP_IDS.map((id) => [id, { id, state: 'pending' }]));
  readonly notes: string[] = [];

  constructor(private readonly hostQueue: () => string | undefined) {}

  async step<T>(id: DrillStepId, body: () => Promise<T>, summarize: (r: T) => string): Promise<T> {
    const rec = this.steps.get(id)!;
    stepForSummaries(id);
    rec.state = 'running';
    rec.startedAt = new Date().toISOString();
    try {
      const r = await body();
      rec.state = 'done';
      rec.summary = summarize(r);
      return r;
    } catch (err) {
      rec.state = 'failed';
      if (isCancellation(err)) {
        // The workflow's cancellation travels up as itself: the caller tears down, then ends as cancelled.
        rec.error = { type: 'CANCELLED', message: 'the drill was cancelled during this step', hints: [] };
        throw err;
      }
      rec.error = this.describe(err);
      log.warn('drill step failed', { step: id, type: rec.error.type, message: rec.error.message });
      throw new DrillStepFailed(id, rec.error);
    } finally {
      rec.finishedAt = new Date().toISOString();
    }
  }

  skip(id: DrillStepId, why: string): void {
    const rec = this.steps.get(id)!;
    rec.state = 'skipped';
    rec.summary = why;
  }

  failedStep(): DrillStep | undefined {
    return [...this.steps.values()].find((s) => s.state === 'failed');
  }

  /** Seconds from a to b, or undefined when either is missing. */
  static seconds(a?: string, b?: string): number | undefined {
    return a && b ? Math.max(0, (Date.parse(b) - Date.parse(a)) / 1000) : undefined;
  }

  evidenceSteps(): Evidence['steps'] {
    return [...this.steps.values()].map(evidenceStep);
  }

  /** The failure's type and text; a timeout waiting for a worker says which queue has none. */
  private describe(err: unknown): StepError {
    let e: unknown = err;
    while (e instanceof Error && e.cause instanceof Error && !(e instanceof TimeoutFailure)) e = e.cause;
    if (e instanceof TimeoutFailure) {
      const queue = this.hostQueue();
      const noWorker = e.timeoutType === 'SCHEDULE_TO_START';
      const host = (queue ?? 'lifeboat-host-<host>').replace(/^lifeboat-host-/, '');
      return {
        type: 'TIMEOUT',
        message: noWorker
          ? `no worker picked the activity up on task queue ${queue ?? '(the drill host queue)'}`
          : `the activity timed out (${e.message})`,
        hints: noWorker ? [`start a worker on the drill host: lifeboat worker --host ${host}`] : [],
      };
    }
    return stepError(err);
  }
}
