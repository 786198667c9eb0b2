// Turns what activities throw into Temporal failures whose `type` is a code
// from the closed catalogue (src/errors.ts), retryable or not by that code.
// Workflows branch on the type string: `instanceof` does not cross into the
// workflow sandbox.
import { ApplicationFailure } from '@temporalio/common';
import { isLifeboatError, isRetryable, errorMessage } from '../src/errors';

export function asActivityFailure(err: unknown): Error {
  if (err instanceof ApplicationFailure) return err;
  if (isLifeboatError(err)) {
    return ApplicationFailure.create({
      type: err.code,
      message: err.message,
      nonRetryable: !isRetryable(err.code),
      details: Object.keys(err.details).length > 0 ? [err.details] : undefined,
    });
  }
  // Unknown errors stay retryable: Temporal's retry policy bounds them.
  return ApplicationFailure.create({ type: 'UNEXPECTED', message: errorMessage(err), nonRetryable: false });
}
