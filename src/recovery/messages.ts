// The signals, update and query of `recoverToPointInTime` (DESIGN.md §4.2),
// defined once for the workflow and its clients (CLI, chat-ops, tests).
// Their names are public: the Temporal UI sends them by name.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { z } from 'zod';
import type {
  ApproveSignal,
  DecideUpdate,
  RecoveryStatus,
  RejectSignal,
  RetargetSignal,
  StepRecord,
  StepSignal,
} from './contract';

// The payloads' shapes are the zod schemas that validate them (contract.ts):
// one definition, what a client may send (z.input: before trimming).
export type ApprovePayload = z.input<typeof ApproveSignal>;
export type RejectPayload = z.input<typeof RejectSignal>;
export type StepPayload = z.input<typeof StepSignal>;
export type RetargetPayload = z.input<typeof RetargetSignal>;

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
