// Turns what activities throw into Temporal failures whose `type` is a code
// from the closed catalogue (src/errors.ts), retryable or not by that code.
// Workflows branch on the type string: `instanceof` does not cross into the
// workflow sandbox.
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { isLifeboatError, isRetryable, errorMessage } from '../src/errors';

export function asActivityFailure(err: unknown): Error {
  // Cancellation must reach Temporal as itself, or a cancelled activity
  // (an operator's abort) would be recorded as a failure and retried.
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  if (isLifeboatError(err)) {
    const details = jsonSafe(err.details);
    return ApplicationFailure.create({
      type: err.code,
      message: err.message,
      nonRetryable: !isRetryable(err.code),
      details: details && Object.keys(details).length > 0 ? [details] : undefined,
    });
  }
  // Unknown errors stay retryable: Temporal's retry policy bounds them.
  return ApplicationFailure.create({ type: 'UNEXPECTED', message: errorMessage(err), nonRetryable: false });
}

/** Runs an activity body and converts whatever it throws (see asActivityFailure). */
export async function lifeboatActivity<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw asActivityFailure(err);
  }
}

/**
 * Details travel through the payload converter (JSON): a bigint or a cycle
 * there would make the failure itself fail to serialize and hide the real
 * error, so anything that is not plain JSON is dropped or stringified here.
 */
function jsonSafe(details: Record<string, unknown>): Record<string, unknown> | undefined {
  try {
    return JSON.parse(JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
