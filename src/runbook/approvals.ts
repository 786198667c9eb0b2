// The runbook's `approvals:` (who must approve fencing, promotion, resuming
// and a repair, and how many) and `skippable:` (the steps an operator may
// skip after a failure).
//
// Bundled into workflow code with schema.ts: zod only, no Node builtins.
import { z } from 'zod';
import { duration, identifier } from './fields';

export const ApprovalPolicy = z
  .strictObject(
    {
      approvers: z.array(identifier('an approver name'), { error: 'expected a list of approver names' }).min(1, {
        error: 'expected at least one approver',
      }),
      min: z
        .number({ error: 'expected an integer of at least 1' })
        .int({ error: 'expected an integer of at least 1' })
        .min(1, { error: 'expected an integer of at least 1' })
        .default(1),
      escalateAfter: duration.optional(),
    },
    { error: 'expected a mapping with approvers (and optionally min, escalateAfter)' },
  )
  .superRefine((p, ctx) => {
    const distinct = new Set(p.approvers).size;
    // With no approvers the list itself is reported; a second line about min would only confuse.
    if (distinct > 0 && p.min > distinct) {
      ctx.addIssue({
        code: 'custom',
        path: ['min'],
        message: `expected at most ${distinct} (the number of distinct approvers), or no decision could ever pass`,
      });
    }
  });

/** Steps that may ever be skipped; restore, replay, promote and evidence never can. */
export const SKIPPABLE_STEP_IDS = [
  'capture-forensics',
  'disable-writers',
  'disable-background-jobs',
  'pause-outbox',
  'run-invariants',
  'reconcile-outbox',
  'invalidate-caches',
  'resume-traffic',
  'enable-background-jobs',
  'resume-outbox',
] as const;

export const APPROVAL_STEPS = ['approve-fence', 'approve-promote', 'approve-resume', 'approve-repair'] as const;

/** `approve-resume: false` turns the resume approval off (it is on by default). */
export const Approvals = z.partialRecord(
  z.enum(APPROVAL_STEPS, { error: `expected one of ${APPROVAL_STEPS.join(', ')}` }),
  // Not a z.union: a union reports only that no branch matched, and the
  // operator would lose the path of the bad field inside the policy.
  z.unknown().transform((value, ctx): z.output<typeof ApprovalPolicy> | false => {
    if (value === false) return false;
    const parsed = ApprovalPolicy.safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues)
      ctx.addIssue({ ...issue, code: 'custom', message: issue.message, path: issue.path } as never);
    return z.NEVER;
  }),
);

/**
 * Steps an operator may skip when they fail. The gate steps are there by
 * default: when the primary is the thing that died, they cannot succeed.
 */
export const DEFAULT_SKIPPABLE = [
  'capture-forensics',
  'disable-writers',
  'disable-background-jobs',
  'pause-outbox',
  'invalidate-caches',
] as const;
