// The closed catalogue of Lifeboat failure types (shared/DESIGN.md §8).
//
// Activities throw ApplicationFailure with one of these as `type`; workflows
// branch on the type string, never on `instanceof` (the workflow sandbox is
// another realm). Adding a code without deciding whether it is retryable
// fails to compile in `isRetryable` below.
//
// A plain list, not a zod enum: every `lifeboat` process loads this file,
// archive-push once per WAL segment, and zod costs tens of milliseconds.

export const ERROR_CODES = [
  'WAL_GAP',
  'WAL_CHECKSUM_MISMATCH',
  'WAL_NOT_FOUND',
  'ARCHIVE_CONFLICT',
  'BACKUP_NOT_FOUND',
  'BACKUP_VERIFY_FAILED',
  'BACKUP_FAILED',
  'RECOVERY_ENDED_BEFORE_TARGET',
  'PG_RUNNING',
  'PG_UNREACHABLE',
  'DATA_DIR_NOT_EMPTY',
  'INVARIANT_FAILED',
  'GATE_NOT_ENFORCED',
  'NOT_AN_APPROVER',
  'RUNBOOK_INVALID',
  'RUNBOOK_NOT_FOUND',
  'INPUT_INVALID',
  'REPOSITORY_UNREACHABLE',
  'REPOSITORY_INVALID',
  'SECRET_MISSING',
  'TOOL_FAILED',
  'SQL_FAILED',
  'CACHE_INVALIDATION_FAILED',
  'TRAFFIC_SWITCH_FAILED',
  'RECOVERY_ABORTED',
  'RECOVERY_REJECTED',
  'PORT_IN_USE',
  'DRILL_FAILED',
  'SEARCH_ATTRIBUTES_MISSING',
  'CHECKPOINT_REFUSED',
  'DISK_FULL',
  'STEP_NOT_SKIPPABLE',
  'RECOVERY_ALREADY_RUNNING',
  'DECISION_REFUSED',
  'UNEXPECTED',
  'TIMEOUT',
  'CANCELLED',
  'TARGET_UNREACHABLE',
  'TIMELINE_SUPERSEDED',
  'PRIVILEGE_MISSING',
  'ENDPOINT_UNREACHABLE',
  'ENCRYPTION_KEY_MISMATCH',
  'ENCRYPTED_OBJECT_DAMAGED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Whether Temporal should retry an activity that failed with this code. */
export function isRetryable(code: ErrorCode): boolean {
  switch (code) {
    // Transient: the network, a store or a server that may come back.
    case 'PG_UNREACHABLE':
    case 'REPOSITORY_UNREACHABLE':
    case 'TOOL_FAILED':
    case 'CACHE_INVALIDATION_FAILED':
    case 'TRAFFIC_SWITCH_FAILED':
    // Not from the catalogue: a bug or an unforeseen condition. A bounded
    // retry may pass (a restarted dependency); the retry policy limits it.
    case 'UNEXPECTED':
    // An activity that ran out of time (a worker gone, a hung server): the
    // next attempt runs on a live worker.
    case 'TIMEOUT':
      return true;
    // Facts about data or configuration: retrying changes nothing, an
    // operator must look.
    case 'WAL_GAP':
    case 'WAL_CHECKSUM_MISMATCH':
    case 'WAL_NOT_FOUND':
    case 'ARCHIVE_CONFLICT':
    case 'BACKUP_NOT_FOUND':
    case 'BACKUP_VERIFY_FAILED':
    case 'BACKUP_FAILED':
    case 'RECOVERY_ENDED_BEFORE_TARGET':
    case 'PG_RUNNING':
    case 'DATA_DIR_NOT_EMPTY':
    case 'INVARIANT_FAILED':
    case 'GATE_NOT_ENFORCED':
    case 'NOT_AN_APPROVER':
    case 'RUNBOOK_INVALID':
    case 'RUNBOOK_NOT_FOUND':
    case 'INPUT_INVALID':
    case 'REPOSITORY_INVALID':
    case 'SECRET_MISSING':
    case 'SQL_FAILED':
    case 'RECOVERY_ABORTED':
    case 'RECOVERY_REJECTED':
    // Someone else's listener: an operator frees the port or changes the runbook.
    case 'PORT_IN_USE':
    // A drill that failed has written its evidence: running it again is a new drill.
    case 'DRILL_FAILED':
    // An administrator must register them (temporal operator search-attribute create).
    case 'SEARCH_ATTRIBUTES_MISSING':
    // A checkpoint the archive could not recover to: an operator fixes the archive or takes a backup first.
    case 'CHECKPOINT_REFUSED':
    // The same full volume fails the same way: an operator frees or grows it, then retries.
    case 'DISK_FULL':
    // An operator asked for something the runbook does not allow.
    case 'STEP_NOT_SKIPPABLE':
    // Another recovery of the runbook holds it: an operator ends that one or says to run both.
    case 'RECOVERY_ALREADY_RUNNING':
    // A decide update the run refused (wrong step, repeated, not the moment): the same update is refused again.
    case 'DECISION_REFUSED':
    // An operator cancelled: doing it again would undo their decision.
    case 'CANCELLED':
    // The archive does not hold the target (a time after its newest commit, a
    // restore point it lacks, an LSN past its end): asking again finds the same
    // archive; an operator chooses a target it holds.
    case 'TARGET_UNREACHABLE':
    // The role lacks a grant (on the primary, or in the chosen backup's
    // catalog, which no grant can change any more): a superuser grants it
    // (lifeboat grants), and for a backup's catalog a new backup is taken.
    case 'PRIVILEGE_MISSING':
    // A cache or traffic endpoint that did not answer in preflight (or is not
    // set up for the run): refused before anything is fenced; an operator
    // brings it up or fixes the runbook, then starts the run again.
    case 'ENDPOINT_UNREACHABLE':
    // archive-push of WAL from a server a newer timeline replaced (an old
    // primary after a side-by-side recovery): the same file is refused again
    // until that server is stopped or archives elsewhere.
    case 'TIMELINE_SUPERSEDED':
    // An encrypted object whose key id is not configured, or whose key is not
    // the one configured under that id: an operator sets the right key.
    case 'ENCRYPTION_KEY_MISMATCH':
    // An encrypted object that fails authentication (changed, truncated,
    // reordered): reading it again reads the same bytes.
    case 'ENCRYPTED_OBJECT_DAMAGED':
      return false;
    default: {
      const unhandled: never = code;
      throw new Error(`no retry decision for error code ${String(unhandled)}`);
    }
  }
}

/**
 * An error an operator can act on: what failed, then HINT lines.
 * `message` already contains the hints so that every printer shows them.
 */
export class LifeboatError extends Error {
  readonly code: ErrorCode;
  /** What failed, without the HINT lines (may span lines: a runbook's list of errors). */
  readonly what: string;
  readonly hints: readonly string[];
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    what: string,
    opts: { hints?: string[]; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    const hints = opts.hints ?? [];
    super([what, ...hints.map((h) => `HINT: ${h}`)].join('\n'), { cause: opts.cause });
    this.name = 'LifeboatError';
    this.code = code;
    this.what = what;
    this.hints = hints;
    this.details = opts.details ?? {};
  }
}

export function isLifeboatError(err: unknown): err is LifeboatError {
  return err instanceof LifeboatError;
}

/** Adds context as an error travels up: "while extracting base backup X: ...". */
export function withContext(context: string, err: unknown): Error {
  if (err instanceof LifeboatError) {
    // Prefix `what`, not the message: the message ends in HINT lines, which
    // must stay last, and `what` may span lines (every error of a runbook).
    return new LifeboatError(err.code, `${context}: ${err.what}`, {
      hints: [...err.hints],
      cause: err,
      details: err.details,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${context}: ${message}`, { cause: err });
}

/** Message of any thrown value, for printing. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
