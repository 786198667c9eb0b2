// The two ways a runbook workflow leaves its step sequence early, thrown
// inside the workflow by the step machinery (machine.ts, approval.ts) and
// caught by the workflow: a retarget after a failed replay, and an
// operator's abort or rejection.
import type { StepId } from '../../src/recovery/contract';

/** Thrown by a failed replay-wal when an operator moves the target; the workflow restores again. */
export class Retargeted extends Error {
  constructor() {
    super('retargeted after replay-wal failed');
    this.name = 'Retargeted';
  }
}

/** Thrown inside the workflow when an operator aborts; caught at the top. */
export class RunAborted extends Error {
  constructor(
    readonly step: StepId,
    readonly by: string,
    readonly reason: string,
    readonly kind: 'aborted' | 'rejected',
  ) {
    super(`${kind} at ${step} by ${by}: ${reason}`);
    this.name = 'RunAborted';
  }
}
