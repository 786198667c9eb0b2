// The activity functions recoverToPointInTime calls, as one interface: the
// workflow proxies it, the worker registers implementations that must match
// it (checked at compile time in activities/index.ts), and workflow-logic
// tests register fakes of the same shape.
import type {
  AuditLine,
  CacheResult,
  CaptureResult,
  EndpointsCheck,
  Evidence,
  GateInput,
  GateResult,
  InvariantResult,
  OutboxResult,
  PendingDecision,
  PreflightInput,
  PreflightResult,
  PrimaryRecord,
  ReplayInput,
  ReplayResult,
  RestoreInput,
  RestoreInstanceKind,
  RestoreResult,
  RestoreSiteCheck,
  RestoreSiteInput,
  Target,
  TrafficResult,
  UseStandbyInput,
  UseStandbyResult,
} from './contract';

export type GateName = 'writers' | 'backgroundJobs' | 'outbox';

export interface RecoveryActivities {
  preflight(input: PreflightInput): Promise<PreflightResult>;
  /** Refuses (RECOVERY_ALREADY_RUNNING) when a recovery of the runbook that started earlier is running (activities/one-recovery.ts). */
  checkNoOtherRecovery(input: { runbook: string }): Promise<{ checked: string; later: string[] }>;
  captureForensics(input: { runbook: string; target: Target }): Promise<CaptureResult>;
  setGate(input: GateInput & { gate: GateName }): Promise<GateResult>;
  restoreBaseBackup(input: RestoreInput): Promise<RestoreResult>;
  /** restore-base-backup from the runbook's warm standby when it may serve (src/standby/adopt.ts); else `used: false` and why. */
  useStandby(input: UseStandbyInput): Promise<UseStandbyResult>;
  checkRestoreSite(input: RestoreSiteInput): Promise<RestoreSiteCheck>;
  replayWal(input: ReplayInput): Promise<ReplayResult>;
  runInvariants(input: { runbook: string; instance?: RestoreInstanceKind }): Promise<InvariantResult[]>;
  promoteRestored(input: {
    runbook: string;
    workflowId: string;
    runId: string;
    instance?: RestoreInstanceKind;
  }): Promise<{ promotedAt: string; timeline: number; lsn: string }>;
  stopRestored(input: {
    runbook: string;
    workflowId: string;
    instance?: RestoreInstanceKind;
  }): Promise<{ stopped: boolean; dataDir: string }>;
  reconcileOutbox(input: { runbook: string; highWater?: string }): Promise<OutboxResult>;
  invalidateCaches(input: { runbook: string }): Promise<CacheResult[]>;
  resumeTraffic(input: { runbook: string }): Promise<TrafficResult>;
  /** After promote, on the restore host: the new timeline's history archived and the primary overlay written (src/recovery/record-primary.ts). */
  recordPrimary(input: {
    runbook: string;
    workflowId: string;
    runId: string;
    timeline: number;
    promotedAt: string;
  }): Promise<PrimaryRecord>;
  /** Preflight: every cache endpoint answers, on the queue invalidate-caches runs on (activities/caches.ts). */
  checkCacheEndpoints(input: { runbook: string }): Promise<EndpointsCheck>;
  /** Preflight: the traffic endpoint answers, on the traffic host's queue (activities/traffic.ts). */
  checkTrafficEndpoint(input: { runbook: string }): Promise<EndpointsCheck>;
  appendAudit(input: {
    runbook: string;
    runId: string;
    workflowId: string;
    seq: number;
    line: AuditLine;
  }): Promise<void>;
  writeEvidence(input: { runbook: string; evidence: Evidence }): Promise<{ key: string; repository: string }>;
  notifyEscalation(input: {
    runbook: string;
    workflowId: string;
    pending: PendingDecision;
    waitedSeconds: number;
  }): Promise<{ delivered: boolean; detail: string }>;
  /** A step started waiting for a person: the Slack message with Approve / Reject buttons (runbooks with notify.slack; activities/notify.ts). */
  announceApproval(input: {
    runbook: string;
    workflowId: string;
    pending: PendingDecision;
  }): Promise<{ delivered: boolean; detail: string }>;
}
