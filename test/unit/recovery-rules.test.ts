// What an operator reads when a signal or the decide update is malformed:
// the shape the input must have, with an example that fits the moment,
// never zod's "(payload): Invalid input: expected object, received string".
import { describe, expect, it } from 'vitest';
import { ApproveSignal, DecideUpdate, RetargetSignal, StepSignal } from '../../src/recovery/contract';
import { describeIssues } from '../../workflows/recovery/rules';

const issues = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) => {
  expect(r.success).toBe(false);
  return r.error!.issues;
};

describe('describeIssues', () => {
  it('says a signal input that is not an object must be a JSON object, with an example for the step waiting, and what came instead', () => {
    expect(
      describeIssues(issues(ApproveSignal.safeParse('approve-fence')), 'approve', {
        step: 'approve-promote',
        kind: 'approval',
      }),
    ).toBe(
      `signal approve's input must be a JSON object such as {"step": "approve-promote", "by": "alice"} (got a string)`,
    );
    expect(describeIssues(issues(StepSignal.safeParse(undefined)), 'abort')).toBe(
      `signal abort's input must be a JSON object such as {"step": "replay-wal", "by": "alice", "reason": "why, for the evidence"} (got no input)`,
    );
  });

  it('does not suggest approving a step that failed: the example is a typical approval then', () => {
    expect(describeIssues(issues(ApproveSignal.safeParse([])), 'approve', { step: 'replay-wal', kind: 'failed' })).toBe(
      `signal approve's input must be a JSON object such as {"step": "approve-fence", "by": "alice"} (got an array)`,
    );
  });

  it('names each bad field with what was expected, then the whole shape', () => {
    expect(
      describeIssues(issues(StepSignal.safeParse({ step: 'replay-wal' })), 'retry', {
        step: 'replay-wal',
        kind: 'failed',
      }),
    ).toBe(
      `by: expected who decides, e.g. "alice" (signal retry's input is a JSON object such as {"step": "replay-wal", "by": "alice"})`,
    );
    expect(describeIssues(issues(RetargetSignal.safeParse({ by: 'alice' })), 'retarget')).toMatch(
      /^target: .+ \(signal retarget's input is a JSON object such as \{"by": "alice", "target": \{"time": "2026-06-04T14:31:00Z"\}\}\)$/,
    );
  });

  it('words the decide update the same way', () => {
    expect(describeIssues(issues(DecideUpdate.safeParse(42)), 'decide', { step: 'replay-wal', kind: 'failed' })).toBe(
      `the update's input must be a JSON object such as {"step": "replay-wal", "decision": "approve", "by": "alice"} (got a number)`,
    );
  });
});
