// Turns what activities throw into Temporal failures whose `type` is a code
// from the closed catalogue (src/errors.ts), retryable or not by that code.
// Workflows branch on the type string: `instanceof` does not cross into the
// workflow sandbox.
import { Context } from '@temporalio/activity';
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

/**
 * Runs an activity body, heartbeating while it runs (see keepBeating), and
 * converts whatever it throws (see asActivityFailure).
 */
export async function lifeboatActivity<T>(body: () => Promise<T>): Promise<T> {
  const stop = keepBeating();
  try {
    return await body();
  } catch (err) {
    throw asActivityFailure(err);
  } finally {
    stop();
  }
}

/**
 * lifeboatActivity for a body that stops when the activity is cancelled (an
 * operator's abort): it gets the cancellation signal, and a cancellation
 * reaches Temporal as the CancelledFailure Temporal gave, whatever the body
 * threw on the way out (Temporal reports a cancellation only for its own).
 */
export async function cancellableActivity<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const signal = Context.current().cancellationSignal;
  try {
    return await lifeboatActivity(() => body(signal));
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

/** How often a running activity tells Temporal it is alive, whatever it is waiting on. */
export const KEEPALIVE_MS = 2000;

/** The details each running activity last heartbeated: the keepalive re-sends them. */
const lastDetails = new WeakMap<Context, { details: unknown }>();

/**
 * Heartbeats progress `details` from the running activity (a no-op outside
 * one, e.g. `lifeboat expire --local`). Use this rather than
 * `Context.heartbeat`: Temporal keeps only the last heartbeat's details, and
 * `lifeboat status` and the UI read them, so the keepalive must re-send what
 * was last reported, not blank it.
 */
export function heartbeat(details: unknown): void {
  const ctx = currentContext();
  if (!ctx) return;
  lastDetails.set(ctx, { details });
  ctx.heartbeat(details);
}

/**
 * Heartbeats every KEEPALIVE_MS while an activity body runs, so that a
 * worker that dies (SIGKILL, OOM, a lost host) is noticed within the
 * activity's heartbeatTimeout and the step is taken over by another worker,
 * instead of waiting out its start-to-close timeout. A body blocked on a row
 * lock, pg_ctl promote, an HTTP endpoint or a frozen object store awaits I/O, so
 * the timer still fires; what it cannot tell is whether that wait will ever
 * end (the start-to-close timeout bounds that). Heartbeats are also what
 * delivers a cancellation to a running activity.
 *
 * Returns the function that stops it. Outside an activity, or for one
 * scheduled without a heartbeatTimeout, it does nothing.
 */
export function keepBeating(): () => void {
  const ctx = currentContext();
  const timeoutMs = ctx?.info.heartbeatTimeoutMs;
  if (!ctx || !timeoutMs || ctx.info.isLocal) return () => undefined;
  // A retried attempt starts from the details its predecessor left (restore
  // bytes, replay LSN): re-sending them keeps the progress shown until this
  // attempt reports its own.
  if (!lastDetails.has(ctx) && ctx.info.heartbeatDetails !== undefined)
    lastDetails.set(ctx, { details: ctx.info.heartbeatDetails });
  const beat = () => ctx.heartbeat(lastDetails.get(ctx)?.details);
  beat();
  const timer = setInterval(beat, Math.min(KEEPALIVE_MS, Math.max(100, Math.floor(timeoutMs / 4))));
  timer.unref();
  return () => clearInterval(timer);
}

function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // not inside an activity
  }
}

/**
 * Details travel through the payload converter (JSON): a bigint or a cycle
 * there would make the failure itself fail to serialize and hide the real
 * error, so anything that is not plain JSON is dropped or stringified here.
 */
function jsonSafe(details: Record<string, unknown>): Record<string, unknown> | undefined {
  try {
    return JSON.parse(
      JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    ) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
