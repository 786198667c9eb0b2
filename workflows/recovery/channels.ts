// Where a run tells people that a step waits for them, for both runbook
// workflows (recoverToPointInTime, repairFromPointInTime): the escalation
// after the runbook's wait, and the approval message with its buttons when
// the wait begins. Each is audited with what the channel answered; neither
// ever fails the run (a channel that is down is a note, not an outcome).
import type { PendingDecision } from '../../src/recovery/contract';
import type { RecoveryActivities } from '../../src/recovery/activity-types';
import type { RecoveryMachine } from './machine';

type ChannelActivities = Pick<RecoveryActivities, 'notifyEscalation' | 'announceApproval'>;

/**
 * Sets the run's approval announcer and returns the escalation notifier that
 * `run.approval(step, notify)` calls.
 */
export function decisionChannels(
  run: RecoveryMachine,
  act: ChannelActivities,
  ref: { runbook: string; workflowId: string },
): (pending: PendingDecision, waitedSeconds: number) => Promise<void> {
  run.announce = async (pending) => {
    const r = await act
      .announceApproval({ ...ref, pending })
      .catch((err: unknown) => ({ delivered: false, detail: String(err) }));
    run.audit({
      at: new Date().toISOString(),
      event: 'step',
      note: `approval message for ${pending.step}: ${r.detail}`,
    });
  };
  return async (pending, waitedSeconds) => {
    const r = await act
      .notifyEscalation({ ...ref, pending, waitedSeconds })
      .catch((err: unknown) => ({ delivered: false, detail: String(err) }));
    run.audit({ at: new Date().toISOString(), event: 'step', note: `escalation for ${pending.step}: ${r.detail}` });
  };
}
