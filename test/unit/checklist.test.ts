// The run's current details in the Temporal UI (workflows/recovery/checklist.ts):
// what a responder needs first comes first, and the page says when it was written.
import { describe, expect, it } from 'vitest';
import { STEP_IDS, STEP_TITLES, type RecoveryStatus } from '../../src/recovery/contract';
import { renderChecklist } from '../../workflows/recovery/checklist';
import { howToApprove, howToResolve } from '../../workflows/recovery/rules';

const base = (over: Partial<RecoveryStatus>): RecoveryStatus => ({
  workflow: 'recoverToPointInTime',
  runbook: 'ledger',
  target: { name: 'before-0042' },
  mode: 'side-by-side',
  dryRun: false,
  phase: 'waiting',
  startedAt: '2026-12-03T10:00:00.000Z',
  asOf: '2026-12-03T10:05:00.000Z',
  steps: STEP_IDS.map((id) => ({ id, title: STEP_TITLES[id], state: 'pending', runs: 0 })),
  decisions: [],
  ignored: [],
  ...over,
});

describe('the checklist', () => {
  it('puts the decision waited for, how to give it (the update first) and the refused messages above the steps', () => {
    const text = renderChecklist(
      base({
        pending: {
          step: 'approve-promote',
          kind: 'approval',
          since: '2026-12-03T10:04:00.000Z',
          approvers: ['alice', 'bob'],
          min: 2,
          approvedBy: ['alice'],
          how: howToApprove('wf-1', 'approve-promote', false),
        },
        ignored: [
          {
            at: '2026-12-03T10:04:30.000Z',
            via: 'update',
            name: 'decide approve',
            by: 'mallory',
            step: 'approve-promote',
            why: 'NOT_AN_APPROVER: mallory may not decide approve-promote; allowed: alice, bob',
          },
        ],
      }),
      'wf-1',
    );
    const lines = text.split('\n');
    expect(lines[2]).toBe(
      '**Waiting for approval: `approve-promote`** since 2026-12-03T10:04:00.000Z: 1 of 2 (alice); may approve: alice, bob.',
    );
    expect(lines[4]).toBe(
      '- Temporal UI: More Actions › Send an Update › decide, with `{"step": "approve-promote", "decision": "approve", "by": "<you>"}` (it answers: accepted, or why not; "decision": "reject" with a "comment" to stop the run)',
    );
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
    expect(at('Ignored messages: 1 (last: decide approve from mallory: NOT_AN_APPROVER')).toBeGreaterThan(4);
    expect(at('Written at 2026-12-03T10:05:00.000Z. This page does not refresh itself')).toBeGreaterThan(
      at('Ignored messages'),
    );
    expect(at('`preflight`')).toBeGreaterThan(at('Written at'));
  });

  it('says how an ended run ended first: the verdict, when it promoted, RTO and RPO', () => {
    const text = renderChecklist(
      base({
        phase: 'finished',
        outcome: {
          verdict: 'passed',
          promotedAt: '2026-12-03T10:06:00.000Z',
          rtoObservedSeconds: 360,
          rpoObservedSeconds: 2,
        },
      }),
      'wf-1',
    );
    expect(text.split('\n')[2]).toBe(
      '**Ended: recovered** · promoted at 2026-12-03T10:06:00.000Z · RTO 360 s · RPO 2 s',
    );
  });

  it('says why there is no RPO when the target is not a time, with the last commit replayed', () => {
    const replay = { lsn: '0/4016C80', time: '2026-12-03T09:59:58.000Z', paused: true };
    const text = renderChecklist(
      base({
        phase: 'finished',
        target: { latest: true },
        replay,
        outcome: { verdict: 'passed', promotedAt: '2026-12-03T10:06:00.000Z', rtoObservedSeconds: 360 },
      }),
      'wf-1',
    );
    expect(text.split('\n')[2]).toBe(
      '**Ended: recovered** · promoted at 2026-12-03T10:06:00.000Z · RTO 360 s · RPO not measured (the target is not a time; last commit replayed: 2026-12-03T09:59:58.000Z)',
    );
  });

  it('does not call a promoted copy paused, though replay last reported a pause', () => {
    const replay = { lsn: '0/4016C80', time: '2026-12-03T09:59:58.000Z', paused: true };
    const steps = base({}).steps.map((s) => ({ ...s, state: 'done' as const }));
    const ended = renderChecklist(
      base({
        phase: 'finished',
        steps,
        replay,
        outcome: {
          verdict: 'passed',
          promotedAt: '2026-12-03T10:06:00.000Z',
          rtoObservedSeconds: 360,
          rpoObservedSeconds: 2,
        },
      }),
      'wf-1',
    );
    expect(ended).toContain('Replayed to `0/4016C80` (last commit 2026-12-03T09:59:58.000Z)\n');
    expect(ended).not.toContain('), paused');
    // Still paused at approve-promote: said, with the last commit to compare with the target.
    expect(renderChecklist(base({ replay }), 'wf-1')).toContain(
      'Replayed to `0/4016C80` (last commit 2026-12-03T09:59:58.000Z), paused',
    );
  });

  it('gives the decide update for a failed step too, with the exact JSON for that step', () => {
    const lines = renderChecklist(
      base({
        pending: {
          step: 'disable-writers',
          kind: 'failed',
          since: '2026-12-03T10:04:00.000Z',
          approvers: ['alice'],
          min: 1,
          approvedBy: [],
          how: howToResolve('wf-1', 'disable-writers', undefined, 'fenced'),
        },
      }),
      'wf-1',
    ).split('\n');
    expect(lines).toContain(
      '- Temporal UI: More Actions › Send an Update › decide, with `{"step": "disable-writers", "decision": "retry", "by": "<you>"}` (it answers: accepted, or why not; "decision": "abort" with a "comment" saying why)',
    );
  });

  it('names the failing step of a run that ended in preflight, with its hints', () => {
    const steps = base({}).steps.map((s) =>
      s.id === 'preflight'
        ? {
            ...s,
            state: 'failed' as const,
            error: {
              type: 'PRIVILEGE_MISSING' as const,
              message: 'the role lifeboat lacks 1 privilege',
              hints: ['GRANT ...'],
            },
          }
        : s,
    );
    const lines = renderChecklist(base({ phase: 'failed', steps }), 'wf-1').split('\n');
    expect(lines.slice(2, 4)).toEqual([
      '**Ended: failed** at `preflight`: the role lifeboat lacks 1 privilege',
      '> HINT: GRANT ...',
    ]);
  });
});
