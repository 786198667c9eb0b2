// Every activity a workflow schedules carries a summary naming its runbook
// step and what it does ("disable-writers: writers gate off on the primary,
// proven by a refused write"), so the Temporal UI's timeline, Pending
// Activities and history read as the runbook rather than as function names
// (three identical `setGate` bubbles were disable-writers,
// disable-background-jobs and pause-outbox).
//
// A workflow outbound interceptor sets it on each scheduled activity, from
// the step the run is in (stepForSummaries, called by the step runners of
// recoverToPointInTime and restoreDrill). Module state is per workflow run:
// the SDK gives each run its own module cache. A summary is user metadata:
// it is not compared on replay, so histories recorded before it replay.
import type {
  ActivityInput,
  Next,
  WorkflowInterceptorsFactory,
  WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { describeTarget, type Target } from '../src/recovery/contract';

let currentStep: string | undefined;

/** The step the run is in now; activities scheduled from here on are summarized under it. */
export function stepForSummaries(step: string | undefined): void {
  currentStep = step;
}

type Args = Record<string, unknown>;

const target = (a: Args) => (a.target ? describeTarget(a.target as Target) : 'the target');
/** A list argument (tables, classes) as words, or `none` without one. */
const listed = (list: unknown, none: string) => (list as string[] | undefined)?.join(', ') ?? none;

const GATE_WORDS: Record<string, string> = {
  writers: 'writers',
  backgroundJobs: 'background jobs',
  outbox: 'outbox publisher',
};

function gateWhat(a: Args): string {
  const where = a.where === 'restored' ? 'the promoted copy' : 'the primary';
  const words = GATE_WORDS[String(a.gate)] ?? String(a.gate);
  const proof = a.gate === 'writers' && a.enabled === false ? ', proven by a refused write' : '';
  return `${words} gate ${a.enabled ? 'on' : 'off'} on ${where}${proof}`;
}

/** What each activity does, in the runbook's words. */
const WHAT: Record<string, (a: Args) => string> = {
  checkNoOtherRecovery: () => 'no other recovery of this runbook is running',
  preflight: (a) => `backup, WAL and ${target(a)} checked in the archive, nothing touched`,
  checkRestoreSite: () => 'room, directory and port on the restore host',
  checkCacheEndpoints: () => 'every cache endpoint answers',
  checkTrafficEndpoint: () => 'the traffic endpoint answers',
  captureForensics: () => 'forensics captured from the primary',
  setGate: gateWhat,
  restoreBaseBackup: (a) =>
    `base backup ${String(a.backupId)} restored${a.instance === 'drill' ? ' into the drill directory' : ''}`,
  replayWal: (a) => `WAL replayed to ${target(a)}, then paused`,
  runInvariants: () => 'invariants checked on the paused copy',
  promoteRestored: () => 'the paused copy promoted (pg_ctl promote)',
  stopRestored: () => 'the restored copy stopped, its directory kept',
  recordPrimary: () => 'the promoted copy recorded as the primary',
  reconcileOutbox: () => 'outbox rows up to the high-water mark marked published',
  invalidateCaches: () => 'caches invalidated',
  resumeTraffic: () => 'traffic switched to the promoted copy',
  writeEvidence: () => 'evidence record written',
  pickDrillTarget: () => 'a target the archive reaches, within drill.targetWindow',
  smokeWrite: () => 'a row written in the promoted drill copy and read back',
  teardownDrill: () => 'the drill copy stopped and its directory removed',
  checkRepairTables: (a) => `${listed(a.tables, 'the tables')}: primary key and privileges checked on the primary`,
  snapshotRepairCopy: (a) =>
    `rows of ${listed(a.tables, 'the tables')} read from the copy at the ${String(a.label)} target`,
  diffRepair: () => "the copy's rows compared with the live primary, every key classified",
  applyRepair: (a) =>
    `the approved rows (${listed(a.classes, '')}) restored on the primary, one audited transaction per table`,
  invalidateRepairCaches: () => 'caches invalidated for the repaired keys',
  teardownRepairCopy: () => 'the repair copy stopped and removed, with its work files',
};

/** Activities that run beside the steps, not as one: their own words, no step. */
const BESIDE: Record<string, (a: Args) => string> = {
  appendAudit: (a) => {
    const event = (a.line as { event?: string } | undefined)?.event;
    return `audit log: line ${String(a.seq)}${event ? ` (${event})` : ''}`;
  },
  notify: (a) => `webhook: ${String((a.event as { kind?: string } | undefined)?.kind ?? 'notice')} posted`,
  notifyEscalation: (a) => {
    const p = a.pending as { step?: string } | undefined;
    return `escalation: ${p?.step ?? 'a decision'} has waited ${Math.round(Number(a.waitedSeconds) / 60)} min`;
  },
  announceApproval: (a) => {
    const step = (a.pending as { step?: string } | undefined)?.step ?? 'a step';
    return `Slack: ${step} waits for approval, message with Approve / Reject buttons`;
  },
};

/**
 * The one-line summary of an activity call, e.g. "disable-writers: writers
 * gate off on the primary, proven by a refused write".
 */
export function activitySummary(activityType: string, args: unknown[], step: string | undefined): string {
  const a = (args[0] ?? {}) as Args;
  const beside = BESIDE[activityType];
  if (beside) return beside(a);
  const what = WHAT[activityType]?.(a) ?? activityType;
  return step ? `${step}: ${what}` : what;
}

class StepSummaries implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(
    input: ActivityInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ): Promise<unknown> {
    if (input.options.summary) return next(input);
    return next({
      ...input,
      options: { ...input.options, summary: activitySummary(input.activityType, input.args, currentStep) },
    });
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({ outbound: [new StepSummaries()] });
