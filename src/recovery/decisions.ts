// What operators send a running recovery (DESIGN.md §4.1, §4.2): the payload
// schemas of its signals and its `decide` update, validated in the workflow,
// and the records kept of each decision and of each message not acted on.
// messages.ts gives them their public names.
//
// Bundled into workflow code with contract.ts: zod only, no Node builtins.
import { z } from 'zod';
import { StepIdSchema, type StepId } from './steps';
import { Target } from './target';

const who = z
  .string({ error: 'expected who decides, e.g. "alice"' })
  .trim()
  .min(1, { error: 'expected who decides, e.g. "alice"' })
  .max(100);

/** What an approval carries besides its step and who gives it: the approve signal's and the decide update's. */
const approvalDetails = {
  comment: z.string().max(2000).optional(),
  /** approve-promote after a failed invariant: must be true, with the reason in comment. */
  override: z.boolean().optional(),
  /** approve-repair: classes restored besides the safe ones (conflicts are excluded unless named here). */
  include: z
    .array(z.enum(['changedSince', 'candidate'], { error: 'expected "changedSince" or "candidate"' }))
    .optional(),
};

export const ApproveSignal = z.object({ step: StepIdSchema, by: who, ...approvalDetails });
export const RejectSignal = z.object({ step: StepIdSchema, by: who, reason: z.string().max(2000).optional() });
export const StepSignal = z.object({ step: StepIdSchema, by: who, reason: z.string().max(2000).optional() });
export const RetargetSignal = z.object({ by: who, target: Target, comment: z.string().max(2000).optional() });

export const DECISIONS = ['approve', 'reject', 'retry', 'skip', 'abort'] as const;
export type DecisionKind = (typeof DECISIONS)[number];

export const DecideUpdate = z.object({
  step: StepIdSchema,
  decision: z.enum(DECISIONS, { error: `expected one of ${DECISIONS.join(', ')}` }),
  by: who,
  ...approvalDetails,
});
export type DecideUpdate = z.infer<typeof DecideUpdate>;

/** An accepted decision, as kept in status, the audit log and the evidence. */
export interface DecisionRecord {
  step: StepId;
  by: string;
  at: string;
  decision: DecisionKind | 'retarget';
  comment?: string;
  /** approve-promote given although an invariant failed. */
  override?: boolean;
  /** For retarget: the new target. */
  target?: Target;
  /** approve-repair: the classes this approver included besides the safe ones. */
  include?: Array<'changedSince' | 'candidate'>;
  /** signal or update. */
  via: 'signal' | 'update';
}

/** A message that was not acted on, listed in status (and the audit log). */
export interface IgnoredMessage {
  at: string;
  via: 'signal' | 'update';
  name: string;
  by?: string;
  step?: string;
  why: string;
}

export interface PendingDecision {
  step: StepId;
  kind: 'approval' | 'failed';
  since: string;
  /** Who may decide; empty means anyone named. */
  approvers: string[];
  min: number;
  approvedBy: string[];
  /** How to give the decision, in words an operator can copy. */
  how: string[];
}
