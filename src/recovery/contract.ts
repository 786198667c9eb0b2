// The recovery runbook's public contract (shared/DESIGN.md §4, §4.1, §4.2, §7):
// the input of `recoverToPointInTime`, its step ids, the shapes of its
// signals, update and query, and what each activity takes and returns.
// Operators type these names into the Temporal UI and bots send them: extend,
// never rename.
//
// This file holds the workflow's input; the rest has a file each, re-exported
// here where callers import it: target.ts (the recovery target), steps.ts
// (step ids, titles, records), decisions.ts (signal and update payloads, the
// records of decisions), status.ts (the status query, the audit log),
// activity-io.ts (what each activity takes and returns), evidence-record.ts.
//
// Imported by workflow code (zod works in the sandbox) and by activities and
// the CLI: keep it and its parts free of Node builtins (eslint.config.mjs
// WORKFLOW_BUNDLED_SOURCES).
import { z } from 'zod';
import { Target } from './target';

export type * from './activity-io';
export type { Evidence } from './evidence-record';
export type { AuditLine, RecoveryStatus, ReplayPosition } from './status';
export {
  ApproveSignal,
  DecideUpdate,
  DECISIONS,
  RejectSignal,
  RetargetSignal,
  StepSignal,
  type DecisionKind,
  type DecisionRecord,
  type IgnoredMessage,
  type PendingDecision,
} from './decisions';
export {
  REPAIR_ONLY_STEP_IDS,
  REPAIR_STEP_IDS,
  STEP_IDS,
  STEP_TITLES,
  StepIdSchema,
  type StepError,
  type StepId,
  type StepRecord,
  type StepState,
} from './steps';
export { describeTarget, Target } from './target';

/** The runbook a run is for, by name: workers load it from their runbooks directory. */
export const RunbookName = z
  .string({ error: 'expected the runbook name, e.g. "orders"' })
  .min(1, { error: 'expected the runbook name' });

/** One of the runbook's repositories:, by its name or its position from 1 (--repo). */
export const RepositoryChoice = z
  .string({ error: 'expected a repository name or its position from 1' })
  .min(1)
  .optional();

export const RecoveryInput = z.strictObject({
  runbook: RunbookName,
  target: Target,
  incident: z.string({ error: 'expected the incident reference, e.g. "INC-1234"' }).max(200).optional(),
  reason: z.string({ error: 'expected a short reason' }).max(2000).optional(),
  mode: z.enum(['side-by-side', 'in-place'], { error: 'expected "side-by-side" or "in-place"' }).optional(),
  dryRun: z.boolean({ error: 'expected true or false' }).optional(),
  /** Extension: restore this backup instead of the one preflight would choose. */
  backupId: z
    .string()
    .regex(/^\d{8}T\d{6}Z(?:-[a-z0-9]{1,8})?$/, { error: 'expected a backup id such as 20261121T190102Z' })
    .optional(),
  /**
   * Extension: run even while another recovery of the runbook runs. Without
   * it a later start is refused with RECOVERY_ALREADY_RUNNING naming the
   * running one (activities/one-recovery.ts).
   */
  concurrent: z.boolean({ error: 'expected true or false' }).optional(),
  /**
   * Extension (runbook repositories:): restore from this repository only, by
   * its name or its position from 1, instead of the first that serves.
   */
  repository: RepositoryChoice,
});
export type RecoveryInput = z.input<typeof RecoveryInput>;
