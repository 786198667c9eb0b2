// Runs a real activity function in its own activity context
// (MockActivityEnvironment: a real Context, no worker), collecting the
// heartbeats it sends, for integration tests of activities.
import { ApplicationFailure, type ActivityFunction } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { expect } from 'vitest';

export async function activity<P extends unknown[], R>(
  fn: ActivityFunction<P, R>,
  ...args: P
): Promise<{ result: R; beats: unknown[] }> {
  const env = new MockActivityEnvironment();
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const result = await env.run<P, R, ActivityFunction<P, R>>(fn, ...args);
  return { result, beats };
}

/** The ApplicationFailure an activity failed with (its type is the catalogue's code). */
export async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}
