// Activities that set the recovery's gates (DESIGN.md §4.1 steps 4-6, the
// second half of 11, 15-16) on the old primary or on the restored instance.
// They run on the `lifeboat` queue: all they need is a SQL connection.
import { Context } from '@temporalio/activity';
import { setGateOn, type GateKind } from '../src/gates';
import type { GateInput, GateResult } from '../src/recovery/contract';
import { loadRunbook } from '../src/runbook/load';
import { lifeboatActivity } from './failure';

export async function setGate(input: GateInput & { gate: GateKind }): Promise<GateResult> {
  return lifeboatActivity(async () => {
    const runbook = await loadRunbook(input.runbook);
    // The workflow id goes into the "skip this step" hint when the primary is gone.
    const workflowId = Context.current().info.workflowExecution?.workflowId;
    return setGateOn(runbook, { gate: input.gate, where: input.where, enabled: input.enabled, workflowId });
  });
}
