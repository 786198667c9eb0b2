// How a runbook workflow (recoverToPointInTime, repairFromPointInTime) ends:
// through its last step, record-evidence, or stopped by an operator (abort,
// rejection) with the evidence written anyway and a failure that says what
// was left behind. Either way the audit trail is drained first.
import { ApplicationFailure, log, workflowInfo } from '@temporalio/workflow';
import type { Evidence, RecoveryStatus } from '../../src/recovery/contract';
import type { RecoveryMachine } from './machine';
import type { RunAborted } from './run-errors';
import { evidenceWritten } from './step-summaries';

type WriteEvidence = (evidence: Evidence) => Promise<{ repository: string; key: string }>;

/** How a run ended, as status and the checklist's first line show it. */
export type Outcome = NonNullable<RecoveryStatus['outcome']>;

/** The last step, record-evidence: the evidence written to the repository and returned. */
export async function recordEvidence(
  run: RecoveryMachine,
  build: () => Evidence,
  outcomeOf: (evidence: Evidence) => Outcome,
  write: WriteEvidence,
  auditDone: Promise<void>,
): Promise<Evidence> {
  let evidence: Evidence | undefined;
  await run.step(
    'record-evidence',
    () => {
      evidence = build();
      return write(evidence);
    },
    evidenceWritten,
  );
  run.findings.outcome = outcomeOf(evidence!);
  run.end('finished');
  run.closeAudit();
  await auditDone;
  return evidence!;
}

/**
 * A run an operator stopped: the evidence written (a store that is down is
 * logged, the run still ends), then the failure the workflow ends with,
 * `what` and `leftBehind` in its words ("recovery aborted at ...", "HINT:
 * writers, background jobs and the outbox were left as they were").
 */
export async function endStopped(
  run: RecoveryMachine,
  err: RunAborted,
  stop: { what: 'recovery' | 'repair'; evidence: Evidence; outcome: Outcome; leftBehind: () => string },
  write: WriteEvidence,
  auditDone: Promise<void>,
): Promise<never> {
  run.findings.outcome = stop.outcome;
  run.end(err.kind);
  await write(stop.evidence).catch((e: unknown) => log.error('evidence not written', { error: String(e) }));
  run.closeAudit();
  await auditDone;
  throw ApplicationFailure.create({
    type: err.kind === 'aborted' ? 'RECOVERY_ABORTED' : 'RECOVERY_REJECTED',
    nonRetryable: true,
    message:
      `${stop.what} ${err.kind} at ${err.step} by ${err.by}: ${err.reason}\n` +
      `HINT: ${stop.leftBehind()}\n` +
      `HINT: the evidence record is in the repository under evidence/${workflowInfo().runId}.json`,
  });
}
