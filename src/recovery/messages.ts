// The signals, update and query of `recoverToPointInTime` (DESIGN.md §4.2),
// defined once for the workflow and its clients (CLI, chat-ops, tests).
// Their names are public: the Temporal UI sends them by name.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecideUpdate, RecoveryStatus, StepRecord, StepId, Target } from './contract';

export interface ApprovePayload {
  step: StepId;
  by: string;
  comment?: string;
  /** approve-promote after a failed invariant: true, with the reason in comment. */
  override?: boolean;
  /** approve-repair: restore these classes too (conflicts are excluded unless named). */
  include?: Array<'changedSince' | 'candidate'>;
}
export interface RejectPayload {
  step: StepId;
  by: string;
  reason?: string;
}
export interface StepPayload {
  step: StepId;
  by: string;
  reason?: string;
}
export interface RetargetPayload {
  by: string;
  target: Target;
  comment?: string;
}

export const approveSignal = defineSignal<[ApprovePayload]>('approve');
export const rejectSignal = defineSignal<[RejectPayload]>('reject');
export const retargetSignal = defineSignal<[RetargetPayload]>('retarget');
export const retrySignal = defineSignal<[StepPayload]>('retry');
export const skipSignal = defineSignal<[StepPayload]>('skip');
export const abortSignal = defineSignal<[StepPayload]>('abort');

/** Answers with the step's state after the decision, or is refused with a message. */
export const decideUpdate = defineUpdate<StepRecord, [DecideUpdate]>('decide');

export const statusQuery = defineQuery<RecoveryStatus>('status');

export const RECOVERY_WORKFLOW = 'recoverToPointInTime';
export const REPAIR_WORKFLOW = 'repairFromPointInTime';
