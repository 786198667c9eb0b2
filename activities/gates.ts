// Activities that set the recovery's gates (DESIGN.md §4.1 steps 4-6, the
// second half of 11, 15-16) on the old primary or on the restored instance.
// They run on the `lifeboat` queue: all they need is a SQL connection.
import { Context } from '@temporalio/activity';
import { setGateOn, type GateKind } from '../src/gates';
import type { GateInput, GateResult } from '../src/recovery/contract';
import { loadRunbookWithPrimary } from '../src/catalog/primary';
import { loadRunbook } from '../src/runbook/load';
import { lifeboatActivity } from './failure';

/**
 * Sets one gate (DESIGN.md §4.1 steps 4-6, 11, 15-16). Run twice: every
 * statement sets a value rather than changing one (the row to on/off, the
 * roles' default_transaction_read_only, sessions of fenced roles ended), so
 * a second run arrives at the same state. A dead attempt blocked on a row
 * lock still runs its UPDATE once the lock is free; inside its transaction
 * it then finds its client gone and rolls back, or, having committed, wrote
 * the same value. The writer gate's proof is a fresh login each time.
 */
export async function setGate(input: GateInput & { gate: GateKind }): Promise<GateResult> {
  return lifeboatActivity(async () => {
    // Fencing the primary means the primary now: re-pointed by an earlier
    // side-by-side recovery's overlay, if any. This run's own overlay is
    // written after promote, when no gate is set on the primary any more.
    const runbook =
      input.where === 'primary'
        ? (await loadRunbookWithPrimary(input.runbook)).runbook
        : await loadRunbook(input.runbook);
    // The workflow id goes into the "skip this step" hint when the primary is gone.
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    return setGateOn(runbook, { gate: input.gate, where: input.where, enabled: input.enabled, workflowId });
  });
}
